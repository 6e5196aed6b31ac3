"""The orchestra's text: the board the orchestrator reads, instructions, action parsing, specs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from turngym.error import InvalidArgumentError, UnknownEnvError

__all__ = [
    "DELEGATE",
    "ECHO_CHARS",
    "MAX_SUBTASK_DIGITS",
    "ORCHESTRATOR",
    "Command",
    "Subtask",
    "idle_text",
    "member_specs",
    "echo",
    "one_line",
    "orchestrator_instructions",
    "parse_command",
    "parse_delegations",
    "parse_subtask_number",
    "render_board",
    "worker_instructions",
]

ORCHESTRATOR = "orchestrator"
DESCRIPTION_CHARS = 400  # a subtask's description: its member's first observation, cut here
REPORT_CHARS = 300  # the tail of a finished worker's last observation in its report
ECHO_CHARS = 40  # at most this much of an agent's text is echoed back in feedback
MAX_SUBTASK_DIGITS = 6  # a subtask number longer than this is not one (bounded int parsing)
#: One delegation, as a pattern for *trusted* text (e.g. an admissible action with
#: ``fullmatch``). Agent text is parsed by :func:`parse_delegations`, which is linear.
DELEGATE = re.compile(r"delegate\[([a-z0-9_]+), ([0-9]+)\]")
_KEYWORD = "delegate"


def parse_delegations(action: str) -> tuple[list[tuple[str, str]], str]:
    """Splits ``action`` into ``delegate[<worker>, <number>]`` pairs and the text left over.

    A single left-to-right scan with ``str.find`` (no regex backtracking): each character is
    looked at a bounded number of times, so a 100k-character action parses in milliseconds.
    Keyword matching is case-insensitive; worker and number are stripped of whitespace. A
    bracket with no comma, or a ``delegate[`` never closed, stays in the leftover text.

    >>> parse_delegations("delegate[shop_0, 1] DELEGATE [ search_0 ,2 ]")
    ([('shop_0', '1'), ('search_0', '2')], '')
    >>> parse_delegations("delegate[shop_0 1] hello")
    ([], 'delegate[shop_0 1] hello')
    """
    lowered = action.lower()  # same length as ``action`` for the cased letters of "delegate"
    if len(lowered) != len(action):  # a few exotic characters change length when lowered
        lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in action)
    delegations: list[tuple[str, str]] = []
    leftover: list[str] = []
    position = 0
    while True:
        start = lowered.find(_KEYWORD, position)
        if start < 0:
            break
        cursor = start + len(_KEYWORD)
        while cursor < len(action) and action[cursor].isspace():
            cursor += 1
        if cursor >= len(action) or action[cursor] != "[":
            leftover.append(action[position:cursor])
            position = cursor
            continue
        close = action.find("]", cursor)
        if close < 0:  # no "]" anywhere after: no later delegation can close either
            break
        body = action[cursor + 1 : close]
        comma = body.find(",")
        if comma < 0:
            leftover.append(action[position : close + 1])
        else:
            leftover.append(action[position:start])
            delegations.append((body[:comma].strip(), body[comma + 1 :].strip()))
        position = close + 1
    leftover.append(action[position:])
    return delegations, " ".join(
        part.strip(" \n\t;,.") for part in leftover if part.strip(" \n\t;,.")
    )


def parse_subtask_number(text: str, count: int) -> int | None:
    """``text`` as a 1-based subtask number in ``1..count``, or None (ASCII digits, bounded)."""
    if not text or len(text) > MAX_SUBTASK_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 1 <= number <= count else None


def one_line(text: str) -> str:
    """A member's observation as one board line: whitespace collapsed, WebShop's ``[SEP]``
    separators shown as ``|`` (an LLM should not read tokenizer-like markers)."""
    return " ".join(text.replace("[SEP]", "|").split())


def echo(text: str) -> str:
    """``text`` quoted for feedback, cut to :data:`ECHO_CHARS` (an agent controls its length)."""
    return repr(text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS] + "...")


@dataclass
class Subtask:
    """One subtask of the team task and where it stands."""

    family: str
    task_id: str
    seed: int
    description: str
    status: str = "pending"  # pending | running | done
    worker: str | None = None
    outcome: float = 0.0
    success: bool = False
    report: str = ""
    turns: int = 0  # worker turns (member env steps) it ran
    golds: list[str] = field(default_factory=list)  # compose mode: the member's golden answers
    answer: str = ""  # the worker's final answer (the member's info["answer"]), when it gave one


def render_board(
    turn: int,
    max_turns: int,
    subtasks: list[Subtask],
    worker_family: dict[str, str],
    busy: dict[str, int | None],
    events: list[str],
) -> str:
    """The orchestrator's view: subtasks with family, description and status; workers; reports."""
    lines = [f"Team turn {turn} of {max_turns}. Subtasks:"]
    for number, sub in enumerate(subtasks, 1):
        if sub.status == "pending":
            status = "pending"
        elif sub.status == "running":
            status = f"running on {sub.worker}"
        else:
            verdict = "success" if sub.success else "failure"
            status = f"done by {sub.worker}: outcome {sub.outcome:.2f} ({verdict})"
        lines.append(f"{number}. [{sub.family}] {sub.description} -- {status}")
    lines.append("Workers:")
    for agent, family in worker_family.items():
        index = busy.get(agent)
        state = "idle" if index is None else f"busy with subtask {index + 1}"
        lines.append(f"- {agent} ({family}): {state}")
    if events:
        lines.append("Reports:")
        lines += [f"- {event}" for event in events]
    return "\n".join(lines)


def orchestrator_instructions(
    max_turns: int, auto_finish: bool = True, compose: bool = False
) -> str:
    """The orchestrator's instructions (its system prompt)."""
    if compose:
        finish = (
            "finish[<answer 1>; <answer 2>; ...] (end the team task with the team's answer: "
            "the workers' answers to the subtasks, in subtask order, separated by ';')"
        )
    else:
        finish = "finish (end the team task now; unfinished subtasks score 0)"
    ending = (
        "The task ends by itself when every subtask is done."
        if auto_finish
        else "Only you can end the task: finish once every subtask is done, neither earlier "
        "nor later."
    )
    return (
        "You are the orchestrator of a team of specialist workers. Each subtask on the board "
        "has a family in brackets; only a worker of that family (named <family>_<i>) can do "
        "it. Workers act in parallel, one turn each per team turn, and report when they "
        "finish. Actions (one line): delegate[<worker>, <subtask number>] (several in one "
        "line are allowed, e.g. delegate[shop_0, 1] delegate[search_0, 2]), wait, or "
        f"{finish}. {ending} The team scores the mean outcome of its subtasks. The team has "
        f"{max_turns} turns."
    )


@dataclass
class Command:
    """The orchestrator's action, parsed: what kind, and its delegations or final answer."""

    kind: str  # "wait" | "finish" | "delegate" | "invalid"
    delegations: list[tuple[str, str]] = field(default_factory=list)
    answer: str | None = None  # the body of finish[...] (compose mode)


def parse_command(action: str, compose: bool = False) -> Command:
    """Parses an orchestrator action in linear time (see :func:`parse_delegations`).

    >>> parse_command(" Wait. ").kind
    'wait'
    >>> parse_command("finish[Paris; 1912]", compose=True).answer
    'Paris; 1912'
    >>> parse_command("finish[Paris]").kind  # an answer only in compose mode
    'invalid'
    """
    stripped = action.strip()
    command = stripped.lower()
    if command in ("wait", "wait."):
        return Command("wait")
    if command in ("finish", "finish."):
        return Command("finish", answer="" if compose else None)
    if compose and command.startswith("finish") and command.endswith("]"):
        body = stripped[len("finish") :].lstrip()
        if body.startswith("["):
            return Command("finish", answer=body[1:-1].strip())
    delegations, leftover = parse_delegations(action)
    if not delegations or leftover:
        return Command("invalid")
    return Command("delegate", delegations)


def worker_instructions(agent: str, family: str) -> str:
    """A worker's instructions until its first subtask."""
    return (
        f"You are {agent}, a {family} worker. The orchestrator sends you "
        "subtasks; each arrives with its own instructions. While you have none, your actions "
        "are ignored (answer: wait)."
    )


def idle_text(agent: str) -> str:
    """What an idle worker sees."""
    return f"{agent}: no subtask assigned; waiting for the orchestrator."


def member_specs(
    members: Mapping[str, str | tuple[str, Mapping[str, Any]]],
) -> dict[str, tuple[str, dict[str, Any]]]:
    from turngym.registration import check_env_id

    if not isinstance(members, Mapping) or not members:
        raise InvalidArgumentError(
            "members must map family names to turngym env ids (or (id, kwargs) pairs), e.g. "
            "{'shop': 'turngym/WebShop-Small-v0'}."
        )
    specs = {}
    for family, spec in members.items():
        if not re.fullmatch(r"[a-z][a-z0-9]*", str(family)):
            raise InvalidArgumentError(
                f"family name {family!r} must be lowercase letters and digits (it names workers)."
            )
        env_id, kwargs = (spec, {}) if isinstance(spec, str) else (spec[0], dict(spec[1]))
        try:
            check_env_id(env_id)
        except UnknownEnvError as error:
            raise InvalidArgumentError(f"members[{family!r}]: {error}") from error
        specs[str(family)] = (env_id, kwargs)
    return specs
