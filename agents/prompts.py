"""Prompts: how a conversation becomes the token ids a model answers, for rollout and training.

One :class:`PromptTemplate` decides everything between a :class:`~turngym.Conversation` and the
model: the system text, how each observation is written, how the env's admissible actions are
shown, how many past turns are kept, and how a prompt that is too long is shortened.
:class:`~turngym.agents.hf.HFPolicy` renders every rollout prompt with
:meth:`PromptTemplate.prompt_ids`; the learner trains on the prompt ids recorded with each turn
and renders the contexts it scores itself (IGPO) with :func:`context_prompt_ids`, the same
template, so rollout and training prompts are the same tokens.

Shortening keeps what a model cannot act without. A conversation is a *head* (the system
message and the first user message, which states the task) followed by *turns*, each an
assistant action and the observation that followed it. ``history_length = k`` keeps the last
``k`` turns (as verl-agent's ``history_length``, which also shows the observation before the
oldest kept action: here that one goes with its turn); ``max_prompt_tokens`` then drops the
oldest remaining turns until the prompt fits. Dropped turns are announced in the task message
(``omitted``), so the model knows the history is partial. Only when the head plus the latest turn
alone exceed ``max_prompt_tokens`` are tokens cut from the middle of that minimal prompt: the
start (system message) and the end (latest observation, generation prompt) stay.

    >>> template = PromptTemplate(history_length=2)
    >>> [m["content"] for m in template.messages(
    ...     [{"role": "system", "content": "Find the exit."}, {"role": "user", "content": "start"},
    ...      {"role": "assistant", "content": "east"}, {"role": "user", "content": "wall"},
    ...      {"role": "assistant", "content": "west"}, {"role": "user", "content": "hall"},
    ...      {"role": "assistant", "content": "west"}, {"role": "user", "content": "door"}],
    ...     admissible_actions=["east", "west"])]  # doctest: +NORMALIZE_WHITESPACE
    ['Find the exit.', 'start\\n\\n[1 earlier turn omitted]', 'west', 'hall', 'west',
     'door\\n\\nAdmissible actions:\\neast\\nwest']
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from turngym.error import InvalidArgumentError

__all__ = ["PromptTemplate", "context_prompt_ids", "render_chat", "trajectory_messages"]


@dataclass(frozen=True)
class PromptTemplate:
    """How conversations are rendered into prompts (the same for rollout and training).

    Placeholders are replaced literally (other braces are left alone).

    Args:
        system: the system message; ``{instructions}`` is the env's instructions. Text without
            the placeholder replaces them (and adds a system message when the env gives none).
        observation: each user message; ``{observation}`` is the env's text.
        actions: appended to the latest observation when the env lists admissible actions;
            ``{actions}`` is the list joined by ``action_separator``. ``""`` hides them.
        action_separator: joins the admissible actions.
        omitted: appended to the task message when turns were dropped; ``{count}`` is how many
            and ``{turns}`` is "turn" or "turns".
        history_length: keep at most the last this-many turns (action + observation); None keeps
            all.
        max_prompt_tokens: the longest prompt in tokens; None means no limit.
    """

    system: str = "{instructions}"
    observation: str = "{observation}"
    actions: str = "\n\nAdmissible actions:\n{actions}"
    action_separator: str = "\n"
    omitted: str = "\n\n[{count} earlier {turns} omitted]"
    history_length: int | None = None
    max_prompt_tokens: int | None = None

    def __post_init__(self) -> None:
        for name in ("history_length", "max_prompt_tokens"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 1
            ):
                raise InvalidArgumentError(
                    f"PromptTemplate.{name}={value!r} is invalid: use a positive int or None "
                    "(history_length=1 keeps only the latest action and observation)"
                )
        for name in ("system", "observation", "actions", "action_separator", "omitted"):
            if not isinstance(getattr(self, name), str):
                raise InvalidArgumentError(f"PromptTemplate.{name} must be a string")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PromptTemplate:
        """Builds a template from a mapping of its fields; unknown keys raise a clear error."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(data or {}) - set(names))
        if unknown:
            raise InvalidArgumentError(
                f"unknown PromptTemplate field(s) {unknown}; valid fields: {', '.join(names)}"
            )
        return cls(**(data or {}))

    def messages(
        self,
        messages: list[dict[str, str]],
        admissible_actions: list[str] | None = None,
        *,
        keep_turns: int | None = None,
    ) -> list[dict[str, str]]:
        """The rendered chat: template applied, at most ``keep_turns`` (and ``history_length``)
        turns kept, the omission marked."""
        head, turns = split_turns(messages)
        limit = min(len(turns), self.history_length or len(turns))
        if keep_turns is not None:
            limit = min(limit, max(keep_turns, 1 if turns else 0))
        dropped = len(turns) - limit
        kept = [message for turn in turns[dropped:] for message in turn]
        out = [self._render(message) for message in head]
        if (
            self.system
            and "{instructions}" not in self.system
            and not any(m["role"] == "system" for m in head)
        ):
            out.insert(0, {"role": "system", "content": self.system})
        out = [m for m in out if not (m["role"] == "system" and not m["content"])]
        if dropped and out:
            marker = self.omitted.replace("{count}", str(dropped))
            marker = marker.replace("{turns}", "turn" if dropped == 1 else "turns")
            out[-1] = {**out[-1], "content": out[-1]["content"] + marker}
        out += [self._render(message) for message in kept]
        if admissible_actions and self.actions and out and out[-1]["role"] == "user":
            listed = self.action_separator.join(str(a) for a in admissible_actions)
            text = self.actions.replace("{actions}", listed)
            out[-1] = {**out[-1], "content": out[-1]["content"] + text}
        return out

    def prompt_ids(
        self,
        tokenizer: Any,
        messages: list[dict[str, str]],
        admissible_actions: list[str] | None = None,
    ) -> list[int]:
        """Token ids of the rendered conversation, ready for the assistant's answer.

        Drops the oldest turns (marked) until the prompt fits ``max_prompt_tokens``; see the
        module docstring for what happens when even the latest turn does not fit.
        """
        _, turns = split_turns(messages)
        most = min(len(turns), self.history_length or len(turns))

        def ids(keep: int) -> list[int]:
            return render_chat(
                tokenizer, self.messages(messages, admissible_actions, keep_turns=keep)
            )

        best = ids(most)
        budget = self.max_prompt_tokens
        if budget is None or len(best) <= budget:
            return best
        low, high = min(1, most), most  # find the most turns that fit (length grows with turns)
        best = ids(low)
        while low < high:
            middle = (low + high + 1) // 2
            candidate = ids(middle)
            if len(candidate) <= budget:
                low, best = middle, candidate
            else:
                high = middle - 1
        if len(best) > budget:
            front = budget // 2
            best = best[:front] + best[len(best) - (budget - front) :]
        return best

    def _render(self, message: dict[str, str]) -> dict[str, str]:
        role, content = message["role"], message["content"]
        if role == "system":
            content = self.system.replace("{instructions}", content)
        elif role == "user":
            content = self.observation.replace("{observation}", content)
        return {"role": role, "content": content}


def split_turns(
    messages: list[dict[str, str]],
) -> tuple[list[dict[str, str]], list[list[dict[str, str]]]]:
    """``(head, turns)``: the messages before the first assistant message, then one list per
    assistant message with the messages that follow it."""
    head: list[dict[str, str]] = []
    turns: list[list[dict[str, str]]] = []
    for message in messages:
        if message["role"] == "assistant":
            turns.append([message])
        elif turns:
            turns[-1].append(message)
        else:
            head.append(message)
    return head, turns


def render_chat(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """Token ids of ``messages`` through the tokenizer's chat template plus the generation
    prompt; without a chat template, ``role: content`` lines and ``assistant: ``."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:
        text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def trajectory_messages(
    trajectory: Any, upto: int
) -> tuple[list[dict[str, str]], list[str] | None]:
    """The chat after the first ``upto`` turns of a recorded trajectory, and the admissible
    actions shown with its latest observation (``None`` when not recorded)."""
    messages = (
        [{"role": "system", "content": trajectory.instructions}] if trajectory.instructions else []
    )
    messages.append({"role": "user", "content": trajectory.initial_observation})
    for index in range(upto):
        messages.append({"role": "assistant", "content": trajectory.turns[index].action})
        if index + 1 < len(trajectory.turns):
            messages.append({"role": "user", "content": trajectory.turns[index + 1].observation})
    if upto == 0:
        admissible = trajectory.metadata.get("admissible_actions")
    else:
        admissible = trajectory.turns[upto - 1].info.get("admissible_actions")
    return messages, admissible


def context_prompt_ids(
    tokenizer: Any, trajectory: Any, upto: int, template: PromptTemplate | None = None
) -> list[int]:
    """The prompt ids of a trajectory's context after ``upto`` turns (what the learner scores).

    For ``upto < len(turns)`` this is the prompt the policy answered at turn ``upto``: the
    recorded ``prompt_token_ids`` when present (exactly what was sampled from), else rendered.
    After the last turn the context is rendered with ``template``.
    """
    if upto < len(trajectory.turns) and trajectory.turns[upto].prompt_token_ids:
        return list(trajectory.turns[upto].prompt_token_ids)
    messages, admissible = trajectory_messages(trajectory, upto)
    return (template or PromptTemplate()).prompt_ids(tokenizer, messages, admissible)
