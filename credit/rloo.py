"""RLOO: REINFORCE with a leave-one-out baseline (Kool et al., 2019, "Buy 4 REINFORCE Samples,
Get a Baseline for Free!"; Ahmadian et al., 2024, "Back to Basics", arXiv:2402.14740).

For trajectory ``i`` in a group ``g`` of ``G`` trajectories with scores ``R``,

    A_i = R_i - (1 / (G - 1)) * sum_{j in g, j != i} R_j  =  G / (G - 1) * (R_i - mean_g R)

and every turn of trajectory ``i`` takes ``A_i``. 0 on padding.

Compared with
-------------
verl, ``compute_rloo_outcome_advantage`` (volcengine/verl, ``verl/trainer/ppo/core_algos.py``,
read at commit 012be9d9): the same ``G / (G - 1) * (R_i - mean)`` on groups of >= 2. A group of
one raises here; verl passes the raw score through as the advantage.
"""

from __future__ import annotations

import torch

from ._ops import check_groups, masked, segment_stats, trajectory_scores
from .batch import TurnBatch

__all__ = ["rloo"]


def rloo(
    batch: TurnBatch, *, rewards: torch.Tensor | None = None, score: str | None = None
) -> torch.Tensor:
    """Leave-one-out advantages, broadcast to every turn.

    Args:
        batch: the trajectories (every group needs >= 2).
        rewards: optional ``[n, T]`` per-turn rewards; when given the score is their sum.
        score: ``"outcome"`` (default without ``rewards``) or ``"return"``.

    >>> from turngym import Trajectory, Turn
    >>> trajs = [Trajectory(turns=[Turn(action="a")], group_id="g", outcome=o) for o in (1.0, 0.0, 0.5)]
    >>> rloo(TurnBatch.from_trajectories(trajs)).flatten().tolist()  # 1 - 0.25, 0 - 0.75, 0.5 - 0.5
    [0.75, -0.75, 0.0]
    """
    check_groups(batch)
    scores = trajectory_scores(batch, rewards, score)
    count, mean, _ = segment_stats(scores, batch.group_ids, int(batch.group_ids.max()) + 1)
    advantage = count / (count - 1) * (scores - mean)
    return masked(advantage[:, None], batch.mask)
