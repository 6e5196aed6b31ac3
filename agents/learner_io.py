"""The learner's I/O: checkpoints (save/resume), metrics (JSONL, TensorBoard, W&B), gold answers."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["MetricsLogger", "gold_answer", "load_checkpoint", "save_checkpoint"]

#: Where envs put the gold answer in ``privileged``, tried in order (IGPO).
GOLD_KEYS = ("gold_answers", "gold_answer", "answers", "answer", "gold")


def gold_answer(privileged: dict[str, Any] | None) -> str | None:
    """The first gold answer in ``privileged`` (a string, or the first of a list), else None."""
    for key in GOLD_KEYS:
        value = (privileged or {}).get(key)
        if isinstance(value, (list, tuple)):
            value = next((v for v in value if v not in (None, "")), None)
        if value not in (None, ""):
            return str(value)
    return None


def save_checkpoint(folder: Path, learner: Any) -> Path:
    """Writes ``model/`` (weights or LoRA adapter, plus tokenizer), ``optimizer.pt``, ``rng.pt``
    and ``state.json`` (iteration, config); ``state.json`` goes last, so a folder with it is whole.
    """
    folder.mkdir(parents=True, exist_ok=True)
    state_path = folder / "state.json"
    if state_path.exists():
        state_path.unlink()
    learner.model.save_pretrained(folder / "model")
    learner.tokenizer.save_pretrained(folder / "model")
    torch.save(learner.optimizer.state_dict(), folder / "optimizer.pt")
    rng = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    torch.save(rng, folder / "rng.pt")
    state = {"iteration": learner.iteration, "config": learner.config.to_dict()}
    tmp = folder / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, state_path)
    return folder


def load_checkpoint(folder: Path, optimizer: torch.optim.Optimizer) -> int:
    """Restores optimizer and RNG states from ``folder``; returns the iteration to continue at.

    The model weights are loaded by the learner itself (``from_pretrained`` of ``model/``).
    """
    state = json.loads((folder / "state.json").read_text())
    optimizer.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=False))
    rng = torch.load(folder / "rng.pt", weights_only=False)
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    return int(state["iteration"])


class MetricsLogger:
    """Appends one JSON line of metrics per iteration to ``metrics.jsonl``; mirrors them to
    TensorBoard and W&B when the config asks and the package is installed (else a warning)."""

    def __init__(self, output_dir: Path, config: Any) -> None:
        output_dir.mkdir(parents=True, exist_ok=True)
        self.path = output_dir / "metrics.jsonl"
        self.tensorboard = self.wandb = None
        if config.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tensorboard = SummaryWriter(str(output_dir / "tensorboard"))
            except ImportError:
                import warnings

                warnings.warn(
                    "tensorboard is not installed (pip install tensorboard); logging to JSONL only",
                    stacklevel=2,
                )
        if config.wandb_project:
            try:
                import wandb

                self.wandb = wandb.init(project=config.wandb_project, config=config.to_dict())
            except ImportError:
                import warnings

                warnings.warn(
                    "wandb is not installed (pip install wandb); logging to JSONL only",
                    stacklevel=2,
                )

    def log(self, metrics: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(metrics) + "\n")
        step = int(metrics.get("iteration", 0))
        if self.tensorboard is not None:
            for name, value in metrics.items():
                if isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(f"turngym/{name}", value, step)
        if self.wandb is not None:
            self.wandb.log(metrics, step=step)

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.wandb is not None:
            self.wandb.finish()
