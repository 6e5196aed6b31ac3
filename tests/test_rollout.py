"""turngym.rollout: batching, groups, privileged stripping, worker processes."""

from __future__ import annotations

import pytest

import turngym
from turngym import Conversation, GeneratedAction
from turngym.error import InvalidArgumentError, PolicyError, TurnGymError

ENV = "turngym/Corridor-v0"


class RecordingPolicy:
    """Goes east, records every batch it was called with."""

    privileged = False

    def __init__(self) -> None:
        self.batches: list[list[Conversation]] = []

    def act(self, batch):
        self.batches.append(batch)
        return ["go east"] * len(batch)


class PeekingPolicy(RecordingPolicy):
    privileged = True


def test_one_policy_call_per_turn_for_all_live_episodes() -> None:
    policy = RecordingPolicy()
    trajectories = turngym.rollout(
        ENV,
        policy,
        num_episodes=4,
        num_envs=4,
        progress=False,
        env_kwargs={"lengths": (3,)},
        seed=0,
    )
    # All 4 episodes run together: every task is L3-east or L3-west; going east wins the east
    # ones in 3 turns and runs the west ones to the turn limit (12). One act() call per turn.
    assert [len(batch) for batch in policy.batches[:3]] == [4, 4, 4]
    assert len(policy.batches) == max(len(t.turns) for t in trajectories)
    for trajectory in trajectories:
        assert trajectory.success == trajectory.task_id.endswith("east")


def test_groups_share_task_and_seed() -> None:
    trajectories = turngym.rollout(
        ENV,
        turngym.agents.RandomPolicy(seed=3),
        num_episodes=12,
        group_size=3,
        progress=False,
        seed=10,
    )
    groups = {}
    for trajectory in trajectories:
        groups.setdefault(trajectory.group_id, []).append(trajectory)
    assert len(groups) == 4 and all(len(g) == 3 for g in groups.values())
    for members in groups.values():
        assert len({t.task_id for t in members}) == 1
        assert len({t.seed for t in members}) == 1
        assert len({t.traj_id for t in members}) == 3


def test_turn_records_observation_state_and_reward() -> None:
    (trajectory,) = turngym.rollout(
        ENV, RecordingPolicy(), num_episodes=1, progress=False, env_kwargs={"lengths": (2,)}, seed=0
    )
    first = trajectory.turns[0]
    assert first.observation == trajectory.initial_observation
    assert first.state_key is not None and first.state_key != first.info["state_key"]
    assert trajectory.total_reward == pytest.approx(sum(t.reward for t in trajectory.turns))
    assert trajectory.outcome == trajectory.turns[-1].info["outcome"]
    assert "exit is to the" in trajectory.instructions


def test_privileged_only_for_privileged_policies() -> None:
    plain, peeking = RecordingPolicy(), PeekingPolicy()
    trajectories = turngym.rollout(ENV, plain, num_episodes=2, progress=False)
    turngym.rollout(ENV, peeking, num_episodes=2, progress=False)
    for batch in plain.batches:
        for conversation in batch:
            assert conversation.privileged is None and "privileged" not in conversation.info
    assert all(c.privileged and "solution" in c.privileged for b in peeking.batches for c in b)
    # Recorded turns never carry privileged data; the trajectory keeps it once for learners.
    assert all("privileged" not in turn.info for t in trajectories for turn in t.turns)
    assert all("solution" in t.privileged for t in trajectories)


def test_worker_processes_match_in_process_run() -> None:
    policy = turngym.agents.RandomPolicy
    local = turngym.rollout(
        ENV, policy(seed=1), num_episodes=6, group_size=2, num_envs=1, progress=False
    )
    parallel = turngym.rollout(
        ENV, policy(seed=1), num_episodes=6, group_size=2, num_envs=1, progress=False
    )
    assert [t.to_dict() for t in local] == [t.to_dict() for t in parallel]
    # With several workers the policy sees batches in another order, so compare what does not
    # depend on it: the tasks and the expert's results.
    expert = turngym.agents.expert(ENV)
    many = turngym.rollout(ENV, expert, num_episodes=6, group_size=2, num_envs=3, progress=False)
    one = turngym.rollout(ENV, expert, num_episodes=6, group_size=2, num_envs=1, progress=False)
    assert [(t.task_id, t.success, len(t.turns)) for t in many] == [
        (t.task_id, t.success, len(t.turns)) for t in one
    ]
    assert all(t.success for t in many)


def test_generated_action_metadata_is_recorded() -> None:
    def policy(batch):
        return [
            GeneratedAction(
                "go east", token_ids=[1, 2], logprobs=[-0.1, -0.2], prompt_token_ids=[7]
            )
            for _ in batch
        ]

    (trajectory,) = turngym.rollout(ENV, policy, num_episodes=1, progress=False)
    assert trajectory.turns[0].token_ids == [1, 2] and trajectory.turns[0].logprobs == [-0.1, -0.2]
    # token counts follow from the token ids when the policy reports no usage
    assert trajectory.turns[0].info["usage"] == {
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "total_tokens": 3,
    }


def test_usage_reported_by_the_policy_is_recorded_as_given() -> None:
    usage = {"prompt_tokens": 40, "completion_tokens": 3, "total_tokens": 43}

    def policy(batch):
        return [GeneratedAction("go east", usage=usage) for _ in batch]

    (trajectory,) = turngym.rollout(ENV, policy, num_episodes=1, progress=False)
    assert all(turn.info["usage"] == usage for turn in trajectory.turns)
    (plain,) = turngym.rollout(ENV, RecordingPolicy(), num_episodes=1, progress=False)
    assert all("usage" not in turn.info for turn in plain.turns)  # nothing made up


def test_bad_policies_and_arguments() -> None:
    with pytest.raises(PolicyError, match="exactly one action per conversation"):
        turngym.rollout(ENV, lambda batch: [], num_episodes=1, progress=False)
    with pytest.raises(PolicyError, match="return str"):
        turngym.rollout(ENV, lambda batch: [42] * len(batch), num_episodes=1, progress=False)
    with pytest.raises(PolicyError, match="not a policy"):
        turngym.rollout(ENV, object(), num_episodes=1, progress=False)
    with pytest.raises(InvalidArgumentError, match="multiple of group_size"):
        turngym.rollout(ENV, RecordingPolicy(), num_episodes=5, group_size=2, progress=False)
    with pytest.raises(InvalidArgumentError, match="unknown env id"):
        turngym.rollout("turngym/Missing-v0", RecordingPolicy(), num_episodes=1, progress=False)


def test_worker_errors_surface_with_the_cause() -> None:
    with pytest.raises(TurnGymError, match="unknown argument"):
        turngym.rollout(
            ENV,
            RecordingPolicy(),
            num_episodes=2,
            num_envs=2,
            progress=False,
            env_kwargs={"bogus": 1},
        )
