"""``turngym train --config FILE``: run the learner from a JSON/YAML/TOML config.

The file holds :class:`turngym.agents.learner_config.LearnerConfig` fields, e.g.::

    {"model": "/models/tiny", "env_id": "turngym/Corridor-v0", "credit": "gigpo",
     "steps": 50, "learning_rate": 1e-3, "output_dir": "runs/corridor"}

``turngym train --init-config FILE`` writes every field, commented, at its default;
``docs/train_tiny.yaml`` trains the offline tiny model (``model: "tiny:"``) on Corridor.

Before any model is loaded the command checks the config (fields, credit kwargs), builds the
env once with ``env_kwargs``, and compares the config with ``output_dir``'s checkpoint: a
finished run prints "nothing to do", a changed config is refused unless ``--force``. While it
trains, one line per iteration and a progress bar (:mod:`turngym.agents.train_report`); at the
end ``metrics.png`` beside ``metrics.jsonl`` and the ``--policy hf:...`` path that evaluates
the result with ``turngym bench``.

``--eval-every N`` evaluates the policy every N iterations on ``--eval-groups`` held-out task
groups and writes ``eval/reward``, ``eval/success`` and ``eval/turns`` into that iteration's line
of ``metrics.jsonl`` (and TensorBoard with ``--tensorboard``, from the ``[train]`` extra).
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from turngym.error import DependencyNotInstalled, InvalidArgumentError

__all__ = ["main"]


def _epilog() -> str:
    from dataclasses import MISSING, fields

    from turngym.agents.learner_config import LearnerConfig
    from turngym.agents.train_config import field_docs

    docs = field_docs()
    lines = [
        "config fields, name (default): first sentence of its doc",
        "(LearnerConfig; `--init-config FILE` writes them all with their whole comments):",
    ]
    for field in fields(LearnerConfig):
        if field.default is not MISSING:
            default = repr(field.default)
        elif field.default_factory is not MISSING:
            default = repr(field.default_factory())
        else:
            default = "required"
        # The first sentence, not cut at "e.g." / "i.e."; RST's double backquotes as single.
        first = re.split(r"(?<!e\.g)(?<!i\.e)\.\s", docs.get(field.name, ""))[0].rstrip(".")
        lines += textwrap.wrap(
            f"{field.name} ({default}): {first.replace('``', '`')}",
            96,
            initial_indent="  ",
            subsequent_indent="      ",
        )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="turngym train",
        description="train an LLM policy with the learner",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="JSON, YAML or TOML file of LearnerConfig fields")
    parser.add_argument(
        "--init-config",
        metavar="FILE",
        help="write a commented example config of every field to FILE, then exit",
    )
    parser.add_argument("--steps", type=int, default=None, help="override config steps")
    parser.add_argument("--output-dir", default=None, help="override config output_dir")
    parser.add_argument(
        "--eval-every", type=int, default=None, help="evaluate every N iterations (0: never)"
    )
    parser.add_argument(
        "--eval-groups", type=int, default=None, help="task groups per evaluation (default 8)"
    )
    parser.add_argument(
        "--tensorboard", action="store_true", default=None, help="also log to TensorBoard"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="resume a checkpoint whose config differs from this one (or overwrite --init-config)",
    )
    return parser


def _init_config(path: str, force: bool) -> int:
    from turngym.agents.train_config import example_config

    target = Path(path)
    if target.exists() and not force:
        raise InvalidArgumentError(f"{target} exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(example_config(), encoding="utf-8")
    print(f"wrote {target}; edit it, then: turngym train --config {target}")
    return 0


def _load_config(args: argparse.Namespace):
    """The validated config, its env built once, the tiny model resolved (no model loaded)."""
    from turngym.agents.learner_config import LearnerConfig
    from turngym.agents.train_config import check_env, read_config_file, resolve_tiny_model

    data = read_config_file(args.config)
    overrides = {
        "steps": args.steps,
        "output_dir": args.output_dir,
        "eval_every": args.eval_every,
        "eval_groups": args.eval_groups,
        "tensorboard": args.tensorboard,
    }
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        config = LearnerConfig.from_dict(data)  # fields, ranges, credit kwargs
    except (TypeError, ValueError) as error:
        raise InvalidArgumentError(f"config file {args.config}: {error}") from None
    check_env(config.env_id, config.env_kwargs)
    resolved = resolve_tiny_model(data)
    return config if resolved is data else LearnerConfig.from_dict(resolved)


def _train(args: argparse.Namespace) -> int:
    from turngym.agents.train_config import resume_plan

    config = _load_config(args)
    plan = resume_plan(config)
    if plan.checkpoint is not None:
        if plan.changed and not args.force:
            raise InvalidArgumentError(
                f"{plan.checkpoint} holds {plan.iteration} iterations of a run with another "
                f"config ({plan.describe_changes()}); choose a new --output-dir, set "
                "`resume: false` to start over there, or pass --force to continue that "
                "checkpoint with this config"
            )
        if plan.iteration >= config.steps:
            print(
                f"nothing to do: {plan.checkpoint} has finished {plan.iteration} of "
                f"{config.steps} iterations; raise --steps to train further, or choose a new "
                f"--output-dir.\nevaluate it: turngym bench --env {config.env_id} "
                f"--policy hf:{plan.checkpoint / 'model'}"
            )
            return 0
        note = f" (--force: {plan.describe_changes()})" if plan.changed else ""
        print(f"resuming {plan.checkpoint} at iteration {plan.iteration}/{config.steps}{note}")
    from turngym.agents.learner import Learner
    from turngym.agents.train_report import TrainReport, plot_metrics

    try:
        learner = Learner(config)
    except (OSError, ValueError) as error:  # e.g. a model folder without weights
        raise InvalidArgumentError(f"cannot load {config.model}: {error}") from None
    report = TrainReport(config.steps, start=learner.iteration)
    try:
        while learner.iteration < config.steps:
            report.update(learner.step())
        learner.save()
    except KeyboardInterrupt:
        report.close()
        saved = resume_plan(config)
        where = (
            f"a rerun resumes {saved.checkpoint} at iteration {saved.iteration}"
            if saved.checkpoint is not None
            else "no checkpoint was saved yet (save_every: N saves every N iterations)"
        )
        print(f"turngym train: interrupted during iteration {learner.iteration + 1}; {where}")
        raise
    finally:
        report.close()
        learner.logger.close()
        learner.close()
        if learner.history or learner.iteration:
            try:
                print(f"plot: {plot_metrics(config.output_dir)}")
            except ImportError as error:  # matplotlib comes with [bench]
                print(f"no plot: {error}")
    print(
        f"checkpoint: {learner.checkpoint_dir}  metrics: {learner.logger.path}\n"
        f"evaluate it: turngym bench --env {config.env_id} "
        f"--policy hf:{learner.checkpoint_dir / 'model'}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``turngym train``: parses the arguments, checks them, trains; 2 on a bad argument."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        if args.init_config:
            return _init_config(args.init_config, args.force)
        if not args.config:
            raise InvalidArgumentError(
                "pass --config FILE (`turngym train --init-config train.yaml` writes an example)"
            )
        return _train(args)
    except InvalidArgumentError as error:
        print(f"turngym train: error: {error}", file=sys.stderr)
        return 2
    except ImportError as error:  # DependencyNotInstalled names its extra; torch & co. [train]
        hint = (
            "" if isinstance(error, DependencyNotInstalled) else " (pip install 'turngym[train]')"
        )
        print(f"turngym train: error: {error}{hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
