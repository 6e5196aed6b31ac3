"""Orchestra: team results of the built-in teams and the orchestration layer's cost per team turn.

For each preset, expert and random teams play ``--episodes`` team episodes. Reported: team
success, mean team outcome, team turns; then the time of ``OrchestraEnv.step`` (policies not
counted) split into the time spent inside the member envs (their own ``step``/``reset``,
measured by wrapping them) and the rest, the orchestration layer (parsing, routing, the board,
per-agent infos). ``ratio`` = team step time / member time: 1.00x would mean the layer is free.

    python benchmarks/orchestra_speed.py              # both presets, 50 episodes per team
    python benchmarks/orchestra_speed.py --quick      # 5 episodes
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np

from turngym.envs import orchestra


class _Timed:
    """Wraps a member env's step/reset to add their wall time to a shared counter."""

    def __init__(self, env: Any, clock: list[float]) -> None:
        self.env, self.clock = env, clock
        self._step, self._reset = env.step, env.reset
        env.step, env.reset = self.step, self.reset

    def step(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self._step(*args, **kwargs)
        finally:
            self.clock[0] += time.perf_counter() - start

    def reset(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self._reset(*args, **kwargs)
        finally:
            self.clock[0] += time.perf_counter() - start


def measure(env_id: str, team: str, episodes: int, seed: int) -> dict[str, float]:
    env = orchestra.parallel_env(env_id)
    member_clock = [0.0]
    for member in (*env._members.values(), *env._previews.values()):
        _Timed(member, member_clock)
    policies = (
        orchestra.expert_policies(env) if team == "expert" else orchestra.random_policies(env, seed)
    )
    step_time, steps = 0.0, 0
    original_step, original_reset = env.step, env.reset

    def timed_step(actions: Any) -> Any:
        nonlocal step_time, steps
        start = time.perf_counter()
        try:
            return original_step(actions)
        finally:
            step_time += time.perf_counter() - start
            steps += 1

    def timed_reset(*args: Any, **kwargs: Any) -> Any:
        nonlocal step_time
        start = time.perf_counter()
        try:
            return original_reset(*args, **kwargs)
        finally:
            step_time += time.perf_counter() - start

    env.step, env.reset = timed_step, timed_reset  # type: ignore[method-assign]
    results = orchestra.rollout(env, policies, num_episodes=episodes, seed=seed)
    env.close()
    member = member_clock[0]
    return {
        "success": float(np.mean([r.success for r in results])),
        "outcome": float(np.mean([r.outcome for r in results])),
        "turns": float(np.mean([r.turns for r in results])),
        "team_steps_per_s": steps / step_time if step_time else float("inf"),
        "layer_us_per_step": (step_time - member) / max(1, steps) * 1e6,
        "ratio": step_time / member if member else float("inf"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="5 episodes per team")
    args = parser.parse_args(argv)
    episodes = 5 if args.quick else args.episodes
    warnings.filterwarnings("ignore", message="OrchestraEnv.reset ignores")
    header = (
        f"{'preset':26s} {'team':7s} {'success':>8s} {'outcome':>8s} {'turns':>6s} "
        f"{'team st/s':>10s} {'layer us/st':>12s} {'ratio':>7s}"
    )
    print(f"\nOrchestra, {episodes} team episodes per row\n\n{header}")
    for env_id in sorted(orchestra.ORCHESTRA_ENVS):
        for team in ("expert", "random"):
            row = measure(env_id, team, episodes, args.seed)
            print(
                f"{env_id:26s} {team:7s} {row['success']:8.2f} {row['outcome']:8.3f} "
                f"{row['turns']:6.1f} {row['team_steps_per_s']:10.0f} "
                f"{row['layer_us_per_step']:12.1f} {row['ratio']:6.2f}x"
            )
    print("\nratio = OrchestraEnv.step time / time inside the member envs (same run).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
