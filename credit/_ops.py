"""Vectorised building blocks shared by the credit methods (no Python loop over turns or rows)."""

from __future__ import annotations

import torch

from turngym.error import InvalidArgumentError

from .batch import TurnBatch

__all__ = [
    "check_groups",
    "check_states",
    "discounted_reverse_cumsum",
    "dense_ids",
    "group_normalize",
    "masked",
    "per_turn",
    "segment_stats",
    "trajectory_scores",
    "whiten",
]


def masked(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``values`` where ``mask`` is True, else exactly 0.0 (no ``-0.0`` from multiplying)."""
    return torch.where(mask, values, torch.zeros((), dtype=values.dtype, device=values.device))


def per_turn(
    batch: TurnBatch, values: torch.Tensor | None, name: str, default: torch.Tensor
) -> torch.Tensor:
    """Checks a user-given ``[n, T]`` tensor (shape, finite on real turns); 0 on padding."""
    if values is None:
        values = default
    values = torch.as_tensor(values, device=batch.device)
    if not values.is_floating_point():
        values = values.float()
    expected = tuple(batch.mask.shape)
    if tuple(values.shape) != expected:
        raise InvalidArgumentError(
            f"{name} has shape {tuple(values.shape)} but this batch is [n_traj, max_turns] = "
            f"{expected}; build it from the same trajectories, in the same order."
        )
    check_finite(batch, values, name)
    return masked(values, batch.mask)


def check_finite(batch: TurnBatch, values: torch.Tensor, name: str) -> None:
    """Raises a ValueError naming the first trajectory/turn where ``values`` is NaN or inf."""
    bad = ~torch.isfinite(values)
    if values.shape == batch.mask.shape:
        bad = bad & batch.mask
    if bool(bad.any()):
        where = torch.nonzero(bad)[0].tolist()
        turn = f", turn {where[1]}" if len(where) > 1 else ""
        raise InvalidArgumentError(
            f"{name} is not finite at {batch.label(where[0])}{turn}; credit would be NaN. "
            "Fix or drop that trajectory's rewards before computing advantages."
        )


def check_groups(batch: TurnBatch) -> None:
    """Group-relative credit needs >= 2 trajectories in every group."""
    counts = torch.bincount(batch.group_ids)
    single = counts[batch.group_ids] < 2
    if bool(single.any()):
        row = int(torch.nonzero(single)[0])
        raise InvalidArgumentError(
            f"{batch.label(row)} is the only trajectory of its group; group-relative credit needs "
            ">= 2 per group. Roll out with group_size >= 2 (turngym.rollout(..., group_size=4)), "
            "give trajectories of the same task the same group_id, or use reinforce/returns/gae."
        )


def check_states(batch: TurnBatch, method: str) -> None:
    """State-grouping credit needs every turn's pre-action state (``batch.unknown_states``)."""
    unknown = batch.unknown_states
    if unknown is not None and bool(unknown.any()):
        row, turn = torch.nonzero(unknown)[0].tolist()
        raise InvalidArgumentError(
            f"{batch.label(row)}, turn {turn}: {method} groups turns on the state each action was "
            "taken in, and this turn's is unknown (no Turn.state_key; info['state_key'] is the "
            "state the action led to). Set Turn.state_key, or Trajectory.reset_state_key for "
            "turn 0 (the key reset() returned) so it can be derived."
        )


def dense_ids(keys: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Maps arbitrary integer keys to ``0..K-1`` (``torch.unique`` with ``return_inverse``)."""
    unique, inverse = torch.unique(keys, return_inverse=True)
    return inverse, int(unique.numel())


def segment_stats(
    values: torch.Tensor, segments: torch.Tensor, num_segments: int, unbiased: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-segment (count, mean, std) of 1-D ``values``, gathered back per element.

    ``unbiased``: the sample std (divide by n - 1) or the population std (divide by n). A
    segment of one element has std 0.
    """
    dtype = values.dtype
    count = torch.zeros(num_segments, dtype=dtype, device=values.device).index_add_(
        0, segments, torch.ones_like(values)
    )
    total = torch.zeros(num_segments, dtype=dtype, device=values.device).index_add_(
        0, segments, values
    )
    mean = total / count.clamp(min=1)
    centred = values - mean[segments]
    squares = torch.zeros(num_segments, dtype=dtype, device=values.device).index_add_(
        0, segments, centred * centred
    )
    std = (squares / ((count - 1) if unbiased else count).clamp(min=1)).sqrt()
    return count[segments], mean[segments], std[segments]


def group_normalize(
    values: torch.Tensor,
    segments: torch.Tensor,
    num_segments: int,
    normalize_std: bool,
    eps: float,
    unbiased: bool = True,
) -> torch.Tensor:
    """``(x - mean_segment) / (std_segment + eps)`` (or without the division).

    A segment whose values are all equal (a singleton included) gets exactly 0, never the
    rounding noise of ``x - mean`` blown up by a tiny std, and never 0/0 with ``eps=0``.
    """
    count, mean, std = segment_stats(values, segments, num_segments, unbiased)
    empty = torch.full((num_segments,), float("inf"), dtype=values.dtype, device=values.device)
    low = empty.scatter_reduce(0, segments, values, reduce="amin")
    high = (-empty).scatter_reduce(0, segments, values, reduce="amax")
    spread = (high > low)[segments]
    centred = values - mean
    if normalize_std:
        centred = centred / torch.where(spread, std + eps, torch.ones_like(std))
    return torch.where(spread, centred, torch.zeros_like(centred))


def whiten(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """verl's ``masked_whiten`` at the turn level: ``(x - mean) / sqrt(var + 1e-8)`` over the real
    turns of the whole batch, ``var`` the unbiased (Bessel-corrected) variance; 0 on padding.

    >>> whiten(torch.tensor([[1.0, 3.0], [2.0, 9.0]]), torch.tensor([[True, True], [True, False]]))
    tensor([[-1.,  1.],
            [ 0.,  0.]])
    """
    real = values[mask]
    count = real.numel()
    if count < 2:
        raise InvalidArgumentError(
            f"whiten=True needs >= 2 real turns in the batch (got {count}); whitening one value "
            "divides by a zero variance. Use whiten=False or a larger batch."
        )
    mean = real.mean()
    variance = ((real - mean) ** 2).sum() / (count - 1)
    return masked((values - mean) * torch.rsqrt(variance + 1e-8), mask)


def discounted_reverse_cumsum(values: torch.Tensor, gamma: float) -> torch.Tensor:
    """``out[:, t] = sum_{k >= t} gamma^(k - t) values[:, k]`` as one matmul with a power matrix.

    >>> discounted_reverse_cumsum(torch.tensor([[1.0, 0.0, 2.0]]), 0.5).tolist()
    [[1.5, 1.0, 2.0]]
    """
    width = values.shape[-1]
    steps = torch.arange(width, device=values.device)
    # powers[k, t] = gamma^(k - t) for k >= t: column t sums the future of turn t.
    lag = steps[:, None] - steps[None, :]
    powers = torch.where(
        lag >= 0,
        torch.tensor(float(gamma), dtype=values.dtype, device=values.device)
        ** lag.clamp(min=0).to(values.dtype),
        torch.zeros((), dtype=values.dtype, device=values.device),
    )
    return values @ powers


def trajectory_scores(
    batch: TurnBatch, rewards: torch.Tensor | None, score: str | None
) -> torch.Tensor:
    """The scalar each trajectory is judged by: its outcome, or the sum of (given) turn rewards.

    ``score=None`` means ``"outcome"`` when no per-turn ``rewards`` are given and ``"return"``
    (their sum) when they are, so a reward transform (``gated``, ``spa``) flows through.
    """
    if score is None:
        score = "outcome" if rewards is None else "return"
    if score == "outcome":
        check_finite(batch, batch.outcome, "outcome")
        return batch.outcome.float()
    if score == "return":
        return per_turn(batch, rewards, "rewards", batch.rewards).sum(1)
    raise InvalidArgumentError(f"score={score!r} is not valid; use 'outcome' or 'return'.")


def check_gamma(name: str, value: float) -> float:
    if not 0.0 <= float(value) <= 1.0:
        raise InvalidArgumentError(f"{name}={value} must be in [0, 1].")
    return float(value)
