"""Rollout throughput: turngym.rollout (in-process, worker processes) vs gymnasium's AsyncVectorEnv.

The env is the corridor with a configurable amount of CPU work per step (``--work-ms``), standing
in for a CPU-bound text env (a TextWorld/ALFWorld engine step costs ~1-5 ms). Every runner plays
the same number of steps with a random admissible policy; the table prints steps/s and the
ratio to the in-process baseline measured in the same run.

    python benchmarks/rollout_speed.py [--quick] [--work-ms 2] [--envs 2]
"""

from __future__ import annotations

import argparse
import time

import gymnasium
import numpy as np

import turngym
from turngym.envs.toy.corridor import CorridorEnv


class BusyCorridor(CorridorEnv):
    """The corridor plus ``work_ms`` of pure-Python CPU work per step."""

    def __init__(self, *, work_ms: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.work_ms = work_ms

    def _act(self, action):
        deadline = time.perf_counter() + self.work_ms / 1000
        while time.perf_counter() < deadline:
            pass
        return super()._act(action)


def busy_factory(work_ms: float = 2.0, max_turns: int = 12):
    return BusyCorridor(work_ms=work_ms, max_turns=max_turns)


def bench_rollout(num_envs: int, episodes: int, work_ms: float) -> tuple[float, int]:
    start = time.perf_counter()
    trajectories = turngym.rollout(
        busy_factory,
        turngym.agents.RandomPolicy(seed=0),
        num_episodes=episodes,
        num_envs=num_envs,
        env_kwargs={"work_ms": work_ms},
        progress=False,
    )
    steps = sum(len(t.turns) for t in trajectories)
    return steps / (time.perf_counter() - start), steps


def bench_async_vector(num_envs: int, steps: int, work_ms: float) -> float:
    vector = gymnasium.vector.AsyncVectorEnv([lambda: busy_factory(work_ms)] * num_envs)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    vector.reset(seed=0)
    done = 0
    while done < steps:
        actions = tuple(["go east", "go west", "wait"][i] for i in rng.integers(3, size=num_envs))
        vector.step(actions)
        done += num_envs
    rate = done / (time.perf_counter() - start)
    vector.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--work-ms", type=float, default=2.0, help="CPU work per env step")
    parser.add_argument("--envs", type=int, default=2, help="parallel envs (this machine: 2 cores)")
    args = parser.parse_args()
    episodes = 40 if args.quick else 200
    base, steps = bench_rollout(1, episodes, args.work_ms)
    rows = [("turngym.rollout, in-process (baseline)", base)]
    rows.append(
        (
            f"turngym.rollout, {args.envs} worker processes",
            bench_rollout(args.envs, episodes, args.work_ms)[0],
        )
    )
    rows.append(
        (
            f"gymnasium AsyncVectorEnv, {args.envs} envs (no policy batching, auto-reset)",
            bench_async_vector(args.envs, steps, args.work_ms),
        )
    )
    print(f"env steps with {args.work_ms} ms CPU work each, {steps} steps per runner")
    print(f"{'runner':<72} {'steps/s':>9} {'vs baseline':>11}")
    for name, rate in rows:
        print(f"{name:<72} {rate:>9.1f} {rate / base:>10.2f}x")


if __name__ == "__main__":
    main()
