"""Pre-action state keys: Turn.key never falls back to the resulting state; Trajectory.state_keys
derives the missing ones; JSONL written by turngym carries them; the rollout records them."""

from __future__ import annotations

import pytest

import turngym
from turngym import Trajectory, Turn, load_trajectories, save_trajectories
from turngym.credit import TrajectoryRecorder


def test_derivation_explicit_keys_win_and_errors() -> None:
    turns = [
        Turn(info={"state_key": "s1"}),  # taken in the reset state
        Turn(state_key="x", info={"state_key": "s2"}),  # an explicit key is kept as given
        Turn(info={"state_key": "s3"}),  # taken in s2, where turn 1 led
    ]
    trajectory = Trajectory(turns=turns, reset_state_key="s0", traj_id="t")
    assert trajectory.state_keys() == ["s0", "x", "s2"]
    assert [turn.key for turn in turns] == [None, "x", None]  # recorded keys only
    no_reset = Trajectory(turns=turns, traj_id="t")
    with pytest.raises(ValueError, match="'t': turn 0 has no pre-action state key"):
        no_reset.state_keys()
    assert no_reset.state_keys(strict=False) == [None, "x", "s2"]
    # nothing recorded anywhere: no error, no key (each turn is a state of its own for credit)
    assert Trajectory(turns=[Turn(), Turn()]).state_keys() == [None, None]


def test_recorder_derives_exactly_as_state_keys() -> None:
    turns = [
        Turn(info={"state_key": "s1"}),
        Turn(state_key="x", info={"state_key": "s2"}),
        Turn(info={"state_key": "s3"}),
    ]
    trajectories = [
        Trajectory(turns=turns, reset_state_key="s0", group_id="g"),
        Trajectory(turns=[Turn(state_key=k) for k in ("s0", "x", "s2")], group_id="g"),
    ]
    batch = TrajectoryRecorder.from_trajectories(trajectories).to_batch()
    assert batch.state_ids[0].tolist() == batch.state_ids[1].tolist() == [0, 1, 2]


def test_jsonl_carries_derived_keys_and_the_reset_key(tmp_path) -> None:
    trajectory = Trajectory(
        turns=[Turn(info={"state_key": "s1"}), Turn(info={"state_key": "s2"})], reset_state_key="s0"
    )
    loaded = load_trajectories(save_trajectories(tmp_path / "t.jsonl", [trajectory]))[0]
    assert [turn.state_key for turn in loaded.turns] == ["s0", "s1"]
    assert loaded.reset_state_key == "s0"
    # an older file without reset_state_key still loads
    old = tmp_path / "old.jsonl"
    old.write_text('{"turns": [{"action": "go", "state_key": "a"}], "group_id": "g"}\n')
    assert load_trajectories(old)[0].state_keys() == ["a"]


def test_rollout_records_pre_action_keys() -> None:
    trajectories = turngym.rollout(
        "turngym/Corridor-v0", turngym.agents.RandomPolicy(), num_episodes=2, progress=False
    )
    for trajectory in trajectories:
        assert trajectory.reset_state_key is not None
        keys = [turn.state_key for turn in trajectory.turns]
        # each turn was taken in the state the previous one led to (the reset state for turn 0)
        assert keys == [trajectory.reset_state_key] + [
            t.info["state_key"] for t in trajectory.turns[:-1]
        ]
        assert trajectory.state_keys() == keys
