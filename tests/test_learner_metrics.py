"""The learner's metrics go to JSONL always, and to TensorBoard and W&B when asked."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass

import pytest

pytest.importorskip("torch")

from turngym.agents.learner_io import MetricsLogger  # noqa: E402


@dataclass
class _Config:
    tensorboard: bool = False
    wandb_project: str | None = None

    def to_dict(self) -> dict:
        return {"tensorboard": self.tensorboard, "wandb_project": self.wandb_project}


class _FakeWandb(types.ModuleType):
    """Records what the logger calls (W&B itself would need an account or a network)."""

    def __init__(self) -> None:
        super().__init__("wandb")
        self.calls: list[tuple] = []

    def init(self, **kwargs):
        self.calls.append(("init", kwargs))
        return self

    def log(self, metrics, step):
        self.calls.append(("log", dict(metrics), step))

    def finish(self):
        self.calls.append(("finish",))


def test_metrics_reach_jsonl_tensorboard_and_wandb(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    fake = _FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    logger = MetricsLogger(tmp_path, _Config(tensorboard=True, wandb_project="turngym-test"))
    logger.log({"iteration": 1, "reward": 0.5, "loss": 1.25, "note": "text is skipped"})
    logger.log({"iteration": 2, "reward": 0.75, "loss": 1.0, "note": "x"})
    logger.close()

    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["reward"] for line in lines] == [0.5, 0.75]

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    rewards = events.Scalars("turngym/reward")
    assert [(e.step, e.value) for e in rewards] == [(1, 0.5), (2, 0.75)]
    assert "turngym/note" not in events.Tags()["scalars"]

    assert fake.calls[0] == (
        "init",
        {"project": "turngym-test", "config": _Config(True, "turngym-test").to_dict()},
    )
    assert fake.calls[1][0] == "log" and fake.calls[1][2] == 1 and fake.calls[1][1]["loss"] == 1.25
    assert fake.calls[-1] == ("finish",)


def test_missing_wandb_warns_and_keeps_jsonl(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    with pytest.warns(UserWarning, match="pip install wandb"):
        logger = MetricsLogger(tmp_path, _Config(wandb_project="p"))
    logger.log({"iteration": 1, "reward": 1.0})
    logger.close()
    assert json.loads((tmp_path / "metrics.jsonl").read_text())["reward"] == 1.0
