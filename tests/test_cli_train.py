"""``turngym train`` as a new user meets it: checks before the model loads, a line per iteration,
``metrics.png``, an honest resume, ``--init-config``, ``--help`` and ``turngym plot``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from turngym import cli
from turngym.agents import train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_model_may_load(monkeypatch):
    """Fails the test if the learner is built: config errors must be found before that."""
    pytest.importorskip("torch")
    from turngym.agents import learner

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the config error was reported")

    monkeypatch.setattr(learner.Learner, "__init__", refuse)


def write_config(path: Path, **fields) -> Path:
    path.write_text(json.dumps({"model": "tiny:", **fields}))
    return path


def one_line_error(capsys, code: int) -> str:
    captured = capsys.readouterr()
    assert code == 2, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("turngym train: error:"), captured.err
    return lines[0]


def test_help_lists_every_learner_config_field(capsys) -> None:
    from dataclasses import fields

    from turngym.agents.learner_config import LearnerConfig

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    missing = [f.name for f in fields(LearnerConfig) if f"  {f.name} (" not in out]
    assert not missing, f"--help does not list {missing}"
    assert "  learning_rate (1e-06): AdamW learning rate" in out
    assert "  model (required): Folder or hub name" in out
    assert '(e.g. `{"lengths": [1, 2],' in out  # the first sentence is not cut at "e.g."


def test_init_config_writes_a_commented_config_that_loads(tmp_path, capsys) -> None:
    pytest.importorskip("yaml")
    from dataclasses import fields

    from turngym.agents.learner_config import LearnerConfig
    from turngym.agents.train_config import read_config_file

    path = tmp_path / "train.yaml"
    assert cli.main(["train", "--init-config", str(path)]) == 0
    text = path.read_text()
    assert text.count("\n# ") >= len(fields(LearnerConfig)) - 2  # a comment for (nearly) each
    data = read_config_file(path)
    assert set(data) == {f.name for f in fields(LearnerConfig)}
    config = LearnerConfig.from_dict(data)
    assert config.model == "tiny:" and config.learning_rate == LearnerConfig.learning_rate
    path.write_text("mine")
    code = cli.main(["train", "--init-config", str(path)])
    assert "exists; pass --force" in one_line_error(capsys, code)
    assert path.read_text() == "mine"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("model: tiny:\nsteps: [1,\n", "is not valid YAML at line"),
        ("- a list\n", "must hold a mapping"),
        ("model: 'tiny:'\nlearning_rat: 0.1\n", "unknown LearnerConfig field(s) ['learning_rat']"),
        ("model: 'tiny:'\nsteps: 0\n", "LearnerConfig.steps=0 is invalid"),
    ],
)
def test_bad_config_files_are_one_line_errors(tmp_path, capsys, text, expected) -> None:
    pytest.importorskip("yaml")
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    assert expected in one_line_error(capsys, train.main(["--config", str(path)]))


def test_a_missing_config_file_says_how_to_make_one(tmp_path, capsys) -> None:
    line = one_line_error(capsys, train.main(["--config", str(tmp_path / "nope.yaml")]))
    assert "--init-config" in line
    assert "--init-config" in one_line_error(capsys, train.main([]))


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"env_id": "turngym/Coridor-v0"}, "unknown env id 'turngym/Coridor-v0'"),
        ({"env_kwargs": {"max_turn": 3}}, "max_turn"),
        ({"credit": "gigpo", "credit_kwargs": {"gama": 0.9}}, "unknown key(s) ['gama']"),
        ({"env_id": "turngym/Orchestra-v0", "env_kwargs": {"colour": 1}}, "colour"),
    ],
)
def test_env_and_credit_mistakes_are_found_before_the_model_loads(
    tmp_path, capsys, no_model_may_load, fields, expected
) -> None:
    path = write_config(tmp_path / "cfg.json", output_dir=str(tmp_path / "run"), **fields)
    assert expected in one_line_error(capsys, train.main(["--config", str(path)]))


def test_plot_needs_a_run_folder(tmp_path, capsys) -> None:
    assert cli.main(["plot", str(tmp_path)]) == 2
    assert "metrics.jsonl" in capsys.readouterr().err


def test_plot_draws_metrics_jsonl(tmp_path, capsys) -> None:
    pytest.importorskip("matplotlib")
    rows = [
        {"iteration": i, "reward": 0.1 * i, "success": 0.2, "loss": 0.3, "kl": 0.0,
         "clip_frac": 0.0, "action_tokens": 40, "seconds": 2.0}
        for i in (1, 2, 3)
    ]  # fmt: skip
    rows[2]["eval/success"] = 0.5
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert cli.main(["plot", str(tmp_path)]) == 0
    png = tmp_path / "metrics.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(png) in capsys.readouterr().out


def test_the_iteration_line_has_every_number() -> None:
    from turngym.agents.train_report import format_line

    metrics = {"iteration": 3, "success": 0.5, "reward": 0.8125, "loss": -0.01234, "kl": 0.002,
               "clip_frac": 0.125, "action_tokens": 300, "seconds": 2.0}  # fmt: skip
    line = format_line(metrics, total=20, elapsed=62)
    for part in ("iter  3/20", "success 0.50", "reward +0.812", "loss -0.0123", "kl 0.0020",
                 "clip 0.125", "tok/s   150", "0:01:02"):  # fmt: skip
        assert part in line, (part, line)


@pytest.mark.slow
def test_train_talks_plots_and_resumes_honestly(tmp_path, capsys) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from helpers.tiny_models import CORRIDOR_KWARGS, corridor_model

    run = tmp_path / "run"
    base = {
        "model": str(corridor_model()),
        "env_kwargs": CORRIDOR_KWARGS,
        "output_dir": str(run),
        "steps": 2,
        "groups_per_step": 2,
        "group_size": 2,
        "num_envs": 4,
        "env_workers": 0,
        "max_new_tokens": 4,
        "learning_rate": 1e-3,
        "device": "cpu",
        "prompt_template": {"actions": ""},
    }
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps(base))
    assert train.main(["--config", str(config)]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("iter ")]
    assert len(lines) == 2 and lines[1].startswith("iter 2/2"), out
    assert all("tok/s" in line and "kl " in line and "clip " in line for line in lines)
    assert (run / "metrics.png").is_file() and f"hf:{run / 'checkpoint' / 'model'}" in out
    from turngym.agents.bench import make_policy

    policy = make_policy(f"hf:{run / 'checkpoint'}", "turngym/Corridor-v0")  # the folder works
    assert type(policy).__name__ == "HFPolicy"

    # The same command again: nothing to do, no model loaded, nothing appended.
    assert train.main(["--config", str(config)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2

    # A changed config with the same output_dir is refused, naming the change.
    config.write_text(json.dumps({**base, "learning_rate": 5e-4, "steps": 3}))
    line = one_line_error(capsys, train.main(["--config", str(config)]))
    assert "learning_rate: 0.001 -> 0.0005" in line and "--force" in line
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2

    # --force continues the checkpoint with the new config, and says so.
    assert train.main(["--config", str(config), "--force"]) == 0
    out = capsys.readouterr().out
    assert "resuming" in out and "at iteration 2/3" in out and "learning_rate" in out
    assert [
        json.loads(x)["iteration"] for x in (run / "metrics.jsonl").read_text().splitlines()
    ] == [1, 2, 3]


@pytest.mark.slow
def test_docs_train_tiny_config_trains(tmp_path, capsys) -> None:
    """docs/train_tiny.yaml as written (offline tiny model, Corridor), cut to 2 iterations."""
    pytest.importorskip("torch")
    pytest.importorskip("yaml")
    path = ROOT / "docs" / "train_tiny.yaml"
    code = train.main(["--config", str(path), "--steps", "2", "--output-dir", str(tmp_path)])
    assert code == 0, capsys.readouterr()
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 2
    assert (tmp_path / "checkpoint" / "model" / "config.json").is_file()


@pytest.mark.slow
def test_an_interrupted_run_says_where_a_rerun_resumes(tmp_path, capsys, monkeypatch) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from helpers.tiny_models import CORRIDOR_KWARGS, corridor_model
    from turngym.agents.learner import Learner

    real_step, calls = Learner.step, []

    def step_then_interrupt(self):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_step(self)

    monkeypatch.setattr(Learner, "step", step_then_interrupt)
    config = {
        "model": str(corridor_model()), "env_kwargs": CORRIDOR_KWARGS, "steps": 3,
        "save_every": 1, "groups_per_step": 1, "group_size": 2, "env_workers": 0,
        "max_new_tokens": 4, "device": "cpu", "output_dir": str(tmp_path / "run"),
    }  # fmt: skip
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(config))
    assert train.main(["--config", str(path)]) == 130
    out = capsys.readouterr().out
    assert "interrupted during iteration 2; a rerun resumes" in out and "at iteration 1" in out
    assert (tmp_path / "run" / "metrics.png").is_file()  # the finished iteration is plotted
