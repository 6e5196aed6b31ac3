"""Hand-computed signs and magnitudes of every lab method (turngym.lab.methods) on three
situations the lab's results turn on: a better action in a repeated state, shared steps of a
winner and a loser, and a gate that passes or fails. Expected numbers are worked out in the
comments (eps = 1e-6 moves them by < 1e-5; std is the unbiased sample std).
"""

from __future__ import annotations

import pytest
import torch

from turngym import Trajectory, Turn
from turngym.credit import TurnBatch, gated, grpo, reinforce
from turngym.lab import resolve_method

R2 = 0.7071068  # 1 / sqrt(2): GRPO's advantage in a group with outcomes {1, 0}


def episode(steps, outcome, components=None):
    """steps: (state, action, reward); a group "g"; every action valid."""
    turns = [
        Turn(action=a, reward=r, state_key=s, reward_components=(components or [{}] * 9)[t])
        for t, (s, a, r) in enumerate(steps)
    ]
    return Trajectory(turns=turns, group_id="g", outcome=outcome)


def advantages(method: str, trajs) -> list[list[float]]:
    values = resolve_method(method)(TurnBatch.from_trajectories(trajs))
    return [values[i, : len(t.turns)].tolist() for i, t in enumerate(trajs)]


def close(actual, expected) -> None:
    for row, want in zip(actual, expected, strict=True):
        assert row == pytest.approx(want, abs=1e-4), (actual, expected)


# ------------------------------------------------------- a better action in a repeated state
# W waits in s0 then goes (reward 1): [(s0, wait, 0), (s0, go, 1)], outcome 1.
# L waits twice in s0:                 [(s0, wait, 0), (s0, wait, 0)], outcome 0.
REPEATED = [
    episode([("s0", "wait", 0.0), ("s0", "go", 1.0)], 1.0),
    episode([("s0", "wait", 0.0), ("s0", "wait", 0.0)], 0.0),
]
REPEATED_EXPECTED = {
    # outcomes {1, 0}: mean 0.5, std 0.7071 -> +-0.7071 on every turn
    "grpo": [[R2, R2], [-R2, -R2]],
    # G / (G - 1) * (R - mean) = 2 * +-0.5
    "rloo": [[1.0, 1.0], [-1.0, -1.0]],
    # A^E = +-0.7071. Step returns (gamma 0.95): W [0.95, 1], L [0, 0], one anchor (g, s0):
    # mean 0.4875, std sqrt((0.4625^2 + 0.5125^2 + 2 * 0.4875^2) / 3) = 0.563286, so
    # A^S = [0.82107, 0.90984, -0.86546, -0.86546]: go beats wait *inside* the winner.
    "gigpo": [[1.52818, 1.61695], [-1.57256, -1.57256]],
    # gamma 1: step returns W [1, 1], L [0, 0] -> A^S = +-0.86603 (std sqrt(1/3)): the
    # winner's wait and go are now equal; only the discount told them apart.
    "gigpo_gamma1": [[1.57313, 1.57313], [-1.57313, -1.57313]],
    # without std: A^E = +-0.5, A^S = G - 0.4875
    "gigpo_nostd": [[0.9625, 1.0125], [-0.9875, -0.9875]],
    # edges: (s0, wait) is taken by both -> mean(+0.7071, -0.7071) = 0 (L's two waits count
    # once); (s0, go) only by W -> +0.7071
    "salt": [[0.0, R2], [0.0, 0.0]],
    # no progress reported: c = the outcome on the last turn, all valid (no penalty);
    # reward-to-go W [1, 1], L [0, 0], minus the batch mean of G_0 = 0.5
    "spa": [[0.5, 0.5], [-0.5, -0.5]],
    # the paper's bonus: +0.1 per turn -> G = W [1.2, 1.1], L [0.2, 0.1]; mean G_0 = 0.7
    "spa_bonus": [[0.5, 0.4], [-0.5, -0.6]],
    # reward-to-go with gamma 0.95 and no baseline: W [0.95, 1], L [0, 0]
    "discounted": [[0.95, 1.0], [0.0, 0.0]],
    # reward-to-go (gamma 1) minus the batch mean 0.5
    "reinforce": [[0.5, 0.5], [-0.5, -0.5]],
    # no "outcome" component recorded: batch.outcome stands in on the last turn; gate open
    # for W (1 >= 1), shut for L -> the same as grpo on the return
    "gated": [[R2, R2], [-R2, -R2]],
}


@pytest.mark.parametrize("method", sorted(REPEATED_EXPECTED))
def test_better_action_in_a_repeated_state(method: str) -> None:
    close(advantages(method, REPEATED), REPEATED_EXPECTED[method])


# ------------------------------------------------------- shared steps of a winner and a loser
# both look in s0; in s1 W opens (reward 1), L waits.
SHARED = [
    episode([("s0", "look", 0.0), ("s1", "open", 1.0)], 1.0),
    episode([("s0", "look", 0.0), ("s1", "wait", 0.0)], 0.0),
]
SHARED_EXPECTED = {
    "grpo": [[R2, R2], [-R2, -R2]],
    "rloo": [[1.0, 1.0], [-1.0, -1.0]],
    # anchors (g, s0): G [0.95, 0] and (g, s1): G [1, 0]; two values normalise to +-0.7071
    "gigpo": [[2 * R2, 2 * R2], [-2 * R2, -2 * R2]],
    "gigpo_gamma1": [[2 * R2, 2 * R2], [-2 * R2, -2 * R2]],
    # A^E +-0.5; A^S = G - mean: s0 +-0.475, s1 +-0.5
    "gigpo_nostd": [[0.975, 1.0], [-0.975, -1.0]],
    # the shared look averages to 0; the decisive step keeps its sign
    "salt": [[0.0, R2], [0.0, -R2]],
    "spa": [[0.5, 0.5], [-0.5, -0.5]],
    "spa_bonus": [[0.5, 0.4], [-0.5, -0.6]],
    "discounted": [[0.95, 1.0], [0.0, 0.0]],
    "reinforce": [[0.5, 0.5], [-0.5, -0.5]],
    "gated": [[R2, R2], [-R2, -R2]],
}


@pytest.mark.parametrize("method", sorted(SHARED_EXPECTED))
def test_shared_steps_of_winner_and_loser(method: str) -> None:
    close(advantages(method, SHARED), SHARED_EXPECTED[method])


# ------------------------------------------------------- gated passes / fails
def test_gate_pays_the_winners_progress_and_withholds_the_losers() -> None:
    progress, outcome = {"progress": 0.5}, {"outcome": 1.0}
    winner = episode([("s0", "a", 0.5), ("s1", "b", 1.0)], 1.0, [progress, outcome])
    loser = episode([("s0", "a", 0.5), ("s1", "c", 0.0)], 0.0, [progress, {"outcome": 0.0}])
    batch = TurnBatch.from_trajectories([winner, loser])
    # threshold 1: the winner passes (1 >= 1) and keeps [0.5, 1]; the loser fails -> [0, 0]
    assert gated(batch).tolist() == [[0.5, 1.0], [0.0, 0.0]]
    # threshold 0: both pass, every reward kept
    assert gated(batch, threshold=0.0).tolist() == [[0.5, 1.0], [0.5, 0.0]]
    # reinforce (batch baseline) on gated rewards: G W [1.5, 1], L [0, 0]; mean G_0 0.75
    close(reinforce(batch, rewards=gated(batch)).tolist(), [[0.75, 0.25], [-0.75, -0.75]])
    # ... and on raw rewards the loser's progress is paid: G W [1.5, 1], L [0.5, 0]; mean 1
    close(reinforce(batch).tolist(), [[0.5, 0.0], [-0.5, -1.0]])
    # grpo scores the gated returns 1.5 vs 0 -> +-0.7071 (std normalisation hides the size)
    close(grpo(batch, rewards=gated(batch)).tolist(), [[R2, R2], [-R2, -R2]])
    torch.testing.assert_close(
        advantages("gated", [winner, loser]), [[R2, R2], [-R2, -R2]], atol=1e-4, rtol=0
    )


# ------------------------------------------------------- an anchor group where everyone succeeds
def test_std_normalisation_blows_up_a_small_gap_among_winners() -> None:
    """GiGPO's normalize_std (the lab's finding): W1 goes at once, W2 waits first; both win.
    Outcomes {1, 1}: A^E = 0 (grpo, rloo, salt give 0 on every turn). Step returns in the one
    anchor (g, s0): W1 [1], W2 [0.95, 1]; mean 0.98333, std sqrt((2 * 0.016667^2 + 0.033333^2)
    / 2) = 0.028868, so the 0.05 gap of one discount step becomes a unit-size advantage:
    A^S = [0.57735], [-1.15470, 0.57735]. Without std it stays small: G - mean."""
    trajs = [
        episode([("s0", "go", 1.0)], 1.0),
        episode([("s0", "wait", 0.0), ("s0", "go", 1.0)], 1.0),
    ]
    close(advantages("gigpo", trajs), [[0.57735], [-1.15470, 0.57735]])
    close(advantages("gigpo_nostd", trajs), [[0.016667], [-0.033333, 0.016667]])
    close(advantages("gigpo_gamma1", trajs), [[0.0], [0.0, 0.0]])  # returns all 1: no gap
    for method in ("grpo", "rloo", "salt"):
        close(advantages(method, trajs), [[0.0], [0.0, 0.0]])
