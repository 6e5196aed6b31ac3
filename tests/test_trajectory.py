"""Turn/Trajectory records and their JSON Lines format."""

from __future__ import annotations

import pandas as pd
import pytest

import turngym
from turngym import Trajectory, Turn, load_trajectories, save_trajectories


def test_build_by_keyword_as_design_promises() -> None:
    turn = Turn(observation="...", action="go north", reward=0.0, info={"state_key": "s1"})
    trajectory = Trajectory(turns=[turn], task_id="t", group_id="g", outcome=1.0, success=True)
    # info["state_key"] is the state the action led to, never the turn's grouping key
    assert turn.key is None and turn.valid_action
    assert trajectory.state_keys(strict=False) == [None]
    assert trajectory.total_reward == 0.0 and trajectory.traj_id == ""


def test_jsonl_round_trip_and_pandas(tmp_path) -> None:
    trajectories = turngym.rollout(
        "turngym/Corridor-v0",
        turngym.agents.RandomPolicy(),
        num_episodes=4,
        group_size=2,
        progress=False,
    )
    path = save_trajectories(tmp_path / "out" / "trajs.jsonl", trajectories)
    loaded = load_trajectories(path)
    assert [t.to_dict() for t in loaded] == [t.to_dict() for t in trajectories]
    frame = pd.read_json(path, lines=True)
    assert len(frame) == 4
    assert list(frame["total_reward"]) == pytest.approx([t.total_reward for t in trajectories])
    assert set(frame["group_id"]) == {t.group_id for t in trajectories}


def test_non_finite_numbers_become_null(tmp_path) -> None:
    trajectory = Trajectory(turns=[Turn(reward=float("nan"))], outcome=float("inf"))
    loaded = load_trajectories(save_trajectories(tmp_path / "t.jsonl", [trajectory]))
    assert loaded[0].outcome is None and loaded[0].turns[0].reward is None


def test_corrupt_file_and_wrong_input(tmp_path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"turns": []}\n{not json\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        load_trajectories(path)
    with pytest.raises(FileNotFoundError, match="save_trajectories"):
        load_trajectories(tmp_path / "missing.jsonl")
    with pytest.raises(TypeError, match="Trajectory objects"):
        save_trajectories(tmp_path / "x.jsonl", [{"turns": []}])
