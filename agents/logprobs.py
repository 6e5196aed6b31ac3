"""Teacher-forced log-probabilities of completions given prompts, in batched forward passes.

The learner needs ``log pi(token | prompt, earlier tokens)`` for every action token (the policy
loss, the KL to the reference) and IGPO needs the mean log-probability of the gold answer after
each turn. Both are "completion given prompt" under teacher forcing, computed here the same way.
With ``sampling=`` (the policy's :class:`~turngym.agents.sampling.SamplingConfig`) the scores
are those of the distribution the policy sampled from (penalties, temperature, truncation; see
:mod:`turngym.agents.sampling`), so recorded and recomputed log-probs agree.

Rows are *left*-padded so every completion ends at the last column: the model then only has to
return logits for the last ``max completion length + 1`` positions (``logits_to_keep``), which
keeps memory small for large vocabularies. Position ids follow the attention mask, so padding
does not shift positions. Logits are upcast to float32 before any arithmetic, so a model that
computes in bfloat16 still gets its log-softmax in float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from turngym.agents.sampling import (
    SamplingConfig,
    UnsupportedGenerationConfig,
    process_logits,
    teacher_forced_counts,
    teacher_forced_presence,
)

__all__ = [
    "SamplingConfig",
    "UnsupportedGenerationConfig",
    "completion_logprobs",
    "last_hidden_states",
    "pad_left",
]


def pad_left(
    prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Left-pads ``prompt + completion`` rows.

    Returns:
        ``(input_ids, attention_mask, completion_mask, width)``: ``[rows, total]`` ids and mask,
        a ``[rows, width]`` mask of the completion tokens among the last ``width`` columns,
        and ``width`` = the longest completion.
    """
    total = max(len(p) + len(c) for p, c in zip(prompts, completions, strict=True))
    width = max(len(c) for c in completions)
    input_ids = torch.full((len(prompts), total), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(prompts), total), dtype=torch.long)
    completion_mask = torch.zeros((len(prompts), width), dtype=torch.bool)
    for row, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
        ids = list(prompt) + list(completion)
        input_ids[row, total - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, total - len(ids) :] = 1
        completion_mask[row, width - len(completion) :] = True
    return input_ids, attention_mask, completion_mask, width


def completion_logprobs(
    model: Any,
    prompts: Sequence[Sequence[int]],
    completions: Sequence[Sequence[int]],
    *,
    pad_id: int,
    temperature: float = 1.0,
    sampling: SamplingConfig | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log-probabilities of each completion given its prompt (one forward pass).

    Gradients flow when called with grad enabled. The log-softmax runs in float32.

    Args:
        model: a causal LM (``model(input_ids, attention_mask, position_ids, logits_to_keep)``).
        prompts: token ids of each row's context (at least one token each).
        completions: token ids to score (at least one token each).
        pad_id: the padding token id.
        temperature: logits are divided by it (0 counts as 1); ignored when ``sampling`` is given.
        sampling: score under this sampling distribution (the policy's ``sampling``), penalties
            and truncation included, as :func:`process_logits` defines it.
        device: where to run (default: the model's device).

    Returns:
        ``(logprobs, mask)``, both ``[rows, longest completion]``, right-aligned: row ``i``'s
        completion occupies its last ``len(completions[i])`` columns; ``mask`` marks them.
    """
    if any(len(p) == 0 for p in prompts) or any(len(c) == 0 for c in completions):
        raise ValueError("every prompt and completion needs at least one token")
    device = device or next(model.parameters()).device
    input_ids, attention_mask, completion_mask, width = pad_left(prompts, completions, pad_id)
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    output = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        logits_to_keep=width + 1,
        use_cache=False,
    )
    # Logits at column j predict the token at column j + 1.
    logits = output.logits[:, -(width + 1) : -1].float()
    targets = input_ids[:, -width:]
    mask = completion_mask.to(device)
    if sampling is None:
        scores = logits / (temperature or 1.0)
    else:
        vocab = logits.shape[-1]
        penalized = counts = None
        if sampling.repetition_penalty != 1.0:
            penalized = teacher_forced_presence(input_ids, attention_mask, width, vocab)
        if sampling.counts_generated:
            counts = teacher_forced_counts(targets, mask, vocab)
        scores = process_logits(logits, sampling, penalized=penalized, counts=counts, keep=targets)
    logprobs = torch.log_softmax(scores, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return logprobs.masked_fill(~mask, 0.0), mask


@torch.no_grad()
def last_hidden_states(
    model: Any,
    prompts: Sequence[Sequence[int]],
    completions: Sequence[Sequence[int]],
    *,
    pad_id: int,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The last layer's hidden state at each row's final completion token, ``[rows, hidden]``.

    SPA's progress estimator reads these as the per-turn features ``h_t`` (the state of the
    policy LM right after it wrote the turn's action).
    """
    device = device or next(model.parameters()).device
    input_ids, attention_mask, _, _ = pad_left(prompts, completions, pad_id)
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    output = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=(attention_mask.cumsum(-1) - 1).clamp(min=0),
        output_hidden_states=True,
        use_cache=False,
    )
    # Left padding puts every row's final token in the last column.
    return output.hidden_states[-1][:, -1].float()
