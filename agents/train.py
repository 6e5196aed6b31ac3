"""``turngym train --config FILE``: run the learner from a JSON/YAML/TOML config.

The file holds :class:`turngym.agents.learner_config.LearnerConfig` fields, e.g.::

    {"model": "/models/tiny", "env_id": "turngym/Corridor-v0", "credit": "gigpo",
     "steps": 50, "learning_rate": 1e-3, "output_dir": "runs/corridor"}
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
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))

    from turngym.agents.learner import Learner
    from turngym.agents.learner_config import LearnerConfig

    try:
        config = LearnerConfig.from_file(args.config)
        overrides = {
            k: v
            for k, v in (("steps", args.steps), ("output_dir", args.output_dir))
            if v is not None
        }
        if overrides:
            config = LearnerConfig.from_dict({**config.to_dict(), **overrides})
    except ValueError as error:
        print(f"turngym train: error: {error}", file=sys.stderr)
        return 2
    learner = Learner(config)
    history = learner.train()
    if history:
        print(json.dumps(history[-1]))
    print(f"checkpoint: {learner.checkpoint_dir}  metrics: {learner.logger.path}")
    return 0
