"""Credit methods compared by *training*: success vs iteration per method, env and seed.

Every method trains its own copy of the same model with the same seeds, budget and learner
settings (only ``credit`` differs), and is evaluated on the same held-out task seeds at fixed
iterations. Success is also reported per task class (the exit side on Corridor, the game on
TextWorld), so a policy that solves one class only cannot pass for learning. Writes:

- ``results.json``: every run (config, curve of eval points, per-class success, seconds);
- ``results.md``: a table per env (start and final success, mean and 95 % interval over seeds,
  the worst class, every seed's final success) and the command that made it;
- ``curves_<env>.png``: mean success vs iteration with a 95 % band (Student t over seeds).

Runs are cached one JSON per (env, method, seed) under ``--out``/runs, so an interrupted run
continues where it stopped (``--fresh`` ignores the cache); ``--jobs N`` trains N runs at once in
worker processes. Tables and curves: ``credit_learning_report.py``.

Settings (``SETTINGS``): ``corridor_long`` (the default since issue 23: Corridor lengths 4/6,
16 turns, ``seq-mean-token-mean``; the conditions the credit lab says matter: a long horizon where
failures outlast successes, mixed groups from a model warmed up on 30 % expert actions, and a loss
that weighs episodes, not turns, equally), ``corridor`` (lengths 1-2, 4 turns, the earlier
default), ``textworld`` (TextWorld-Easy, 1-step quests, 4 turns), ``searchqa`` (SearchQA 1-hop,
grpo vs igpo, the method that needs the gold answer). On CPU the tiny offline models of
:mod:`turngym.agents.tiny` are built once and cached; ``--model PATH`` trains any Hugging Face
causal LM instead. Five paired seeds by default::

    python benchmarks/credit_learning.py --quick                       # CI smoke size
    python benchmarks/credit_learning.py --envs corridor_long --jobs 2 \\
        --out benchmarks/results/credit_learning_long                   # CPU, tiny model
    # GPU recipe (any HF causal LM path; --device cuda, the default when CUDA is present):
    python benchmarks/credit_learning.py --model /models/Qwen2.5-0.5B-Instruct --device cuda \\
        --envs corridor_long --steps 60 --groups 8 --lr 1e-6 --max-new-tokens 8 \\
        --out credit_learning_gpu
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from credit_learning_report import plot, summarize, write_table

__all__ = ["SETTINGS", "Setting", "main", "run_one"]


def exit_side(task_id: str) -> str:
    """Corridor's task class: ``L2-east`` -> ``east``."""
    return task_id.rsplit("-", 1)[-1]


def same_task(task_id: str) -> str:
    """Each task (game) is its own class."""
    return task_id


@dataclass(frozen=True)
class Setting:
    """One env of the comparison: what to train on and how the tiny model is built."""

    env_id: str
    env_kwargs: dict[str, Any]
    methods: tuple[str, ...]
    task_class: Any
    learning_rate: float = 2e-3
    max_new_tokens: int = 4
    #: LearnerConfig.loss_agg_mode unless --loss-agg-mode says otherwise.
    loss_agg_mode: str = "token-mean"
    tiny: dict[str, Any] = field(default_factory=dict)
    credit_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The CPU budget (overridden by the command-line options of the same names).
    budget: dict[str, int] = field(
        default_factory=lambda: {"steps": 20, "groups": 8, "eval_every": 5, "eval_groups": 16}
    )


CORRIDOR_KWARGS = {"lengths": (1, 2), "max_turns": 4}
#: Long horizon: a failure runs 16 turns, a success 4-6 (the regime where SPA's old bonus
#: inverted the objective and GiGPO's discount mattered in the credit lab).
CORRIDOR_LONG_KWARGS = {"lengths": (4, 6), "max_turns": 16}
TEXTWORLD_KWARGS = {"max_turns": 4}
SEARCH_KWARGS = {"max_turns": 4}
#: The tiny model of a family env (TextWorld, SearchQA): warm-up on expert and random episodes.
FAMILY_TINY = {"expert_fraction": 0.3, "warmup_steps": 150, "episodes": 64, "vocab_size": 1024}
#: SPA on the env's own progress signal, with a group baseline (its reward-to-go keeps the
#: per-turn credit that a trajectory-level base estimator would erase).
SPA_KWARGS = {"base": "reinforce", "baseline": "group"}

SETTINGS: dict[str, Setting] = {
    "corridor_long": Setting(
        "turngym/Corridor-v0",
        CORRIDOR_LONG_KWARGS,
        ("grpo", "gigpo", "salt", "spa"),
        exit_side,
        loss_agg_mode="seq-mean-token-mean",
        budget={"steps": 30, "groups": 8, "eval_every": 10, "eval_groups": 8},
        tiny={"env_kwargs": CORRIDOR_LONG_KWARGS, "expert_fraction": 0.3, "warmup_steps": 100},
        credit_kwargs={"spa": SPA_KWARGS},
    ),
    "corridor": Setting(
        "turngym/Corridor-v0",
        CORRIDOR_KWARGS,
        ("grpo", "rloo", "gigpo", "salt", "spa"),
        exit_side,
        tiny={"env_kwargs": CORRIDOR_KWARGS, "expert_fraction": 0.3, "warmup_steps": 100},
        credit_kwargs={"spa": SPA_KWARGS},
    ),
    "textworld": Setting(
        "turngym/TextWorld-Easy-v0",
        TEXTWORLD_KWARGS,
        ("grpo", "rloo", "gigpo", "salt", "spa"),
        same_task,
        learning_rate=1e-3,
        max_new_tokens=8,
        budget={"steps": 20, "groups": 8, "eval_every": 5, "eval_groups": 8},
        tiny={
            "env_ids": ("turngym/TextWorld-Easy-v0",),
            "env_kwargs": TEXTWORLD_KWARGS,
            **FAMILY_TINY,
        },
        credit_kwargs={"spa": SPA_KWARGS},
    ),
    "searchqa": Setting(
        "turngym/SearchQA-1hop-v0",
        SEARCH_KWARGS,
        ("grpo", "igpo"),
        same_task,
        learning_rate=1e-3,
        max_new_tokens=16,
        budget={"steps": 6, "groups": 4, "eval_every": 3, "eval_groups": 8},
        tiny={
            "env_ids": ("turngym/SearchQA-1hop-v0",),
            "env_kwargs": SEARCH_KWARGS,
            **FAMILY_TINY,
        },
    ),
}


def model_path(setting: Setting, model: str | None) -> str:
    """The user's model, or the setting's tiny model (built offline once, cached)."""
    if model:
        return model
    from turngym.agents.tiny import tiny_model_dir

    return str(tiny_model_dir(**setting.tiny))


def run_one(
    name: str, method: str, seed: int, args: argparse.Namespace, model: str
) -> dict[str, Any]:
    """Trains one model with ``method`` on setting ``name``; returns its curve and per-class."""
    from turngym.agents.learner import Learner
    from turngym.agents.learner_config import LearnerConfig

    setting = SETTINGS[name]
    args = argparse.Namespace(**{**vars(args), **budget(setting, args)})
    config = LearnerConfig(
        model=model,
        env_id=setting.env_id,
        env_kwargs=dict(setting.env_kwargs),
        credit=method,
        credit_kwargs=dict(setting.credit_kwargs.get(method, {})),
        output_dir=str(Path(args.out) / "runs" / f"{name}-{method}-{seed}"),
        steps=args.steps,
        groups_per_step=args.groups,
        group_size=args.group_size,
        max_new_tokens=args.max_new_tokens or setting.max_new_tokens,
        learning_rate=args.lr or setting.learning_rate,
        micro_batch_size=args.micro_batch_size,
        loss_agg_mode=args.loss_agg_mode or setting.loss_agg_mode,
        # Every episode of an iteration live at once in this process: one generation batch.
        num_envs=args.groups * args.group_size,
        env_workers=0,
        # The tiny models were warmed up on prompts without the admissible-action list: RL
        # prompts match what they learned to read. A user's model gets the default template.
        prompt_template={} if args.model else {"actions": ""},
        device=args.device,
        seed=seed,
        resume=False,
    )
    started = time.perf_counter()
    learner = Learner(config)
    curve = []

    def evaluate() -> None:
        trajectories = learner.rollout(seed=10_000, num_groups=args.eval_groups)
        curve.append(
            {
                "iteration": learner.iteration,
                **outcome_summary(trajectories, setting.task_class),
                "repeated_state_share": repeated_state_share(trajectories),
            }
        )

    evaluate()
    while learner.iteration < args.steps:
        learner.step()
        if learner.iteration % args.eval_every == 0 or learner.iteration == args.steps:
            evaluate()
    learner.close()
    return {
        "env": name,
        "env_id": setting.env_id,
        "method": method,
        "seed": seed,
        "curve": curve,
        "train": [
            {
                k: m[k]
                for k in (
                    "iteration",
                    "success",
                    "reward",
                    "padding_fraction",
                    "padding_fraction_unsorted",
                )
                if k in m
            }
            for m in learner.history
        ],
        "seconds": time.perf_counter() - started,
        "config": config.to_dict(),
    }


def outcome_summary(trajectories: list[Any], task_class: Any) -> dict[str, float]:
    """Mean reward, success, turns, and ``success/<class>`` for every task class seen."""
    count = len(trajectories)
    result = {
        "reward": sum(t.total_reward for t in trajectories) / count,
        "success": sum(bool(t.success) for t in trajectories) / count,
        "turns": sum(len(t.turns) for t in trajectories) / count,
    }
    classes: dict[str, list[bool]] = {}
    for trajectory in trajectories:
        classes.setdefault(task_class(trajectory.task_id), []).append(bool(trajectory.success))
    for name in sorted(classes):
        result[f"success/{name}"] = sum(classes[name]) / len(classes[name])
    return result


def repeated_state_share(trajectories: list[Any]) -> float:
    """Share of turns whose (task group, state) anchor holds >= 2 turns: what GiGPO's step
    advantage and SALT's merged edges can work with (0 would make GiGPO equal GRPO); the credit
    lab's anchor statistic of the same name."""
    from turngym.credit import TurnBatch
    from turngym.lab import anchor_statistics

    return anchor_statistics(TurnBatch.from_trajectories(trajectories))["turns_in_anchors_2plus"]


def budget(setting: Setting, args: argparse.Namespace) -> dict[str, int]:
    """The setting's budget with the command line's explicit values on top."""
    return {
        k: getattr(args, k) if getattr(args, k) is not None else v
        for k, v in setting.budget.items()
    }


def _job(job: tuple) -> dict[str, Any]:
    """One (env, method, seed) run in a worker process (``--jobs``)."""
    name, method, seed, args, model = job
    import torch

    torch.set_num_threads(1)
    return run_one(name, method, seed, args, model)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", default="corridor_long", help=",".join(SETTINGS))
    parser.add_argument("--methods", default=None, help="subset of each env's methods")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="paired seeds (>= 5)")
    parser.add_argument("--steps", type=int, default=None, help="iterations (setting's budget)")
    parser.add_argument("--groups", type=int, default=None, help="task groups per iteration")
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--eval-every", type=int, default=None)
    parser.add_argument("--eval-groups", type=int, default=None, help="x group size episodes")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained in parallel processes")
    parser.add_argument("--micro-batch-size", type=int, default=64)
    parser.add_argument("--loss-agg-mode", default=None, help="default: the setting's")
    parser.add_argument("--lr", type=float, default=None, help="default: the setting's")
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--model", default=None, help="HF model folder (default: tiny model)")
    parser.add_argument("--device", default=None, help="cuda, cpu (default: CUDA if present)")
    parser.add_argument("--out", default="credit_learning_out")
    parser.add_argument("--fresh", action="store_true", help="ignore cached runs")
    parser.add_argument("--quick", action="store_true", help="CI smoke size (seconds)")
    args = parser.parse_args(argv)
    if args.quick:
        args.envs, args.seeds, args.steps, args.groups = "corridor", "0", 2, 2
        args.eval_every, args.eval_groups, args.group_size = 1, 2, 2
        args.methods = args.methods or "grpo,gigpo"
    try:
        import torch

        torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    except ImportError:
        print("credit_learning needs the [train] extra (torch, transformers)", file=sys.stderr)
        return 2
    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = []
    for name in args.envs.split(","):
        if name not in SETTINGS:
            parser.error(f"unknown env {name!r}; use {', '.join(SETTINGS)}")
        setting = SETTINGS[name]
        methods = (args.methods or ",".join(setting.methods)).split(",")
        model = model_path(setting, args.model)
        jobs += [(name, method, seed, args, model) for method in methods for seed in seeds]
    cached = {job[:3]: out / "runs" / "{}-{}-{}.json".format(*job[:3]) for job in jobs}
    todo = [job for job in jobs if args.fresh or not cached[job[:3]].is_file()]
    if args.jobs > 1 and len(todo) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            futures = {pool.submit(_job, job): job for job in todo}
            for future in as_completed(futures):  # each run is saved as soon as it ends
                path = cached[futures[future][:3]]
                path.write_text(json.dumps(future.result(), indent=1, default=str))
    else:
        for job in todo:
            cached[job[:3]].write_text(json.dumps(run_one(*job), indent=1, default=str))
    runs = []
    for job in jobs:
        run = json.loads(cached[job[:3]].read_text())
        last = run["curve"][-1]
        classes = {k[8:]: round(v, 2) for k, v in last.items() if k.startswith("success/")}
        if len(classes) > 6:
            classes = {"min": min(classes.values()), "max": max(classes.values())}
        print(
            f"{run['env']:10} {run['method']:6} seed {run['seed']}: success "
            f"{run['curve'][0]['success']:.2f} -> {last['success']:.2f} per class {classes} "
            f"({run['seconds']:.0f} s)",
            flush=True,
        )
        runs.append(run)
    command = "python benchmarks/credit_learning.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    rows = summarize(runs)
    (out / "results.json").write_text(
        json.dumps({"command": command, "summary": rows, "runs": runs}, indent=1, default=str)
    )
    print(write_table(rows, out / "results.md", command, runs))
    for path in plot(runs, out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
