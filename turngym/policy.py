"""The policy protocol: ``act(batch of conversations) -> list of actions``.

Any object with an ``act`` method of that signature, or any plain callable, is a policy. A policy
whose ``privileged`` attribute is True (experts, oracles) finds the env's ``info["privileged"]``
in ``Conversation.privileged``; the rollout runner gives it to no other policy.

A policy may return plain strings or :class:`GeneratedAction` objects that also carry the token
ids and log-probabilities the learner needs, and the token ``usage`` of the request.

**Async policies.** A policy whose ``act`` is ``async def`` (or that offers ``async def act_async``
beside a sync ``act``, as :class:`~turngym.agents.openai_compat.OpenAIPolicy` does) is awaited by
the rollout runner's asynchronous mode, several calls at once up to a concurrency limit; HTTP
policies should be written this way. :func:`call_policy` (sync) also accepts an async policy and
runs it to completion.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from turngym.error import PolicyError

__all__ = [
    "AsyncPolicy",
    "Conversation",
    "GeneratedAction",
    "Policy",
    "WalkthroughExpert",
    "as_policy",
    "call_policy",
    "call_policy_async",
    "is_async_policy",
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
    #: Token counts of the request, OpenAI style: ``prompt_tokens``, ``completion_tokens``,
    #: ``total_tokens``. The rollout runner records it as ``Turn.info["usage"]``.
    usage: dict[str, int] | None = None


@runtime_checkable
class Policy(Protocol):
    """Anything with ``act(batch) -> list[str | GeneratedAction]``, one action per conversation."""

    def act(self, batch: list[Conversation]) -> Sequence[str | GeneratedAction]: ...


@runtime_checkable
class AsyncPolicy(Protocol):
    """An async-native policy (HTTP clients): ``async def act(batch) -> list[str | GeneratedAction]``.

    ``turngym.rollout(mode="async")`` awaits up to ``policy_concurrency`` such calls at once.
    """

    async def act(self, batch: list[Conversation]) -> Sequence[str | GeneratedAction]: ...


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


def is_async_policy(policy: Any) -> bool:
    """Whether ``policy`` is awaited: it has ``async def act_async`` or its act is ``async def``."""
    if inspect.iscoroutinefunction(getattr(policy, "act_async", None)):
        return True
    try:
        act = as_policy(policy)
    except PolicyError:
        return False
    call = type(act).__call__ if not inspect.isroutine(act) else None  # a callable object
    return inspect.iscoroutinefunction(act) or inspect.iscoroutinefunction(call)


def _checked(policy: Any, batch: list[Conversation], actions: Any) -> list[GeneratedAction]:
    actions = list(actions)
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


def _run_to_completion(awaitable: Awaitable[Any]) -> Any:
    """Runs a coroutine from sync code, also when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_await(awaitable))
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(_await(awaitable))
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def call_policy(policy: Any, batch: list[Conversation]) -> list[GeneratedAction]:
    """Calls ``policy`` on ``batch`` and checks it returned one action per conversation."""
    if inspect.iscoroutinefunction(getattr(policy, "act_async", None)) and not (
        hasattr(policy, "act") and not inspect.iscoroutinefunction(policy.act)
    ):
        actions = _run_to_completion(policy.act_async(batch))
    else:
        actions = as_policy(policy)(batch)
        if inspect.isawaitable(actions):
            actions = _run_to_completion(actions)
    return _checked(policy, batch, actions)


async def call_policy_async(
    policy: Any, batch: list[Conversation], *, executor: Any = None
) -> list[GeneratedAction]:
    """Awaits ``policy`` on ``batch``: ``act_async`` or an async ``act`` directly, a sync ``act``
    in ``executor`` (a thread pool; None: asyncio's default), then checks the actions."""
    act_async = getattr(policy, "act_async", None)
    if inspect.iscoroutinefunction(act_async):
        actions = await act_async(batch)
    else:
        act = as_policy(policy)
        if is_async_policy(policy):
            actions = await act(batch)
        else:
            loop = asyncio.get_running_loop()
            actions = await loop.run_in_executor(executor, act, batch)
            if inspect.isawaitable(actions):
                actions = await actions
    return _checked(policy, batch, actions)


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
