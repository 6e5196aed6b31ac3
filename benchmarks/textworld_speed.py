"""TextWorld steps/s through turngym (``gymnasium.make``) vs through textworld's own API.

Both sides play the same generated games with the same command sequences (random admissible
commands, recorded once through textworld's API with a fixed seed), resets included. The
baseline asks textworld for the same ``EnvInfos`` turngym asks for (admissible commands, score,
winning policy, ...), so the ratio is turngym's own overhead: command normalisation and
validation, the standard info dict, the state key (hash of the sorted game facts). A second
baseline with textworld's default ``EnvInfos`` (feedback text only, no state tracking) is printed
for reference. Runs alternate between the sides and the best of ``--repeats`` is kept.

    python benchmarks/textworld_speed.py            # medium games, 3 repeats
    python benchmarks/textworld_speed.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import gymnasium
import numpy as np
import textworld

import turngym  # noqa: F401 - registers the ids
from turngym.envs.textworld.env import game_pool, request_infos
from turngym.envs.textworld.games import split_seeds

Episode = tuple[int, Path, list[str]]  # (game seed, game path, commands)


def record_episodes(
    paths: list[Path], seeds: list[int], steps: int, rng: np.random.Generator
) -> list[Episode]:
    """Random admissible command sequences, one episode per game, recorded with textworld."""
    episodes = []
    for seed, path in zip(seeds, paths, strict=True):
        engine = textworld.start(str(path), request_infos=request_infos())
        state, commands = engine.reset(), []
        for _ in range(steps):
            command = str(rng.choice(state["admissible_commands"]))
            commands.append(command)
            state, _, done = engine.step(command)
            if done:
                break
        engine.close()
        episodes.append((seed, path, commands))
    return episodes


def run_textworld(episodes: list[Episode], infos: textworld.EnvInfos) -> tuple[int, float]:
    """Plays the episodes with ``textworld.start``; one engine, reloaded per game (turngym keeps an
    engine per game instead, see the memory model in ``envs/textworld/env.py``)."""
    engine, steps = None, 0
    start = time.perf_counter()
    for _, path, commands in episodes:
        if engine is None:
            engine = textworld.start(str(path), request_infos=infos)
        else:
            engine.load(str(path))
        engine.reset()
        for command in commands:
            engine.step(command)
            steps += 1
    elapsed = time.perf_counter() - start
    engine.close()
    return steps, elapsed


def run_turngym(episodes: list[Episode], env_id: str) -> tuple[int, float]:
    """Plays the episodes through ``gymnasium.make(env_id)``."""
    env = gymnasium.make(env_id, game_seeds=[seed for seed, _, _ in episodes], max_turns=10_000)
    steps = 0
    start = time.perf_counter()
    for seed, _, commands in episodes:
        env.reset(options={"task": str(seed)})
        for command in commands:
            _, _, terminated, truncated, info = env.step(command)
            assert info["valid_action"], f"{command!r} was refused; the sides diverged"
            steps += 1
        assert terminated or truncated or len(commands) > 0
    elapsed = time.perf_counter() - start
    env.close()
    return steps, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--difficulty", default="medium", choices=["easy", "medium", "hard"])
    parser.add_argument("--games", type=int, default=10, help="games of the train pool played")
    parser.add_argument("--steps", type=int, default=100, help="max commands per episode")
    parser.add_argument(
        "--repeats", type=int, default=3, help="alternating runs per side; best kept"
    )
    parser.add_argument("--quick", action="store_true", help="3 games, 30 steps, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.games, args.steps, args.repeats = 3, 30, 1
    warnings.filterwarnings("ignore", message=".*not fully supported.*")  # Jericho, see env.py

    env_id = f"turngym/TextWorld-{args.difficulty.capitalize()}-v1"
    paths = game_pool(args.difficulty, "train", args.games)
    seeds = split_seeds("train", args.games)
    episodes = record_episodes(paths, seeds, args.steps, np.random.default_rng(0))
    run_turngym(episodes[:1], env_id)  # warm imports and caches on both sides
    run_textworld(episodes[:1], request_infos())

    sides = {
        "textworld API, turngym's EnvInfos": lambda: run_textworld(episodes, request_infos()),
        f"turngym ({env_id})": lambda: run_turngym(episodes, env_id),
        "textworld API, default EnvInfos": lambda: run_textworld(episodes, textworld.EnvInfos()),
    }
    best: dict[str, tuple[int, float]] = {}
    for _ in range(args.repeats):
        for name, run in sides.items():
            steps, elapsed = run()
            if name not in best or elapsed < best[name][1]:
                best[name] = (steps, elapsed)

    baseline_steps, baseline_time = best["textworld API, turngym's EnvInfos"]
    print(
        f"{len(episodes)} {args.difficulty} games, {baseline_steps} steps per run, best of {args.repeats}"
    )
    print(f"{'side':<42} {'steps/s':>9} {'time/step':>11} {'overhead':>9}")
    for name, (steps, elapsed) in best.items():
        ratio = elapsed / baseline_time
        print(f"{name:<42} {steps / elapsed:>9.0f} {1e3 * elapsed / steps:>9.3f}ms {ratio:>8.3f}x")
    turngym_ratio = best[f"turngym ({env_id})"][1] / baseline_time
    verdict = "meets" if turngym_ratio <= 1.10 else "misses"
    print(
        f"turngym overhead vs textworld with the same infos: {turngym_ratio:.3f}x ({verdict} the 1.10x goal)"
    )


if __name__ == "__main__":
    main()
