"""``turngym bench --policy module:Class`` / ``file.py:Class``: the user's own policy on the CLI,
``hf:`` on a ``turngym train`` checkpoint folder, and one-line errors for each mistake."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import turngym
from turngym.agents import bench
from turngym.agents.bench_policies import check_policy_name, hf_model_folder

POLICY_FILE = textwrap.dedent(
    """
    class Repeat:
        privileged = False

        def __init__(self, action="go east", seed=None):
            self.action, self.seed = action, seed

        def act(self, batch):
            return [self.action for _ in batch]
    """
)


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_policies.py"
    path.write_text(POLICY_FILE)
    return path


@pytest.fixture
def no_env_may_run(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("an env ran although the policy is bad")

    monkeypatch.setattr(turngym, "rollout", refuse)


def run(tmp_path: Path, policy: str, *extra: str) -> dict:
    out = tmp_path / "out"
    argv = ["--env", "turngym/Corridor-v0", "--policy", policy, "--episodes", "4"]
    code = bench.main([*argv, "--out", str(out), "--no-progress", *extra])
    assert code == 0
    (record,) = json.loads((out / "results.json").read_text())["results"]
    return record


def test_a_policy_class_from_a_file_gets_its_kwargs(tmp_path, policy_file) -> None:
    invalid = run(tmp_path, f"{policy_file}:Repeat", "--policy-kwargs", '{"action": "fly"}')
    assert invalid["policy"] == f"{policy_file}:Repeat"
    assert invalid["success"] == 0.0 and invalid["mean_reward"] < 0  # every turn a format penalty
    east = run(tmp_path, f"{policy_file}:Repeat")  # default action: walks east, wins east tasks
    assert east["success"] > 0.0 and east["mean_reward"] > invalid["mean_reward"]


def test_a_policy_class_from_an_importable_module(tmp_path, policy_file, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    record = run(tmp_path, "my_policies:Repeat", "--policy-kwargs", '{"action": "fly"}')
    assert record["success"] == 0.0 and record["mean_reward"] < 0


def test_the_seed_reaches_a_class_that_takes_one(policy_file) -> None:
    policy = bench.make_policy(f"{policy_file}:Repeat", "turngym/Corridor-v0", seed=7)
    assert policy.seed == 7 and policy.act([None, None]) == ["go east", "go east"]


@pytest.mark.parametrize(
    "policy, says",
    [
        ("{dir}/nope.py:Repeat", "no file"),
        ("{dir}/my_policies.py:Reepat", "has no 'Reepat'. Did you mean 'Repeat'?"),
        ("no_such_module_xyz:Policy", "no module 'no_such_module_xyz'"),
        ("{dir}/my_policies.py:", "use module:Class"),
    ],
)
def test_custom_policy_mistakes_are_one_line_errors_before_any_env_runs(
    policy, says, tmp_path, policy_file, capsys, no_env_may_run
) -> None:
    name = policy.format(dir=tmp_path)
    code = bench.main(["--env", "turngym/Corridor-v0", "--policy", name, "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and says in err[0], err


def test_a_file_that_fails_to_import_is_named(tmp_path, capsys, no_env_may_run) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_dependency_xyz\n")
    assert bench.main(["--env", "turngym/Corridor-v0", "--policy", f"{broken}:P"]) == 2
    err = capsys.readouterr().err
    assert "importing" in err and "no_such_dependency_xyz" in err and "Traceback" not in err


def test_hf_takes_a_train_checkpoint_folder(tmp_path) -> None:
    checkpoint = tmp_path / "run" / "checkpoint"
    (checkpoint / "model").mkdir(parents=True)
    (checkpoint / "model" / "config.json").write_text("{}")
    check_policy_name(f"hf:{checkpoint}")
    assert hf_model_folder(str(checkpoint)) == str(checkpoint / "model")
    assert hf_model_folder(str(checkpoint / "model")) == str(checkpoint / "model")
    assert hf_model_folder("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"


@pytest.mark.parametrize("flag", ["--env-kwargs", "--policy-kwargs"])
@pytest.mark.parametrize("text", ["{max_turns: 3}", "[3]"])
def test_bad_json_flags_are_one_line_errors(flag, text, tmp_path, capsys, no_env_may_run) -> None:
    code = bench.main(["--env", "turngym/Corridor-v0", flag, text, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and flag in err[0] and '{"max_turns": 3}' in err[0], err
