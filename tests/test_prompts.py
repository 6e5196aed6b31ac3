"""PromptTemplate: truncation keeps the system message and the task, history windows, admissible
actions shown, and the same prompts for rollout and training."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")

import turngym  # noqa: E402
from helpers.tiny_models import CORRIDOR_KWARGS, corridor_model  # noqa: E402
from turngym.agents.prompts import (  # noqa: E402
    PromptTemplate,
    context_prompt_ids,
    trajectory_messages,
)
from turngym.error import InvalidArgumentError  # noqa: E402

SYSTEM = "You are in a corridor. The exit is to the west. Reach it."


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(corridor_model())


def long_chat(turns: int) -> list[dict[str, str]]:
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "You are in a corridor, 0 steps from the start."},
    ]
    for turn in range(1, turns + 1):
        messages += [
            {"role": "assistant", "content": "go east" if turn % 2 else "wait"},
            {"role": "user", "content": f"You are in a corridor, {turn} steps from the start."},
        ]
    return messages


def test_truncated_prompts_start_with_the_system_message_and_keep_the_task(tokenizer):
    messages = long_chat(30)
    full = PromptTemplate().prompt_ids(tokenizer, messages)
    budget = len(full) // 3
    ids = PromptTemplate(max_prompt_tokens=budget).prompt_ids(tokenizer, messages, ["go east"])
    text = tokenizer.decode(ids)
    assert len(ids) <= budget < len(full)
    assert text.startswith(f"<|system|>{SYSTEM}<|end|>")
    assert "<|user|>You are in a corridor, 0 steps from the start." in text  # the task
    assert "earlier turns omitted]" in text
    # The newest turns stay, the oldest middle ones go.
    assert text.endswith(
        "30 steps from the start.\n\nAdmissible actions:\ngo east<|end|><|assistant|>"
    )
    assert "1 steps from the start" not in text
    # The earlier behaviour (keep the tail) would have cut the system message away.
    assert not tokenizer.decode(full[-budget:]).startswith("<|system|>")


def test_a_prompt_that_cannot_fit_is_cut_in_the_middle_keeping_both_ends(tokenizer):
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "You are in a corridor. " * 60},
    ]
    ids = PromptTemplate(max_prompt_tokens=20).prompt_ids(tokenizer, messages)
    assert len(ids) == 20
    text = tokenizer.decode(ids)
    assert text.startswith("<|system|>You") and text.endswith("<|end|><|assistant|>")


def test_history_window_keeps_the_last_turns_and_marks_the_rest():
    rendered = PromptTemplate(history_length=2).messages(long_chat(5))
    assert [m["role"] for m in rendered] == ["system", "user"] + ["assistant", "user"] * 2
    assert rendered[1]["content"].endswith("[3 earlier turns omitted]")
    assert rendered[-1]["content"] == "You are in a corridor, 5 steps from the start."
    one = PromptTemplate(history_length=1).messages(long_chat(2))
    assert one[1]["content"].endswith("[1 earlier turn omitted]")
    # Short conversations are unchanged (no marker).
    assert PromptTemplate(history_length=4).messages(long_chat(2)) == long_chat(2)


def test_admissible_actions_and_custom_text():
    chat = long_chat(1)
    shown = PromptTemplate().messages(chat, ["go east", "go west"])
    assert shown[-1]["content"].endswith("\n\nAdmissible actions:\ngo east\ngo west")
    assert "Admissible" not in shown[1]["content"]  # only with the latest observation
    assert PromptTemplate(actions="").messages(chat, ["go east"]) == chat
    custom = PromptTemplate(
        system="{instructions} Think {briefly}.",
        observation="Observation: {observation}",
        actions=" Choose one of [{actions}].",
        action_separator=", ",
    ).messages(chat, ["go east", "go west"])
    assert custom[0]["content"] == SYSTEM + " Think {briefly}."
    assert custom[-1]["content"] == (
        "Observation: You are in a corridor, 1 steps from the start. Choose one of [go east, go west]."
    )
    replaced = PromptTemplate(system="Be terse.").messages(chat[1:])
    assert replaced[0] == {"role": "system", "content": "Be terse."}


def test_bad_template_fields_raise_clear_errors():
    with pytest.raises(InvalidArgumentError, match="history_length=0"):
        PromptTemplate(history_length=0)
    with pytest.raises(InvalidArgumentError, match="unknown PromptTemplate field"):
        PromptTemplate.from_dict({"sytem": "x"})


def test_rollout_prompts_are_what_training_renders_from_the_trajectory(tokenizer):
    from turngym.agents.hf import HFPolicy

    policy = HFPolicy.from_pretrained(
        corridor_model(),
        max_new_tokens=4,
        seed=0,
        device="cpu",
        history_length=1,
        max_prompt_tokens=60,
    )
    trajectories = turngym.rollout(
        "turngym/Corridor-v0", policy, num_episodes=4, env_kwargs=CORRIDOR_KWARGS, progress=False
    )
    checked = 0
    for trajectory in trajectories:
        for t, turn in enumerate(trajectory.turns):
            assert turn.prompt_token_ids == context_prompt_ids(
                tokenizer, trajectory, t, policy.template
            )
            if t == 0:
                continue  # the reset's admissible actions are not stored in the trajectory
            messages, admissible = trajectory_messages(trajectory, t)
            assert (
                policy.template.prompt_ids(tokenizer, messages, admissible) == turn.prompt_token_ids
            )
            checked += 1
        assert tokenizer.decode(trajectory.turns[-1].prompt_token_ids).startswith("<|system|>")
    assert checked > 0
