"""GAE at the turn level (Schulman et al., 2016, "High-Dimensional Continuous Control Using
Generalized Advantage Estimation", arXiv:1506.02438), one step = one turn:

    delta_t = r_t + gamma * V_{t+1} - V_t,      A_t = sum_{k >= t} (gamma * lam)^(k - t) delta_k,

with ``V_{T_i} = 0`` after a trajectory's last turn, unless ``values`` has ``max_turns + 1``
columns, whose entry at ``[i, T_i]`` is then the bootstrap value (for truncated episodes).
Without ``values`` (``V = 0``) this is the discounted sum of rewards with factor gamma * lam.
0 on padding. The learner adds ``V_t`` back to get value targets: ``returns = A + V``
(computed before any whitening).

Compared with
-------------
verl, ``compute_gae_advantage_return`` (volcengine/verl, ``verl/trainer/ppo/core_algos.py``,
read at commit 012be9d9): the same recursion, per token instead of per turn, and it *whitens*
the advantages inside the estimator, over every real token of the batch:
``(A - mean) * rsqrt(var + 1e-8)`` with the Bessel-corrected variance (``masked_whiten``).
turngym does not whiten by default (a learner may whiten, or not, itself);
``gae(..., whiten=True)`` reproduces verl's whitening over the real *turns* of the batch (equal to
verl's when each turn is one token; verl weighs a turn by its token count). Like verl, the
value after an episode's last step is 0 unless a bootstrap column is given.
"""

from __future__ import annotations

import torch

from turngym.error import InvalidArgumentError

from ._ops import check_finite, check_gamma, discounted_reverse_cumsum, masked, per_turn
from ._ops import whiten as _whiten
from .batch import TurnBatch

__all__ = ["gae"]


def gae(
    batch: TurnBatch,
    *,
    values: torch.Tensor | None = None,
    gamma: float = 1.0,
    lam: float = 0.95,
    rewards: torch.Tensor | None = None,
    whiten: bool = False,
) -> torch.Tensor:
    """Generalised advantage estimates per turn.

    Args:
        batch: the trajectories.
        values: ``[n, T]`` value of the state before each turn (from the learner's value head),
            or ``[n, T + 1]`` with the bootstrap value after the last turn; None means 0.
        gamma: discount per turn.
        lam: the GAE lambda.
        rewards: optional ``[n, T]`` per-turn rewards replacing ``batch.rewards``.
        whiten: standardise the advantages over the batch's real turns, as verl does
            (``(A - mean) / sqrt(var + 1e-8)``, unbiased variance).

    >>> from turngym import Trajectory, Turn
    >>> traj = Trajectory(turns=[Turn(reward=0.0), Turn(reward=1.0)])
    >>> values = torch.tensor([[0.5, 0.8]])
    >>> # delta = [0 + 0.8 - 0.5, 1 + 0 - 0.8] = [0.3, 0.2]; A = [0.3 + 0.5 * 0.2, 0.2]
    >>> gae(TurnBatch.from_trajectories([traj]), values=values, gamma=1.0, lam=0.5)
    tensor([[0.4000, 0.2000]])
    """
    gamma, lam = check_gamma("gamma", gamma), check_gamma("lam", lam)
    rewards = per_turn(batch, rewards, "rewards", batch.rewards)
    n, width = batch.mask.shape
    if values is None:
        values = torch.zeros(n, width + 1, dtype=rewards.dtype, device=batch.device)
    values = torch.as_tensor(values, device=batch.device).to(rewards.dtype)
    if values.shape not in ((n, width), (n, width + 1)):
        raise InvalidArgumentError(
            f"values has shape {tuple(values.shape)}; gae needs [n_traj, max_turns] = {(n, width)} "
            f"or [n_traj, max_turns + 1] = {(n, width + 1)} (the last column bootstraps)."
        )
    check_finite(batch, values[:, :width], "values")
    current = values[:, :width].masked_fill(~batch.mask, 0.0)
    # V_{t+1}: the next turn's value, or at t = T_i - 1 the bootstrap column (0 if none given).
    after = torch.zeros(n, width + 1, dtype=rewards.dtype, device=batch.device)
    after[:, :width] = current
    if values.shape[1] == width + 1:
        bootstrap = values.gather(1, batch.lengths[:, None]).squeeze(1)
        check_finite(batch, bootstrap, "values (bootstrap column)")
        after.scatter_(1, batch.lengths[:, None], bootstrap[:, None])
    delta = masked(rewards + gamma * after[:, 1:] - current, batch.mask)
    advantages = masked(discounted_reverse_cumsum(delta, gamma * lam), batch.mask)
    return _whiten(advantages, batch.mask) if whiten else advantages
