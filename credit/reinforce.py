"""REINFORCE with a baseline (Williams, 1992): per-turn reward-to-go minus a baseline,

    A_t = G_t - b,     G_t = sum_{k >= t} gamma^(k - t) r_k,

with ``b`` = 0 (``baseline="none"``), the mean episode return ``G_0`` over the batch
(``"batch"``) or over the trajectory's task group (``"group"``). 0 on padding.
"""

from __future__ import annotations

import torch

from turngym.error import InvalidArgumentError

from ._ops import masked, segment_stats
from .batch import TurnBatch
from .returns import returns

__all__ = ["reinforce"]

BASELINES = ("none", "batch", "group")


def reinforce(
    batch: TurnBatch,
    *,
    gamma: float = 1.0,
    baseline: str = "batch",
    rewards: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reward-to-go advantages with a constant baseline.

    Args:
        batch: the trajectories.
        gamma: discount per turn.
        baseline: ``"none"``, ``"batch"`` or ``"group"`` (see the module docstring).
        rewards: optional ``[n, T]`` per-turn rewards replacing ``batch.rewards``.

    >>> from turngym import Trajectory, Turn
    >>> trajs = [Trajectory(turns=[Turn(reward=0.0), Turn(reward=1.0)]), Trajectory(turns=[Turn(reward=0.0)])]
    >>> reinforce(TurnBatch.from_trajectories(trajs)).tolist()  # G = [[1, 1], [0]], b = 0.5
    [[0.5, 0.5], [-0.5, 0.0]]
    """
    if baseline not in BASELINES:
        raise InvalidArgumentError(
            f"baseline={baseline!r} is not valid; use one of {list(BASELINES)}."
        )
    reward_to_go = returns(batch, gamma=gamma, rewards=rewards)
    episode_return = reward_to_go[:, 0]
    if baseline == "none":
        return reward_to_go
    if baseline == "batch":
        offset = episode_return.mean().expand_as(episode_return)
    else:
        _, offset, _ = segment_stats(
            episode_return, batch.group_ids, int(batch.group_ids.max()) + 1
        )
    return masked(reward_to_go - offset[:, None], batch.mask)
