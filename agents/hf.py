"""``HFPolicy``: a transformers causal LM as a turngym policy.

Each ``act`` call renders every conversation with the policy's
:class:`~turngym.agents.prompts.PromptTemplate` (system text, observations, admissible actions,
history window, prompt budget) and the tokenizer's chat template, sorts the prompts by length,
and generates for up to ``max_batch`` of them at once, left-padded. It returns
:class:`turngym.GeneratedAction` objects carrying the prompt token ids, the action's token ids
(the end-of-turn token included when the model emitted it) and their log-probabilities.

Sampling fidelity. The policy owns one explicit :class:`~turngym.agents.sampling.SamplingConfig`
(temperature, top-k, top-p, min-p, repetition/frequency/presence penalties); nothing else shapes
the distribution.
The model's saved ``generation_config`` is set aside during ``generate`` (a warning names the
settings it would have added; ``sampling="model"`` adopts them explicitly, refusing any the
learner could not reproduce). Sampling itself happens in a logits processor that applies
:func:`~turngym.agents.sampling.process_logits`, draws each token (from the policy's private
generator when ``seed`` is set) and records that token's log-probability on the device; ``generate``
then only follows the chosen tokens. So the recorded log-probabilities are those of the
distribution actually sampled from, only ``[batch, new tokens]`` floats leave the device, and the
learner reproduces them with :func:`~turngym.agents.logprobs.completion_logprobs` and the same
``sampling``. ``return_logprobs=False`` skips them altogether.

The model's text goes to the env as it is (empty, huge or malformed): the env answers it.

    >>> policy = HFPolicy.from_pretrained("Qwen/Qwen2.5-0.5B-Instruct")  # doctest: +SKIP
    >>> trajs = turngym.rollout("turngym/Corridor-v0", policy, num_episodes=8)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from turngym.agents.prompts import PromptTemplate
from turngym.agents.sampling import (
    SamplingConfig,
    context_presence,
    generated_counts,
    process_logits,
    sampling_settings,
)
from turngym.error import InvalidArgumentError
from turngym.policy import Conversation, GeneratedAction

__all__ = ["HFPolicy", "default_device", "render_prompt"]


def default_device() -> torch.device:
    """CUDA when a GPU is visible, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def render_prompt(
    tokenizer: Any, messages: list[dict[str, str]], max_prompt_tokens: int | None = None
) -> list[int]:
    """Token ids of ``messages`` with the default :class:`PromptTemplate` (kept for callers of
    the earlier API); long prompts keep the system message and task, dropping old turns."""
    return PromptTemplate(max_prompt_tokens=max_prompt_tokens).prompt_ids(tokenizer, messages)


class _Sampler:
    """A logits processor that samples the next token itself and records its log-probability.

    It returns scores that are ``-inf`` except at the chosen token, so ``generate`` (run greedy)
    follows exactly the tokens drawn here from ``softmax(process_logits(logits))``.
    """

    def __init__(
        self,
        sampling: SamplingConfig,
        prompt_mask: torch.Tensor,
        generator: torch.Generator | None,
        record: bool,
    ) -> None:
        self.sampling = sampling
        self.prompt_mask = prompt_mask.bool()
        self.generator = generator
        self.record = record
        self.logprobs: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        penalized = counts = None
        width, vocab = self.prompt_mask.shape[1], scores.shape[-1]
        if self.sampling.repetition_penalty != 1.0:
            generated = input_ids.shape[1] - width
            valid = torch.nn.functional.pad(self.prompt_mask, (0, generated), value=True)
            penalized = context_presence(input_ids, valid, vocab)
        if self.sampling.counts_generated:
            counts = generated_counts(input_ids, width, vocab)
        processed = process_logits(scores, self.sampling, penalized=penalized, counts=counts)
        if self.sampling.greedy:
            tokens = processed.argmax(-1)
        else:
            probs = processed.softmax(-1)
            tokens = torch.multinomial(probs, 1, generator=self.generator).squeeze(-1)
        if self.record:  # only the chosen tokens' values are kept: [batch] floats per step
            chosen = processed.gather(-1, tokens[:, None]).squeeze(-1)
            self.logprobs.append(chosen - torch.logsumexp(processed, dim=-1))
        return torch.full_like(scores, float("-inf")).scatter_(-1, tokens[:, None], 0.0)


@contextmanager
def _without_saved_generation_config(model: Any):
    """Sets every (sub)model's saved generation config aside, so ``generate`` only sees ours."""
    from transformers import GenerationConfig

    saved = [
        (module, module.__dict__["generation_config"])
        for module in model.modules()
        if isinstance(module.__dict__.get("generation_config"), GenerationConfig)
    ]
    try:
        for module, _ in saved:
            module.generation_config = GenerationConfig()
        yield
    finally:
        for module, config in saved:
            module.generation_config = config


class HFPolicy:
    """Samples actions from a transformers causal LM.

    Args:
        model: a ``PreTrainedModel`` with a causal LM head.
        tokenizer: its tokenizer (a chat template is used when it has one).
        sampling: the sampling distribution: a :class:`SamplingConfig`, a dict of its fields,
            ``"model"`` (the model's saved generation config, checked to be reproducible), or
            None (built from the shortcut arguments below; all unset: plain softmax sampling).
        temperature, top_p, top_k, min_p, repetition_penalty, frequency_penalty,
            presence_penalty: shortcuts for ``sampling``.
        max_new_tokens: the longest action in tokens.
        template: how conversations become prompts (default :class:`PromptTemplate`).
        max_prompt_tokens, history_length: override the template's fields of those names.
        max_batch: most conversations per ``generate`` call (larger batches are split).
        return_logprobs: record the sampled tokens' log-probabilities (the learner's rollouts
            need them; evaluation does not).
        device: where the model runs (default: CUDA when present, else CPU).
        seed: seeds a private generator so sampling is reproducible (None: torch's global RNG).
    """

    privileged = False

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        sampling: SamplingConfig | dict[str, Any] | str | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        min_p: float | None = None,
        repetition_penalty: float | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
        max_new_tokens: int = 64,
        template: PromptTemplate | None = None,
        max_prompt_tokens: int | None = None,
        history_length: int | None = None,
        max_batch: int = 16,
        return_logprobs: bool = True,
        device: str | torch.device | None = None,
        seed: int | None = None,
    ) -> None:
        shortcuts = {
            "temperature": temperature,
            "top_p": top_p,
            "top_k": top_k,
            "min_p": min_p,
            "repetition_penalty": repetition_penalty,
            "frequency_penalty": frequency_penalty,
            "presence_penalty": presence_penalty,
        }
        shortcuts = {k: v for k, v in shortcuts.items() if v is not None}
        saved_config = getattr(model, "generation_config", None)
        if sampling is None:
            sampling = SamplingConfig(**shortcuts)
        elif shortcuts:
            raise InvalidArgumentError(
                f"give either sampling= or the shortcut arguments {sorted(shortcuts)}, not both"
            )
        elif sampling == "model":
            sampling = SamplingConfig.from_generation_config(saved_config)
        elif isinstance(sampling, dict):
            sampling = SamplingConfig(**sampling)
        if not isinstance(sampling, SamplingConfig):
            raise InvalidArgumentError(
                f"sampling={sampling!r}: give a SamplingConfig, a dict of its fields or 'model'"
            )
        ignored = sampling_settings(saved_config) if saved_config is not None else {}
        if ignored and sampling != _adopted(saved_config):
            warnings.warn(
                f"the model's saved generation config sets {ignored}; HFPolicy ignores it and "
                f"samples from {sampling} only. Pass sampling='model' to use the saved settings.",
                stacklevel=2,
            )
        if max_new_tokens < 1:
            raise InvalidArgumentError(f"max_new_tokens={max_new_tokens} must be >= 1")
        if not isinstance(max_batch, int) or max_batch < 1:
            raise InvalidArgumentError(f"max_batch={max_batch!r} must be a positive int")
        template = template or PromptTemplate()
        overrides = {"max_prompt_tokens": max_prompt_tokens, "history_length": history_length}
        overrides = {k: v for k, v in overrides.items() if v is not None}
        self.template = dataclasses.replace(template, **overrides) if overrides else template
        self.sampling = sampling
        self.device = torch.device(device) if device is not None else default_device()
        self.model = model.to(self.device)
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.max_new_tokens = max_new_tokens
        self.max_batch = max_batch
        self.return_logprobs = return_logprobs
        self.seed = seed
        self._calls = 0
        stops = getattr(saved_config, "eos_token_id", None)
        stops = [stops] if isinstance(stops, int) else list(stops or [])
        #: Tokens that end an action (the tokenizer's EOS and the model's generation EOS ids).
        self.stop_token_ids = sorted({*stops, tokenizer.eos_token_id} - {None})

    @property
    def temperature(self) -> float:
        """The sampling temperature (0 = greedy)."""
        return self.sampling.temperature

    @property
    def max_prompt_tokens(self) -> int | None:
        """The template's prompt budget in tokens."""
        return self.template.max_prompt_tokens

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike, *, dtype: Any = None, **kwargs: Any
    ) -> HFPolicy:
        """Loads model and tokenizer from a folder or hub name (``HF_HUB_OFFLINE=1`` works).

        ``dtype`` defaults to bfloat16 on CUDA and float32 on CPU; other keyword arguments go to
        the constructor.
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        text = str(path)
        local = Path(text).expanduser()
        if (local.is_absolute() or text.startswith((".", "~"))) and not local.is_dir():
            raise InvalidArgumentError(
                f"no such directory: {text}; give the folder of a saved model "
                "(save_pretrained) or a Hugging Face hub name such as 'Qwen/Qwen2.5-0.5B-Instruct'"
            )
        device = torch.device(kwargs.get("device") or default_device())
        if dtype is None:
            dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        tokenizer = AutoTokenizer.from_pretrained(text)
        model = AutoModelForCausalLM.from_pretrained(text, dtype=dtype)
        model.eval()
        return cls(model, tokenizer, **kwargs)

    @classmethod
    def for_learner(cls, model: Any, tokenizer: Any, config: Any, **kwargs: Any) -> HFPolicy:
        """The rollout policy a :class:`~turngym.agents.learner.LearnerConfig` describes."""
        from turngym.agents.learner_config import SAMPLING_FIELDS

        sampling = SamplingConfig(**{name: getattr(config, name) for name in SAMPLING_FIELDS})
        template = PromptTemplate.from_dict(
            {
                **config.prompt_template,
                "history_length": config.history_length,
                "max_prompt_tokens": config.max_prompt_tokens,
            }
        )
        return cls(
            model,
            tokenizer,
            sampling=sampling,
            template=template,
            max_new_tokens=config.max_new_tokens,
            max_batch=config.generation_batch_size,
            **kwargs,
        )

    def prompt_ids(self, conversation: Conversation) -> list[int]:
        """The prompt token ids the policy generates from for ``conversation``."""
        return self.template.prompt_ids(
            self.tokenizer, conversation.messages, conversation.admissible_actions
        )

    @torch.no_grad()
    def act(self, batch: list[Conversation]) -> list[GeneratedAction]:
        """One sampled action per conversation, with token ids and log-probabilities."""
        if not batch:
            return []
        prompts = [self.prompt_ids(conversation) for conversation in batch]
        generator = None
        if self.seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(self.seed + self._calls)
        self._calls += 1
        order = list(range(len(prompts)))
        if len(prompts) > self.max_batch:  # similar lengths share a generate call: less padding
            order.sort(key=lambda i: len(prompts[i]))
        actions: list[GeneratedAction | None] = [None] * len(prompts)
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(order), self.max_batch):
                rows = order[start : start + self.max_batch]
                generated = self._generate([prompts[i] for i in rows], generator)
                for i, action in zip(rows, generated, strict=True):
                    actions[i] = action
        finally:
            self.model.train(was_training)
        return actions  # type: ignore[return-value]

    def _generate(
        self, prompts: list[list[int]], generator: torch.Generator | None
    ) -> list[GeneratedAction]:
        from transformers import GenerationConfig, LogitsProcessorList

        width = max(len(ids) for ids in prompts)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, ids in enumerate(prompts):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, width - len(ids) :] = 1
        attention_mask = attention_mask.to(self.device)
        sampler = _Sampler(self.sampling, attention_mask, generator, self.return_logprobs)
        config = GenerationConfig(
            do_sample=False,  # the sampler draws; generate follows its one-hot scores
            num_beams=1,
            max_new_tokens=self.max_new_tokens,
            pad_token_id=pad,
            eos_token_id=self.stop_token_ids,
            use_cache=True,
        )
        with _without_saved_generation_config(self.model):
            sequences = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention_mask,
                generation_config=config,
                logits_processor=LogitsProcessorList([sampler]),
            )
        new_tokens = sequences[:, width:].cpu()
        logprobs = None
        if self.return_logprobs:
            logprobs = torch.stack(sampler.logprobs[: new_tokens.shape[1]], dim=1).float().cpu()
        actions = []
        for row, ids in enumerate(prompts):
            tokens = new_tokens[row].tolist()
            stops = [i for i, token in enumerate(tokens) if token in self.stop_token_ids]
            length = stops[0] + 1 if stops else len(tokens)  # keep the stop token: it is learned
            tokens = tokens[:length]
            actions.append(
                GeneratedAction(
                    text=self.tokenizer.decode(tokens, skip_special_tokens=True),
                    token_ids=tokens,
                    logprobs=None if logprobs is None else logprobs[row, :length].tolist(),
                    prompt_token_ids=ids,
                )
            )
        return actions


def _adopted(generation_config: Any) -> SamplingConfig | None:
    """The sampling config ``sampling='model'`` would give, or None when it is refused."""
    try:
        return SamplingConfig.from_generation_config(generation_config)
    except InvalidArgumentError:
        return None
