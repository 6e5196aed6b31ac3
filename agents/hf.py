"""``HFPolicy``: a transformers causal LM as a turngym policy.

Each ``act`` call renders every conversation with the tokenizer's chat template, left-pads the
batch and samples all answers in one ``generate`` call (temperature, top-p, ``max_new_tokens``).
It returns :class:`turngym.GeneratedAction` objects carrying the prompt token ids, the action's
token ids (the end-of-turn token included when the model emitted it) and their log-probabilities
under the sampling distribution ``softmax(logits / temperature)``, which is what the learner needs.

The model's text goes to the env as it is (empty, huge or malformed): the env answers it.

    >>> policy = HFPolicy.from_pretrained("Qwen/Qwen2.5-0.5B-Instruct")  # doctest: +SKIP
    >>> trajs = turngym.rollout("turngym/Corridor-v0", policy, num_episodes=8)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

import torch

from turngym.error import InvalidArgumentError
from turngym.policy import Conversation, GeneratedAction

__all__ = ["HFPolicy", "default_device", "render_prompt"]


def default_device() -> torch.device:
    """CUDA when a GPU is visible, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def render_prompt(
    tokenizer: Any, messages: list[dict[str, str]], max_prompt_tokens: int | None = None
) -> list[int]:
    """Token ids of ``messages`` through the chat template, ready for the assistant's answer.

    Without a chat template the messages are joined as ``role: content`` lines. When
    ``max_prompt_tokens`` is set, the oldest tokens are dropped (the latest turns matter most).
    """
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if max_prompt_tokens is not None and len(ids) > max_prompt_tokens:
        ids = ids[-max_prompt_tokens:]
    return ids


class HFPolicy:
    """Samples actions from a transformers causal LM.

    Args:
        model: a ``PreTrainedModel`` with a causal LM head.
        tokenizer: its tokenizer (a chat template is used when it has one).
        temperature: sampling temperature; 0 means greedy decoding.
        top_p: nucleus sampling mass in (0, 1].
        max_new_tokens: the longest action in tokens.
        max_prompt_tokens: keep at most this many prompt tokens (the most recent ones).
        device: where the model runs (default: CUDA when present, else CPU).
        seed: seeds a private generator so sampling is reproducible.
    """

    privileged = False

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 64,
        max_prompt_tokens: int | None = None,
        device: str | torch.device | None = None,
        seed: int | None = None,
    ) -> None:
        if temperature < 0:
            raise InvalidArgumentError(f"temperature={temperature} must be >= 0 (0 = greedy)")
        if not 0 < top_p <= 1:
            raise InvalidArgumentError(f"top_p={top_p} must be in (0, 1]")
        if max_new_tokens < 1:
            raise InvalidArgumentError(f"max_new_tokens={max_new_tokens} must be >= 1")
        self.device = torch.device(device) if device is not None else default_device()
        self.model = model.to(self.device)
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.temperature = temperature
        self.top_p = top_p
        self.max_new_tokens = max_new_tokens
        self.max_prompt_tokens = max_prompt_tokens
        self.seed = seed
        self._calls = 0
        stops = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        stops = [stops] if isinstance(stops, int) else list(stops or [])
        #: Tokens that end an action (the tokenizer's EOS and the model's generation EOS ids).
        self.stop_token_ids = sorted({*stops, tokenizer.eos_token_id} - {None})

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike, *, dtype: Any = None, **kwargs: Any
    ) -> HFPolicy:
        """Loads model and tokenizer from a folder or hub name (``HF_HUB_OFFLINE=1`` works).

        ``dtype`` defaults to bfloat16 on CUDA and float32 on CPU; other keyword arguments go to
        the constructor.
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = torch.device(kwargs.get("device") or default_device())
        if dtype is None:
            dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
        model.eval()
        return cls(model, tokenizer, **kwargs)

    def prompt_ids(self, conversation: Conversation) -> list[int]:
        """The prompt token ids the policy generates from for ``conversation``."""
        return render_prompt(self.tokenizer, conversation.messages, self.max_prompt_tokens)

    @torch.no_grad()
    def act(self, batch: list[Conversation]) -> list[GeneratedAction]:
        """One sampled action per conversation, with token ids and log-probabilities."""
        if not batch:
            return []
        prompts = [self.prompt_ids(conversation) for conversation in batch]
        width = max(len(ids) for ids in prompts)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, ids in enumerate(prompts):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, width - len(ids) :] = 1
        if self.seed is not None:
            torch.manual_seed(self.seed + self._calls)
        self._calls += 1
        greedy = self.temperature == 0
        was_training = self.model.training
        self.model.eval()
        output = self.model.generate(
            input_ids=input_ids.to(self.device),
            attention_mask=attention_mask.to(self.device),
            do_sample=not greedy,
            temperature=None if greedy else self.temperature,
            top_p=None if greedy else self.top_p,
            top_k=0,  # no top-k cut: sample from softmax(logits / T) with top-p only
            max_new_tokens=self.max_new_tokens,
            pad_token_id=pad,
            eos_token_id=self.stop_token_ids,
            return_dict_in_generate=True,
            output_logits=True,
        )
        self.model.train(was_training)
        new_tokens = output.sequences[:, width:].cpu()
        logits = torch.stack(output.logits, dim=1).float().cpu()  # [batch, new, vocab], raw
        logprobs = torch.log_softmax(logits / (self.temperature or 1.0), dim=-1)
        token_logprobs = logprobs.gather(-1, new_tokens.unsqueeze(-1)).squeeze(-1)
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
                    logprobs=token_logprobs[row, :length].tolist(),
                    prompt_token_ids=ids,
                )
            )
        return actions
