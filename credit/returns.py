"""Discounted turn-level returns (reward-to-go), the building block of REINFORCE and GAE.

    G_t = sum_{k = t}^{T_i - 1} gamma^(k - t) r_k

over the turns of each trajectory (Sutton & Barto, 2018, eq. 3.8). 0 on padding. Computed as one
matrix product with the upper-triangular matrix of powers of gamma, so it is vectorised over turns.

Compared with
-------------
verl's token-level loops (``compute_reinforce_plus_plus_outcome_advantage``,
``compute_step_discounted_returns`` in verl-agent's ``gigpo/core_gigpo.py``) compute the same
discounted sums; the returns here are per turn and never whitened.
"""

from __future__ import annotations

import torch

from ._ops import check_gamma, discounted_reverse_cumsum, masked, per_turn
from .batch import TurnBatch

__all__ = ["returns"]


def returns(
    batch: TurnBatch, *, gamma: float = 1.0, rewards: torch.Tensor | None = None
) -> torch.Tensor:
    """Discounted reward-to-go of every turn.

    Args:
        batch: the trajectories.
        gamma: discount per turn, in [0, 1].
        rewards: optional ``[n, T]`` per-turn rewards replacing ``batch.rewards``.

    >>> from turngym import Trajectory, Turn
    >>> traj = Trajectory(turns=[Turn(reward=r) for r in (1.0, 0.0, 2.0)])
    >>> returns(TurnBatch.from_trajectories([traj]), gamma=0.5).tolist()  # 1 + 0.25 * 2, 0.5 * 2, 2
    [[1.5, 1.0, 2.0]]
    """
    gamma = check_gamma("gamma", gamma)
    rewards = per_turn(batch, rewards, "rewards", batch.rewards)
    return masked(discounted_reverse_cumsum(rewards, gamma), batch.mask)
