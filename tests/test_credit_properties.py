"""Property tests (hypothesis) of turngym.credit: invariances every estimator must respect."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from turngym import Trajectory, Turn
from turngym.credit import TurnBatch, gae, gated, gigpo, grpo, igpo, reinforce, rloo, salt, spa
from turngym.wrappers import gate_chain

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ACTIONS = ["go north", "go south", "take key", "open door"]


def random_trajectories(
    seed: int, groups: int = 3, group_size: int = 4, turns: int = 5
) -> list[Trajectory]:
    """Groups of random walks over 4 states: states and edges repeat, outcomes in {0, 0.5, 1}."""
    rng = random.Random(seed)
    trajectories = []
    for g in range(groups):
        for k in range(group_size):
            length = rng.randint(1, turns)
            outcome = rng.choice([0.0, 0.5, 1.0])
            steps = []
            for t in range(length):
                components = {
                    "progress": rng.choice([0.0, 0.1, 0.25]),
                    "format": rng.choice([0.0, -0.1]),
                }
                if t == length - 1:
                    components["outcome"] = outcome
                steps.append(
                    Turn(
                        action=rng.choice(ACTIONS),
                        reward=sum(components.values()),
                        reward_components=components,
                        state_key=f"s{rng.randrange(4)}",
                        info={"valid_action": rng.random() < 0.8, "progress": rng.random()},
                    )
                )
            trajectories.append(
                Trajectory(turns=steps, group_id=f"g{g}", outcome=outcome, traj_id=f"{g}-{k}")
            )
    return trajectories


def all_methods(batch: TurnBatch) -> dict:
    """Every method, with the per-row extra inputs (values, p_t) derived from the rows' content
    so that permuting trajectories permutes those inputs too."""
    values = (batch.rewards * 0.5 + batch.progress).clone()
    probs = torch.nn.functional.pad(batch.progress, (1, 0), value=0.5)
    return {
        "grpo": lambda b: grpo(b),
        "grpo_nostd": lambda b: grpo(b, normalize_std=False),
        "rloo": lambda b: rloo(b),
        "reinforce": lambda b: reinforce(b, gamma=0.9, baseline="group"),
        "gae": lambda b: gae(b, values=values.to(b.device), gamma=0.9, lam=0.9),
        "gigpo": lambda b: gigpo(b),
        "salt": lambda b: salt(b),
        "salt_prefix": lambda b: salt(b, merge="prefix"),
        "igpo": lambda b: igpo(b, gold_probs=probs.to(b.device)),
        "igpo_log": lambda b: igpo(b, gold_probs=probs.to(b.device), log=True, gamma=0.9),
        "spa": lambda b: spa(b, base="gigpo"),
        "gated": lambda b: gated(b, chain=[("outcome", 1.0), ("progress", 0.2)]),
        # the keywords that reproduce the peers' code (tests/test_credit_peers.py)
        "gigpo_verl_agent": lambda b: gigpo(b, episode_pool="step", normalize_std=False),
        "gae_whiten": lambda b: gae(b, values=values.to(b.device), gamma=0.9, lam=0.9, whiten=True),
        "reinforce_whiten": lambda b: reinforce(b, gamma=0.9, baseline="none", whiten=True),
        "igpo_code": lambda b: igpo(
            b, gold_probs=probs.to(b.device), pool="joint", std="population", drop_zero_gain=True
        ),
        "spa_rl": lambda b: spa(
            b,
            contributions="leave_one_out",
            grounding="bonus",
            grounding_bonus=0.5,
            last_turn_grounded=True,
            base="rloo",
        ),
    }


def permuted(trajectories: list[Trajectory], seed: int) -> tuple[list[Trajectory], list[int]]:
    order = list(range(len(trajectories)))
    random.Random(seed).shuffle(order)
    return [trajectories[i] for i in order], order


@SETTINGS
@given(seed=st.integers(0, 10**6), shuffle=st.integers(0, 10**6))
def test_permuting_trajectories_permutes_advantages(seed: int, shuffle: int) -> None:
    trajectories = random_trajectories(seed)
    batch = TurnBatch.from_trajectories(trajectories)
    shuffled, order = permuted(trajectories, shuffle)
    shuffled_batch = TurnBatch.from_trajectories(shuffled)
    original, moved = all_methods(batch), all_methods(shuffled_batch)
    for name in original:
        expected = original[name](batch)[order]
        torch.testing.assert_close(
            moved[name](shuffled_batch), expected, atol=1e-5, rtol=1e-5, msg=name
        )


@SETTINGS
@given(seed=st.integers(0, 10**6), group_size=st.integers(2, 5))
def test_identical_trajectories_get_zero_advantage(seed: int, group_size: int) -> None:
    one = random_trajectories(seed, groups=1, group_size=1)[0]
    # GiGPO compares visits of a state *within* a trajectory too, which is real signal even
    # among identical copies; make states unique along the trajectory to test the group part.
    for t, turn in enumerate(one.turns):
        turn.state_key = f"{turn.state_key}@{t}"
    batch = TurnBatch.from_trajectories([one] * group_size)
    probs = torch.nn.functional.pad(batch.progress, (1, 0), value=0.5)
    for name, advantages in {
        "grpo": grpo(batch),
        "rloo": rloo(batch),
        "gigpo": gigpo(batch),
        "salt": salt(batch),
        "salt_prefix": salt(batch, merge="prefix"),
        # reward-to-go minus the group's mean return: 0 on the first turn of identical copies
        "reinforce": reinforce(batch, baseline="group")[:, :1],
    }.items():
        torch.testing.assert_close(
            advantages, torch.zeros_like(advantages), atol=1e-5, rtol=0, msg=name
        )
    # IGPO pools the information gains of *all* turns of a group, so turns that gained more than
    # the group's average keep a nonzero advantage even among identical copies (the paper's
    # rule); the copies still get identical rows, and the F1 pool alone gives 0.
    advantages = igpo(batch, gold_probs=probs)
    torch.testing.assert_close(advantages, advantages[:1].expand_as(advantages), atol=1e-6, rtol=0)
    f1_only = igpo(batch, gold_probs=torch.zeros_like(probs), gamma=0.0)
    torch.testing.assert_close(f1_only, torch.zeros_like(f1_only), atol=1e-6, rtol=0)


@SETTINGS
@given(seed=st.integers(0, 10**6))
def test_salt_shared_turn_is_zero_and_unique_decisive_turn_keeps_its_sign(seed: int) -> None:
    rng = random.Random(seed)
    trajectories = random_trajectories(seed, groups=2, group_size=4)
    for trajectory in trajectories:
        # every trajectory of every group starts with the same (state, action) turn
        trajectory.turns.insert(0, Turn(action="look", state_key="start"))
    decisive = rng.randrange(len(trajectories))
    trajectories[decisive].turns.append(Turn(action="pull lever", state_key="secret-room"))
    batch = TurnBatch.from_trajectories(trajectories)
    for merge in ("edge", "prefix"):
        advantages = salt(batch, merge=merge)
        torch.testing.assert_close(
            advantages[:, 0], torch.zeros(len(trajectories)), atol=1e-5, rtol=0
        )
        group = batch.group_ids == batch.group_ids[decisive]
        margin = float(batch.outcome[decisive] - batch.outcome[group].mean())
        last = int(batch.lengths[decisive]) - 1
        if abs(margin) > 1e-6:
            assert torch.sign(advantages[decisive, last]).item() == pytest.approx(
                margin / abs(margin)
            )
        torch.testing.assert_close(
            advantages[decisive, last], grpo(batch)[decisive, 0], atol=1e-6, rtol=0
        )


@SETTINGS
@given(seed=st.integers(0, 10**6), gamma=st.floats(0.0, 1.0))
def test_gigpo_without_repeated_states_equals_grpo(seed: int, gamma: float) -> None:
    trajectories = random_trajectories(seed)
    for i, trajectory in enumerate(trajectories):
        for t, turn in enumerate(trajectory.turns):
            turn.state_key = f"unique-{i}-{t}"
    batch = TurnBatch.from_trajectories(trajectories)
    torch.testing.assert_close(gigpo(batch, gamma=gamma), grpo(batch), atol=1e-6, rtol=0)


@SETTINGS
@given(seed=st.integers(0, 10**6), threshold=st.sampled_from([0.0, 0.5]))
def test_gated_with_every_gate_open_equals_the_ungated_rewards(seed: int, threshold: float) -> None:
    trajectories = [t for t in random_trajectories(seed) if t.outcome >= threshold]
    if not trajectories:
        return
    batch = TurnBatch.from_trajectories(trajectories)
    torch.testing.assert_close(gated(batch, threshold=threshold), batch.rewards, atol=1e-6, rtol=0)
    torch.testing.assert_close(
        gated(batch, threshold=threshold).sum(1), batch.rewards.sum(1), atol=1e-5, rtol=0
    )


@SETTINGS
@given(
    seed=st.integers(0, 10**6),
    deltas=st.tuples(st.sampled_from([0.0, 0.5, 1.0]), st.sampled_from([0.0, 0.2, 0.6])),
)
def test_gated_sums_agree_with_the_wrapper_gate_chain(
    seed: int, deltas: tuple[float, float]
) -> None:
    batch = TurnBatch.from_trajectories(random_trajectories(seed))
    chain = [("outcome", deltas[0]), ("progress", deltas[1])]
    totals = gated(batch, chain=chain).sum(1)
    for row in range(batch.num_trajectories):
        sums = dict(zip(batch.component_names, batch.components[row].sum(0).tolist(), strict=False))
        expected, _ = gate_chain(
            [(sums["outcome"], deltas[0]), (sums["progress"], deltas[1])], rest=sums["format"]
        )
        assert totals[row].item() == pytest.approx(expected, abs=1e-5)


@SETTINGS
@given(seed=st.integers(0, 10**6))
def test_group_advantages_are_centred(seed: int) -> None:
    batch = TurnBatch.from_trajectories(random_trajectories(seed))
    for advantages in (grpo(batch)[:, 0], rloo(batch)[:, 0]):
        per_group = torch.zeros(3).index_add_(0, batch.group_ids, advantages)
        torch.testing.assert_close(per_group, torch.zeros(3), atol=1e-5, rtol=0)
    for method in all_methods(batch).values():
        out = method(batch)
        assert torch.isfinite(out).all() and (out[~batch.mask] == 0).all()
