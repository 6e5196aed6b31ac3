"""The sampling distribution of a policy, defined once: :class:`SamplingConfig` and
:func:`process_logits`.

``softmax(process_logits(logits, config, ...))`` is the distribution
:class:`~turngym.agents.hf.HFPolicy` samples each token from (and records the log-probability
of), and :func:`turngym.agents.logprobs.completion_logprobs` (the learner's training forward)
applies the same function to teacher-forced logits, so the first epoch's importance ratio is 1
(up to the numerics of a cached vs. a full forward).

What is reproduced in a teacher-forced forward, in this order:

- ``repetition_penalty`` (CTRL / Hugging Face semantics: a positive logit is divided by it, a
  negative one multiplied, for every token already in the context): the context of completion
  token ``j`` is the prompt plus completion tokens ``0..j-1``; padding never counts.
- ``frequency_penalty`` and ``presence_penalty`` (OpenAI / vLLM semantics: subtract
  ``frequency * count + presence * (count > 0)``, counting the tokens *generated so far* in this
  action, not the prompt), recomputed for every completion position.
- ``temperature``: logits divided by it (0 means greedy: the argmax of the penalised logits;
  its log-probs are those of the penalised logits at temperature 1, untruncated).
- ``top_k``, ``top_p``, ``min_p``: masks computed from each position's own scores, in that
  order (as Hugging Face orders its warpers). Thresholds are values, so ties at the cut are all
  kept. In training the scored token is always kept in the support: at the first epoch it was
  sampled from it anyway, and later a token that fell out of the current support keeps a
  finite, differentiable log-prob instead of ``-inf`` (which would make the ratio 0 and the KL
  infinite).

Refused (a saved generation config that sets them raises :class:`UnsupportedGenerationConfig`
in :meth:`SamplingConfig.from_generation_config`): beam search, contrastive search, DoLa,
classifier-free guidance and watermarking change the procedure rather than one token's
distribution, or need a second model pass; ``no_repeat_ngram_size``, ``typical_p``, epsilon/eta
cutoffs, bad/suppressed words, sequence bias, minimum lengths, forced tokens and length-decay
penalties could be reproduced but are not implemented here. All arithmetic is float32, whatever
the model's dtype.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from turngym.error import InvalidArgumentError

__all__ = [
    "SamplingConfig",
    "UnsupportedGenerationConfig",
    "context_presence",
    "generated_counts",
    "process_logits",
    "sampling_settings",
    "teacher_forced_counts",
    "teacher_forced_presence",
    "unsupported_settings",
]

_UNSUPPORTED = {
    "num_beams": 1,
    "num_beam_groups": 1,
    "diversity_penalty": 0.0,
    "penalty_alpha": None,
    "dola_layers": None,
    "guidance_scale": 1.0,
    "watermarking_config": None,
    "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0,
    "encoder_repetition_penalty": 1.0,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "bad_words_ids": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "sequence_bias": None,
    "min_length": 0,
    "min_new_tokens": 0,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "exponential_decay_length_penalty": None,
    "top_h": None,
}


class UnsupportedGenerationConfig(InvalidArgumentError):
    """A generation setting whose distribution the training forward cannot reproduce."""


@dataclass(frozen=True)
class SamplingConfig:
    """The distribution a policy samples from (and the learner scores under).

    Args:
        temperature: logits are divided by it; 0 means greedy decoding.
        top_p: nucleus mass in (0, 1]; 1 disables it.
        top_k: keep the k largest logits; 0 disables it.
        min_p: keep tokens with probability >= ``min_p`` times the top one; 0 disables it.
        repetition_penalty: > 0; 1 disables it (see the module docstring).
        frequency_penalty: in [-2, 2] (OpenAI's range); 0 disables it.
        presence_penalty: in [-2, 2]; 0 disables it.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0

    def __post_init__(self) -> None:
        def fail(name: str, rule: str) -> None:
            raise InvalidArgumentError(
                f"SamplingConfig.{name}={getattr(self, name)!r} is invalid: {rule}"
            )

        if not (isinstance(self.temperature, int | float) and self.temperature >= 0):
            fail("temperature", "must be >= 0 (0 = greedy)")
        if not 0 < self.top_p <= 1:
            fail("top_p", "must be in (0, 1] (1 disables nucleus sampling)")
        if not isinstance(self.top_k, int) or isinstance(self.top_k, bool) or self.top_k < 0:
            fail("top_k", "must be an int >= 0 (0 disables it)")
        if not 0 <= self.min_p < 1:
            fail("min_p", "must be in [0, 1) (0 disables it)")
        if not (math.isfinite(self.repetition_penalty) and self.repetition_penalty > 0):
            fail("repetition_penalty", "must be > 0 (1 disables it)")
        for name in ("frequency_penalty", "presence_penalty"):
            if not -2 <= getattr(self, name) <= 2:
                fail(name, "must be in [-2, 2] (0 disables it)")

    @property
    def counts_generated(self) -> bool:
        """Whether the frequency/presence penalties need the generated-token counts."""
        return self.frequency_penalty != 0 or self.presence_penalty != 0

    @property
    def greedy(self) -> bool:
        """Whether this is greedy decoding (temperature 0)."""
        return self.temperature == 0

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict."""
        return asdict(self)

    @classmethod
    def from_generation_config(cls, generation_config: Any) -> SamplingConfig:
        """The sampling settings of a Hugging Face ``GenerationConfig`` (e.g. a model's saved one).

        Raises:
            UnsupportedGenerationConfig: it sets something the training forward cannot
                reproduce (the message names each field and its "off" value).
        """
        problems = unsupported_settings(generation_config)
        if problems:
            listed = ", ".join(f"{k}={v!r} (off: {_UNSUPPORTED[k]!r})" for k, v in problems.items())
            raise UnsupportedGenerationConfig(
                f"the generation config sets {listed}: these cannot be reproduced in the "
                "learner's teacher-forced forward; set them to their 'off' value or build a "
                "SamplingConfig(temperature=..., top_p=..., top_k=..., min_p=..., "
                "repetition_penalty=...) yourself"
            )

        def get(name: str, default: Any) -> Any:
            value = getattr(generation_config, name, None)
            return default if value is None else value

        sample = bool(get("do_sample", False))
        return cls(
            temperature=float(get("temperature", 1.0)) if sample else 0.0,
            top_p=float(get("top_p", 1.0)) if sample else 1.0,
            top_k=int(get("top_k", 0)) if sample else 0,
            min_p=float(get("min_p", 0.0)) if sample else 0.0,
            repetition_penalty=float(get("repetition_penalty", 1.0)),
        )


def unsupported_settings(generation_config: Any) -> dict[str, Any]:
    """The fields of ``generation_config`` set to something this module cannot reproduce."""
    found = {}
    for name, off in _UNSUPPORTED.items():
        value = getattr(generation_config, name, None)
        empty = isinstance(value, list | tuple | dict) and not value
        if value is None or empty or value == off:
            continue
        found[name] = value
    return found


def sampling_settings(generation_config: Any) -> dict[str, Any]:
    """The sampling fields of ``generation_config`` that differ from a neutral distribution."""
    neutral = {"repetition_penalty": 1.0, "min_p": 0.0, "top_p": 1.0, "top_k": 0}
    found = {
        name: getattr(generation_config, name)
        for name, off in neutral.items()
        if getattr(generation_config, name, None) not in (None, off)
    }
    if getattr(generation_config, "do_sample", None):
        found["do_sample"] = True
        if getattr(generation_config, "temperature", None) not in (None, 1.0):
            found["temperature"] = generation_config.temperature
    return {**found, **unsupported_settings(generation_config)}


def process_logits(
    logits: torch.Tensor,
    config: SamplingConfig,
    *,
    penalized: torch.Tensor | None = None,
    counts: torch.Tensor | None = None,
    keep: torch.Tensor | None = None,
) -> torch.Tensor:
    """The float32 scores sampled from: ``softmax(process_logits(...))`` is the distribution.

    Args:
        logits: ``[..., vocab]`` raw logits (any dtype; upcast to float32 first).
        config: the sampling settings.
        penalized: ``[..., vocab]`` bool, the tokens in each position's context (needed when
            ``config.repetition_penalty != 1``).
        counts: ``[..., vocab]`` float, how often each token was generated so far in this
            action (needed for the frequency/presence penalties).
        keep: ``[...]`` token ids never masked out by top-k/top-p/min-p (the scored tokens).
    """
    scores = logits.float()
    if config.repetition_penalty != 1.0:
        if penalized is None:
            raise ValueError("repetition_penalty needs the `penalized` context mask")
        penalty = config.repetition_penalty
        scores = torch.where(
            penalized, torch.where(scores > 0, scores / penalty, scores * penalty), scores
        )
    if config.counts_generated:
        if counts is None:
            raise ValueError("frequency/presence penalties need the generated-token `counts`")
        scores = scores - config.frequency_penalty * counts
        scores = scores - config.presence_penalty * (counts > 0).to(scores.dtype)
    if config.greedy:
        return scores
    if config.temperature != 1.0:
        scores = scores / config.temperature
    truncations = (config.top_k > 0, config.top_p < 1.0, config.min_p > 0.0)
    if not any(truncations):
        return scores
    keep_mask = None
    if keep is not None:
        keep_mask = torch.zeros_like(scores, dtype=torch.bool).scatter_(-1, keep[..., None], True)
    with torch.no_grad():
        masked = scores.detach()
        remove = torch.zeros_like(masked, dtype=torch.bool)
        if config.top_k > 0 and config.top_k < masked.shape[-1]:
            kth = torch.topk(masked, config.top_k, dim=-1).values[..., -1:]
            remove |= masked < kth
            masked = _drop(masked, remove, keep_mask)
        if config.top_p < 1.0:
            ordered = torch.sort(masked, dim=-1, descending=True).values
            probs = ordered.softmax(-1)
            # Keep the shortest prefix whose mass reaches top_p: a token stays while the mass
            # before it is below top_p (the top token always stays).
            count = ((probs.cumsum(-1) - probs) < config.top_p).sum(-1, keepdim=True)
            cutoff = ordered.gather(-1, count.clamp(min=1) - 1)
            remove |= masked < cutoff
            masked = _drop(masked, remove, keep_mask)
        if config.min_p > 0.0:
            probs = masked.softmax(-1)
            remove |= probs < config.min_p * probs.amax(-1, keepdim=True)
        if keep_mask is not None:
            remove &= ~keep_mask
    return scores.masked_fill(remove, float("-inf"))


def _drop(scores: torch.Tensor, remove: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    return scores.masked_fill(remove if keep is None else remove & ~keep, float("-inf"))


def context_presence(ids: torch.Tensor, valid: torch.Tensor, vocab: int) -> torch.Tensor:
    """``[rows, vocab]`` bool: which tokens occur among the ``valid`` columns of ``ids``."""
    counts = torch.zeros(ids.shape[0], vocab, device=ids.device, dtype=torch.float32)
    return counts.scatter_add_(1, ids, valid.to(torch.float32)) > 0


def teacher_forced_presence(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, width: int, vocab: int
) -> torch.Tensor:
    """``[rows, width, vocab]`` bool: the tokens before each of the last ``width`` columns.

    Column ``j`` of the result is the context of the token at input column ``total - width + j``
    (every non-padding token to its left), i.e. what a repetition penalty saw when it was sampled.
    """
    rows, total = input_ids.shape
    columns = torch.arange(total, device=input_ids.device).expand(rows, total)
    columns = columns.masked_fill(attention_mask == 0, total)
    first = torch.full((rows, vocab), total, device=input_ids.device, dtype=torch.long)
    first.scatter_reduce_(1, input_ids, columns, reduce="amin", include_self=True)
    targets = torch.arange(total - width, total, device=input_ids.device)
    return first[:, None, :] < targets[None, :, None]


def generated_counts(ids: torch.Tensor, start: int, vocab: int) -> torch.Tensor:
    """``[rows, vocab]``: how often each token occurs in ``ids[:, start:]`` (generated so far)."""
    counts = torch.zeros(ids.shape[0], vocab, device=ids.device, dtype=torch.float32)
    generated = ids[:, start:]
    return counts.scatter_add_(1, generated, torch.ones_like(generated, dtype=torch.float32))


def teacher_forced_counts(
    targets: torch.Tensor, completion_mask: torch.Tensor, vocab: int
) -> torch.Tensor:
    """``[rows, width, vocab]``: for each completion position ``j``, how often each token occurs
    among the completion tokens before it (``targets[:, :j]`` where ``completion_mask``)."""
    rows, width = targets.shape
    before = torch.ones(width, width, device=targets.device, dtype=torch.bool).tril(-1)
    source = (before[None] & completion_mask[:, None, :].bool()).to(torch.float32)
    index = targets[:, None, :].expand(rows, width, width)
    counts = torch.zeros(rows, width, vocab, device=targets.device, dtype=torch.float32)
    return counts.scatter_add_(-1, index, source)
