"""Tiny causal LMs built offline: a locally trained tokenizer plus a 2-layer transformers model.

Tests and demos need a *real* transformers model (chat template, ``generate``, ``from_pretrained``)
without downloading weights. :func:`build_tiny_model` makes one in seconds:

1. a corpus of env text: the instructions, observations and actions of a few random-policy
   episodes of the given env ids (rolled out with :func:`turngym.rollout`);
2. a byte-level BPE tokenizer trained on that corpus with ``tokenizers`` (so every action of a
   small env is a couple of tokens), wrapped as a ``PreTrainedTokenizerFast`` with a chat template;
3. a 2-layer ``LlamaForCausalLM`` from a ``LlamaConfig``, optionally warmed up by behaviour cloning
   of the random policy (the loss covers the assistant turns only; with ``prompt_template`` one
   row per decision, on the prompt :class:`~turngym.agents.hf.HFPolicy` shows), so that it
   starts out answering with valid but *uninformed* actions, the usual starting point of RL
   after SFT;
4. ``save_pretrained`` of both, loadable with ``from_pretrained`` under ``HF_HUB_OFFLINE=1``.

    >>> from turngym.agents.tiny import build_tiny_model       # doctest: +SKIP
    >>> path = build_tiny_model("/tmp/tiny", env_ids=["turngym/Corridor-v0"])  # doctest: +SKIP
    >>> policy = turngym.agents.HFPolicy.from_pretrained(path)  # doctest: +SKIP

:func:`tiny_model_dir` does the same through the verified turngym cache.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["CHAT_TEMPLATE", "SPECIAL_TOKENS", "build_tiny_model", "tiny_model_dir"]

#: Role markers and the end-of-turn token (also the EOS and PAD token) of the tiny tokenizer.
SPECIAL_TOKENS = ("<|pad|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>")

#: A minimal chat template: ``<|role|>content<|end|>`` per message, ``<|assistant|>`` to answer.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}<|end|>"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


class _MixedPolicy:
    """Each turn, the env's expert with probability ``fraction``, else a random admissible action."""

    def __init__(self, env_id: str, fraction: float, seed: int) -> None:
        import numpy as np

        from turngym.agents.expert import expert
        from turngym.agents.random import RandomPolicy

        self.random = RandomPolicy(seed=seed)
        self.expert = expert(env_id) if fraction > 0 else None
        self.privileged = bool(getattr(self.expert, "privileged", False))
        self.fraction = fraction
        self.rng = np.random.default_rng(seed)
        #: ``(messages, admissible actions, action)`` of every decision, as the policy saw it.
        self.decisions: list[tuple[list[dict[str, str]], list[str] | None, str]] = []

    def act(self, batch: list[Any]) -> list[str]:
        from turngym.policy import call_policy

        actions = [a.text for a in call_policy(self.random, batch)]
        if self.expert is not None:
            expert_actions = [a.text for a in call_policy(self.expert, batch)]
            actions = [
                e if self.rng.random() < self.fraction else r
                for e, r in zip(expert_actions, actions, strict=True)
            ]
        for conversation, action in zip(batch, actions, strict=True):
            messages = [dict(message) for message in conversation.messages]
            self.decisions.append((messages, conversation.admissible_actions, action))
        return actions


def _corpus(
    env_ids: Sequence[str],
    episodes: int,
    env_kwargs: dict[str, Any],
    seed: int,
    expert_fraction: float,
) -> tuple[list[Any], list[tuple[list[dict[str, str]], list[str] | None, str]]]:
    import turngym

    trajectories, decisions = [], []
    for env_id in env_ids:
        policy = _MixedPolicy(env_id, expert_fraction, seed)
        trajectories += turngym.rollout(
            env_id,
            policy,
            num_episodes=episodes,
            seed=seed,
            env_kwargs=env_kwargs,
            progress=False,
        )
        decisions += policy.decisions
    return trajectories, decisions


def _chats(trajectories: list[Any]) -> list[list[dict[str, str]]]:
    """Each trajectory as the chat the policy saw, ending with its last action."""
    chats = []
    for trajectory in trajectories:
        messages = (
            [{"role": "system", "content": trajectory.instructions}]
            if trajectory.instructions
            else []
        )
        for turn in trajectory.turns:
            messages.append({"role": "user", "content": turn.observation})
            messages.append({"role": "assistant", "content": turn.action})
        chats.append(messages)
    return chats


def _train_tokenizer(texts: list[str], vocab_size: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    # No regex pre-split: merges may cross spaces, so frequent phrases ("go east", "to the west")
    # become single tokens. That keeps actions short and puts the task's key fact in one token.
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|end|>",
        pad_token="<|pad|>",
        additional_special_tokens=list(SPECIAL_TOKENS[2:]),
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.padding_side = "left"
    return tokenizer


def _chat_rows(tokenizer: Any, chats: list[list[dict[str, str]]]) -> list[tuple[list, list]]:
    """One row per episode chat; the labels cover its assistant turns."""
    assistant = tokenizer.convert_tokens_to_ids("<|assistant|>")
    end = tokenizer.eos_token_id
    rows = []
    for chat in chats:
        ids = tokenizer(
            tokenizer.apply_chat_template(chat, tokenize=False), add_special_tokens=False
        )["input_ids"]
        labels, inside = [], False
        for token in ids:
            labels.append(token if inside else -100)
            if token == assistant:
                inside = True
            elif token == end:
                inside = False
        rows.append((ids[:512], labels[:512]))
    return rows


def _decision_rows(
    tokenizer: Any,
    decisions: list[tuple[list[dict[str, str]], list[str] | None, str]],
    template: Any,
) -> list[tuple[list, list]]:
    """One row per decision: the prompt ``HFPolicy`` shows (``template``), then the action and
    the end-of-turn token; the labels cover the action only."""
    end = [tokenizer.eos_token_id]
    rows = []
    for messages, admissible, action in decisions:
        prompt = template.prompt_ids(tokenizer, messages, admissible)
        answer = list(tokenizer(action, add_special_tokens=False)["input_ids"]) + end
        rows.append(((prompt + answer)[-512:], ([-100] * len(prompt) + answer)[-512:]))
    return rows


def _warm_up(
    model: Any, tokenizer: Any, rows: list[tuple[list, list]], steps: int, batch: int, seed: int
) -> None:
    """Behaviour cloning on ``rows`` of ``(ids, labels)`` (AdamW, ``batch`` rows a step)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        picks = torch.randint(len(rows), (batch,), generator=generator).tolist()
        width = max(len(rows[i][0]) for i in picks)
        input_ids = torch.full((len(picks), width), tokenizer.pad_token_id)
        labels = torch.full((len(picks), width), -100)
        mask = torch.zeros((len(picks), width), dtype=torch.long)
        for row, i in enumerate(picks):
            ids, target = rows[i]
            input_ids[row, : len(ids)] = torch.tensor(ids)
            labels[row, : len(ids)] = torch.tensor(target)
            mask[row, : len(ids)] = 1
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def build_tiny_model(
    path: str | os.PathLike,
    *,
    env_ids: Sequence[str] = ("turngym/Corridor-v0",),
    env_kwargs: dict[str, Any] | None = None,
    episodes: int = 64,
    extra_texts: Sequence[str] = (),
    vocab_size: int = 512,
    hidden_size: int = 64,
    num_layers: int = 2,
    warmup_steps: int = 60,
    expert_fraction: float = 0.0,
    seed: int = 0,
    model_vocab_size: int | None = None,
    generation_config: dict[str, Any] | None = None,
    prompt_template: dict[str, Any] | None = None,
) -> Path:
    """Builds, saves and returns the folder of a tiny chat model for ``env_ids``.

    Args:
        path: output folder (created); loadable with ``AutoModelForCausalLM.from_pretrained``.
        env_ids: envs whose random-policy episodes make up the tokenizer corpus and warm-up data.
        env_kwargs: keyword arguments for ``turngym.make`` of every env id.
        episodes: random-policy episodes per env id.
        extra_texts: more text for the tokenizer corpus.
        vocab_size: BPE vocabulary size (special tokens included).
        hidden_size: model width (heads of 16 dimensions).
        num_layers: transformer layers.
        warmup_steps: behaviour-cloning steps on the random policy's actions (0: untrained model,
            whose outputs are mostly invalid actions).
        expert_fraction: share of the corpus actions taken by the env's expert instead of the
            random policy, so the warmed-up model starts weakly informed (0: uninformed).
        seed: seeds the corpus rollouts, the initial weights and the warm-up batches.
        model_vocab_size: rows of the embedding and LM head when larger than the tokenizer's
            vocabulary (real models pad it: Qwen2.5 has 151,665 tokens and 151,936 rows), e.g.
            to measure what a large vocabulary costs; the extra ids decode to nothing.
        generation_config: fields saved in the model's ``generation_config.json`` (e.g.
            ``{"do_sample": True, "repetition_penalty": 1.3}``, as many hub models ship).
        prompt_template: :class:`~turngym.agents.prompts.PromptTemplate` fields (``{}`` for
            the default template): the warm-up then trains one row per decision on the prompt
            ``HFPolicy`` shows with that template (SFT in the RL prompt format). None keeps the
            earlier warm-up on whole episode chats without the template (the cached test
            models, whose learning tests were tuned on it).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    from turngym.agents.prompts import PromptTemplate

    template = None if prompt_template is None else PromptTemplate.from_dict(prompt_template)
    trajectories, decisions = _corpus(
        list(env_ids), episodes, dict(env_kwargs or {}), seed, expert_fraction
    )
    chats = _chats(trajectories)
    texts = [message["content"] for chat in chats for message in chat] + list(extra_texts)
    # The template's own text (e.g. the admissible-action list) belongs to the corpus too.
    texts += (
        []
        if template is None
        else [
            template.messages(m, a)[-1]["content"]
            for m, a, _ in decisions[:: max(1, len(decisions) // 64)]
        ]
    )
    tokenizer = _train_tokenizer(texts, vocab_size)
    torch.manual_seed(seed)
    if model_vocab_size is not None and model_vocab_size < len(tokenizer):
        raise ValueError(
            f"model_vocab_size={model_vocab_size} is smaller than the tokenizer's "
            f"{len(tokenizer)} tokens; give at least {len(tokenizer)} or None"
        )
    config = LlamaConfig(
        vocab_size=model_vocab_size or len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=max(1, hidden_size // 16),
        num_key_value_heads=max(1, hidden_size // 32),
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    if warmup_steps:
        if template is None:
            _warm_up(model, tokenizer, _chat_rows(tokenizer, chats), warmup_steps, 16, seed)
        else:
            rows = _decision_rows(tokenizer, decisions, template)
            _warm_up(model, tokenizer, rows, warmup_steps, 32, seed)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    for name, value in (generation_config or {}).items():
        setattr(model.generation_config, name, value)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "turngym_tiny.json").write_text(
        json.dumps(
            {
                "env_ids": list(env_ids),
                "env_kwargs": env_kwargs or {},
                "seed": seed,
                "warmup_steps": warmup_steps,
                "expert_fraction": expert_fraction,
                "vocab_size": len(tokenizer),
                "model_vocab_size": config.vocab_size,
                "generation_config": generation_config or {},
                "prompt_template": prompt_template,
            },
            indent=1,
            default=str,
        )
    )
    return path


def tiny_model_dir(**kwargs: Any) -> Path:
    """:func:`build_tiny_model` through the verified cache (built once per distinct arguments)."""
    from turngym.cache import cached_dir
    from turngym.core import stable_hash

    key = "tiny-" + stable_hash({**kwargs, "version": 1}, length=12)
    return cached_dir("models", key, lambda folder: build_tiny_model(folder, **kwargs))
