"""The orchestra's text: the board the orchestrator reads, instructions, action parsing, specs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from turngym.error import InvalidArgumentError, UnknownEnvError

__all__ = [
    "DELEGATE",
    "ORCHESTRATOR",
    "Subtask",
    "idle_text",
    "member_specs",
    "orchestrator_instructions",
    "render_board",
    "worker_instructions",
]

ORCHESTRATOR = "orchestrator"
DESCRIPTION_CHARS = 400  # a subtask's description: its member's first observation, cut here
REPORT_CHARS = 300  # the tail of a finished worker's last observation in its report
#: One delegation: ``delegate[<worker>, <subtask number>]``.
DELEGATE = re.compile(r"delegate\s*\[\s*([^,\]]*?)\s*,\s*([^\]]*?)\s*\]", re.IGNORECASE)


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


def orchestrator_instructions(max_turns: int) -> str:
    """The orchestrator's instructions (its system prompt)."""
    return (
        "You are the orchestrator of a team of specialist workers. Each subtask on the board "
        "has a family in brackets; only a worker of that family (named <family>_<i>) can do "
        "it. Workers act in parallel, one turn each per team turn, and report when they "
        "finish. Actions (one line): delegate[<worker>, <subtask number>] (several in one "
        "line are allowed, e.g. delegate[shop_0, 1] delegate[search_0, 2]), wait, or finish "
        "(end the team task now; unfinished subtasks score 0). The team scores the mean "
        f"outcome of its subtasks. The team has {max_turns} turns."
    )


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
