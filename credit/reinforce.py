"""REINFORCE with a baseline (Williams, 1992): per-turn reward-to-go minus a baseline,

    A_t = G_t - b,     G_t = sum_{k >= t} gamma^(k - t) r_k,

with ``b`` = 0 (``baseline="none"``), the mean episode return ``G_0`` over the batch
(``"batch"``) or over the trajectory's task group (``"group"``). 0 on padding.

Compared with
-------------
verl, ``compute_reinforce_plus_plus_outcome_advantage`` (volcengine/verl,
``verl/trainer/ppo/core_algos.py``, read at commit 012be9d9): the discounted reward-to-go, then
*whitened* over the batch (``masked_whiten``: ``(x - mean) * rsqrt(var + 1e-8)``, unbiased
variance), per token. turngym does not whiten by default; ``reinforce(batch, gamma=...,
baseline="none", whiten=True)`` reproduces it per turn (equal to verl's when each turn is one
token). verl's ``reinforce_plus_plus_baseline`` subtracts the group mean of the episode score
(a group of one keeps its raw score; here ``baseline="group"`` averages over whatever the group
holds) before whitening.
"""

from __future__ import annotations

import torch

from turngym.error import InvalidArgumentError

from ._ops import masked, segment_stats
from ._ops import whiten as _whiten
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
    whiten: bool = False,
) -> torch.Tensor:
    """Reward-to-go advantages with a constant baseline.

    Args:
        batch: the trajectories.
        gamma: discount per turn.
        baseline: ``"none"``, ``"batch"`` or ``"group"`` (see the module docstring).
        rewards: optional ``[n, T]`` per-turn rewards replacing ``batch.rewards``.
        whiten: standardise the result over the batch's real turns (verl's REINFORCE++).

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
        return _whiten(reward_to_go, batch.mask) if whiten else reward_to_go
    if baseline == "batch":
        offset = episode_return.mean().expand_as(episode_return)
    else:
        _, offset, _ = segment_stats(
            episode_return, batch.group_ids, int(batch.group_ids.max()) + 1
        )
    advantages = masked(reward_to_go - offset[:, None], batch.mask)
    return _whiten(advantages, batch.mask) if whiten else advantages
