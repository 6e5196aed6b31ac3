"""turngym.credit: every method against numbers computed by hand (in the comments).

Conventions used below: std is the unbiased sample std; ``eps=0`` so numbers are exact;
``0.7071 = 1/sqrt(2)`` is the GRPO advantage of outcomes {1, 0}.
"""

from __future__ import annotations

import pytest
import torch

from turngym import Trajectory, Turn
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
    spread_to_tokens,
)

R2 = 2**-0.5  # 0.7071


def traj(steps, group="g", outcome=None, **kwargs) -> Trajectory:
    """``steps``: (state_key, action, reward) triples."""
    turns = [Turn(action=a, reward=r, state_key=s) for s, a, r in steps]
    return Trajectory(turns=turns, group_id=group, outcome=outcome, **kwargs)


def close(actual: torch.Tensor, expected) -> None:
    torch.testing.assert_close(
        actual, torch.tensor(expected, dtype=actual.dtype), atol=1e-4, rtol=0
    )


# ---------------------------------------------------------------------------- TurnBatch
def test_turn_batch_fields() -> None:
    trajs = [
        Trajectory(
            turns=[
                Turn(
                    action=" Go  North",
                    reward=0.5,
                    reward_components={"progress": 0.5},
                    state_key="a",
                    token_ids=[1, 2, 3],
                    # the action in "a" led to "b": the state turn 1 acts on
                    info={"progress": 0.5, "state_key": "b"},
                ),
                Turn(
                    action="open",
                    reward=1.0,
                    reward_components={"outcome": 1.0},
                    info={"state_key": "c", "valid_action": False, "outcome": 1.0},
                ),
            ],
            group_id="g1",
        ),
        Trajectory(turns=[Turn(action="go north", state_key="a")], task_id="t", outcome=0.25),
        Trajectory(turns=[Turn(action="GO NORTH")], group_id="g1"),
    ]
    batch = TurnBatch.from_trajectories(trajs)
    assert batch.mask.tolist() == [[True, True], [True, False], [True, False]]
    assert batch.lengths.tolist() == [2, 1, 1]
    # outcome: None -> last turn's info["outcome"] (1.0); explicit 0.25; neither -> 0.0
    assert batch.outcome.tolist() == [1.0, 0.25, 0.0]
    # group: group_id, else task_id; dense in order of first appearance
    assert batch.group_ids.tolist() == [0, 1, 0]
    # state "a" twice; turn 1's pre-action "b" derived from turn 0's info (never its own "c");
    # the key-less turn gets a fresh state of its own
    assert batch.state_ids.tolist() == [[0, 1], [0, -1], [2, -1]]
    # three spellings of "go north" are one action
    assert batch.action_ids.tolist() == [[0, 1], [0, -1], [0, -1]]
    # prefix tree: rows 0 and 2 share group and... not the state, so different nodes; row 1 is in
    # another group, so its (a, go north) is a different node from row 0's
    assert (
        len(
            {
                batch.history_ids[0, 0].item(),
                batch.history_ids[1, 0].item(),
                batch.history_ids[2, 0].item(),
            }
        )
        == 3
    )
    assert batch.component_names == ("outcome", "progress")
    assert batch.components[0].tolist() == [[0.0, 0.5], [1.0, 0.0]]
    assert batch.valid.tolist() == [[True, False], [True, False], [True, False]]
    assert batch.progress[0].tolist() == [0.5, 0.0]
    assert batch.token_counts.tolist() == [[3, 0], [0, 0], [0, 0]]
    assert batch.rewards.tolist() == [[0.5, 1.0], [0.0, 0.0], [0.0, 0.0]]
    assert batch.to("cpu").rewards.equal(batch.rewards)


def test_history_ids_merge_identical_prefixes_only() -> None:
    batch = TurnBatch.from_trajectories(
        [
            traj([("s0", "a", 0), ("s1", "x", 0)]),
            traj([("s0", "a", 0), ("s1", "x", 0)]),
            traj([("s0", "b", 0), ("s1", "x", 0)]),
        ]
    )
    history = batch.history_ids.tolist()
    assert history[0] == history[1]
    assert history[2][0] != history[0][0] and history[2][1] != history[0][1]


def test_spread_to_tokens() -> None:
    turns = [Turn(token_ids=[1, 2]), Turn(token_ids=[3])]
    batch = TurnBatch.from_trajectories(
        [Trajectory(turns=turns), Trajectory(turns=[Turn(token_ids=[4, 5, 6])])]
    )
    advantages = torch.tensor([[1.0, -1.0], [2.0, 0.0]])
    values, mask = spread_to_tokens(advantages, batch)
    # row 0: two tokens of turn 0 (1.0) then one of turn 1 (-1.0); row 1: three tokens at 2.0
    assert values.tolist() == [[1.0, 1.0, -1.0], [2.0, 2.0, 2.0]]
    assert mask.all()


# ---------------------------------------------------------------------------- group baselines
def grpo_batch() -> TurnBatch:
    # group g: outcomes 1, 0, 0 (lengths 2, 1, 1); group h: 0.5, 0.5
    return TurnBatch.from_trajectories(
        [
            traj([("s", "a", 0), ("t", "b", 1)], outcome=1.0),
            traj([("s", "c", 0)], outcome=0.0),
            traj([("s", "c", 0)], outcome=0.0),
            traj([("s", "a", 0)], group="h", outcome=0.5),
            traj([("s", "a", 0)], group="h", outcome=0.5),
        ]
    )


def test_grpo() -> None:
    # g: mean 1/3, std = sqrt(((2/3)^2 + 2 (1/3)^2) / 2) = sqrt(1/3) = 0.57735
    #    A = (2/3) / 0.57735 = 1.1547, (-1/3) / 0.57735 = -0.57735; h: equal outcomes -> 0
    close(
        grpo(grpo_batch(), eps=0.0),
        [[1.1547, 1.1547], [-0.57735, 0], [-0.57735, 0], [0, 0], [0, 0]],
    )
    # without std: 1 - 1/3 = 2/3 and 0 - 1/3
    close(
        grpo(grpo_batch(), normalize_std=False),
        [[2 / 3, 2 / 3], [-1 / 3, 0], [-1 / 3, 0], [0, 0], [0, 0]],
    )
    # score "return": sums of turn rewards are 1, 0, 0 | 0, 0 -> the same numbers for g
    close(grpo(grpo_batch(), score="return", eps=0.0)[:3, 0], [1.1547, -0.57735, -0.57735])


def test_rloo() -> None:
    # g: 1 - (0 + 0)/2 = 1; 0 - (1 + 0)/2 = -0.5 (twice); h: 0.5 - 0.5 = 0
    close(rloo(grpo_batch()), [[1, 1], [-0.5, 0], [-0.5, 0], [0, 0], [0, 0]])


def test_returns_and_reinforce() -> None:
    batch = TurnBatch.from_trajectories(
        [
            traj([("s", "a", 1.0), ("s", "a", 0.0), ("s", "a", 2.0)]),
            traj([("s", "a", 0.5)]),
        ]
    )
    # gamma 0.9: G_2 = 2; G_1 = 0 + 0.9 * 2 = 1.8; G_0 = 1 + 0.9 * 1.8 = 2.62; row 1: 0.5
    close(returns(batch, gamma=0.9), [[2.62, 1.8, 2.0], [0.5, 0, 0]])
    # baseline = batch mean of G_0 = (2.62 + 0.5) / 2 = 1.56
    close(reinforce(batch, gamma=0.9), [[1.06, 0.24, 0.44], [-1.06, 0, 0]])
    close(reinforce(batch, gamma=0.9, baseline="none"), [[2.62, 1.8, 2.0], [0.5, 0, 0]])
    # both rows are group "g" here, so the group baseline is the same 1.56
    close(reinforce(batch, gamma=0.9, baseline="group"), [[1.06, 0.24, 0.44], [-1.06, 0, 0]])


def test_gae() -> None:
    batch = TurnBatch.from_trajectories(
        [
            traj([("s", "a", 0.0), ("s", "a", 0.0), ("s", "a", 1.0)]),
            traj([("s", "a", 1.0)]),
        ]
    )
    values = torch.tensor([[0.2, 0.4, 0.6], [0.5, 9.0, 9.0]])  # 9.0 is padding, ignored
    # gamma 0.9, lam 0.8 (gamma * lam = 0.72):
    # delta = [0 + 0.9*0.4 - 0.2, 0 + 0.9*0.6 - 0.4, 1 + 0 - 0.6] = [0.16, 0.14, 0.4]
    # A_2 = 0.4; A_1 = 0.14 + 0.72*0.4 = 0.428; A_0 = 0.16 + 0.72*0.428 = 0.46816
    # row 1: delta = 1 - 0.5 = 0.5
    close(gae(batch, values=values, gamma=0.9, lam=0.8), [[0.46816, 0.428, 0.4], [0.5, 0, 0]])
    # bootstrap column: V after the last turn = 0.5 (row 0), 1.0 (row 1, at its column 1)
    values_plus = torch.tensor([[0.2, 0.4, 0.6, 0.5], [0.5, 1.0, 9.0, 9.0]])
    # delta_2 = 1 + 0.9*0.5 - 0.6 = 0.85; A_1 = 0.14 + 0.72*0.85 = 0.752; A_0 = 0.16 + 0.72*0.752
    # row 1: delta = 1 + 0.9*1.0 - 0.5 = 1.4
    close(gae(batch, values=values_plus, gamma=0.9, lam=0.8), [[0.70144, 0.752, 0.85], [1.4, 0, 0]])
    # no values: discounted rewards with gamma*lam: [0.72^2, 0.72, 1]
    close(gae(batch, gamma=0.9, lam=0.8), [[0.5184, 0.72, 1.0], [1.0, 0, 0]])


# ---------------------------------------------------------------------------- GiGPO
def test_gigpo() -> None:
    batch = TurnBatch.from_trajectories(
        [
            traj([("s0", "a", 0.0), ("s1", "b", 1.0)], outcome=1.0),
            traj([("s0", "a", 0.0), ("s2", "c", 0.0)], outcome=0.0),
        ]
    )
    # episode: +-0.7071. gamma 0.5 step returns: row 0 [0 + 0.5*1, 1] = [0.5, 1]; row 1 [0, 0]
    # anchor s0 = {0.5, 0}: mean 0.25, std 0.35355 -> +-0.7071; s1, s2 are singletons -> 0
    expected = [[R2 + R2, R2], [-R2 - R2, -R2]]
    close(gigpo(batch, gamma=0.5, eps=0.0), expected)
    # step_weight 0.5: row 0 turn 0 = 0.7071 + 0.5 * 0.7071 = 1.0607
    close(gigpo(batch, gamma=0.5, step_weight=0.5, eps=0.0), [[1.5 * R2, R2], [-1.5 * R2, -R2]])


def test_gigpo_anchor_groups_respect_task_groups_and_repeats() -> None:
    batch = TurnBatch.from_trajectories(
        [
            # group g: state "s" visited twice by row 0 (returns 1, 1 with gamma 1) and once by row 1 (0)
            traj([("s", "a", 0.0), ("s", "a", 1.0)], outcome=1.0),
            traj([("s", "b", 0.0)], outcome=0.0),
            # group h uses the same state name but must not join g's anchor group
            traj([("s", "a", 5.0)], group="h", outcome=1.0),
            traj([("u", "a", 0.0)], group="h", outcome=1.0),
        ]
    )
    # g episode: +-0.7071. anchor (g, s) = {1, 1, 0}: mean 2/3, std sqrt((1/9+1/9+4/9)/2) = 0.57735
    # -> (1/3)/0.57735 = 0.57735, -(2/3)/0.57735 = -1.1547. h: equal outcomes, singleton anchors -> 0
    step = gigpo(batch, gamma=1.0, eps=0.0)
    close(step, [[R2 + 0.57735, R2 + 0.57735], [-R2 - 1.1547, 0], [0, 0], [0, 0]])


# ---------------------------------------------------------------------------- SALT
def test_salt_edge_merge() -> None:
    batch = TurnBatch.from_trajectories(
        [
            traj([("s0", "look", 0), ("s1", "open", 0)], outcome=1.0),
            traj([("s0", "look", 0), ("s1", "wait", 0)], outcome=0.0),
            traj([("s0", "go", 0), ("s2", "open", 0)], outcome=0.0),
        ]
    )
    # A = [1.1547, -0.57735, -0.57735]; edge (s0, look) is on rows 0, 1: (1.1547 - 0.57735)/2 = 0.288675
    # the other edges are on one row each and keep its advantage
    close(salt(batch, eps=0.0), [[0.288675, 1.1547], [0.288675, -0.57735], [-0.57735, -0.57735]])


def test_salt_prefix_variant_and_repeated_edges() -> None:
    reconverging = TurnBatch.from_trajectories(
        [
            traj([("s0", "a", 0), ("s1", "x", 0)], outcome=1.0),
            traj([("s0", "b", 0), ("s1", "x", 0)], outcome=0.0),
        ]
    )
    # edge merge: (s1, x) is shared by both -> (0.7071 - 0.7071)/2 = 0
    close(salt(reconverging, eps=0.0), [[R2, 0], [-R2, 0]])
    # prefix tree: the histories differ from turn 0, so nothing merges
    close(salt(reconverging, merge="prefix", eps=0.0), [[R2, R2], [-R2, -R2]])
    repeated = TurnBatch.from_trajectories(
        [
            traj([("s0", "a", 0), ("s0", "a", 0)], outcome=1.0),
            traj([("s0", "a", 0), ("s1", "b", 0)], outcome=0.0),
        ]
    )
    # row 0 traverses (s0, a) twice but counts once: (0.7071 - 0.7071) / 2 = 0 (not 0.2357)
    close(salt(repeated, eps=0.0), [[0, 0], [0, -R2]])


# ---------------------------------------------------------------------------- IGPO
def igpo_batch() -> TurnBatch:
    return TurnBatch.from_trajectories(
        [
            traj([("s", "a", 0)] * 3, outcome=1.0),
            traj([("s", "a", 0)] * 2, outcome=0.0),
        ]
    )


def test_igpo() -> None:
    probs = torch.tensor([[0.1, 0.2, 0.4, 0.8], [0.1, 0.1, 0.05, 0.0]])
    # IG (non-final turns): row 0 [0.1, 0.2], row 1 [0.0] -> pool {0.1, 0.2, 0}: mean 0.1, std 0.1
    #   -> [0, 1], [-1]. F1 pool {1, 0} -> +-0.7071 on the last turns.
    # gamma 0.5: row 0: A_2 = 0.7071, A_1 = 1 + 0.5*0.7071 = 1.35355, A_0 = 0 + 0.5*1.35355
    #            row 1: A_1 = -0.7071, A_0 = -1 - 0.35355
    close(
        igpo(igpo_batch(), gold_probs=probs, gamma=0.5, eps=0.0),
        [[0.676775, 1.35355, R2], [-1.35355, -R2, 0]],
    )
    # log variant: gains log 2, log 2 | log 1 = 0 -> pool {a, a, 0} -> z = [1/sqrt3, 1/sqrt3 | -2/sqrt3]
    # gamma 1: row 0 = [0.57735 + 0.57735 + 0.7071, 0.57735 + 0.7071, 0.7071]; row 1 = [-1.1547 - 0.7071, -0.7071]
    close(
        igpo(igpo_batch(), gold_probs=probs, log=True, eps=0.0),
        [[1.86181, 1.28446, R2], [-1.86181, -R2, 0]],
    )
    # the batch field works the same as the argument; f1 overrides the outcome (here swapped)
    from_field = igpo(igpo_batch().replace(gold_probs=probs), gamma=0.5, eps=0.0)
    close(from_field, [[0.676775, 1.35355, R2], [-1.35355, -R2, 0]])
    swapped = igpo(igpo_batch(), gold_probs=probs, f1=torch.tensor([0.0, 1.0]), gamma=0.0, eps=0.0)
    close(swapped, [[0, 1, -R2], [-1, R2, 0]])


# ---------------------------------------------------------------------------- SPA
def test_spa_progress_oracle_and_grounding() -> None:
    from turngym.credit import spa

    turns = [
        Turn(info={"progress": p, "valid_action": v})
        for p, v in [(0.25, True), (0.5, False), (1.0, True)]
    ]
    batch = TurnBatch.from_trajectories([Trajectory(turns=turns, outcome=1.0)])
    # c = progress deltas [0.25, 0.25, 0.5] (they reach the outcome 1.0: no remainder)
    # default: penalty 0.1 on the invalid turn -> r = [0.25, 0.15, 0.5]; returns [0.9, 0.65, 0.5]
    close(spa(batch, base="returns"), [[0.9, 0.65, 0.5]])
    # the paper's bonus 0.1 on valid turns -> r = [0.35, 0.25, 0.6]; returns [1.2, 0.85, 0.6]
    close(spa(batch, base="returns", grounding="bonus"), [[1.2, 0.85, 0.6]])
    close(spa(batch, base="returns", grounding_bonus=0.0, progress_weight=2.0), [[2.0, 1.5, 1.0]])
    # progress stopped at 0.25 of a failed episode: the remainder 0 - 0.25 lands on the last
    # turn, so c = [0.25, 0.0, -0.25] sums to the outcome
    stalled = [Turn(info={"progress": p}) for p in (0.25, 0.25, 0.25)]
    failed = TurnBatch.from_trajectories([Trajectory(turns=stalled, outcome=0.0)])
    close(spa(failed, base="returns"), [[0.0, -0.25, -0.25]])
    with pytest.raises(ValueError, match="grounding='living' is not valid"):
        spa(batch, grounding="living")


def test_spa_estimator_learns_contributions() -> None:
    from turngym.credit import ProgressEstimator, fit_progress_estimator, progress_loss, spa

    torch.manual_seed(0)
    # 6 two-turn episodes; the true contribution is c = h . w* with w* = [0.5, -0.25, 1.0],
    # the outcome is c_0 + c_1. A linear head can fit it exactly.
    features = torch.rand(6, 2, 3)
    true_weight = torch.tensor([0.5, -0.25, 1.0])
    outcomes = (features @ true_weight).sum(1)
    batch = TurnBatch.from_trajectories(
        [Trajectory(turns=[Turn(), Turn()], outcome=float(o)) for o in outcomes]
    )
    estimator = ProgressEstimator(3, bias=False)
    before = progress_loss(estimator, features, batch).item()
    losses = fit_progress_estimator(estimator, features, batch, steps=400, lr=0.05)
    assert losses[-1] < 1e-3 < before
    advantages = spa(
        batch, features=features, estimator=estimator, grounding_bonus=0.0, base="returns"
    )
    # reward-to-go of c at turn 0 is the whole episode's sum, i.e. the outcome
    torch.testing.assert_close(advantages[:, 0], outcomes, atol=0.05, rtol=0)


# ---------------------------------------------------------------------------- gated
def gated_batch() -> TurnBatch:
    def episode(progress, outcome, fmt=-0.1):
        turns = [
            Turn(
                reward=progress[0] + fmt, reward_components={"progress": progress[0], "format": fmt}
            ),
            Turn(
                reward=progress[1] + outcome,
                reward_components={"progress": progress[1], "outcome": outcome},
            ),
        ]
        return Trajectory(turns=turns, outcome=outcome)

    return TurnBatch.from_trajectories(
        [episode([0.3, 0.3], 1.0), episode([0.2, 0.2], 1.0), episode([0.3, 0.3], 0.0)]
    )


def test_gated_single_gate_and_chain() -> None:
    batch = gated_batch()
    # rewards: [0.2, 1.3], [0.1, 1.2], [0.2, 0.3]
    # single gate on outcome >= 1: rows 0, 1 keep everything, row 2 keeps only its outcome (0)
    close(gated(batch, threshold=1.0), [[0.2, 1.3], [0.1, 1.2], [0.0, 0.0]])
    # chain outcome >= 1 > progress >= 0.5 > rest (format):
    # row 0: progress 0.6 opens the second gate -> unchanged [0.2, 1.3]
    # row 1: progress 0.4 < 0.5 -> format -0.1 dropped: [0.2, 1.2]
    # row 2: outcome 0 -> nothing below it counts: [0, 0]
    chain = [("outcome", 1.0), ("progress", 0.5)]
    close(gated(batch, chain=chain), [[0.2, 1.3], [0.2, 1.2], [0.0, 0.0]])


def test_gated_agrees_with_the_wrapper_rule() -> None:
    from turngym.wrappers import gate_chain

    batch = gated_batch()
    chain = [("outcome", 1.0), (["progress"], 0.5)]
    sums = gated(batch, chain=chain).sum(1).tolist()
    for row, total in enumerate(sums):
        c = dict(zip(batch.component_names, batch.components[row].sum(0).tolist(), strict=False))
        expected, _ = gate_chain([(c["outcome"], 1.0), (c["progress"], 0.5)], rest=c["format"])
        assert total == pytest.approx(expected, abs=1e-6)


def test_gated_outcome_without_components() -> None:
    batch = TurnBatch.from_trajectories(
        [
            traj(
                [("s", "a", 0.5), ("s", "a", 1.0)], outcome=1.0
            ),  # the outcome is in the last reward
            traj([("s", "a", 0.5), ("s", "a", 0.0)], outcome=0.0),
        ]
    )
    # no "outcome" component: batch.outcome stands in on the last turn. Row 0 opens -> unchanged;
    # row 1 closes: only the outcome level (0) is paid
    close(gated(batch), [[0.5, 1.0], [0.0, 0.0]])
    # consumed by an estimator: returns 1.5 vs 0 -> +-0.7071
    close(grpo(batch, rewards=gated(batch), eps=0.0), [[R2, R2], [-R2, -R2]])
