"""TrajectoryRecorder: turns recorded straight into columns give the batch from_trajectories gives."""

from __future__ import annotations

import random

import pytest
import torch
from test_credit_properties import all_methods, random_trajectories

from turngym import Trajectory
from turngym.credit import TrajectoryRecorder, TurnBatch, gigpo, grpo


def same_partition(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal ids in ``a`` exactly where equal ids in ``b`` (numbering may differ)."""
    pairs = torch.unique(torch.stack([a.flatten(), b.flatten()]), dim=1).shape[1]
    return pairs == torch.unique(a).numel() == torch.unique(b).numel()


def record_lock_step(trajectories: list[Trajectory], seed: int) -> TrajectoryRecorder:
    """Records like a rollout runner: episodes interleaved, each live one a turn per step, the
    pre-action key taken from the previous step's info (reset key for turn 0)."""
    recorder = TrajectoryRecorder()
    handles = [
        recorder.start(t.group_id, traj_id=t.traj_id, reset_state_key=t.turns[0].state_key)
        for t in trajectories
    ]
    rng = random.Random(seed)
    position = [0] * len(trajectories)
    live = list(range(len(trajectories)))
    while live:
        batch = rng.sample(live, k=rng.randint(1, len(live)))
        for i in batch:
            turns = trajectories[i].turns
            turn = turns[position[i]]
            following = turns[position[i] + 1].state_key if position[i] + 1 < len(turns) else "end"
            recorder.add_turn(
                handles[i],
                turn.action,
                turn.reward,
                info={
                    **turn.info,
                    "state_key": following,
                    "reward_components": turn.reward_components,
                },
                num_tokens=len(turn.token_ids or ()),
            )
            position[i] += 1
            if position[i] == len(turns):
                recorder.finish(handles[i], outcome=trajectories[i].outcome)
                live.remove(i)
    return recorder


@pytest.mark.parametrize("seed", range(4))
def test_recorded_batch_equals_from_trajectories_for_every_method(seed: int) -> None:
    trajectories = random_trajectories(seed)
    for t in trajectories:  # token counts, so that field is compared too
        for turn in t.turns:
            turn.token_ids = [1] * random.Random(seed).randint(0, 3)
    old = TurnBatch.from_trajectories(trajectories)
    new = record_lock_step(trajectories, seed).to_batch()
    for field in (
        "rewards",
        "components",
        "valid",
        "mask",
        "lengths",
        "group_ids",
        "outcome",
        "progress",
        "token_counts",
    ):
        assert torch.equal(getattr(old, field), getattr(new, field)), field
    assert old.component_names == new.component_names and old.labels == new.labels
    for field in ("state_ids", "action_ids", "history_ids"):
        mask = old.mask
        assert same_partition(getattr(old, field)[mask], getattr(new, field)[mask]), field
    for name, method in all_methods(old).items():
        torch.testing.assert_close(method(new), method(old), atol=1e-6, rtol=0, msg=name)


def test_rows_derivation_outcomes_and_errors() -> None:
    recorder = TrajectoryRecorder()
    second = recorder.start("g", traj_id="b", row=1, reset_state_key="s0")
    first = recorder.start("g", traj_id="a", row=0, reset_state_key="s0")
    recorder.add_turns(
        [first, second],
        ["go", "go"],
        [0.0, 0.0],
        next_state_keys=["s1", "s2"],
        outcomes=[None, 0.5],
    )
    recorder.add_turn(first, "look", 1.0, info={"state_key": "s3", "outcome": 1.0})
    recorder.finish(first)  # outcome from the last info
    recorder.finish(second)
    batch = recorder.to_batch()
    assert batch.labels[0].startswith("trajs[0] (traj_id 'a'")
    assert batch.outcome.tolist() == [1.0, 0.5]
    assert batch.state_ids.tolist() == [[0, 1], [0, -1]]  # s0, s1 | s0: derived pre-action keys
    assert gigpo(batch).shape == (2, 2)

    unfinished = TrajectoryRecorder()
    unfinished.add_turn(unfinished.start("g"), "go", 0.0)
    with pytest.raises(ValueError, match="never finished"):
        unfinished.to_batch()
    empty = TrajectoryRecorder()
    empty.finish(empty.start("g", traj_id="x"))
    with pytest.raises(ValueError, match="'x'.*no turns"):
        empty.to_batch()
    with pytest.raises(ValueError, match="empty"):
        TrajectoryRecorder().to_batch()
    bad = TrajectoryRecorder()
    handle = bad.start("g", traj_id="nan")
    with pytest.raises(ValueError, match="not a number"):
        bad.add_turn(handle, "go", "high")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'nan'.*turn 0 component 'progress' is 'x'"):
        bad.add_turn(handle, "go", 0.0, reward_components={"progress": "x"})
    assert bad.num_turns == 0  # a rejected turn changes nothing
    bad.add_turn(handle, "go", float("nan"))
    bad.finish(handle, outcome=1.0)
    with pytest.raises(ValueError, match=r"'nan'.*turn 0 reward is nan"):
        bad.to_batch()
    rows = TrajectoryRecorder()
    for _ in range(2):
        rows.add_turn(rows.start("g", row=7), "go", 0.0)
    rows.finish(0), rows.finish(1)
    with pytest.raises(ValueError, match="row 7 was given to more than one"):
        rows.to_batch()
    gaps = TrajectoryRecorder()  # rows need only be distinct: a left-out episode leaves a gap
    for row, outcome in ((5, 0.5), (2, 0.2)):
        gaps.add_turn(gaps.start("g", row=row), "go", 0.0)
        gaps.finish(gaps.num_trajectories - 1, outcome=outcome)
    assert gaps.to_batch().outcome.tolist() == pytest.approx([0.2, 0.5])


def test_unknown_pre_action_state_is_flagged() -> None:
    recorder = TrajectoryRecorder()
    for outcome in (1.0, 0.0):  # no reset key: turn 0's state is unknown, turn 1's derived
        handle = recorder.start("g")
        recorder.add_turn(handle, "go", 0.0, info={"state_key": "s1"})
        recorder.add_turn(handle, "go", outcome, info={"state_key": "s2"})
        recorder.finish(handle, outcome=outcome)
    batch = recorder.to_batch()
    assert batch.unknown_states.tolist() == [[True, False], [True, False]]
    with pytest.raises(ValueError, match="turn 0: gigpo"):
        gigpo(batch)
    assert grpo(batch).shape == (2, 2)


def test_rollout_feeds_a_recorder() -> None:
    """turngym.rollout(recorder=...) records every finished episode into the columns: the batch
    equals from_trajectories of the returned trajectories, and credit agrees."""
    import turngym
    from turngym.agents import RandomPolicy

    recorder = TrajectoryRecorder()
    trajectories = turngym.rollout(
        "turngym/Corridor-v0",
        RandomPolicy(seed=3),
        num_episodes=8,
        group_size=4,
        num_envs=2,
        workers=0,
        progress=False,
        recorder=recorder,
    )
    recorded = recorder.to_batch()
    built = TurnBatch.from_trajectories(trajectories)
    assert torch.equal(recorded.rewards, built.rewards)
    assert torch.equal(recorded.mask, built.mask)
    assert same_partition(recorded.group_ids, built.group_ids)
    assert same_partition(recorded.state_ids[built.mask], built.state_ids[built.mask])
    assert torch.allclose(gigpo(recorded), gigpo(built))
    assert torch.allclose(grpo(recorded), grpo(built))
