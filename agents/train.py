"""``turngym train --config FILE``: run the learner from a JSON/YAML/TOML config.

The file holds :class:`turngym.agents.learner_config.LearnerConfig` fields, e.g.::

    {"model": "/models/tiny", "env_id": "turngym/Corridor-v0", "credit": "gigpo",
     "steps": 50, "learning_rate": 1e-3, "output_dir": "runs/corridor"}

``--eval-every N`` evaluates the policy every N iterations on ``--eval-groups`` held-out task
groups and writes ``eval/reward``, ``eval/success`` and ``eval/turns`` into that iteration's line
of ``metrics.jsonl`` (and TensorBoard with ``--tensorboard``, from the ``[train]`` extra).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Parses ``--config FILE [--steps N] [--output-dir DIR]``, trains, prints the last metrics."""
    parser = argparse.ArgumentParser(
        prog="turngym train", description="train an LLM policy with the learner"
    )
    parser.add_argument(
        "--config", required=True, help="JSON, YAML or TOML file of LearnerConfig fields"
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
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))

    from turngym.agents.learner import Learner
    from turngym.agents.learner_config import LearnerConfig

    try:
        config = LearnerConfig.from_file(args.config)
        overrides = {
            k: v
            for k, v in (
                ("steps", args.steps),
                ("output_dir", args.output_dir),
                ("eval_every", args.eval_every),
                ("eval_groups", args.eval_groups),
                ("tensorboard", args.tensorboard),
            )
            if v is not None
        }
        if overrides:
            config = LearnerConfig.from_dict({**config.to_dict(), **overrides})
    except ValueError as error:
        print(f"turngym train: error: {error}", file=sys.stderr)
        return 2
    try:
        learner = Learner(config)
    except (OSError, ValueError) as error:  # e.g. a model folder without weights
        print(f"turngym train: error: {error}", file=sys.stderr)
        return 2
    history = learner.train()
    if history:
        print(json.dumps(history[-1]))
    print(f"checkpoint: {learner.checkpoint_dir}  metrics: {learner.logger.path}")
    return 0
