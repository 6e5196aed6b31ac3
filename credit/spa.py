"""SPA: stepwise progress attribution (Wang et al., 2025, "SPA-RL: Reinforcing LLM Agents via
Stepwise Progress Attribution", arXiv:2505.20732).

A progress estimator predicts each turn's contribution ``c_t`` to the episode's outcome from a
feature vector of the turn (e.g. the policy LM's last hidden state at the end of the turn). It is
trained so the contributions of an episode add up to its outcome,

    L = mean_i (sum_t c_{i,t} - outcome_i)^2,

and the turn reward fuses progress with grounding (the action parsed and executed),

    r_t = progress_weight * c_t + grounding_bonus * 1[valid_t],

which any estimator then turns into advantages (``base="reinforce"`` by default, as the paper
feeds these step rewards to a policy-gradient learner; ``"gae"``, ``"gigpo"``, ... also work).
Without an estimator or explicit contributions, ``c_t`` falls back to the env's own progress
deltas ``progress_t - progress_{t-1}`` (``info["progress"]``, 0 before the first turn): SPA with
a ground-truth progress oracle, for envs that know their progress.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from turngym.error import InvalidArgumentError

from ._ops import check_finite, masked, per_turn
from .batch import TurnBatch

__all__ = [
    "ProgressEstimator",
    "fit_progress_estimator",
    "progress_loss",
    "progress_train_step",
    "spa",
]

BASES = ("grpo", "rloo", "reinforce", "returns", "gae", "gigpo", "salt")


class ProgressEstimator(nn.Module):
    """A linear head ``c_t = w . h_t + b`` over per-turn features ``h_t`` ``[n, T, D]``."""

    def __init__(self, feature_dim: int, bias: bool = True) -> None:
        super().__init__()
        if feature_dim < 1:
            raise InvalidArgumentError(f"feature_dim={feature_dim} must be >= 1 (the size of h_t).")
        self.head = nn.Linear(feature_dim, 1, bias=bias)

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Per-turn contributions ``[n, T]`` (0 where ``mask`` is False)."""
        contributions = self.head(features).squeeze(-1)
        return contributions if mask is None else contributions * mask


def _features(batch: TurnBatch, features: torch.Tensor) -> torch.Tensor:
    features = torch.as_tensor(features, device=batch.device)
    if features.dim() != 3 or tuple(features.shape[:2]) != tuple(batch.mask.shape):
        raise InvalidArgumentError(
            f"features has shape {tuple(features.shape)}; SPA needs [n_traj, max_turns, D] with "
            f"[n_traj, max_turns] = {tuple(batch.mask.shape)} (one vector per turn)."
        )
    check_finite(batch, features.sum(-1), "features")
    return features.masked_fill(~batch.mask[..., None], 0.0)


def progress_loss(
    estimator: ProgressEstimator, features: torch.Tensor, batch: TurnBatch
) -> torch.Tensor:
    """``mean_i (sum_t c_{i,t} - outcome_i)^2``, differentiable in the estimator's parameters."""
    contributions = estimator(
        _features(batch, features).to(estimator.head.weight.dtype), batch.mask
    )
    return nn.functional.mse_loss(contributions.sum(1), batch.outcome.to(contributions.dtype))


def progress_train_step(
    estimator: ProgressEstimator,
    optimizer: torch.optim.Optimizer,
    features: torch.Tensor,
    batch: TurnBatch,
) -> float:
    """One optimiser step on :func:`progress_loss`; returns the loss before the step."""
    optimizer.zero_grad()
    loss = progress_loss(estimator, features, batch)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def fit_progress_estimator(
    estimator: ProgressEstimator,
    features: torch.Tensor,
    batch: TurnBatch,
    *,
    steps: int = 200,
    lr: float = 0.05,
) -> list[float]:
    """Trains the estimator with Adam for ``steps`` full-batch steps; returns the losses.

    >>> torch.manual_seed(0) and None
    >>> from turngym import Trajectory, Turn
    >>> trajs = [Trajectory(turns=[Turn(), Turn()], outcome=o) for o in (1.0, 0.0)]
    >>> features = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])
    >>> estimator = ProgressEstimator(2, bias=False)
    >>> losses = fit_progress_estimator(estimator, features, TurnBatch.from_trajectories(trajs))
    >>> losses[-1] < 1e-3 < losses[0]
    True
    """
    optimizer = torch.optim.Adam(estimator.parameters(), lr=lr)
    return [progress_train_step(estimator, optimizer, features, batch) for _ in range(steps)]


def spa(
    batch: TurnBatch,
    *,
    features: torch.Tensor | None = None,
    estimator: ProgressEstimator | None = None,
    contributions: torch.Tensor | None = None,
    grounding_bonus: float = 0.1,
    progress_weight: float = 1.0,
    base: str | Callable[..., torch.Tensor] = "reinforce",
    **base_kwargs: Any,
) -> torch.Tensor:
    """SPA advantages: progress + grounding turn rewards fed to the ``base`` estimator.

    Args:
        batch: the trajectories.
        features: ``[n, T, D]`` per-turn features for ``estimator``.
        estimator: a trained :class:`ProgressEstimator` (see :func:`fit_progress_estimator`).
        contributions: ``[n, T]`` precomputed ``c_t`` (instead of features + estimator).
        grounding_bonus: reward added on every turn whose action was valid.
        progress_weight: weight of ``c_t``.
        base: an estimator name (``grpo rloo reinforce returns gae gigpo salt``) or any callable
            ``(batch, *, rewards, **kw)``; it receives the SPA rewards as ``rewards=``.
        **base_kwargs: hyperparameters of ``base``.

    >>> from turngym import Trajectory, Turn
    >>> trajs = [Trajectory(turns=[Turn(info={"valid_action": v}) for v in (True, False)])]
    >>> c = torch.tensor([[0.25, 0.5]])  # r = [0.25 + 0.1, 0.5]; reward-to-go = [0.85, 0.5]
    >>> spa(TurnBatch.from_trajectories(trajs), contributions=c, base="returns")
    tensor([[0.8500, 0.5000]])
    """
    if contributions is None and estimator is not None:
        if features is None:
            raise InvalidArgumentError(
                "spa got an estimator but no features; pass features=[n, T, D]."
            )
        with torch.no_grad():
            contributions = estimator(
                _features(batch, features).to(estimator.head.weight.dtype), batch.mask
            )
    elif contributions is None:
        previous = torch.nn.functional.pad(batch.progress[:, :-1], (1, 0))
        contributions = batch.progress - previous
    contributions = per_turn(batch, contributions, "contributions", batch.rewards)
    rewards = masked(
        progress_weight * contributions + grounding_bonus * batch.valid.to(contributions.dtype),
        batch.mask,
    )
    if isinstance(base, str):
        if base not in BASES:
            raise InvalidArgumentError(
                f"base={base!r} is not valid; use one of {list(BASES)} or a callable."
            )
        base = getattr(importlib.import_module(f"{__package__}.{base}"), base)
    return base(batch, rewards=rewards, **base_kwargs)
