"""SWE grading controls (issue 28): no false positives for honest work, nothing for random agents.

    python benchmarks/swe_controls.py --backend local
    python benchmarks/swe_controls.py --backend docker --per-project 3 --random 8

For every bundled task (or ``--per-project N`` of each project) the gold patch goes in through the
agent's own tools (:func:`turngym.envs.swe.expert.patch_to_calls`) and is submitted; each must be
resolved with verdict ``resolved``, no ``tampered`` reason and no high-severity flag of the diff
analysis (so the default ``suspicious="zero"`` policy never zeroes an honest fix). Then
``turngym.rollout`` runs the random policy for ``--random`` episodes; each must score 0.
Results go to ``benchmarks/results/swe_controls_<backend>.json``; the exit status is 1 when any
control fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import gymnasium

import turngym
from turngym.envs.swe.diff_analysis import HIGH
from turngym.envs.swe.expert import patch_to_calls


def gold(backend: str, per_project: int | None, only: str | None = None) -> list[dict]:
    """One row per task: resolved, verdict, tampered reasons, high-severity flags, seconds."""
    env = gymnasium.make("turngym/SWE-v0", backend=backend, max_turns=200)
    chosen: dict[str, list[str]] = defaultdict(list)
    for task_id in sorted(env.unwrapped.tasks):
        project = env.unwrapped.tasks[task_id].project
        if only is not None and project != only:
            continue
        if per_project is None or len(chosen[project]) < per_project:
            chosen[project].append(task_id)
    rows = []
    try:
        for task_id in [t for ids in chosen.values() for t in ids]:
            started = time.perf_counter()
            env.reset(options={"task": task_id})
            for call in patch_to_calls(env.unwrapped.tasks[task_id].patch):
                env.step(call)
            _, reward, _, _, info = env.step('{"tool": "submit"}')
            grading = info["grading"]
            high = [f["name"] for f in grading.get("flag_details") or [] if f["name"] in HIGH]
            rows.append({"task": task_id, "resolved": bool(info["success"]), "reward": reward,
                         "verdict": grading.get("verdict"), "tampered": grading.get("tampered") or [],
                         "high_flags": high, "flags": grading.get("flags") or [],
                         "seconds": round(time.perf_counter() - started, 2)})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    finally:
        env.close()
    return rows


def random_agents(backend: str, episodes: int) -> list[float]:
    """Outcomes of the random policy (each must be 0)."""
    if episodes <= 0:
        return []
    from turngym.agents import RandomPolicy

    trajectories = turngym.rollout("turngym/SWE-v0", RandomPolicy(seed=0), num_episodes=episodes,
                                   env_kwargs={"backend": backend, "max_turns": 6}, progress=False)  # fmt: skip
    return [float(t.outcome or 0.0) for t in trajectories]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("local", "docker"), required=True)
    parser.add_argument(
        "--per-project", type=int, default=None, help="tasks per project (all if unset)"
    )
    parser.add_argument("--random", type=int, default=4, help="random-policy episodes")
    parser.add_argument("--project", default=None, help="only this project's tasks")
    args = parser.parse_args()
    rows = gold(args.backend, args.per_project, args.project)
    outcomes = random_agents(args.backend, args.random)
    summary = {
        "backend": args.backend,
        "tasks": len(rows),
        "resolved": sum(r["resolved"] for r in rows),
        "tampered": sum(bool(r["tampered"]) for r in rows),
        "high_flagged": sum(bool(r["high_flags"]) for r in rows),
        "random_episodes": len(outcomes),
        "random_outcome_sum": sum(outcomes),
        "median_seconds_per_task": sorted(r["seconds"] for r in rows)[len(rows) // 2]
        if rows
        else None,
    }
    suffix = f"_{args.project}" if args.project else ""
    out = Path(__file__).parent / "results" / f"swe_controls_{args.backend}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    print(json.dumps(summary, indent=1))
    ok = (
        summary["resolved"] == len(rows) and not summary["tampered"] and not summary["high_flagged"]
    )
    return 0 if ok and summary["random_outcome_sum"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
