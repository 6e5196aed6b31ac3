"""The learner's policy loss pieces: clipped surrogate, loss aggregation, micro-batching.

Kept apart from :mod:`turngym.agents.learner` so each piece can be tested against hand-computed
numbers:

- :func:`clipped_surrogate`: PPO's per-token loss ``-min(r A, clip(r, 1 - eps, 1 + eps_high) A)``
  and where clipping is active (verl's ``pg_clipfrac`` counts those tokens);
- :func:`row_weights` / :func:`aggregate_loss`: the loss aggregation modes of
  :data:`~turngym.agents.learner_config.LOSS_AGG_MODES` (verl's ``loss_agg_mode`` names);
- :func:`micro_batches` / :func:`padding_fraction`: rows cut into micro-batches, sorted by length
  so rows of similar length share a batch (less padding), and the padding that remains.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from turngym.agents.learner_config import LOSS_AGG_MODES

__all__ = [
    "aggregate_loss",
    "clipped_surrogate",
    "gather_rows",
    "micro_batches",
    "padding_fraction",
    "row_weights",
]


def clipped_surrogate(
    ratio: torch.Tensor, advantage: torch.Tensor, eps_low: float, eps_high: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's per-token policy loss and the mask of tokens whose loss the clip decided.

    ``loss = max(-A r, -A clip(r, 1 - eps_low, 1 + eps_high))``; a token is *clipped* when the
    clipped term is strictly larger, i.e. its gradient is zero because of the clip (``r > 1 + eps``
    with ``A > 0``, or ``r < 1 - eps`` with ``A < 0``), as verl's ``pg_clipfrac`` counts.

    >>> r = torch.tensor([1.5, 1.5, 0.5, 0.5, 1.0])
    >>> a = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0])
    >>> loss, clipped = clipped_surrogate(r, a, 0.2, 0.2)
    >>> loss.tolist(), clipped.tolist()
    ([-1.2000000476837158, 1.5, -0.5, 0.800000011920929, -1.0], [True, False, False, True, False])
    """
    unclipped = -advantage * ratio
    clipped = -advantage * ratio.clamp(1 - eps_low, 1 + eps_high)
    return torch.maximum(unclipped, clipped), clipped > unclipped


def row_weights(
    lengths: Sequence[int],
    mode: str,
    max_new_tokens: int,
    sequences: Sequence[int] | None = None,
) -> list[float]:
    """Weight ``w_r`` of each row's token-loss *sum* so that ``sum_r w_r sum_t l_rt`` is ``mode``.

    Args:
        lengths: action tokens of every row of one optimizer step (all its micro-batches, so
            that micro-batches accumulate to exactly the loss of the whole step).
        mode: one of ``LOSS_AGG_MODES``.
        max_new_tokens: the constant normaliser of ``seq-mean-token-sum-norm``.
        sequences: the sequence (episode) each row belongs to; None makes each row its own.

    >>> row_weights([1, 3], "token-mean", 4)
    [0.25, 0.25]
    >>> row_weights([1, 3], "seq-mean-token-mean", 4)
    [0.5, 0.16666666666666666]
    >>> row_weights([1, 3], "seq-mean-token-mean", 4, sequences=[7, 7])  # one episode, 4 tokens
    [0.25, 0.25]
    """
    if mode not in LOSS_AGG_MODES:
        raise ValueError(f"loss_agg_mode={mode!r} is not one of {', '.join(LOSS_AGG_MODES)}")
    sequences = list(range(len(lengths))) if sequences is None else list(sequences)
    tokens = sum(lengths)
    per_sequence: dict[int, int] = {}
    for sequence, length in zip(sequences, lengths, strict=True):
        per_sequence[sequence] = per_sequence.get(sequence, 0) + length
    count = len(per_sequence)
    if count == 0 or tokens == 0:
        return [0.0] * len(lengths)
    if mode == "token-mean":
        return [1.0 / tokens] * len(lengths)
    if mode == "seq-mean-token-sum":
        return [1.0 / count] * len(lengths)
    if mode == "seq-mean-token-mean":
        return [1.0 / (count * per_sequence[s]) if per_sequence[s] else 0.0 for s in sequences]
    return [1.0 / (count * max_new_tokens)] * len(lengths)  # seq-mean-token-sum-norm


def aggregate_loss(
    loss: torch.Tensor,
    mask: torch.Tensor,
    mode: str,
    max_new_tokens: int,
    sequences: Sequence[int] | None = None,
) -> torch.Tensor:
    """One scalar from per-token losses ``[rows, tokens]`` (``mask`` marks real tokens).

    ``sequences`` groups rows (turns) into sequences (episodes); None: every row is one.

    >>> loss = torch.tensor([[1.0, 0.0, 0.0], [2.0, 4.0, 6.0]])
    >>> mask = torch.tensor([[True, False, False], [True, True, True]])
    >>> [round(float(aggregate_loss(loss, mask, m, 4)), 4) for m in
    ...  ("token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm")]
    [3.25, 6.5, 2.5, 1.625]
    """
    weights = row_weights(mask.sum(-1).tolist(), mode, max_new_tokens, sequences)
    per_row = (loss * mask).sum(-1)
    return (per_row * torch.tensor(weights, dtype=per_row.dtype, device=per_row.device)).sum()


def micro_batches(lengths: Sequence[int], size: int, sort: bool = True) -> list[list[int]]:
    """Row indices cut into micro-batches of ``size``; sorted by ``lengths`` first when ``sort``.

    >>> micro_batches([5, 1, 4, 2], 2)
    [[1, 3], [2, 0]]
    >>> micro_batches([5, 1, 4, 2], 2, sort=False)
    [[0, 1], [2, 3]]
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i]) if sort else range(len(lengths))
    order = list(order)
    return [order[start : start + size] for start in range(0, len(order), size)]


def padding_fraction(lengths: Sequence[int], chunks: Sequence[Sequence[int]]) -> float:
    """Share of padding tokens when each chunk is padded to its longest row.

    >>> round(padding_fraction([5, 1, 4, 2], [[0, 1], [2, 3]]), 4)  # 1 - 12 / (2*5 + 2*4)
    0.3333
    """
    padded = sum(len(chunk) * max(lengths[i] for i in chunk) for chunk in chunks if chunk)
    return 1.0 - sum(lengths) / padded if padded else 0.0


def gather_rows(
    per_row: dict[int, torch.Tensor], chunk: list[int], like: torch.Tensor
) -> torch.Tensor:
    """Right-aligns the stored per-row log-probs of ``chunk`` into a tensor shaped like ``like``."""
    out = torch.zeros_like(like)
    for row, i in enumerate(chunk):
        values = per_row[i]
        out[row, out.shape[1] - len(values) :] = values.to(out.device, out.dtype)
    return out
