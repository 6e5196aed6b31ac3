"""Checkpoints are atomic, the KL reference survives resume, metrics never repeat an iteration."""

from __future__ import annotations

import json
import math
import shutil

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from test_learner import config as learner_config  # noqa: E402

from helpers.tiny_models import corridor_model  # noqa: E402
from turngym.agents.learner import Learner  # noqa: E402
from turngym.agents.learner_config import LearnerConfig  # noqa: E402
from turngym.agents.learner_io import find_checkpoint  # noqa: E402


def unit_credit(trajectories):
    """+1 on the turns of successful episodes, -1 elsewhere: a signal even when groups tie."""
    advantages = torch.zeros(len(trajectories), max(len(t.turns) for t in trajectories))
    for i, trajectory in enumerate(trajectories):
        advantages[i, : len(trajectory.turns)] = 1.0 if trajectory.success else -1.0
    return advantages


def config(tmp_path, **overrides) -> LearnerConfig:
    """test_learner's tiny Corridor config, in groups of 2 and with a larger step."""
    fields = dict(group_size=2, learning_rate=5e-3, micro_batch_size=16)
    return learner_config(tmp_path, **{**fields, **overrides})


def iterations(tmp_path) -> list[int]:
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["iteration"] for line in lines]


def test_a_failed_save_leaves_the_last_checkpoint_loadable(tmp_path, monkeypatch):
    learner = Learner(config(tmp_path), credit_fn=unit_credit)
    learner.step()
    learner.save()
    saved = {n: p.detach().clone() for n, p in learner.model.named_parameters()}
    learner.step()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)  # fails after model/ was written
    with pytest.raises(OSError, match="No space left"):
        learner.save()
    monkeypatch.undo()
    run = tmp_path / "run"
    assert not (run / "checkpoint.tmp").exists(), "the partial save is cleaned up"
    assert json.loads((run / "checkpoint" / "state.json").read_text())["iteration"] == 1
    resumed = Learner(config(tmp_path), credit_fn=unit_credit)
    assert resumed.iteration == 1
    for name, parameter in resumed.model.named_parameters():
        assert torch.equal(parameter, saved[name]), name


def test_a_save_interrupted_between_the_renames_resumes_from_the_previous(tmp_path):
    learner = Learner(config(tmp_path), credit_fn=unit_credit)
    learner.step()
    learner.save()
    run = tmp_path / "run"
    # The state right after "checkpoint -> checkpoint.prev" and before "tmp -> checkpoint".
    (run / "checkpoint").rename(run / "checkpoint.prev")
    assert find_checkpoint(run / "checkpoint") == run / "checkpoint.prev"
    resumed = Learner(config(tmp_path, steps=2), credit_fn=unit_credit)
    assert resumed.iteration == 1
    resumed.train()
    assert find_checkpoint(run / "checkpoint") == run / "checkpoint"
    assert not (run / "checkpoint.prev").exists()
    assert json.loads((run / "checkpoint" / "state.json").read_text())["iteration"] == 2


def test_resume_keeps_the_initial_model_as_kl_reference(tmp_path):
    from transformers import AutoModelForCausalLM

    original = AutoModelForCausalLM.from_pretrained(str(corridor_model()))
    learner = Learner(config(tmp_path, kl_coef=0.1, steps=3), credit_fn=unit_credit)
    learner.train()
    resumed = Learner(config(tmp_path, kl_coef=0.1, steps=4), credit_fn=unit_credit)
    assert resumed.iteration == 3
    for (name, ref), (_, init) in zip(
        resumed.reference.named_parameters(), original.named_parameters(), strict=True
    ):
        assert torch.equal(ref, init), f"{name}: the reference moved on resume"
    trained = dict(learner.model.named_parameters())
    for name, parameter in resumed.model.named_parameters():  # while the policy is the trained one
        assert torch.equal(parameter, trained[name].detach()), name
    metrics = resumed.step()
    # The policy moved away from the initial model in 3 steps: the KL to it is not 0.
    assert math.isfinite(metrics["kl"]) and metrics["kl"] > 1e-6, metrics["kl"]


def test_an_in_memory_model_is_saved_once_as_the_reference(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(corridor_model()))
    with torch.no_grad():  # differs from config.model, so reloading config.model would be wrong
        model.lm_head.weight.mul_(1.5)
    expected = {n: p.detach().clone() for n, p in model.named_parameters()}
    tokenizer = AutoTokenizer.from_pretrained(str(corridor_model()))
    learner = Learner(
        config(tmp_path, kl_coef=0.1, steps=2),
        credit_fn=unit_credit,
        model=model,
        tokenizer=tokenizer,
    )
    learner.train()
    assert (tmp_path / "run" / "reference" / "config.json").is_file()
    resumed = Learner(config(tmp_path, kl_coef=0.1, steps=3), credit_fn=unit_credit)
    for name, parameter in resumed.reference.named_parameters():
        assert torch.equal(parameter, expected[name]), name


def test_metrics_never_repeat_an_iteration_after_resume(tmp_path):
    learner = Learner(config(tmp_path, steps=2), credit_fn=unit_credit)
    learner.train()  # checkpoint at iteration 2
    learner.step()  # iteration 3 is logged but never saved (the run "crashes" here)
    assert iterations(tmp_path) == [1, 2, 3]
    resumed = Learner(config(tmp_path, steps=4), credit_fn=unit_credit)
    assert resumed.iteration == 2
    assert iterations(tmp_path) == [1, 2], "iteration 3 will be redone: its line is dropped"
    resumed.train()
    assert iterations(tmp_path) == [1, 2, 3, 4]
    # A fresh run (resume=False) in the same folder starts a fresh metrics file.
    shutil.rmtree(tmp_path / "run" / "checkpoint")
    Learner(config(tmp_path, steps=1, resume=False), credit_fn=unit_credit).train()
    assert iterations(tmp_path) == [1]


def test_train_cli_eval_every_writes_eval_metrics(tmp_path):
    from turngym.agents.train import main

    path = tmp_path / "learner.json"
    path.write_text(json.dumps(config(tmp_path, credit="rloo").to_dict()))
    assert (
        main(["--config", str(path), "--steps", "2", "--eval-every", "2", "--eval-groups", "2"])
        == 0
    )
    lines = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [line["iteration"] for line in lines] == [1, 2]
    assert "eval/success" not in lines[0]
    assert {"eval/reward", "eval/success", "eval/turns"} <= set(lines[1])
    assert 0.0 <= lines[1]["eval/success"] <= 1.0
