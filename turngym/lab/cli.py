"""``turngym lab``: compare credit methods on envs with admissible actions (see ``turngym.lab``).

::

    turngym lab --env corridor-6-8 --methods grpo,gigpo,gigpo_gamma1,mycredit:advantages \\
        --seeds 10 --out runs/lab

``--env`` takes a preset name (``PRESETS``) or any registered id (``--env-kwargs`` then applies).
Every (env, method, seed) run is cached as JSON under ``OUT/runs`` so a stopped study resumes;
``--fresh`` ignores the cache.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from turngym.error import TurnGymError

__all__ = ["PRESETS", "main", "run_lab"]

#: Named env settings of the study: LabConfig fields (``warm_start`` for long horizons).
PRESETS: dict[str, dict[str, Any]] = {
    "corridor-6-8": {
        "env_id": "turngym/Corridor-v0",
        "env_kwargs": {"lengths": [6, 8], "max_turns": 24},
    },
    "corridor-6-8-sparse": {
        "env_id": "turngym/Corridor-v0",
        "env_kwargs": {"lengths": [6, 8], "max_turns": 24, "reward_mode": "sparse"},
    },
    "corridor-8-10": {
        "env_id": "turngym/Corridor-v0",
        "env_kwargs": {"lengths": [8, 10], "max_turns": 30},
    },
    "corridor-14": {
        "env_id": "turngym/Corridor-v0",
        "env_kwargs": {"lengths": [14], "max_turns": 42},
        "episodes": 1536,
    },
    "textworld-easy": {
        "env_id": "turngym/TextWorld-Easy-v1",
        "env_kwargs": {"max_turns": 10},
        "episodes": 256,
    },
    "textworld-medium-bc": {
        "env_id": "turngym/TextWorld-Medium-v1",
        "env_kwargs": {"max_turns": 20},
        "tasks": 2,
        "group_size": 4,
        "episodes": 80,
        "lr": 0.3,
        "warm_start": 2.0,
    },
    "textworld-hard-bc": {
        "env_id": "turngym/TextWorld-Hard-v1",
        "env_kwargs": {"max_turns": 30},
        "tasks": 2,
        "group_size": 4,
        "episodes": 80,
        "lr": 0.3,
        "warm_start": 2.0,
    },
    "alfworld-bc": {
        "env_id": "turngym/ALFWorld-v1",
        "env_kwargs": {"max_turns": 20},
        "tasks": 2,
        "group_size": 4,
        "episodes": 80,
        "lr": 0.3,
        "warm_start": 4.0,
    },
    "webshop-small": {
        "env_id": "turngym/WebShop-Small-v0",
        "env_kwargs": {"max_turns": 15},
        "episodes": 256,
    },
}


def run_lab(
    configs: list[Any],
    methods: Sequence[str],
    seeds: Sequence[int],
    out: Path | None = None,
    fresh: bool = False,
    log: Any = None,
    report_only: bool = False,
) -> list[dict[str, Any]]:
    """Runs every (config, method, seed), reading and writing the per-run cache under ``out``.

    ``report_only``: train nothing; return the cached runs (a study still running, or cut short).
    """
    from .methods import resolve_method
    from .train import run_one

    resolved = [resolve_method(m) for m in methods]  # fail on a bad spec before any training
    runs = []
    for config in configs:
        # seed-major: a study cut short still has every method on its first seeds (paired)
        for seed in seeds:
            for method in resolved:
                name = f"{config.label}__{method.spec}__{seed}".replace("/", "_").replace(":", "-")
                cache = out / "runs" / f"{name}.json" if out else None
                if cache and cache.is_file() and not fresh:
                    run = json.loads(cache.read_text())
                    if run.get("config") == json.loads(json.dumps(config.to_dict())):
                        runs.append(run)
                        continue
                if report_only:
                    continue
                run = run_one(config, method, seed)
                run["config"] = config.to_dict()
                if cache:
                    cache.parent.mkdir(parents=True, exist_ok=True)
                    cache.write_text(json.dumps(run))
                if log:
                    auc = sum(run["curve"]["success"]) / len(run["curve"]["success"])
                    print(f"{config.label} {method.spec} seed {seed}: AUC {auc:.3f}", file=log)
                runs.append(run)
    return runs


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="turngym lab", description=__doc__.split("\n")[0])
    parser.add_argument("--env", action="append", required=True, help="preset or env id (repeat)")
    parser.add_argument("--env-kwargs", default="{}", help="JSON for turngym.make (env ids only)")
    parser.add_argument("--methods", default="grpo,gigpo,gigpo_gamma1,salt,spa,discounted")
    parser.add_argument("--seeds", type=int, default=10, help="paired seeds 0..N-1")
    parser.add_argument("--episodes", type=int, help="training episodes per run")
    parser.add_argument("--tasks", type=int, help="task groups per batch")
    parser.add_argument("--group-size", type=int, help="episodes per task group")
    parser.add_argument("--policy", choices=["tabular", "linear"])
    parser.add_argument("--update", choices=["reinforce", "ppo"])
    parser.add_argument("--aggregation", choices=["turn", "episode"])
    parser.add_argument("--lr", type=float)
    parser.add_argument("--warm-start", type=float, help="logit added to the expert's cells")
    parser.add_argument("--out", type=Path, help="folder for results.md/.json, curves.png, runs/")
    parser.add_argument("--fresh", action="store_true", help="ignore cached runs")
    parser.add_argument(
        "--metric", choices=["success", "outcome"], help="score by (default: success if reported)"
    )
    parser.add_argument("--report-only", action="store_true", help="summarise cached runs only")
    return parser


def _configs(args: argparse.Namespace) -> list[Any]:
    from .train import LabConfig

    try:
        env_kwargs = json.loads(args.env_kwargs)
    except json.JSONDecodeError as error:
        raise TurnGymError(
            f"--env-kwargs is not JSON ({error}); e.g. '{{\"max_turns\": 20}}'."
        ) from error
    if not isinstance(env_kwargs, dict):
        raise TurnGymError("--env-kwargs must be a JSON object, e.g. '{\"max_turns\": 20}'.")
    overrides = {
        name: getattr(args, name)
        for name in (
            "episodes",
            "tasks",
            "group_size",
            "policy",
            "update",
            "aggregation",
            "lr",
            "warm_start",
        )  # fmt: skip
        if getattr(args, name) is not None
    }
    configs = []
    for env in args.env:
        if env in PRESETS:
            fields = {**PRESETS[env], "label": env}
        elif "/" in env:
            fields = {"env_id": env, "env_kwargs": env_kwargs}
        else:
            raise TurnGymError(
                f"--env {env!r} is neither a preset ({', '.join(PRESETS)}) nor an env id "
                "like turngym/Corridor-v0."
            )
        configs.append(LabConfig(**{**fields, **overrides}))
    return configs


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``turngym lab``; returns the exit status (2 on a bad argument)."""
    args = _parser().parse_args(argv)
    import torch

    # small tensors: one intra-op thread (more only contend with the envs on a shared machine)
    torch.set_num_threads(1)
    command = "turngym lab " + shlex.join(list(argv if argv is not None else sys.argv[1:]))
    try:
        configs = _configs(args)
        if args.seeds < 1:
            raise TurnGymError("--seeds must be >= 1.")
        methods = [m for m in args.methods.split(",") if m.strip()]
        if args.report_only and not args.out:
            raise TurnGymError("--report-only reads the cached runs of --out DIR; pass --out.")
        runs = run_lab(
            configs, methods, range(args.seeds), args.out, args.fresh, sys.stderr, args.report_only
        )
        if not runs:
            raise TurnGymError(f"no cached runs under {args.out}/runs match these settings.")
    except (TurnGymError, ValueError) as error:
        print(f"turngym lab: error: {error}", file=sys.stderr)
        return 2
    from .report import table, verdict, write_report
    from .stats import summarize

    for run in runs:
        run["metric"] = args.metric
    budgets = sorted({b for c in configs for b in c.budgets})
    rows = summarize(runs, budgets)
    if args.out:
        line = write_report(args.out, runs, rows, budgets, command, [c.to_dict() for c in configs])
        print(f"wrote {args.out}/results.md, results.json, curves.png", file=sys.stderr)
    else:
        line = verdict(rows)
    print(table(rows, budgets))
    print(f"verdict: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
