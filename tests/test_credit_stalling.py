"""No credit default may pay for stalling (issue 23).

In a task group where a short success and a long failure take the same actions (Corridor:
``go east``/``go west``/``wait``, all valid), every credit method with its default
hyperparameters, and the learner's default credit config, must give the success's turns the
higher advantage. The attack: a policy that stalls until the turn limit must not collect more
credit per turn than one that finishes, which a per-turn bonus summed to go (SPA's paper-form
grounding bonus, a "living reward") would pay for.

Episodes are real Corridor rollouts of scripted walks, so rewards, progress, validity and state
keys are the env's own.
"""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import turngym
from turngym import Trajectory
from turngym.credit import (
    TurnBatch,
    gae,
    gated,
    gigpo,
    grpo,
    igpo,
    reinforce,
    returns,
    rloo,
    salt,
    spa,
)

LENGTH, LIMIT = 8, 24


class Walk:
    """Plays a script of ``toward``/``away``/``wait`` moves relative to the exit's side."""

    def __init__(self, moves: list[str]) -> None:
        self.moves = moves

    def act(self, batch: list) -> list[str]:
        actions = []
        for conversation in batch:
            east = "exit is to the east" in conversation.instructions
            move = self.moves[min(conversation.turn, len(self.moves) - 1)]
            if move == "wait":
                actions.append("wait")
            else:
                actions.append("go east" if (move == "toward") == east else "go west")
        return actions


def episode(moves: list[str], reward_mode: str, group: str = "g") -> Trajectory:
    (trajectory,) = turngym.rollout(
        "turngym/Corridor-v0",
        Walk(moves),
        num_episodes=1,
        seed=0,
        env_kwargs={"lengths": (LENGTH,), "max_turns": LIMIT, "reward_mode": reward_mode},
        progress=False,
    )
    trajectory.group_id = group
    return trajectory


SUCCESS = ["toward"] * LENGTH
#: Failures that reuse the success's actions and states and outlast it by 16 turns.
FAILURES = {
    "bounce": ["toward", "away"] * (LIMIT // 2),
    "wait_at_door": ["toward"] * (LENGTH - 1) + ["wait"] * (LIMIT - LENGTH + 1),
    "dither": (["toward"] * 3 + ["away"] * 2) * 5,
}


def default_methods() -> dict:
    """Every credit method with its defaults (extra inputs only where a method needs them)."""

    def igpo_tracking(batch: TurnBatch) -> torch.Tensor:
        # p(gold | context) that tracks the env's progress: information gain = progress gain
        probs = torch.nn.functional.pad(0.1 + 0.8 * batch.progress, (1, 0), value=0.1)
        return igpo(batch, gold_probs=probs)

    def igpo_flat(batch: TurnBatch) -> torch.Tensor:
        return igpo(
            batch, gold_probs=torch.full((batch.num_trajectories, batch.max_turns + 1), 0.3)
        )

    return {
        "grpo": grpo,
        "rloo": rloo,
        "reinforce": reinforce,
        "returns": returns,
        "gae": gae,
        "gigpo": gigpo,
        "salt": salt,
        "salt_prefix": lambda b: salt(b, merge="prefix"),
        "igpo_tracking": igpo_tracking,
        "igpo_flat": igpo_flat,
        "spa": spa,
        "gated+grpo": lambda b: grpo(b, rewards=gated(b)),
        "learner_default": None,  # LearnerConfig()'s credit and credit_kwargs, via the learner
    }


def advantages_of(method, trajectories: list[Trajectory]) -> torch.Tensor:
    if method is None:
        from turngym.agents.learner_config import LearnerConfig
        from turngym.agents.learner_credit import learner_advantages

        config = LearnerConfig(model="unused-model-name")
        return learner_advantages(SimpleNamespace(config=config), trajectories)
    return method(TurnBatch.from_trajectories(trajectories))


def turn_values(advantages: torch.Tensor, row: int, trajectory: Trajectory) -> list[float]:
    return advantages[row, : len(trajectory.turns)].tolist()


def shared_pairs(success: Trajectory, failure: Trajectory) -> set[tuple[str, str]]:
    def pairs(t: Trajectory) -> set[tuple[str, str]]:
        return {(str(s), turn.action) for s, turn in zip(t.state_keys(), t.turns, strict=True)}

    return pairs(success) & pairs(failure)


def check_no_stalling_pay(name: str, advantages: torch.Tensor, trajs: list[Trajectory]) -> None:
    """Success (row 0) vs every failure: higher mean, and on every shared (state, action)."""
    success = trajs[0]
    mine = turn_values(advantages, 0, success)
    keys = [str(s) for s in success.state_keys()]
    for row, failure in enumerate(trajs[1:], start=1):
        theirs = turn_values(advantages, row, failure)
        assert sum(mine) / len(mine) > sum(theirs) / len(theirs), (
            f"{name}: the {len(failure.turns)}-turn failure's mean advantage "
            f"{sum(theirs) / len(theirs):.3f} beats the {len(mine)}-turn success's "
            f"{sum(mine) / len(mine):.3f}: this default pays for stalling"
        )
        failure_keys = [str(s) for s in failure.state_keys()]
        for state, action in shared_pairs(success, failure):
            best_failure = max(
                a
                for a, s, t in zip(theirs, failure_keys, failure.turns, strict=True)
                if (s, t.action) == (state, action)
            )
            worst_success = min(
                a
                for a, s, t in zip(mine, keys, success.turns, strict=True)
                if (s, t.action) == (state, action)
            )
            assert worst_success >= best_failure - 1e-6, (
                f"{name}: {action!r} in a state both took gets {worst_success:.3f} in the "
                f"success but {best_failure:.3f} in the failure"
            )


@pytest.mark.parametrize("reward_mode", ["sparse", "dense"])
@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_short_success_beats_long_failure_that_shares_its_actions(
    reward_mode: str, failure: str
) -> None:
    trajs = [episode(SUCCESS, reward_mode), episode(FAILURES[failure], reward_mode)]
    assert trajs[0].success and not trajs[1].success
    assert len(trajs[1].turns) >= len(trajs[0].turns) + 10  # the regime SPA's bonus inverted
    assert shared_pairs(*trajs), "the scripts must share (state, action) pairs"
    for name, method in default_methods().items():
        check_no_stalling_pay(name, advantages_of(method, trajs), trajs)


def test_mixed_group_of_one_success_and_three_long_failures() -> None:
    trajs = [episode(SUCCESS, "dense")] + [episode(m, "dense") for m in FAILURES.values()]
    for name, method in default_methods().items():
        check_no_stalling_pay(name, advantages_of(method, trajs), trajs)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), reward_mode=st.sampled_from(["sparse", "dense"]))
def test_random_failing_walks_never_outscore_the_success(seed: int, reward_mode: str) -> None:
    rng = random.Random(seed)
    moves = [rng.choice(["toward", "away", "wait"]) for _ in range(LIMIT)]
    failure = episode(moves, reward_mode)
    if failure.success:  # a lucky walk that reached the exit is not a failure
        return
    trajs = [episode(SUCCESS, reward_mode), failure]
    for name, method in default_methods().items():
        check_no_stalling_pay(name, advantages_of(method, trajs), trajs)


def test_spa_paper_bonus_is_the_living_reward_the_default_removes() -> None:
    """The attack, written down: the paper's +0.1 per valid turn, summed to go, ranks a
    24-turn timeout above an 8-turn win (the numbers the issue measured)."""
    trajs = [episode(SUCCESS, "sparse"), episode(FAILURES["bounce"], "sparse")]
    batch = TurnBatch.from_trajectories(trajs)
    # contributions: the success's progress deltas (1/8 each) sum to 1; the bounce's to 0.
    # bonus: 0.8 vs 2.4 summed to go from turn 0 -> G_0 = 1.8 vs 2.4; batch mean 2.1
    paper = spa(batch, grounding="bonus")
    torch.testing.assert_close(paper[:, 0], torch.tensor([-0.3, 0.3]))
    # the default penalises only invalid turns (none here): G_0 = 1 vs 0 -> +-0.5
    torch.testing.assert_close(spa(batch)[:, 0], torch.tensor([0.5, -0.5]))


@pytest.mark.parametrize("reward_mode", ["sparse", "dense"])
def test_every_lab_method_but_the_paper_bonus_never_pays_for_stalling(reward_mode: str) -> None:
    from turngym.lab import BUILTIN, resolve_method

    trajs = [episode(SUCCESS, reward_mode)] + [episode(m, reward_mode) for m in FAILURES.values()]
    for name in BUILTIN:
        advantages = advantages_of(resolve_method(name), trajs)
        if name == "spa_bonus":  # the control that shows the attack: it must fail the property
            with pytest.raises(AssertionError, match="pays for stalling"):
                check_no_stalling_pay(name, advantages, trajs)
        else:
            check_no_stalling_pay(name, advantages, trajs)
