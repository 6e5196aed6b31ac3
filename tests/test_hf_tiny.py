"""build_tiny_model's options: a padded large vocabulary, a saved generation config, and a
warm-up on the very prompts HFPolicy shows (the PromptTemplate)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from turngym.agents import tiny  # noqa: E402
from turngym.agents.hf import HFPolicy  # noqa: E402
from turngym.agents.prompts import PromptTemplate  # noqa: E402
from turngym.policy import Conversation  # noqa: E402


def test_tiny_model_options_are_saved_and_the_warm_up_uses_the_policy_prompts(tmp_path):
    path = tiny.build_tiny_model(
        tmp_path / "m",
        episodes=6,
        warmup_steps=2,
        model_vocab_size=1024,
        generation_config={"do_sample": True, "repetition_penalty": 1.2},
        prompt_template={"actions": "\nChoose: {actions}", "action_separator": " | "},
    )
    with pytest.warns(UserWarning, match="repetition_penalty"):
        policy = HFPolicy.from_pretrained(path, device="cpu", max_new_tokens=3, seed=0)
    assert policy.model.config.vocab_size == 1024 > len(policy.tokenizer)
    assert policy.model.generation_config.repetition_penalty == 1.2
    saved = json.loads((path / "turngym_tiny.json").read_text())
    assert saved["model_vocab_size"] == 1024 and saved["prompt_template"]["action_separator"]
    # Ids past the tokenizer decode to nothing instead of failing.
    assert policy.tokenizer.decode([1000, 1023]) == ""

    template = PromptTemplate(actions="\nChoose: {actions}", action_separator=" | ")
    messages = [
        {"role": "system", "content": "Reach the exit."},
        {"role": "user", "content": "You are in a corridor."},
    ]
    decisions = [(messages, ["go east", "go west"], "go west")]
    ((ids, labels),) = tiny._decision_rows(policy.tokenizer, decisions, template)
    shown = HFPolicy(
        policy.model, policy.tokenizer, template=template, sampling="model", device="cpu"
    ).prompt_ids(Conversation(messages=messages, admissible_actions=["go east", "go west"]))
    assert ids[: len(shown)] == shown  # the warm-up row starts with exactly the rollout prompt
    assert labels[: len(shown)] == [-100] * len(shown)
    answer = [t for t in labels if t != -100]
    assert policy.tokenizer.decode(answer) == "go west<|end|>"
