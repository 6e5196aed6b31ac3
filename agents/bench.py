"""``turngym bench``: run policies over env ids; print a table; write JSON, CSV and plots.

    turngym bench --env turngym/Corridor-v0,turngym/TextWorld-Easy-v1 --policy random,expert \\
        --episodes 20 --out bench-results

Policies by name (:mod:`turngym.agents.bench_policies`): ``random``, ``expert`` (the env
family's), ``hf:PATH`` (a transformers model folder, a ``turngym train`` checkpoint, or a hub
name), ``openai:MODEL`` (an OpenAI-compatible server at ``--base-url`` or ``$OPENAI_BASE_URL``),
and your own ``module:Class`` or ``path/to/file.py:Class`` (built with ``--policy-kwargs``);
from Python, :func:`run_bench` takes ``policy_factory(name, env_id) -> policy``. ``--env all`` runs every registered id and the multi-agent orchestra
presets; an id that fails to build or run is reported and skipped, so one broken family never
stops the run. On an orchestra preset, ``random`` and ``expert`` are the team's (one per agent),
another policy plays every agent, and a row reports the team: its success, the orchestrator's
return and the team turns.

Outputs in ``--out``: ``results.json`` (one record per env and policy, with per-task-type rows),
``results.csv``, ``rewards.png`` (episode return distribution per env/policy) and
``success_by_turn_budget.png`` (the success rate if an episode had to finish within k turns).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import turngym
from turngym.agents.bench_plots import write_outputs
from turngym.agents.bench_policies import check_policy_name, make_policy
from turngym.cli import json_argument
from turngym.envs.orchestra.presets import ORCHESTRA_ENVS, list_orchestra_envs
from turngym.error import InvalidArgumentError
from turngym.pool import rollout_workers
from turngym.registration import spec as registry_spec
from turngym.trajectory import Trajectory

__all__ = [
    "check_policy_name",
    "format_table",
    "main",
    "make_policy",
    "run_bench",
    "summarize",
    "write_outputs",
]


def _task_type(trajectory: Trajectory) -> str | None:
    value = trajectory.metadata.get("task_type")
    if value is None and trajectory.turns:
        value = trajectory.turns[0].info.get("task_type")
    return None if value is None else str(value)


def summarize(trajectories: list[Trajectory]) -> dict[str, Any]:
    """Episodes, success rate, mean/std reward and mean turns of ``trajectories``."""
    rewards = [t.total_reward for t in trajectories]
    return {
        "episodes": len(trajectories),
        "success": float(np.mean([bool(t.success) for t in trajectories])) if trajectories else 0.0,
        "mean_reward": float(np.mean(rewards)) if rewards else 0.0,
        "std_reward": float(np.std(rewards)) if rewards else 0.0,
        "mean_turns": float(np.mean([len(t.turns) for t in trajectories])) if trajectories else 0.0,
    }


def success_by_budget(trajectories: list[Trajectory], max_budget: int) -> list[float]:
    """Entry k-1: the share of episodes that succeeded within k turns, k = 1..max_budget."""
    if not trajectories:
        return [0.0] * max_budget
    turns = np.array([len(t.turns) if t.success else np.inf for t in trajectories])
    return [float(np.mean(turns <= k)) for k in range(1, max_budget + 1)]


def _orchestra_rollout(
    env_id: str,
    name: str,
    policy: Any,
    episodes: int,
    seed: int,
    num_envs: int,
    env_kwargs: dict[str, Any] | None,
    out_dir: str | Path | None = None,
) -> list[Trajectory]:
    """Team episodes of an orchestra preset; each row is the orchestrator's trajectory, which
    carries the team outcome, success and trace metrics. With ``out_dir``, the recorded episodes
    go to ``out_dir/episodes/<env>__<policy>.jsonl`` (input of ``turngym trace export``)."""
    from turngym.envs import orchestra

    env = orchestra.parallel_env(env_id, **(env_kwargs or {}))  # to build the team's policies
    policies = (
        orchestra.expert_policies(env)
        if name == "expert"
        else orchestra.random_policies(env, seed=seed)
        if name == "random"
        else policy
    )
    env.close()
    team = orchestra.rollout(
        env_id,
        policies,
        num_episodes=episodes,
        seed=seed,
        num_envs=num_envs,
        env_kwargs=env_kwargs,
    )
    if out_dir is not None:
        slug = f"{env_id.removeprefix('turngym/')}__{name}".replace("/", "_").replace(":", "_")
        orchestra.save_episodes(Path(out_dir) / "episodes" / f"{slug}.jsonl", team)
    rows = []
    for episode in team:  # the survey's trace metrics travel with each row
        row = episode.trajectories[orchestra.ORCHESTRATOR]
        row.metadata["trace_metrics"] = orchestra.trace_metrics(episode.events)
        rows.append(row)
    return rows


def run_bench(
    env_ids: Sequence[str],
    policies: Sequence[str],
    episodes: int,
    out_dir: str | Path | None = None,
    *,
    num_envs: int = 1,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    base_url: str | None = None,
    policy_factory: Callable[[str, str], Any] | None = None,
    progress: bool = True,
    policy_kwargs: dict[str, Any] | None = None,
    workers: int | None = None,
    mode: str = "lockstep",
) -> dict[str, Any]:
    """Runs every policy on every env id; returns ``{"results": [...], "skipped": [...]}``.

    ``policy_factory(name, env_id)`` overrides :func:`make_policy` (e.g. to reuse a loaded model).
    Every policy of one env id runs on one :class:`turngym.EnvPool` of ``num_envs`` envs over
    ``workers`` processes (default ``num_envs`` when > 1, else in-process), kept for the run;
    ``mode`` is the rollout schedule (``"async"`` suits HTTP policies and slow envs).
    Results and plots are written to ``out_dir`` when given.
    """
    from tqdm.auto import tqdm

    results, skipped, rewards, budgets = [], [], {}, {}
    jobs = [(env_id, name) for env_id in env_ids for name in policies]
    pools: dict[str, turngym.EnvPool] = {}
    live = max(1, min(num_envs, episodes))

    def pool_for(env_id: str) -> turngym.EnvPool:
        for other in [e for e in pools if e != env_id]:  # jobs run env by env: one pool at a time
            pools.pop(other).close()
        if env_id not in pools:
            pools[env_id] = turngym.EnvPool(
                env_id,
                live,
                env_kwargs,
                workers=rollout_workers(live, workers),
            )
        return pools[env_id]

    for env_id, name in tqdm(jobs, desc="bench", unit="run", disable=not progress):
        try:
            policy = (
                None
                if env_id in ORCHESTRA_ENVS and name in ("random", "expert")
                else (
                    policy_factory
                    or (
                        lambda n, e: make_policy(
                            n, e, seed=seed, base_url=base_url, policy_kwargs=policy_kwargs
                        )
                    )
                )(name, env_id)
            )
            trajectories = (
                _orchestra_rollout(
                    env_id, name, policy, episodes, seed, num_envs, env_kwargs, out_dir
                )
                if env_id in ORCHESTRA_ENVS
                else turngym.rollout(
                    env_id,
                    policy,
                    num_episodes=episodes,
                    seed=seed,
                    progress=progress,
                    pool=pool_for(env_id),
                    mode=mode,
                )
            )
        except Exception as error:  # noqa: BLE001 - one failing env/policy must not stop the run
            reason = f"{type(error).__name__}: {error}".strip()
            print(f"skipped {env_id} with {name}: {reason}", file=sys.stderr)
            skipped.append({"env": env_id, "policy": name, "reason": reason})
            continue
        record = {"env": env_id, "policy": name, **summarize(trajectories), "task_types": {}}
        by_type: dict[str, list[Trajectory]] = {}
        for trajectory in trajectories:
            kind = _task_type(trajectory)
            if kind is not None:
                by_type.setdefault(kind, []).append(trajectory)
        record["task_types"] = {kind: summarize(group) for kind, group in sorted(by_type.items())}
        traced = [
            t.metadata["trace_metrics"] for t in trajectories if "trace_metrics" in t.metadata
        ]
        if traced:  # orchestra rows: the mean of each trace metric over the episodes
            record["trace_metrics"] = {
                key: float(np.mean([m[key] for m in traced])) for key in sorted(traced[0])
            }
            print(
                f"{env_id} | {name} trace metrics: "
                + ", ".join(f"{key} {value:.3f}" for key, value in record["trace_metrics"].items())
            )
        label = f"{env_id.removeprefix('turngym/')} | {name}"
        rewards[label] = [t.total_reward for t in trajectories]
        budget = max(
            _turn_limit(env_id, env_kwargs), max((len(t.turns) for t in trajectories), default=1)
        )
        budgets[label] = success_by_budget(trajectories, budget)
        record["success_by_turn_budget"] = budgets[label]
        results.append(record)
    for pool in pools.values():
        pool.close()
    report = {"results": results, "skipped": skipped, "episodes": episodes, "seed": seed}
    print(format_table(results))
    if out_dir is not None:
        write_outputs(Path(out_dir), report, rewards, budgets)
    return report


def format_table(results: list[dict[str, Any]]) -> str:
    """A fixed-width table: one row per env/policy, then one per task type."""
    header = ("env", "policy", "task type", "episodes", "success", "mean reward", "mean turns")
    rows = []
    for record in results:
        rows.append((record["env"], record["policy"], "all", record))
        rows += [
            (record["env"], record["policy"], kind, stats)
            for kind, stats in record["task_types"].items()
        ]
    cells = [header] + [
        (
            env,
            policy,
            kind,
            str(s["episodes"]),
            f"{s['success']:.2f}",
            f"{s['mean_reward']:.3f}",
            f"{s['mean_turns']:.1f}",
        )
        for env, policy, kind, s in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _turn_limit(env_id: str, env_kwargs: dict[str, Any] | None) -> int:
    """The env's turn limit (0 when unknown), so budget curves run to it, not to the last turn."""
    if env_kwargs and isinstance(env_kwargs.get("max_turns"), int):
        return env_kwargs["max_turns"]
    if env_id in ORCHESTRA_ENVS:  # team turns: the preset's, else OrchestraEnv's default
        from turngym.envs.orchestra import OrchestraEnv

        default = inspect.signature(OrchestraEnv).parameters["max_turns"].default
        return int(ORCHESTRA_ENVS[env_id].get("max_turns", default))
    try:
        spec = registry_spec(env_id)
    except InvalidArgumentError:
        return 0
    limit = spec.kwargs.get("max_turns") or spec.max_episode_steps
    if not limit and isinstance(spec.entry_point, str):
        module, _, name = spec.entry_point.partition(":")
        limit = getattr(getattr(importlib.import_module(module), name), "default_max_turns", 0)
    return int(limit or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """``turngym bench`` entry point."""
    parser = argparse.ArgumentParser(prog="turngym bench", description="run policies over env ids")
    parser.add_argument("--env", required=True, help="ID[,ID...] or 'all' (every registered id)")
    parser.add_argument(
        "--policy",
        default="random",
        help="random|expert|hf:PATH|openai:MODEL|module:Class|file.py:Class[,...]",
    )
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--out", default="bench-results", help="output folder")
    parser.add_argument("--num-envs", type=int, default=1, help="envs stepped in parallel")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--env-kwargs", default="{}", help="JSON kwargs for turngym.make")
    parser.add_argument("--base-url", default=None, help="server of openai:MODEL policies")
    parser.add_argument(
        "--policy-kwargs",
        default="{}",
        help="JSON kwargs for hf:/openai:/module:Class policies, e.g. "
        '\'{"temperature": 0.7, "seed": 1}\'',
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="env worker processes (0: in-process)"
    )
    parser.add_argument(
        "--mode", choices=("lockstep", "async"), default="lockstep", help="rollout schedule"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    registered = {**turngym.list_envs(), **list_orchestra_envs()}
    env_ids = list(registered) if args.env == "all" else [e for e in args.env.split(",") if e]
    unknown = [e for e in env_ids if e not in registered]
    if unknown:
        print(
            f"turngym bench: error: unknown env id(s) {unknown}; registered: {', '.join(registered)}",
            file=sys.stderr,
        )
        return 2
    if args.episodes < 1:
        print("turngym bench: error: --episodes must be >= 1", file=sys.stderr)
        return 2
    policy_names = [p for p in args.policy.split(",") if p]
    try:
        policy_kwargs = json_argument(args.policy_kwargs, "--policy-kwargs")
        env_kwargs = json_argument(args.env_kwargs, "--env-kwargs")
        if not policy_names:
            raise InvalidArgumentError(
                "--policy is empty; use random, expert, hf:PATH, openai:MODEL or module:Class"
            )
        for policy_name in policy_names:
            check_policy_name(policy_name)
        if env_kwargs:  # a misspelt keyword fails here, not as a skipped run per env
            from turngym.agents.train_config import check_env

            for env_id in env_ids:
                try:
                    check_env(env_id, env_kwargs, "--env-kwargs")
                except ImportError:  # a family without its extra: the run skips it, saying why
                    continue
    except InvalidArgumentError as error:
        print(f"turngym bench: error: {error}", file=sys.stderr)
        return 2
    report = run_bench(
        env_ids,
        policy_names,
        args.episodes,
        args.out,
        num_envs=args.num_envs,
        seed=args.seed,
        env_kwargs=env_kwargs,
        base_url=args.base_url,
        progress=not args.no_progress,
        policy_kwargs=policy_kwargs,
        workers=args.workers,
        mode=args.mode,
    )
    if not report["results"]:
        print(f"turngym bench: every run failed; wrote {Path(args.out) / 'results.json'} (reasons)")
        return 1
    print(f"wrote {Path(args.out) / 'results.json'}, results.csv and plots")
    return 0
