"""turngym.lab: policies, update, statistics, method specs and the CLI (issue 23)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

import turngym
from turngym.credit import TurnBatch
from turngym.error import InvalidArgumentError, TurnGymError
from turngym.lab import (
    LabConfig,
    LinearPolicy,
    TabularPolicy,
    anchor_statistics,
    interval,
    paired,
    policy_update,
    resolve_method,
    run_one,
    run_scores,
)
from turngym.lab.cli import main

TINY = {"lengths": [2], "max_turns": 6}


def test_tabular_policy_records_its_cells_on_the_turns() -> None:
    policy = TabularPolicy(seed=0)
    trajs = turngym.rollout(
        "turngym/Corridor-v0", policy, num_episodes=2, group_size=2, env_kwargs=TINY, progress=False
    )
    for trajectory in trajs:
        for key, turn in zip(trajectory.state_keys(), trajectory.turns, strict=True):
            # three admissible actions -> three candidate cells; the chosen one is among them
            assert len(turn.prompt_token_ids) == 3
            assert turn.token_ids[0] == policy.cell(str(key), turn.action)
            assert turn.logprobs[0] == pytest.approx(math.log(1 / 3))  # uniform start


def test_one_reinforce_step_moves_probability_toward_the_positive_advantage() -> None:
    """A better action in a repeated state: Adam's first step moves each logit by lr."""
    for policy in (TabularPolicy(seed=0), LinearPolicy(seed=0)):
        trajs = turngym.rollout(
            "turngym/Corridor-v0", policy, num_episodes=1, env_kwargs=TINY, progress=False
        )
        first = trajs[0].turns[0]
        chosen, others = (
            first.token_ids[0],
            [c for c in first.prompt_token_ids if c != first.token_ids[0]],
        )
        advantages = torch.zeros(1, len(trajs[0].turns))
        advantages[0, 0] = 1.0
        optimizer = torch.optim.Adam(policy.parameters(), lr=0.1)
        config = LabConfig("turngym/Corridor-v0", TINY, episodes=1, tasks=1, group_size=1)
        policy_update(policy, optimizer, trajs, advantages, config, "turn")
        with torch.no_grad():
            logits = policy.logits(torch.tensor([chosen, *others]))
        assert float(logits[0]) > 0.0 >= float(logits[1:].max()), type(policy).__name__
        if isinstance(policy, TabularPolicy):
            # Adam's first step is lr * sign(gradient) per coordinate: +0.1 for the chosen cell
            assert float(logits[0]) == pytest.approx(0.1, abs=1e-4)


def test_advantage_scale_is_not_a_learning_rate() -> None:
    """Adam: the same batch with every advantage x100 moves the table (almost) identically,
    three steps in a row (Adam's eps = 1e-8 is the only difference)."""
    trajs = turngym.rollout(
        "turngym/Corridor-v0",
        TabularPolicy(seed=1),
        num_episodes=8,
        group_size=4,
        env_kwargs=TINY,
        progress=False,
    )
    advantages = resolve_method("grpo")(TurnBatch.from_trajectories(trajs))
    assert float(advantages.abs().max()) > 0  # a mixed batch, not a no-op
    config = LabConfig("turngym/Corridor-v0", TINY, episodes=8, tasks=2, group_size=4)
    tables = []
    for factor in (1.0, 100.0):
        policy = TabularPolicy(seed=1)
        for trajectory in trajs:  # the same cell ids, in the same order
            for key, turn in zip(trajectory.state_keys(), trajectory.turns, strict=True):
                policy.cell(str(key), turn.action)
        optimizer = torch.optim.Adam(policy.parameters(), lr=0.1)
        for _ in range(3):
            policy_update(policy, optimizer, trajs, advantages * factor, config, "turn")
        tables.append(policy.table.detach().clone())
    assert float(tables[0].abs().max()) > 0.1
    torch.testing.assert_close(tables[0], tables[1], atol=1e-4, rtol=1e-3)


def test_run_one_reports_curve_anchors_and_timings() -> None:
    config = LabConfig("turngym/Corridor-v0", TINY, episodes=24, tasks=2, group_size=4)
    run = run_one(config, "gigpo", seed=0)
    assert run["curve"]["episodes"] == [8, 16, 24]
    assert all(0.0 <= s <= 1.0 for s in run["curve"]["success"])
    assert set(run["anchors"]) == {
        "turns_in_anchors_2plus",
        "turns_in_anchors_2plus_actions",
        "unanimous_groups",
    }
    assert run["seconds"]["rollout"] > 0 and run["seconds"]["credit"] > 0


def test_anchor_statistics_by_hand() -> None:
    from turngym import Trajectory, Turn

    def traj(steps, outcome, group):
        return Trajectory(
            turns=[Turn(action=a, state_key=s) for s, a in steps], group_id=group, outcome=outcome
        )

    batch = TurnBatch.from_trajectories(
        [
            traj([("s0", "a"), ("s1", "b")], 1.0, "g"),
            traj([("s0", "b")], 0.0, "g"),
            traj([("s0", "a")], 0.0, "h"),
            traj([("s0", "a")], 0.0, "h"),
        ]
    )
    stats = anchor_statistics(batch)
    # anchors: (g,s0) 2 turns, actions {a, b}; (g,s1) 1 turn; (h,s0) 2 turns, actions {a}
    assert stats["turns_in_anchors_2plus"] == pytest.approx(4 / 5)
    assert stats["turns_in_anchors_2plus_actions"] == pytest.approx(2 / 5)
    assert stats["unanimous_groups"] == pytest.approx(1 / 2)  # h: both 0


def test_scores_and_intervals_by_hand() -> None:
    run = {
        "curve": {
            "episodes": [10, 20, 30, 40],
            "success": [0.0, 0.6, 0.9, 1.0],
            "outcome": [0.0, 0.6, 0.9, 1.0],
            "turns": [9.0, 7.0, 5.0, 4.0],
        }
    }
    scores = run_scores(run, budgets=[20, 35])
    assert scores["auc"] == pytest.approx(2.5 / 4)
    assert scores["at_20"] == 0.6 and scores["at_35"] == 1.0
    # running means over 3 batches: 0, 0.3, 0.5, 0.833 -> 50 % at 30, 80 % at 40
    assert scores["to_50"] == 30 and scores["to_80"] == 40
    assert scores["turns"] == 4.0
    # a forced metric: WebShop's partial scores instead of its rare full successes
    run["curve"]["outcome"] = [0.2, 0.2, 0.4, 0.4]
    assert run_scores({**run, "metric": "outcome"}, budgets=[20])["auc"] == pytest.approx(0.3)
    assert run_scores(run, budgets=[20])["auc"] == pytest.approx(2.5 / 4)
    mean, half = interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.303 * 1.0 / math.sqrt(3))
    # seeds 0 and 1 pair (seed 2 has no partner): differences 0.5 and 1.0, sd 0.35355
    difference = paired({0: 1.0, 1: 2.0}, {0: 0.5, 1: 1.0, 2: 9.0})
    assert difference == (0.75, pytest.approx(12.706 * 0.35355 / math.sqrt(2), rel=1e-4), 2)


def test_method_specs() -> None:
    assert resolve_method("gigpo[gamma=1.0,normalize_std=false]").function.keywords == {
        "gamma": 1.0,
        "normalize_std": False,
    }
    assert resolve_method("grpo@episode").aggregation == "episode"
    for bad, message in [
        ("nosuch", "unknown credit method"),
        ("grpo@token", "not an aggregation"),
        ("gigpo[gamma]", "key=value"),
        ("no_such_module_xyz:fn", "cannot import"),
        ("turngym.credit:nosuch", "no callable"),
    ]:
        with pytest.raises(InvalidArgumentError, match=message):
            resolve_method(bad)


def test_a_method_returning_garbage_is_named(tmp_path: Path) -> None:
    from turngym.lab.methods import LabMethod

    config = LabConfig("turngym/Corridor-v0", TINY, episodes=8, tasks=2, group_size=4)
    with pytest.raises(InvalidArgumentError, match="'bad' returned"):
        run_one(config, LabMethod("bad", lambda batch: torch.zeros(3)), seed=0)


def test_config_errors_say_what_to_do() -> None:
    for kwargs, message in [
        ({"update": "sgd"}, "reinforce, ppo"),
        ({"aggregation": "token"}, "turn, episode"),
        ({"episodes": 2}, "at least one batch"),
        ({"policy": "linear", "warm_start": 1.0}, "tabular"),
    ]:
        with pytest.raises(InvalidArgumentError, match=message):
            LabConfig("turngym/Corridor-v0", TINY, **kwargs)


def test_env_without_admissible_actions_is_a_clear_error() -> None:
    config = LabConfig("turngym/SearchQA-1hop-v0", {"max_turns": 2}, episodes=2, tasks=1,
                       group_size=2)  # fmt: skip
    with pytest.raises(TurnGymError, match="reported no admissible actions"):
        run_one(config, "grpo", seed=0)


def test_cli_user_credit_function_table_json_png(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """The CI-sized lab run: a user's own credit function beside grpo and the controls."""
    (tmp_path / "mycredit.py").write_text(
        "from turngym.credit import returns\n\n"
        "def advantages(batch):\n"
        "    g = returns(batch, gamma=0.9)\n"
        "    return g - g[batch.mask].mean()\n"
    )
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    argv = ["--env", "turngym/Corridor-v0", "--env-kwargs", json.dumps({"lengths": [3], "max_turns": 9}),
            "--methods", "grpo,mycredit:advantages,gigpo_gamma1,discounted,grpo@episode",
            "--seeds", "2", "--episodes", "48", "--tasks", "2", "--group-size", "4",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "mycredit:advantages" in printed and "verdict:" in printed
    result = json.loads((out / "results.json").read_text())
    assert {r["method"] for r in result["summary"]} >= {"grpo", "mycredit:advantages"}
    assert len(result["runs"]) == 10
    assert (out / "curves.png").stat().st_size > 10_000
    assert "| turngym/Corridor-v0 | mycredit:advantages | 2 |" in (out / "results.md").read_text()
    # cached runs are reused: a second call trains nothing new and prints the same table
    assert main(argv) == 0
    assert capsys.readouterr().out == printed


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--env", "nosuch"], "neither a preset"),
        (["--env", "turngym/Corridor-v0", "--env-kwargs", "{bad"], "not JSON"),
        (["--env", "turngym/Corridor-v0", "--methods", "nosuch"], "unknown credit method"),
        (["--env", "turngym/Corridor-v0", "--seeds", "0"], "--seeds"),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(argv, message, capsys) -> None:
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert message in error and "Traceback" not in error and error.count("\n") == 1
