"""SPA: stepwise progress attribution (Wang et al., 2025, "SPA-RL: Reinforcing LLM Agents via
Stepwise Progress Attribution", arXiv:2505.20732).

A progress estimator predicts each turn's contribution ``c_t`` to the episode's outcome from a
feature vector of the turn (e.g. the policy LM's last hidden state at the end of the turn). It is
trained so the contributions of an episode add up to its outcome,

    L = mean_i (sum_t c_{i,t} - outcome_i)^2,

and the turn reward fuses progress with grounding (the action parsed and executed). turngym's
default grounding term is a *penalty* on ungrounded turns,

    r_t = progress_weight * c_t - grounding_bonus * 1[not valid_t]      (grounding="penalty")
    r_t = progress_weight * c_t + grounding_bonus * 1[valid_t]          (grounding="bonus", paper)

which any estimator then turns into advantages (``base="reinforce"`` by default, as the paper
feeds these step rewards to a policy-gradient learner; ``"gae"``, ``"gigpo"``, ... also work).
Without an estimator or explicit contributions, ``c_t`` falls back to the env's own progress
deltas ``progress_t - progress_{t-1}`` (``info["progress"]``, 0 before the first turn) with the
remainder ``outcome - progress_T`` added to the last turn, so ``sum_t c_t = outcome`` exactly,
the estimator's own training target: SPA with a ground-truth progress oracle (an env that
reports no progress gets its outcome on the last turn). :func:`spa_rewards` returns the fused
per-turn rewards themselves.

Why a penalty and not the paper's bonus
---------------------------------------
The paper's ``+bonus`` on every valid turn, summed to go by the base estimator, is a *living
reward*: every admissible action is valid, so an episode that stalls collects ``bonus`` per turn.
Once failures outlast successes by more than ``outcome / bonus`` turns (10 at bonus 0.1), a
timeout's first turn gets a *higher* advantage than a success's (an 8-turn win -0.30, a 24-turn
timeout +0.30 in a two-episode batch with the old defaults), and the tabular credit lab measured
SPA never learning the long corridors (AUC 0.11 vs GRPO's 0.69; 0.66 with the bonus off). The
penalty is ``bonus * (1[valid] - 1)``: the same difference between a valid and an invalid turn,
but never positive, so a longer episode can only lose by it (``tests/test_credit_stalling.py``
checks every method's defaults). ``grounding="bonus"`` keeps the paper's form.

Compared with
-------------
SPA-RL's released pipeline (WangHanLinHenry/SPA-RL-Agent at ed20087, re-read for issue 23): the
estimator is trained on ``sum_t c_t`` vs the outcome as here (``prm/``), and
``prm/rl_data_org.py`` builds the per-turn PPO rewards, which ``ppo/step_ppo.py`` hands to TRL's
PPO (per-turn rewards, GAE over them; the PPO config with its ``gamma`` is not in the release, and
TRL's ``PPOConfig`` default is ``gamma=1``, under which the bonus is summed undiscounted). The
script trains offline on episodes of < 35 turns collected beforehand, where the living reward
cannot be farmed by the policy that is trained. Where turngym differs:

- *Grounding sign* (above): the script adds ``+0.5`` per grounded turn; turngym subtracts
  ``grounding_bonus`` (0.1) per ungrounded turn. ``grounding="bonus", grounding_bonus=0.5``
  reproduces the script's term.
- *Last turn*: it always gives the last turn the bonus (its validity is never checked);
  turngym checks it. ``last_turn_grounded=True`` reproduces the script.
- *The progress term*: the script *overwrites* the estimator's per-turn predictions with one
  value on every turn: the episode's outcome minus the mean outcome of the *other* episodes of
  its task (leave-one-out; an episode alone in its task keeps its raw outcome).
  ``contributions="leave_one_out"`` reproduces that; the paper (and turngym's default) uses
  the estimator's ``c_t`` (or the progress oracle above).
- So ``spa_rewards(batch, contributions="leave_one_out", grounding="bonus",
  grounding_bonus=0.5, last_turn_grounded=True)`` = the script's ``reward`` lists; the script
  then trains PPO on them (``base="gae"`` with the learner's values is the nearest estimator).
- Its grounding test is the next observation not containing "Nothing happens" (ALFWorld's
  reply to an unexecutable action); turngym reads ``info["valid_action"]``, which every env sets.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from turngym.error import InvalidArgumentError

from ._ops import check_finite, masked, per_turn, segment_stats, trajectory_scores
from .batch import TurnBatch

__all__ = [
    "ProgressEstimator",
    "fit_progress_estimator",
    "progress_loss",
    "progress_train_step",
    "spa",
    "spa_rewards",
]

BASES = ("grpo", "rloo", "reinforce", "returns", "gae", "gigpo", "salt")
GROUNDING = ("penalty", "bonus")


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


def spa_rewards(
    batch: TurnBatch,
    *,
    features: torch.Tensor | None = None,
    estimator: ProgressEstimator | None = None,
    contributions: torch.Tensor | str | None = None,
    grounding_bonus: float = 0.1,
    progress_weight: float = 1.0,
    last_turn_grounded: bool = False,
    grounding: str = "penalty",
) -> torch.Tensor:
    """SPA's fused per-turn rewards ``progress_weight * c_t`` plus the grounding term.

    Args:
        batch: the trajectories.
        features, estimator: ``c_t = estimator(features)`` (see :func:`spa`).
        contributions: ``[n, T]`` precomputed ``c_t``; or ``"leave_one_out"``: every turn of
            trajectory ``i`` gets ``outcome_i - mean_{j != i in its group} outcome_j`` (SPA-RL's
            released script; a trajectory alone in its group keeps its outcome). None: the
            estimator, else the env's progress deltas with ``outcome - progress_T`` on the last
            turn (so ``sum_t c_t = outcome``).
        grounding_bonus: size of the grounding term.
        progress_weight: weight of ``c_t``.
        last_turn_grounded: count the last turn as grounded whatever its validity (SPA-RL's
            script).
        grounding: ``"penalty"`` (default: ``-grounding_bonus`` on every ungrounded turn, never a
            living reward) or ``"bonus"`` (the paper: ``+grounding_bonus`` on every grounded turn).

    >>> from turngym import Trajectory, Turn
    >>> trajs = [Trajectory(turns=[Turn(info={"valid_action": v}) for v in (False, False)],
    ...                     group_id="g", outcome=o) for o in (1.0, 0.0)]
    >>> # leave-one-out: 1 - 0 and 0 - 1 on every turn; bonus 0.5 on the last turn only
    >>> spa_rewards(TurnBatch.from_trajectories(trajs), contributions="leave_one_out",
    ...             grounding="bonus", grounding_bonus=0.5, last_turn_grounded=True)
    tensor([[ 1.0000,  1.5000],
            [-1.0000, -0.5000]])
    """
    if grounding not in GROUNDING:
        raise InvalidArgumentError(
            f"grounding={grounding!r} is not valid; use 'penalty' (the default, never a living "
            "reward) or 'bonus' (the paper's +bonus per valid turn)."
        )
    if isinstance(contributions, str):
        if contributions != "leave_one_out":
            raise InvalidArgumentError(
                f"contributions={contributions!r} is not valid; pass a [n, T] tensor, "
                "'leave_one_out' or None."
            )
        outcome = trajectory_scores(batch, None, "outcome")
        count, mean, _ = segment_stats(outcome, batch.group_ids, int(batch.group_ids.max()) + 1)
        others = (mean * count - outcome) / (count - 1).clamp(min=1)
        centred = torch.where(count > 1, outcome - others, outcome)
        contributions = centred[:, None].expand(batch.mask.shape)
    elif contributions is None and estimator is not None:
        if features is None:
            raise InvalidArgumentError(
                "spa got an estimator but no features; pass features=[n, T, D]."
            )
        with torch.no_grad():
            contributions = estimator(
                _features(batch, features).to(estimator.head.weight.dtype), batch.mask
            )
    elif contributions is None:
        progress = masked(batch.progress.float(), batch.mask)
        previous = torch.nn.functional.pad(progress[:, :-1], (1, 0))
        # the remainder on the last turn makes sum_t c_t = outcome, the estimator's target
        final = progress.gather(1, (batch.lengths.to(batch.device) - 1)[:, None]).squeeze(1)
        remainder = trajectory_scores(batch, None, "outcome") - final
        contributions = progress - previous + batch.last_turn * remainder[:, None]
    contributions = per_turn(batch, contributions, "contributions", batch.rewards)
    grounded = batch.valid
    if last_turn_grounded:
        grounded = grounded | batch.last_turn
    if grounding == "bonus":
        term = grounding_bonus * grounded.to(contributions.dtype)
    else:
        term = -grounding_bonus * (~grounded).to(contributions.dtype)
    return masked(progress_weight * contributions + term, batch.mask)


def spa(
    batch: TurnBatch,
    *,
    features: torch.Tensor | None = None,
    estimator: ProgressEstimator | None = None,
    contributions: torch.Tensor | str | None = None,
    grounding_bonus: float = 0.1,
    progress_weight: float = 1.0,
    base: str | Callable[..., torch.Tensor] = "reinforce",
    last_turn_grounded: bool = False,
    grounding: str = "penalty",
    **base_kwargs: Any,
) -> torch.Tensor:
    """SPA advantages: progress + grounding turn rewards fed to the ``base`` estimator.

    Args:
        batch: the trajectories.
        features: ``[n, T, D]`` per-turn features for ``estimator``.
        estimator: a trained :class:`ProgressEstimator` (see :func:`fit_progress_estimator`).
        contributions: ``[n, T]`` precomputed ``c_t`` (instead of features + estimator), or
            ``"leave_one_out"`` (SPA-RL's released script; see :func:`spa_rewards`).
        grounding_bonus: size of the grounding term (see ``grounding``).
        progress_weight: weight of ``c_t``.
        base: an estimator name (``grpo rloo reinforce returns gae gigpo salt``) or any callable
            ``(batch, *, rewards, **kw)``; it receives the SPA rewards as ``rewards=``.
        last_turn_grounded: count the last turn as grounded whatever its validity (SPA-RL's code).
        grounding: ``"penalty"`` (default, ``-grounding_bonus`` per ungrounded turn) or
            ``"bonus"`` (the paper, ``+grounding_bonus`` per grounded turn; a living reward).
        **base_kwargs: hyperparameters of ``base``.

    >>> from turngym import Trajectory, Turn
    >>> trajs = [Trajectory(turns=[Turn(info={"valid_action": v}) for v in (True, False)])]
    >>> c = torch.tensor([[0.25, 0.5]])  # r = [0.25, 0.5 - 0.1]; reward-to-go = [0.65, 0.4]
    >>> spa(TurnBatch.from_trajectories(trajs), contributions=c, base="returns")
    tensor([[0.6500, 0.4000]])
    """
    rewards = spa_rewards(
        batch,
        features=features,
        estimator=estimator,
        contributions=contributions,
        grounding_bonus=grounding_bonus,
        progress_weight=progress_weight,
        last_turn_grounded=last_turn_grounded,
        grounding=grounding,
    )
    if isinstance(base, str):
        if base not in BASES:
            raise InvalidArgumentError(
                f"base={base!r} is not valid; use one of {list(BASES)} or a callable."
            )
        base = getattr(importlib.import_module(f"{__package__}.{base}"), base)
    return base(batch, rewards=rewards, **base_kwargs)
