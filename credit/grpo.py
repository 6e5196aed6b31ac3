"""GRPO: group-relative advantages (Shao et al., 2024, "DeepSeekMath", arXiv:2402.03300).

For trajectory ``i`` of task group ``g`` with score ``R_i`` (its outcome by default),

    A_i = (R_i - mean_{j in g} R_j) / (std_{j in g} R_j + eps)     (normalize_std=True)
    A_i =  R_i - mean_{j in g} R_j                                   (normalize_std=False, Dr. GRPO)

and every turn of trajectory ``i`` takes ``A_i``. ``std`` is the unbiased (Bessel-corrected)
sample standard deviation, as in TRL and verl. 0 on padding.

Compared with
-------------
verl, ``compute_grpo_outcome_advantage`` (volcengine/verl, ``verl/trainer/ppo/core_algos.py``,
read at commit 012be9d9; ``norm_adv_by_std_in_grpo`` is ``normalize_std``, ``epsilon`` is
``eps = 1e-6`` in both): the same numbers on every group of >= 2 trajectories whose scores
differ. Two conventions differ, on purpose:

- *All-equal groups*: turngym returns exactly 0. verl computes ``(x - mean) / (std + eps)`` in
  float32, where ``x - mean`` is rounding noise and ``std`` is noise too, so an all-equal group
  gets small nonzero advantages (issue 15 measured up to 0.056 on random batches).
- *Groups of one*: turngym raises (a lone trajectory has no baseline; roll out with
  ``group_size >= 2``). verl uses mean 0 and std 1, i.e. the raw score as the advantage. No
  keyword reproduces that; use ``reinforce(..., baseline="none")`` for baseline-free credit.
"""

from __future__ import annotations

import torch

from ._ops import check_groups, group_normalize, masked, trajectory_scores
from .batch import TurnBatch

__all__ = ["grpo", "episode_advantages"]


def episode_advantages(
    batch: TurnBatch,
    rewards: torch.Tensor | None = None,
    *,
    score: str | None = None,
    normalize_std: bool = True,
    eps: float = 1e-6,
    per_step: bool = False,
) -> torch.Tensor:
    """The per-trajectory GRPO advantage ``A_i``, shape ``[n_traj]`` (shared by GiGPO and SALT).

    ``per_step``: each trajectory's score enters its group's pool once per turn, so longer
    trajectories weigh more in the group's mean and std (verl-agent's ``episode_norm_reward``,
    GiGPO's ``episode_pool="step"``).
    """
    check_groups(batch)
    scores = trajectory_scores(batch, rewards, score)
    num_groups = int(batch.group_ids.max()) + 1
    if not per_step:
        return group_normalize(scores, batch.group_ids, num_groups, normalize_std, eps)
    rows = torch.repeat_interleave(batch.lengths.to(batch.device))
    pooled = group_normalize(scores[rows], batch.group_ids[rows], num_groups, normalize_std, eps)
    first = torch.cumsum(batch.lengths, 0) - batch.lengths  # each trajectory's first step row
    return pooled[first.to(batch.device)]


def grpo(
    batch: TurnBatch,
    *,
    rewards: torch.Tensor | None = None,
    score: str | None = None,
    normalize_std: bool = True,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Group-relative advantages, broadcast to every turn of each trajectory.

    Args:
        batch: the trajectories.
        rewards: optional ``[n, T]`` per-turn rewards (e.g. from ``gated``); when given the
            score is their sum.
        score: ``"outcome"`` (default without ``rewards``) or ``"return"`` (sum of turn rewards).
        normalize_std: divide by the group's std (GRPO) or only subtract its mean (Dr. GRPO).
        eps: added to the std.

    Returns:
        ``[n_traj, max_turns]`` advantages, 0 on padding.

    Raises:
        ValueError: a group with one trajectory, or non-finite rewards.

    >>> from turngym import Trajectory, Turn
    >>> trajs = [Trajectory(turns=[Turn(action="a")] * n, group_id="g", outcome=o)
    ...          for n, o in [(2, 1.0), (1, 0.0)]]
    >>> grpo(TurnBatch.from_trajectories(trajs), eps=0.0)  # mean 0.5, std 0.7071
    tensor([[ 0.7071,  0.7071],
            [-0.7071,  0.0000]])
    """
    advantage = episode_advantages(
        batch, rewards, score=score, normalize_std=normalize_std, eps=eps
    )
    return masked(advantage[:, None], batch.mask)
