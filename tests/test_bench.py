"""The benchmark runner: table, results.json/csv, plots, per-task-type rows, skipping broken envs."""

from __future__ import annotations

import csv
import json

import pytest

import turngym
from turngym.agents import bench
from turngym.trajectory import Trajectory, Turn


def test_run_bench_random_and_expert_writes_table_files_and_plots(tmp_path, capsys):
    report = bench.run_bench(
        ["turngym/Corridor-v0"], ["random", "expert"], 8, tmp_path, progress=False
    )
    by_policy = {r["policy"]: r for r in report["results"]}
    assert by_policy["expert"]["success"] == 1.0
    assert by_policy["random"]["mean_reward"] < by_policy["expert"]["mean_reward"]
    for record in report["results"]:
        curve = record["success_by_turn_budget"]
        assert curve == sorted(curve), "success within k turns must not decrease with k"
        assert curve[-1] == pytest.approx(record["success"])
    table = capsys.readouterr().out
    assert "mean reward" in table and "turngym/Corridor-v0" in table and "expert" in table
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["results"] == json.loads(json.dumps(report["results"]))
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert {row["policy"] for row in rows} == {"random", "expert"}
    import matplotlib.image

    for name in ("rewards.png", "success_by_turn_budget.png"):
        image = matplotlib.image.imread(tmp_path / name)
        assert image.shape[0] > 200 and image.shape[1] > 200


def test_task_types_get_their_own_rows(tmp_path, monkeypatch):
    def fake_rollout(env_id, policy, **kwargs):
        return [
            Trajectory(turns=[Turn(reward=1.0)], success=True, metadata={"task_type": "pick"}),
            Trajectory(turns=[Turn(), Turn()], success=False, metadata={"task_type": "pick"}),
            Trajectory(turns=[Turn(reward=0.5, info={"task_type": "clean"})], success=True),
        ]

    monkeypatch.setattr(turngym, "rollout", fake_rollout)
    report = bench.run_bench(["turngym/Corridor-v0"], ["random"], 3, tmp_path, progress=False)
    types = report["results"][0]["task_types"]
    assert types["pick"]["episodes"] == 2 and types["pick"]["success"] == 0.5
    assert types["clean"]["mean_reward"] == 0.5
    kinds = {row["task_type"] for row in csv.DictReader(open(tmp_path / "results.csv"))}
    assert kinds == {"all", "pick", "clean"}


def test_a_failing_env_is_skipped_with_its_reason(tmp_path, capsys):
    def factory(name, env_id):
        if env_id == "turngym/TextWorld-Easy-v0":
            raise RuntimeError("family not installed")
        return bench.make_policy(name, env_id)

    report = bench.run_bench(
        ["turngym/TextWorld-Easy-v0", "turngym/Corridor-v0"],
        ["expert"],
        2,
        tmp_path,
        policy_factory=factory,
        progress=False,
    )
    assert [r["env"] for r in report["results"]] == ["turngym/Corridor-v0"]
    assert report["skipped"][0]["reason"] == "RuntimeError: family not installed"
    assert "skipped turngym/TextWorld-Easy-v0" in capsys.readouterr().err


def test_cli_env_all_runs_every_listed_id_and_skips_broken_ones(tmp_path, monkeypatch, capsys):
    # The real registry grows with every family (some need Docker); a stand-in keeps this fast.
    listed = {"turngym/Corridor-v0": "corridor", "turngym/Missing-v0": "an id that fails to build"}
    monkeypatch.setattr(turngym, "list_envs", lambda: dict(listed))
    # `all` also covers the multi-agent orchestra presets, played by teams.
    monkeypatch.setattr(bench, "list_orchestra_envs", lambda: {"turngym/Orchestra-Toy-v0": "toy"})
    argv = ["--env", "all", "--policy", "random,expert", "--episodes", "2", "--out", str(tmp_path)]
    assert bench.main([*argv, "--no-progress"]) == 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert {(r["env"], r["policy"]) for r in saved["results"]} == {
        ("turngym/Corridor-v0", "random"),
        ("turngym/Corridor-v0", "expert"),
        ("turngym/Orchestra-Toy-v0", "random"),
        ("turngym/Orchestra-Toy-v0", "expert"),
    }
    team = next(
        r
        for r in saved["results"]
        if r["env"] == "turngym/Orchestra-Toy-v0" and r["policy"] == "expert"
    )
    assert team["success"] == 1.0 and team["mean_turns"] > 3
    assert {s["env"] for s in saved["skipped"]} == {"turngym/Missing-v0"}
    assert "skipped turngym/Missing-v0" in capsys.readouterr().err


def test_cli_rejects_unknown_env_and_policy(tmp_path, capsys):
    assert bench.main(["--env", "turngym/Nope-v0", "--out", str(tmp_path)]) == 2
    assert "unknown env id" in capsys.readouterr().err
    with pytest.raises(turngym.error.InvalidArgumentError, match="random, expert, hf:PATH"):
        bench.make_policy("smart", "turngym/Corridor-v0")


def test_hf_policy_by_path(tmp_path):
    pytest.importorskip("transformers")
    from helpers.tiny_models import corridor_model

    report = bench.run_bench(
        ["turngym/Corridor-v0"],
        [f"hf:{corridor_model()}"],
        4,
        tmp_path,
        progress=False,
        env_kwargs={"lengths": (1, 2), "max_turns": 4},
    )
    assert report["results"][0]["episodes"] == 4 and report["results"][0]["mean_turns"] <= 4


def test_plots_stay_readable_with_many_envs(tmp_path):
    """`--env all` gives dozens of env/policy pairs: one panel per env keeps figures bounded."""
    import matplotlib.image

    from turngym.agents.bench import write_outputs

    envs = [f"Env{i}-v0" for i in range(22)]
    rewards = {f"{e} | {p}": [0.0, 1.0, 0.5] for e in envs for p in ("random", "expert")}
    budgets = {label: [0.0, 0.5, 1.0] for label in rewards}
    write_outputs(tmp_path, {"results": [], "episodes": 3}, rewards, budgets)
    for name in ("rewards.png", "success_by_turn_budget.png"):
        height, width = matplotlib.image.imread(tmp_path / name).shape[:2]
        assert width <= 1600 and height <= 2200, (name, width, height)
        assert height > width  # 22 panels in rows of 4
