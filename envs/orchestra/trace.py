"""Orchestration traces: the typed event log of a team episode, in the survey's schema.

:func:`turngym.envs.orchestra.rollout` records, for every team episode, a temporal interaction
graph as the orchestration-traces survey ("Reinforcement Learning for LLM-based Multi-Agent
Systems through Orchestration Traces") defines it. :func:`to_trace` exports it as a document of
the survey's JSON Schema (``trace_schema.json`` beside this file, copied from
xxzcc/awesome-llm-mas-rl, folder ``trace-schema/``, commit a14d8de); :func:`validate_trace`
checks a document against that schema with ``jsonschema`` and against the survey validator's
structural rules (unique event ids, edges between existing events, non-negative costs);
:func:`replay` plays a trace's actions again and reproduces the episode.

Events (``t``: seconds from the episode's start; ``turn``: the team turn, 0 at reset):

==========================  ======================================================================
type (agent)                when, and its extra fields
==========================  ======================================================================
``message`` (environment)   reset: the team task (``env_kwargs``, ``seed``, ``tasks``, ``workers``)
``orchestrator_decision``   each orchestrator turn: ``action`` (the text the env parsed),
(orchestrator)              ``decision`` (delegate, wait, finish = the stop decision, invalid),
                            ``valid``, ``tokens``
``spawn`` (orchestrator)    each accepted delegation: ``to`` (the worker), ``subtask``
``tool_call`` (worker)      each worker turn: ``tool`` (the member env id), ``action``,
                            ``subtask``, ``tokens``
``tool_result`` (the tool)  its result: ``reward``, ``valid``, ``content_ref`` (observation hash)
``return`` (worker)         a subtask finished: ``from``, ``to``, ``subtask``, ``outcome``,
                            ``success``
``aggregate``               the episode's end: ``outcome``, ``success``, ``answer`` (compose
(orchestrator)              mode)
==========================  ======================================================================

Edges: ``temporal`` between an agent's consecutive decisions or tool calls; ``spawn`` from a
decision to its spawns; ``causal`` from a spawn to the worker's first tool call, from a tool
result to the worker's return, and from the last decision to the aggregate; ``tool_dependency``
from a tool result to the same worker's next tool call; ``return`` from a tool call to its
result and from a return to the orchestrator's next decision (it reads the report);
``aggregate`` from every return to the aggregate.

Trace-level numbers (``rewards``, ``costs``, ``metrics``):
- ``rewards``: ``team`` (the outcome), ``orchestrator`` (its return), ``orchestration`` (the sum
  of its orchestration reward families) and ``orchestration/<family>`` for each family paid.
- ``costs``: ``tokens`` (the policies' reported usage, else their token ids; 0 for text-only
  policies), ``wall_clock_s``, ``tool_calls`` (worker turns), ``messages`` (spawns + returns).
- ``metrics``: ``task_success``; ``parallelism_efficiency`` = worker turns / (team turns x
  workers), the share of the team's worker capacity used; ``speedup`` = S / T, S the serial
  team turns of :func:`.rewards.serial_turns`; ``protocol_overhead`` = orchestrator turns per
  subtask; ``error_amplification`` = failed subtask returns that reached the team outcome per
  subtask (this env never retries, so every failure reaches it).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from turngym.envs.orchestra.board import ORCHESTRATOR
from turngym.envs.orchestra.rewards import FAMILIES, serial_turns
from turngym.error import InvalidArgumentError, missing_dependency

__all__ = [
    "EVENT_TYPES",
    "TraceError",
    "TraceRecorder",
    "build_edges",
    "load_episodes",
    "load_traces",
    "replay",
    "save_episodes",
    "save_traces",
    "to_trace",
    "trace_metrics",
    "validate_trace",
]

SCHEMA_PATH = Path(__file__).with_name("trace_schema.json")
_MISSING = object()


class TraceError(InvalidArgumentError):
    """A trace document does not validate; the message names the first failing path."""


@functools.cache
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


@functools.cache
def _validator() -> Any:
    try:
        import jsonschema
    except ImportError:
        raise missing_dependency("jsonschema", "multiagent") from None

    return jsonschema.Draft202012Validator(_schema())


def _enum(definition: str) -> tuple[str, ...]:
    return tuple(_schema()["$defs"][definition]["properties"]["type"]["enum"])


#: The event types the schema allows.
EVENT_TYPES = _enum("event")


def _ref(text: str) -> str:
    """A short content hash for ``content_ref`` (raw text stays out of the trace)."""
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=8).hexdigest()


def _tokens(action: Any) -> int:
    usage = getattr(action, "usage", None)
    if isinstance(usage, Mapping):
        total = usage.get("total_tokens")
        if isinstance(total, (int, float)):
            return int(total)
        return int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)
    return len(getattr(action, "token_ids", None) or []) + len(
        getattr(action, "prompt_token_ids", None) or []
    )


def _replay_kwargs(env: Any) -> Any:
    """The env's ``init_kwargs`` as JSON would give them back (tuples become lists), or None
    when they are not JSON-serialisable (then :func:`replay` needs the env passed in). Computed
    once per env: the recorder runs in the rollout's hot loop."""
    cached = getattr(env, "_replay_kwargs", _MISSING)
    if cached is _MISSING:
        try:
            cached = json.loads(json.dumps(getattr(env, "init_kwargs", None)))
        except (TypeError, ValueError):
            cached = None
        env._replay_kwargs = cached
    return cached  # shared by the env's episodes, never mutated


class TraceRecorder:
    """Records one team episode's events as the rollout plays it (the edges follow from the
    events and are built at export, by :func:`build_edges`, to keep the hot loop light)."""

    def __init__(self, env: Any, seed: int, started: float) -> None:
        self.started = started
        self.events: list[dict[str, Any]] = []
        self._tools = {agent: env.member_id(f) for agent, f in env.worker_family.items()}
        self._event(
            started,
            "message",
            "environment",
            turn=0,
            role="task",
            to=ORCHESTRATOR,
            env_kwargs=_replay_kwargs(env),
            seed=int(seed),
            tasks=[list(pair) for pair in env.subtasks],
            workers=dict(env.worker_family),
        )

    def _event(self, now: float, kind: str, agent: str, **fields: Any) -> None:
        event = {
            "id": f"e{len(self.events) + 1}",
            "t": max(0.0, now - self.started),
            "type": kind,
            "agent": agent,
        }
        for key, value in fields.items():
            if value is not None:
                event[key] = value
        self.events.append(event)

    def turn(
        self,
        turn: int,
        decided: float,
        stepped: float,
        generated: Mapping[str, Any],
        infos: Mapping[str, Mapping[str, Any]],
        rewards: Mapping[str, float],
        observations: Mapping[str, str],
        subtasks: Mapping[str, int | None],
        ended: bool,
    ) -> None:
        """Records team turn ``turn``: ``decided`` after the policies acted, ``stepped`` after
        the env stepped; ``generated`` holds the acting agents' actions and ``subtasks`` the
        subtask each acting worker worked on."""
        orchestrator = infos[ORCHESTRATOR]
        event, events, tools = self._event, self.events, self._tools
        # The per-turn events are dict literals appended directly: this is the rollout's hot
        # loop (see benchmarks/orchestra_speed.py for what recording costs per team turn).
        at_decision, at_step = max(0.0, decided - self.started), max(0.0, stepped - self.started)
        if ORCHESTRATOR in generated:
            action = generated[ORCHESTRATOR]
            events.append(
                {
                    "id": f"e{len(events) + 1}",
                    "t": at_decision,
                    "type": "orchestrator_decision",
                    "agent": ORCHESTRATOR,
                    "turn": turn,
                    "role": "lead",
                    "action": action.text,
                    "decision": orchestrator.get("decision"),
                    "valid": bool(orchestrator.get("valid_action")),
                    "tokens": _tokens(action),
                }
            )
        workers = [agent for agent in generated if agent != ORCHESTRATOR]
        for agent in workers:  # decided together, before the env stepped
            action = generated[agent]
            events.append(
                {
                    "id": f"e{len(events) + 1}",
                    "t": at_decision,
                    "type": "tool_call",
                    "agent": agent,
                    "turn": turn,
                    "role": "worker",
                    "tool": tools[agent],
                    "action": action.text,
                    "subtask": subtasks.get(agent),
                    "tokens": _tokens(action),
                }
            )
        for agent in workers:
            events.append(
                {
                    "id": f"e{len(events) + 1}",
                    "t": at_step,
                    "type": "tool_result",
                    "agent": tools[agent],
                    "turn": turn,
                    "tool": tools[agent],
                    "to": agent,
                    "reward": float(rewards.get(agent, 0.0)),
                    "valid": bool(infos[agent].get("valid_action")),
                    "content_ref": _ref(observations.get(agent, "")),
                }
            )
        for worker, number, outcome, success in orchestrator.get("returned", ()):
            event(
                stepped,
                "return",
                worker,
                turn=turn,
                role="worker",
                **{"from": worker, "to": ORCHESTRATOR},
                subtask=int(number),
                outcome=float(outcome),
                success=bool(success),
            )
        for worker, number in orchestrator.get("delegated", ()):
            event(stepped, "spawn", ORCHESTRATOR, turn=turn, role="lead", to=worker, subtask=number)
        if ended:
            answer = orchestrator.get("aggregation")
            event(
                stepped,
                "aggregate",
                ORCHESTRATOR,
                turn=turn,
                role="lead",
                outcome=float(orchestrator["outcome"]),
                success=bool(orchestrator["success"]),
                answer=None if answer is None else generated[ORCHESTRATOR].text,
                aggregation=answer,
            )


def build_edges(events: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The trace's edges, derived from its events in order (the rules in the module doc)."""
    edges: list[dict[str, str]] = []

    def edge(source: str | None, target: str, kind: str) -> None:
        if source is not None:
            edges.append({"src": source, "dst": target, "type": kind})

    last: dict[str, str] = {}  # agent -> its last decision / tool call
    result: dict[str, str] = {}  # worker -> its last tool result
    call: dict[str, str] = {}  # worker -> its tool call awaiting a result
    spawned: dict[str, str] = {}  # worker -> the spawn of its current subtask
    unread: list[str] = []  # returns the orchestrator has not read yet
    returns: list[str] = []
    decision: str | None = None  # the orchestrator's decision of the current turn
    for event in events:
        kind, agent, event_id = event["type"], event["agent"], event["id"]
        if kind == "message":
            last[ORCHESTRATOR] = event_id
        elif kind == "orchestrator_decision":
            edge(last.get(ORCHESTRATOR), event_id, "temporal")
            for returned in unread:
                edge(returned, event_id, "return")
            unread = []
            last[ORCHESTRATOR] = decision = event_id
        elif kind == "tool_call":
            if agent in spawned:
                edge(spawned.pop(agent), event_id, "causal")
            else:
                edge(result.get(agent), event_id, "tool_dependency")
            edge(last.get(agent), event_id, "temporal")
            last[agent] = call[agent] = event_id
        elif kind == "tool_result":
            worker = event["to"]
            edge(call.pop(worker, None), event_id, "return")
            result[worker] = event_id
        elif kind == "return":
            edge(result.get(agent), event_id, "causal")
            unread.append(event_id)
            returns.append(event_id)
        elif kind == "spawn":
            edge(decision, event_id, "spawn")
            spawned[event["to"]] = event_id
        elif kind == "aggregate":
            for returned in returns:
                edge(returned, event_id, "aggregate")
            edge(decision, event_id, "causal")
    return edges


def trace_metrics(events: list[dict[str, Any]]) -> dict[str, float]:
    """The survey's per-episode metrics, recomputed from the event log alone."""
    start = next(event for event in events if event["type"] == "message")
    final = [event for event in events if event["type"] == "aggregate"]
    calls = [event for event in events if event["type"] == "tool_call"]
    decisions = [event for event in events if event["type"] == "orchestrator_decision"]
    returns = [event for event in events if event["type"] == "return"]
    subtasks = max(1, len(start["tasks"]))
    team_turns = max((event.get("turn", 0) for event in events), default=0)
    per_subtask: dict[int, int] = {}
    for call in calls:
        if call.get("subtask") is not None:
            per_subtask[call["subtask"]] = per_subtask.get(call["subtask"], 0) + 1
    auto_finish = (start.get("env_kwargs") or {}).get("auto_finish")
    serial = serial_turns(list(per_subtask.values()), auto_finish is not False)
    workers = max(1, len(start.get("workers") or {}))
    return {
        "task_success": float(bool(final and final[-1].get("success"))),
        "team_turns": float(team_turns),
        "parallelism_efficiency": len(calls) / (team_turns * workers) if team_turns else 0.0,
        "speedup": serial / team_turns if team_turns and per_subtask else 0.0,
        "protocol_overhead": len(decisions) / subtasks,
        "error_amplification": sum(not event.get("success") for event in returns) / subtasks,
    }


def validate_trace(document: Any) -> dict[str, Any]:
    """Checks ``document`` against the schema and the survey's structural rules.

    Raises:
        TraceError: naming the first failing path (``$.events[3].type``) and, for an unknown
            event or edge type, the valid ones.
    """
    errors = sorted(_validator().iter_errors(document), key=lambda error: list(error.absolute_path))
    if errors:
        error = errors[0]
        path = "$" + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path
        )
        hint = ""
        if path.endswith(".type") and ".events[" in path:
            hint = f"; valid event types: {list(EVENT_TYPES)}"
        elif path.endswith(".type") and ".edges[" in path:
            hint = f"; valid edge types: {list(_enum('edge'))}"
        raise TraceError(f"trace does not validate at {path}: {error.message}{hint}")
    ids: set[str] = set()
    for index, event in enumerate(document["events"]):
        if event["id"] in ids:
            raise TraceError(
                f"trace does not validate at $.events[{index}].id: duplicate id "
                f"{event['id']!r}; event ids must be unique."
            )
        ids.add(event["id"])
    for index, edge in enumerate(document["edges"]):
        for end in ("src", "dst"):
            if edge[end] not in ids:
                raise TraceError(
                    f"trace does not validate at $.edges[{index}].{end}: {edge[end]!r} is no "
                    "event id of this trace."
                )
    for name, value in document["costs"].items():
        if value < 0:
            raise TraceError(f"trace does not validate at $.costs.{name}: {value} is negative.")
    return document


def save_traces(path: str | os.PathLike, traces: Iterable[Mapping[str, Any]]) -> Path:
    """Writes trace documents as JSON Lines.

    Every document is validated before the file is opened: an invalid trace (or a missing
    ``jsonschema``) raises and leaves no file, and no earlier file is cut short.
    """
    lines = [json.dumps(validate_trace(dict(trace))) + "\n" for trace in traces]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        handle.writelines(lines)
    return path


def load_traces(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Reads and validates trace documents: JSON Lines, or one JSON document per file."""
    path = Path(path)
    if not path.is_file():
        raise InvalidArgumentError(f"no trace file {str(path)!r}; pass a .jsonl or .json trace.")
    text = path.read_text()
    try:
        stripped = text.strip()
        documents = (
            [json.loads(stripped)]
            if stripped.startswith("{") and "\n{" not in stripped
            else [json.loads(line) for line in text.splitlines() if line.strip()]
        )
    except json.JSONDecodeError as error:
        raise TraceError(f"{path}: not JSON or JSON Lines ({error}).") from error
    return [validate_trace(document) for document in documents]


def to_trace(episode: Any) -> dict[str, Any]:
    """A recorded :class:`~turngym.envs.orchestra.TeamEpisode` as a schema-valid document."""
    if not episode.events:
        raise InvalidArgumentError(
            "this episode has no recorded events; play it with orchestra.rollout(..., "
            "record_traces=True) (the default)."
        )
    orchestrator = episode.trajectories[ORCHESTRATOR]
    tokens = sum(event.get("tokens", 0) for event in episode.events)
    kinds = [event["type"] for event in episode.events]
    document = {
        "trace_id": orchestrator.traj_id,
        "task_id": orchestrator.group_id,
        "system": "turngym.envs.orchestra",
        "topology": "centralized",
        "events": episode.events,
        "edges": build_edges(episode.events),
        "rewards": _rewards(orchestrator.turns, episode.outcome),
        "costs": {
            "tokens": float(tokens),
            "wall_clock_s": float(max(event["t"] for event in episode.events)),
            "tool_calls": float(kinds.count("tool_call")),
            "messages": float(kinds.count("spawn") + kinds.count("return")),
        },
        "metrics": trace_metrics(episode.events),
    }
    return document


def replay(trace: Mapping[str, Any], env: Any = None) -> Any:
    """Plays ``trace``'s actions again on a fresh env: the same :class:`TeamEpisode`
    (trajectories and rewards) as the recorded one, timings and trace aside.

    Args:
        trace: a document from :func:`to_trace` / :func:`load_traces` (validated here).
        env: an :class:`OrchestraEnv` or factory to replay on; default: one built from the
            trace's recorded ``env_kwargs``.
    """
    from turngym.envs.orchestra.env import OrchestraEnv
    from turngym.envs.orchestra.team import rollout

    validate_trace(trace)
    start = trace["events"][0]
    if start["type"] != "message" or "seed" not in start:
        raise TraceError(
            "trace does not validate at $.events[0]: a replayable trace starts with the "
            "environment's task message (seed, env_kwargs), as to_trace writes it."
        )
    if env is None:
        if not start.get("env_kwargs"):
            raise InvalidArgumentError("the trace records no env_kwargs; pass env= to replay it.")
        env = OrchestraEnv(**start["env_kwargs"])
    scripts: dict[str, list[str]] = {}
    for event in trace["events"]:
        if event["type"] in ("orchestrator_decision", "tool_call"):
            scripts.setdefault(event["agent"], []).append(event["action"])
    agents = env.possible_agents if isinstance(env, OrchestraEnv) else env().possible_agents
    policies = {agent: _Script(scripts.get(agent, [])) for agent in agents}
    return rollout(env, policies, num_episodes=1, seed=int(start["seed"]))[0]


class _Script:
    """Plays a recorded list of actions, one per call per conversation."""

    privileged = False

    def __init__(self, actions: list[str]) -> None:
        self.actions = list(actions)

    def act(self, batch: list[Any]) -> list[str]:
        if len(self.actions) < len(batch):
            raise TraceError("the trace holds fewer actions than the replayed episode asks for.")
        taken, self.actions = self.actions[: len(batch)], self.actions[len(batch) :]
        return taken


def save_episodes(path: str | os.PathLike, episodes: Iterable[Any]) -> Path:
    """Writes recorded team episodes (trajectories and events) as JSON Lines: the run file
    ``turngym trace export`` turns into schema traces."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        for episode in episodes:
            record = {
                "outcome": episode.outcome,
                "success": episode.success,
                "turns": episode.turns,
                "subtasks": [list(pair) for pair in episode.subtasks],
                "events": episode.events,
                "trajectories": {a: t.to_dict() for a, t in episode.trajectories.items()},
            }
            handle.write(json.dumps(record) + "\n")
    return path


def load_episodes(path: str | os.PathLike) -> list[Any]:
    """Reads a file of :func:`save_episodes` back into ``TeamEpisode`` objects."""
    from turngym.envs.orchestra.team import TeamEpisode
    from turngym.trajectory import Trajectory

    path = Path(path)
    if not path.is_file():
        raise InvalidArgumentError(
            f"no episode file {str(path)!r}; write one with orchestra.save_episodes(path, "
            "episodes) or `turngym bench --env turngym/Orchestra-v0 --out DIR`."
        )
    episodes = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            trajectories = {
                agent: Trajectory.from_dict(data) for agent, data in record["trajectories"].items()
            }
            episodes.append(
                TeamEpisode(
                    trajectories=trajectories,
                    outcome=float(record["outcome"]),
                    success=bool(record["success"]),
                    turns=int(record["turns"]),
                    subtasks=[tuple(pair) for pair in record.get("subtasks", [])],
                    events=record.get("events", []),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise InvalidArgumentError(
                f"{path}:{number} is not a recorded team episode ({type(error).__name__}: "
                f"{error}); write such files with orchestra.save_episodes."
            ) from error
    return episodes


def _rewards(orchestrator_turns: list[Any], outcome: float) -> dict[str, float]:
    """The trace's ``rewards``: team outcome, orchestrator return, orchestration families."""
    rewards = {"team": float(outcome)}
    rewards["orchestrator"] = float(sum(turn.reward for turn in orchestrator_turns))
    total = 0.0
    for family in FAMILIES:
        value = sum(turn.reward_components.get(family, 0.0) for turn in orchestrator_turns)
        if value:
            rewards[f"orchestration/{family}"] = float(value)
            total += value
    rewards["orchestration"] = float(total)
    return rewards
