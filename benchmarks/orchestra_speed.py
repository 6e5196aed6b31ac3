"""Orchestra: team results of the built-in teams and the orchestration layer's cost per team turn.

For each preset, expert and random teams play ``--episodes`` team episodes. Reported: team
success, mean team outcome, team turns; then the time of ``OrchestraEnv.step`` and ``reset``
(policies not counted) split into the time spent inside the member envs (their own
``step``/``reset``, measured by wrapping them) and the rest, the orchestration layer (parsing,
routing, the board, per-agent infos) per team step. ``ratio`` = team env time / member time:
1.00x would mean the layer is free. Trace recording: the same rollout with and without
``record_traces`` (alternated, 5 pairs, minimum CPU time of each; CPU time so that other load on
the machine does not count), ``trace %`` = the extra time as a share of the rollout without it
(policies included; goal: <= 10 %), ``trace us/t`` = the extra microseconds per team turn;
``export us`` = ``to_trace`` per episode (done once, after the episode).

    python benchmarks/orchestra_speed.py              # every preset, 50 episodes per team
    python benchmarks/orchestra_speed.py --quick      # 5 episodes
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from turngym.envs import orchestra
from turngym.envs.orchestra import trace


def _timed(function: Callable[..., Any], clock: list[float]) -> Callable[..., Any]:
    """``function``, adding its wall time to ``clock[0]`` and counting calls in ``clock[1]``."""

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            clock[0] += time.perf_counter() - start
            clock[1] += 1

    return timed


def measure(env_id: str, team: str, episodes: int, seed: int) -> dict[str, float]:
    env = orchestra.parallel_env(env_id)
    member_clock, step_clock, reset_clock = [0.0, 0], [0.0, 0], [0.0, 0]
    for member in (*env._members.values(), *env._previews.values()):
        member.step = _timed(member.step, member_clock)
        member.reset = _timed(member.reset, member_clock)
    env.step = _timed(env.step, step_clock)  # type: ignore[method-assign]
    env.reset = _timed(env.reset, reset_clock)  # type: ignore[method-assign]
    policies = (
        orchestra.expert_policies(env) if team == "expert" else orchestra.random_policies(env, seed)
    )
    results = orchestra.rollout(env, policies, num_episodes=episodes, seed=seed)
    env.close()
    started = time.perf_counter()
    for result in results:
        trace.to_trace(result)
    export = (time.perf_counter() - started) / max(1, len(results))
    env_time, steps, member = step_clock[0] + reset_clock[0], step_clock[1], member_clock[0]
    return {
        "success": float(np.mean([r.success for r in results])),
        "outcome": float(np.mean([r.outcome for r in results])),
        "turns": float(np.mean([r.turns for r in results])),
        "team_steps_per_s": steps / env_time if env_time else float("inf"),
        "layer_us_per_step": (env_time - member) / max(1, steps) * 1e6,
        "ratio": env_time / member if member else float("inf"),
        "export_us": export * 1e6,
        **trace_overhead(env_id, team, episodes, seed),
    }


def trace_overhead(env_id: str, team: str, episodes: int, seed: int) -> dict[str, float]:
    """CPU time of the same rollout with and without trace recording (min of 5 pairs)."""
    env = orchestra.parallel_env(env_id)
    policies = (
        orchestra.expert_policies(env) if team == "expert" else orchestra.random_policies(env, seed)
    )
    times: dict[bool, list[float]] = {False: [], True: []}
    turns = 0
    for _ in range(5):
        for record in (False, True):
            random = None if team == "expert" else orchestra.random_policies(env, seed)
            started = time.process_time()
            results = orchestra.rollout(
                env, random or policies, num_episodes=episodes, seed=seed, record_traces=record
            )
            times[record].append(time.process_time() - started)
            turns = sum(result.turns for result in results)
    env.close()
    off, on = min(times[False]), min(times[True])
    return {"trace_share": (on - off) / off if off else 0.0, "trace_us": (on - off) / turns * 1e6}


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
        f"{'team st/s':>10s} {'layer us/st':>12s} {'ratio':>7s} {'trace %':>8s} "
        f"{'trace us/t':>11s} {'export us':>10s}"
    )
    print(f"\nOrchestra, {episodes} team episodes per row\n\n{header}")
    for env_id in sorted(orchestra.ORCHESTRA_ENVS):
        for team in ("expert", "random"):
            row = measure(env_id, team, episodes, args.seed)
            print(
                f"{env_id:26s} {team:7s} {row['success']:8.2f} {row['outcome']:8.3f} "
                f"{row['turns']:6.1f} {row['team_steps_per_s']:10.0f} "
                f"{row['layer_us_per_step']:12.1f} {row['ratio']:6.2f}x "
                f"{100 * row['trace_share']:7.1f}% {row['trace_us']:11.1f} "
                f"{row['export_us']:10.0f}"
            )
    print("\nratio = OrchestraEnv step+reset time / time inside the member envs (same run).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
