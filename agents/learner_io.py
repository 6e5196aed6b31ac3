"""The learner's I/O: checkpoints (save/resume), metrics (JSONL, TensorBoard, W&B), gold answers.

A checkpoint is written whole into a temporary sibling folder (``checkpoint.tmp``) and only then
renamed into place: the previous checkpoint is first renamed to ``checkpoint.prev``, the new one
to ``checkpoint``, then ``checkpoint.prev`` is removed. At every instant one complete checkpoint
exists (``checkpoint``, or ``checkpoint.prev`` if the process died between the two renames), and
:func:`find_checkpoint` returns it. A save that fails mid-way (disk full) removes its temporary
folder and leaves the last good checkpoint untouched.
"""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from turngym.atomic import append_line, atomic_write_text, disk_full_error, is_disk_full

__all__ = [
    "MetricsLogger",
    "find_checkpoint",
    "gold_answer",
    "initial_model",
    "load_checkpoint",
    "save_checkpoint",
]

#: Where envs put the gold answer in ``privileged``, tried in order (IGPO).
#: (SearchQA writes ``golden_answers``, as Search-R1's data does.)
GOLD_KEYS = ("gold_answers", "golden_answers", "gold_answer", "answers", "answer", "gold")


def gold_answer(privileged: dict[str, Any] | None) -> str | None:
    """The first gold answer in ``privileged`` (a string, or the first of a list), else None."""
    for key in GOLD_KEYS:
        value = (privileged or {}).get(key)
        if isinstance(value, (list, tuple)):
            value = next((v for v in value if v not in (None, "")), None)
        if value not in (None, ""):
            return str(value)
    return None


def _sibling(folder: Path, suffix: str) -> Path:
    return folder.with_name(folder.name + suffix)


def find_checkpoint(folder: Path) -> Path | None:
    """The complete checkpoint at ``folder`` (or its ``.prev`` left by an interrupted save)."""
    for candidate in (folder, _sibling(folder, ".prev")):
        if (candidate / "state.json").is_file():
            return candidate
    return None


def save_checkpoint(folder: Path, learner: Any) -> Path:
    """Atomically writes ``model/`` (weights or LoRA adapter, plus tokenizer), ``optimizer.pt``,
    ``rng.pt`` and ``state.json`` (iteration, config) to ``folder`` (see the module docstring).
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary, previous = _sibling(folder, ".tmp"), _sibling(folder, ".prev")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        _write_checkpoint(temporary, learner)
    except BaseException as error:
        shutil.rmtree(temporary, ignore_errors=True)
        if is_disk_full(error, folder.parent):  # say so, not torch's bare write error
            raise disk_full_error(folder.parent, error) from error
        raise
    if (folder / "state.json").is_file():
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(folder, previous)
    elif (
        folder.exists()
    ):  # a stray incomplete folder (e.g. from an older version): not a checkpoint
        shutil.rmtree(folder)
    os.replace(temporary, folder)
    shutil.rmtree(previous, ignore_errors=True)
    return folder


def _write_checkpoint(folder: Path, learner: Any) -> None:
    folder.mkdir(parents=True)
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
    (folder / "state.json").write_text(json.dumps(state, indent=1))


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


def initial_model(learner: Any, base: Any, *, given: bool, resuming: bool) -> Any:
    """The frozen KL reference: the initial policy, never a resumed checkpoint.

    Fresh runs copy ``base``; an in-memory model (``given``) is also saved once to
    ``output_dir/reference`` so that a resumed run can reload exactly it. Resumed runs load
    that folder when it exists, else ``config.model``. Held in bf16 under mixed precision.
    """
    from transformers import AutoModelForCausalLM

    saved = learner.output_dir / "reference"
    dtype = torch.bfloat16 if learner.bf16 else torch.float32
    if resuming:
        source = saved if (saved / "config.json").is_file() else learner.config.model
        reference = AutoModelForCausalLM.from_pretrained(str(source), dtype=dtype)
    else:
        reference = copy.deepcopy(base)
        # A fresh run: whatever an earlier run left in this folder is not this run's reference.
        shutil.rmtree(saved, ignore_errors=True)
        if given:
            reference.save_pretrained(saved)
    return reference.to(device=learner.device, dtype=dtype).eval().requires_grad_(False)


class MetricsLogger:
    """Appends one JSON line of metrics per iteration to ``metrics.jsonl``; mirrors them to
    TensorBoard and W&B when the config asks and the package is installed (else a warning)."""

    def __init__(self, output_dir: Path, config: Any, resume_iteration: int | None = None) -> None:
        output_dir.mkdir(parents=True, exist_ok=True)
        self.path = output_dir / "metrics.jsonl"
        if self.path.is_file():
            # Lines of iterations after the checkpoint will be written again by the resumed run
            # (and a fresh run starts a fresh file): drop them so no iteration appears twice.
            keep = resume_iteration or 0
            lines = self.path.read_text(encoding="utf-8").splitlines()
            # (a line that does not parse is one a killed run tore: dropped)
            kept = [line for line in lines if (n := _iteration(line)) is not None and n <= keep]
            atomic_write_text(self.path, "".join(line + "\n" for line in kept))
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
        append_line(self.path, json.dumps(metrics))  # whole or not at all; full disk: says so
        step = int(metrics.get("iteration", 0))
        if self.tensorboard is not None:
            for name, value in metrics.items():
                if isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(f"turngym/{name}", value, step)
        if self.wandb is not None:
            self.wandb.log(metrics, step=step)

    def close(self) -> None:
        """Flushes and closes TensorBoard and W&B (the JSONL file is closed after every line)."""
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.wandb is not None:
            self.wandb.finish()


def _iteration(line: str) -> int | None:
    """The line's iteration (0 when it names none), or None when it is no JSON object (torn)."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    try:
        return int(record.get("iteration", 0))
    except ValueError:
        return 0
