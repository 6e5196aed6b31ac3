"""ALFWorld steps/s through turngym (``gymnasium.make``) vs through alfworld's own engine stack, and
expert/random success per task type.

Both sides play the same generated games with the same command sequences (random admissible
commands, recorded once through the alfworld stack with a fixed seed), resets included. The
baseline is exactly what ALFWorld's ``AlfredTWEnv`` and ``alfworld-generate`` play through:
``textworld.envs.PddlEnv`` wrapped by ``alfworld.agents.environment.alfred_tw_env.AlfredDemangler``,
asking for the same ``EnvInfos`` (admissible commands, won). Both sides run in one process with
turngym's engine speedups installed (they are process-wide), so the ratio is turngym's own
overhead: command normalisation and validation, the canonical PDDL state and its hash, goal
progress, the standard info dict. The sides alternate episode by episode (so load bursts on a
shared machine hit both); each episode's best of ``--repeats`` is kept.

For reference, the stock stack (no speedups: Fast Downward translates every reset anew) is timed
on the same episodes in a fresh process.

    python benchmarks/alfworld_speed.py            # 2 games per type, 3 repeats, 10 tasks per type
    python benchmarks/alfworld_speed.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable

import gymnasium
import numpy as np

import turngym
from turngym.agents import RandomPolicy, expert
from turngym.envs.alfworld.engine import AlfredEngine, request_infos
from turngym.envs.alfworld.env import ALFWorldEnv
from turngym.envs.alfworld.problems import TASK_TYPES

Episode = tuple[str, str, list[str]]  # (task id, game file, commands)


def record_episodes(tasks: list[str], steps: int, seed: int) -> list[Episode]:
    """Random admissible command sequences, one episode per game, recorded on the alfworld stack."""
    env = ALFWorldEnv()
    paths = [str(env.game_path(task)) for task in tasks]  # generated (and cached) here, not timed
    env.close()
    rng = np.random.default_rng(seed)
    engine, episodes = AlfredEngine(), []
    for task, path in zip(tasks, paths, strict=True):
        engine.load(path)
        engine.reset()
        commands: list[str] = []
        for _ in range(steps):
            command = str(rng.choice(engine.admissible_commands))
            commands.append(command)
            engine.step(command)
            if engine.won:
                break
        episodes.append((task, path, commands))
    engine.close()
    return episodes


def alfworld_player() -> Callable[[Episode], float]:
    """Plays one episode on ``PddlEnv`` + ``AlfredDemangler`` (one engine for all games); seconds."""
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler
    from textworld.envs import PddlEnv

    env = AlfredDemangler(PddlEnv(request_infos()), shuffle=False)

    def play(episode: Episode) -> float:
        _, path, commands = episode
        start = time.perf_counter()
        env.load(path)
        env.reset()
        for command in commands:
            env.step(command)
        return time.perf_counter() - start

    return play


def turngym_player(env_id: str) -> Callable[[Episode], float]:
    """Plays one episode through ``gymnasium.make(env_id)``; returns seconds."""
    env = gymnasium.make(env_id, max_turns=10_000)

    def play(episode: Episode) -> float:
        task, _, commands = episode
        start = time.perf_counter()
        env.reset(options={"task": task})
        for command in commands:
            *_, info = env.step(command)
            assert info["valid_action"], f"{command!r} was refused; the sides diverged"
        return time.perf_counter() - start

    return play


def compare(episodes: list[Episode], repeats: int) -> tuple[float, float]:
    """Best time per episode on each side, summed; the sides alternate episode by episode, so a
    burst of load on a shared machine hits both alike."""
    alfworld, turngym = alfworld_player(), turngym_player("turngym/ALFWorld-v1")
    best = np.full((2, len(episodes)), np.inf)
    for repeat in range(repeats + 1):  # the first round warms both sides up and is not counted
        for i, episode in enumerate(episodes):
            if (i + repeat) % 2:  # alternate which side goes first
                alfworld_time, turngym_time = alfworld(episode), turngym(episode)
            else:
                turngym_time, alfworld_time = turngym(episode), alfworld(episode)
            if repeat:
                best[:, i] = np.minimum(best[:, i], (alfworld_time, turngym_time))
    return float(best[0].sum()), float(best[1].sum())


_STOCK = """
import json, sys, time
from alfworld.agents.environment.alfred_tw_env import AlfredDemangler
from textworld.envs import PddlEnv
import textworld
episodes = json.load(open(sys.argv[1]))
env = AlfredDemangler(PddlEnv(textworld.EnvInfos(admissible_commands=True, won=True)), shuffle=False)
steps, start = 0, time.perf_counter()
for _, path, commands in episodes:
    env.load(path)
    env.reset()
    for command in commands:
        env.step(command)
        steps += 1
print(json.dumps([steps, time.perf_counter() - start]))
"""


def run_stock(
    episodes: list[Episode], tmp: str = "/tmp/turngym_alfworld_episodes.json"
) -> tuple[int, float]:
    """The unpatched alfworld stack in a fresh process (reference only)."""
    with open(tmp, "w") as handle:
        json.dump(episodes, handle)
    out = subprocess.run(
        [sys.executable, "-c", _STOCK, tmp], capture_output=True, text=True, check=True
    )
    steps, elapsed = json.loads(out.stdout.strip().splitlines()[-1])
    return int(steps), float(elapsed)


def success_per_type(
    policy_name: str, tasks_per_type: int, max_turns: int
) -> dict[str, tuple[float, float]]:
    """Success rate and mean turns of a policy on the first ``tasks_per_type`` train tasks of each type."""
    results = {}
    for task_type in TASK_TYPES:
        env = ALFWorldEnv(
            task_types=[task_type], num_tasks=(tasks_per_type, 1), max_turns=max_turns
        )
        policy = expert("turngym/ALFWorld-v1") if policy_name == "expert" else RandomPolicy(seed=0)
        wins, turns = [], []
        for task in env.task_ids:
            observation, info = env.reset(options={"task": task})
            conversation = turngym.Conversation(
                messages=[{"role": "system", "content": info["instructions"]}]
            )
            for _ in range(max_turns):
                conversation.messages.append({"role": "user", "content": observation})
                conversation.admissible_actions = info["admissible_actions"]
                conversation.privileged = (
                    info["privileged"] if getattr(policy, "privileged", False) else None
                )
                action = policy.act([conversation])[0]
                observation, _, terminated, truncated, info = env.step(action)
                conversation.messages.append({"role": "assistant", "content": action})
                if terminated or truncated:
                    break
            wins.append(bool(info["success"]))
            turns.append(info["turn"])
        env.close()
        results[task_type] = (float(np.mean(wins)), float(np.mean(turns)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games-per-type", type=int, default=2)
    parser.add_argument("--steps", type=int, default=50, help="commands per episode")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--tasks-per-type", type=int, default=10, help="tasks per type for success rates"
    )
    parser.add_argument("--max-turns", type=int, default=50)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.games_per_type, args.steps, args.repeats, args.tasks_per_type = 1, 20, 1, 2

    tasks = [f"{t}-seen-{i}" for t in TASK_TYPES for i in range(args.games_per_type)]
    episodes = record_episodes(tasks, args.steps, seed=0)
    steps = sum(len(commands) for *_, commands in episodes)
    best_alfworld, best_turngym = compare(episodes, args.repeats)
    stock_steps, stock_elapsed = run_stock(episodes)
    print(
        f"{len(episodes)} games ({args.games_per_type} per type), {steps} steps, resets included, best of {args.repeats} per episode"
    )
    print(f"  alfworld PddlEnv+AlfredDemangler: {steps / best_alfworld:8.1f} steps/s")
    print(f"  turngym/ALFWorld-v1:              {steps / best_turngym:8.1f} steps/s")
    print(
        f"  overhead ratio (turngym time / alfworld time): {best_turngym / best_alfworld:.3f}x  (goal <= 1.10x)"
    )
    print(
        f"  reference, stock alfworld stack without turngym's speedups (fresh process): "
        f"{stock_steps / stock_elapsed:8.1f} steps/s"
    )

    print(
        f"\nsuccess per type ({args.tasks_per_type} train tasks each, max {args.max_turns} turns): rate (mean turns)"
    )
    expert_rates = success_per_type("expert", args.tasks_per_type, args.max_turns)
    random_rates = success_per_type("random", args.tasks_per_type, args.max_turns)
    print(f"  {'task type':34s} {'expert':>14s} {'random':>14s}")
    for task_type in TASK_TYPES:
        (e_rate, e_turns), (r_rate, r_turns) = expert_rates[task_type], random_rates[task_type]
        print(f"  {task_type:34s} {e_rate:6.0%} ({e_turns:4.1f}) {r_rate:6.0%} ({r_turns:4.1f})")
    overall_e = np.mean([r for r, _ in expert_rates.values()])
    overall_r = np.mean([r for r, _ in random_rates.values()])
    print(f"  {'all':34s} {overall_e:6.0%}        {overall_r:6.0%}")


if __name__ == "__main__":
    main()
