"""The policy protocol: ``act(batch of conversations) -> list of actions``.

Any object with an ``act`` method of that signature, or any plain callable, is a policy. A policy
whose ``privileged`` attribute is True (experts, oracles) finds the env's ``info["privileged"]``
in ``Conversation.privileged``; the rollout runner gives it to no other policy.

A policy may return plain strings or :class:`GeneratedAction` objects that also carry the token
ids and log-probabilities the learner needs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from turngym.error import PolicyError

__all__ = [
    "Conversation",
    "GeneratedAction",
    "Policy",
    "WalkthroughExpert",
    "as_policy",
    "call_policy",
    "normalize_action",
]

_SPACES = re.compile(r"\s+")


def normalize_action(action: str) -> str:
    """Strips, lower-cases and collapses runs of whitespace: ``" Go  North" -> "go north"``.

    How text envs match a command to their admissible ones, and how credit hashes actions.
    """
    return _SPACES.sub(" ", str(action).strip().lower())


@dataclass
class Conversation:
    """The chat history of one live episode, as a policy sees it.

    ``messages`` is OpenAI/HF chat format: a ``system`` message with the env's instructions, then
    alternating ``user`` (observations) and ``assistant`` (the policy's earlier actions).
    """

    messages: list[dict[str, str]] = field(default_factory=list)
    admissible_actions: list[str] | None = None
    #: The latest info, without ``privileged``.
    info: dict[str, Any] = field(default_factory=dict)
    env_id: str = ""
    task_id: str = ""
    turn: int = 0
    #: The env's privileged info; filled only for policies with ``privileged = True``.
    privileged: dict[str, Any] | None = None

    @classmethod
    def start(cls, instructions: str, observation: str, **fields: Any) -> Conversation:
        """A new episode's conversation: the system instructions (when any), the first observation."""
        messages = [{"role": "system", "content": instructions}] if instructions else []
        messages.append({"role": "user", "content": observation})
        return cls(messages=messages, **fields)

    @property
    def observation(self) -> str:
        """The latest observation."""
        for message in reversed(self.messages):
            if message["role"] == "user":
                return message["content"]
        return ""

    @property
    def instructions(self) -> str:
        """The system instructions."""
        for message in self.messages:
            if message["role"] == "system":
                return message["content"]
        return ""

    @property
    def actions(self) -> list[str]:
        """The policy's earlier actions in this episode."""
        return [m["content"] for m in self.messages if m["role"] == "assistant"]


@dataclass
class GeneratedAction:
    """An action produced by a model, with what the learner needs to train on it."""

    text: str
    token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    prompt_token_ids: list[int] | None = None


@runtime_checkable
class Policy(Protocol):
    """Anything with ``act(batch) -> list[str | GeneratedAction]``, one action per conversation."""

    def act(self, batch: list[Conversation]) -> Sequence[str | GeneratedAction]: ...


def as_policy(policy: Any) -> Callable[[list[Conversation]], Sequence[str | GeneratedAction]]:
    """Returns the act function of ``policy`` (an object with ``act`` or a plain callable)."""
    if hasattr(policy, "act") and callable(policy.act):
        return policy.act
    if callable(policy):
        return policy
    raise PolicyError(
        f"{type(policy).__name__} is not a policy: give an object with an "
        "act(batch: list[Conversation]) -> list[str] method, or such a callable."
    )


def call_policy(policy: Any, batch: list[Conversation]) -> list[GeneratedAction]:
    """Calls ``policy`` on ``batch`` and checks it returned one action per conversation."""
    actions = list(as_policy(policy)(batch))
    if len(actions) != len(batch):
        raise PolicyError(
            f"{type(policy).__name__}.act returned {len(actions)} actions for {len(batch)} "
            "conversations; return exactly one action per conversation, in order."
        )
    out = []
    for index, action in enumerate(actions):
        if isinstance(action, GeneratedAction):
            out.append(action)
        elif isinstance(action, str):
            out.append(GeneratedAction(text=action))
        else:
            raise PolicyError(
                f"{type(policy).__name__}.act returned a {type(action).__name__} at index "
                f"{index}; return str or turngym.GeneratedAction."
            )
    return out


class WalkthroughExpert:
    """Plays ``info["privileged"]["walkthrough"]`` (a privileged policy; see DESIGN.md).

    While the episode's earlier actions are a prefix of the walkthrough, its next command is
    played (spelled as the admissible action that matches it). Off the walkthrough (the expert
    took over a started episode, or a command was refused) :meth:`off_walkthrough` answers.
    """

    privileged = True

    def act(self, batch: list[Conversation]) -> list[str]:
        """One command per conversation."""
        return [self._next(conversation) for conversation in batch]

    def off_walkthrough(self, privileged: dict[str, Any], conversation: Conversation) -> str:
        """The command played off the walkthrough; ``look`` (it changes nothing) by default."""
        return "look"

    def _next(self, conversation: Conversation) -> str:
        privileged = conversation.privileged or {}
        walkthrough = [normalize_action(c) for c in privileged.get("walkthrough") or []]
        admissible = {normalize_action(c): c for c in conversation.admissible_actions or []}
        done = [normalize_action(a) for a in conversation.actions]
        if len(done) < len(walkthrough) and walkthrough[: len(done)] == done:
            step = walkthrough[len(done)]
            if step in admissible or not admissible:
                return admissible.get(step, step)
        return self.off_walkthrough(privileged, conversation)
