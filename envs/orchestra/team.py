"""Playing a team on the orchestra env: policies per agent, batched ``act`` calls, trajectories.

:func:`rollout` plays team episodes on ``num_envs`` envs at once, in this process. Each team
turn, the agents that act (the orchestrator, and every worker with a subtask) in all live
episodes are grouped by policy object, and each policy gets one ``act`` call with all their
conversations: an LLM playing every agent batches them. Idle workers answer ``wait`` without a
policy call.

A worker's conversation restarts with each new subtask (the member env's instructions and
first observation), as if it were a fresh single-agent episode. Every agent gets one
:class:`~turngym.Trajectory` per team episode: its acting turns, plus the last team turn (which
pays the team outcome) even when it was idle then (``Turn.info["idle"]``: no policy acted, the
learner skips it). ``Turn.info["subtask"]`` numbers a worker's subtask, so per-subtask episodes
can be cut out. Trajectories of a team task share a
``group_id`` per agent, as group-based credit (GRPO, GiGPO, SALT) expects.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from turngym.envs.orchestra.board import DELEGATE, ORCHESTRATOR
from turngym.envs.orchestra.env import OrchestraEnv
from turngym.envs.orchestra.presets import parallel_env
from turngym.envs.orchestra.trace import TraceRecorder
from turngym.error import InvalidArgumentError
from turngym.policy import Conversation, GeneratedAction, call_policy
from turngym.rollout import check_rollout_counts, strip_privileged
from turngym.trajectory import Trajectory, Turn

__all__ = ["OrchestratorExpert", "TeamEpisode", "expert_policies", "random_policies", "rollout"]


class OrchestratorExpert:
    """Delegates every pending subtask it can at once: the first idle worker of its family.

    Reads only ``admissible_actions`` (each a valid single delegation) and the public
    ``info["all_done"]``, so it needs no privileged information; finishes (with the offered
    composition of the workers' answers in compose mode) as soon as every subtask is done;
    ``wait`` when nothing can be delegated.
    """

    privileged = False

    def act(self, batch: list[Conversation]) -> list[str]:
        return [self._decide(conversation) for conversation in batch]

    def _decide(self, conversation: Conversation) -> str:
        admissible = conversation.admissible_actions or []
        if (conversation.info or {}).get("all_done"):
            return next((a for a in admissible if a.startswith("finish")), "finish")
        return self._plan(admissible)

    @staticmethod
    def _plan(admissible: list[str]) -> str:
        workers: set[str] = set()
        subtasks: set[str] = set()
        chosen = []
        for action in admissible:
            match = DELEGATE.fullmatch(action)
            if match and match.group(1) not in workers and match.group(2) not in subtasks:
                workers.add(match.group(1))
                subtasks.add(match.group(2))
                chosen.append(action)
        return " ".join(chosen) if chosen else "wait"


def expert_policies(env: OrchestraEnv) -> dict[str, Any]:
    """The orchestrator expert and, for each worker, its member family's expert (shared)."""
    from turngym.agents import expert

    per_family = {family: expert(env.member_id(family)) for family in env.families}
    return {
        ORCHESTRATOR: OrchestratorExpert(),
        **{agent: per_family[family] for agent, family in env.worker_family.items()},
    }


def random_policies(env: OrchestraEnv, seed: int = 0) -> dict[str, Any]:
    """One :class:`turngym.agents.RandomPolicy` (admissible actions) shared by every agent."""
    from turngym.agents import RandomPolicy

    policy = RandomPolicy(seed=seed)
    return {agent: policy for agent in env.possible_agents}


@dataclass
class TeamEpisode:
    """One team episode: a trajectory per agent and the team's result."""

    trajectories: dict[str, Trajectory]
    outcome: float
    success: bool
    turns: int
    subtasks: list[tuple[str, str]] = field(default_factory=list)
    #: The orchestration trace's events (:mod:`.trace`); empty when not recorded.
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Seat:
    """One agent's live conversation and recorded turns in the current episode."""

    conversation: Conversation
    trajectory: Trajectory
    observation: str
    info: dict[str, Any]
    subtask: int | None = None


@dataclass
class _Game:
    """One live team episode in one env."""

    index: int
    env: OrchestraEnv
    seats: dict[str, _Seat]
    recorder: TraceRecorder | None = None


def rollout(
    env: str | OrchestraEnv | Callable[[], OrchestraEnv] | None,
    policies: Mapping[str, Any] | Any,
    *,
    num_episodes: int,
    seed: int = 0,
    group_size: int = 1,
    num_envs: int = 1,
    env_kwargs: dict[str, Any] | None = None,
    record_traces: bool = True,
) -> list[TeamEpisode]:
    """Plays ``num_episodes`` team episodes; episode ``i`` resets with ``seed + i // group_size``.

    Args:
        env: a preset id of ``ORCHESTRA_ENVS`` (None: ``turngym/Orchestra-v0``), a zero-argument
            factory, or an env (then ``num_envs`` must be 1).
        policies: agent -> policy (``act(list[Conversation])``), or one policy for every agent.
        num_episodes: how many team episodes; a multiple of ``group_size``.
        group_size: episodes per team task (same subtasks, same member seeds).
        num_envs: team episodes played at once (in this process); each turn, a policy gets one
            ``act`` call with the conversations of its agents in all of them.
        env_kwargs: keyword arguments for the preset (with an id or None).
        record_traces: record each episode's orchestration trace (``TeamEpisode.events``;
            export it with :func:`turngym.envs.orchestra.to_trace`).
    """
    check_rollout_counts(num_episodes, group_size, num_envs)
    owned = not isinstance(env, OrchestraEnv)
    if not owned and num_envs > 1:
        raise InvalidArgumentError(
            "num_envs > 1 needs a preset id or an env factory (one env plays one episode at a "
            "time), not an env instance."
        )
    if env is None or isinstance(env, str):
        name, preset = env or "turngym/Orchestra-v0", env
        envs = [
            parallel_env(preset, **(env_kwargs or {})) for _ in range(min(num_envs, num_episodes))
        ]
    elif isinstance(env, OrchestraEnv):
        name, envs = env.metadata["name"], [env]
    else:
        envs = [env() for _ in range(min(num_envs, num_episodes))]
        name = envs[0].metadata["name"]
    agents = envs[0].possible_agents
    if not isinstance(policies, Mapping):
        policies = {agent: policies for agent in agents}
    missing = [agent for agent in agents if agent not in policies]
    if missing:
        raise InvalidArgumentError(
            f"no policy for {missing}; give one per agent of {agents} (or a single policy for all)."
        )
    queue, free = deque(range(num_episodes)), list(envs)
    live: list[_Game] = []
    finished: dict[int, TeamEpisode] = {}
    try:
        while queue or live:
            while free and queue:
                index = queue.popleft()
                game = _start(free.pop(0), index, name, policies, seed, group_size, record_traces)
                live.append(game)
            generated = _act(live, policies)
            decided = time.perf_counter()
            for game in list(live):
                if _advance(game, generated.get(game.index, {}), policies, decided):
                    live.remove(game)
                    finished[game.index] = _result(game)
                    free.append(game.env)
    finally:
        if owned:
            for team_env in envs:
                team_env.close()
    return [finished[index] for index in range(num_episodes)]


def _start(
    env: OrchestraEnv,
    index: int,
    name: str,
    policies: Mapping[str, Any],
    seed: int,
    group_size: int,
    record_traces: bool,
) -> _Game:
    episode_seed = seed + index // group_size
    started = time.perf_counter()
    observations, infos = env.reset(seed=episode_seed)
    seats = {
        agent: _new_seat(
            f"{name}/{agent}",
            f"seed{episode_seed}",
            observations[agent],
            infos[agent],
            index % group_size,
            episode_seed,
        )
        for agent in env.possible_agents
    }
    for agent, seat in seats.items():
        _refresh(seat, infos[agent], policies[agent])
    recorder = TraceRecorder(env, episode_seed, started) if record_traces else None
    return _Game(index, env, seats, recorder)


def _act(live: list[_Game], policies: Mapping[str, Any]) -> dict[int, dict[str, GeneratedAction]]:
    """One ``act`` call per policy over every acting agent of every live game."""
    requests: dict[int, list[tuple[_Game, str]]] = {}
    for game in live:
        for agent in game.env.agents:
            if agent == ORCHESTRATOR or game.seats[agent].info.get("busy"):
                requests.setdefault(id(policies[agent]), []).append((game, agent))
    generated: dict[int, dict[str, GeneratedAction]] = {}
    for pairs in requests.values():
        batch = [game.seats[agent].conversation for game, agent in pairs]
        actions = call_policy(policies[pairs[0][1]], batch)
        for (game, agent), action in zip(pairs, actions, strict=True):
            generated.setdefault(game.index, {})[agent] = action
    return generated


def _advance(
    game: _Game,
    generated: dict[str, GeneratedAction],
    policies: Mapping[str, Any],
    decided: float,
) -> bool:
    """Steps ``game`` with the generated actions (idle agents wait); True when it ended."""
    env, seats = game.env, game.seats
    actions = {
        agent: generated[agent].text if agent in generated else "wait" for agent in env.agents
    }
    working = (  # the subtask each acting worker works on, before the step may finish it
        {agent: env.subtask_of(agent) for agent in generated if agent != ORCHESTRATOR}
        if game.recorder is not None
        else {}
    )
    observations, rewards, terminations, truncations, infos = env.step(actions)
    ended = any(terminations.values()) or any(truncations.values())
    if game.recorder is not None:
        turn = int(infos[ORCHESTRATOR]["turn"])
        game.recorder.turn(
            turn,
            decided,
            time.perf_counter(),
            generated,
            infos,
            rewards,
            observations,
            working,
            ended,
        )
    for agent, seat in seats.items():
        if agent not in infos:
            continue
        info = infos[agent]
        if agent in generated or ended:
            action = generated.get(agent, GeneratedAction(text="wait"))
            seat.trajectory.turns.append(
                Turn(
                    observation=seat.observation,
                    action=action.text,
                    reward=float(rewards[agent]),
                    reward_components=dict(info["reward_components"]),
                    # An idle agent's last turn is recorded for the team outcome it is paid;
                    # no policy produced its "wait" ("idle": learners skip it).
                    info={
                        **strip_privileged(info),
                        "subtask": seat.subtask,
                        "idle": agent not in generated,
                        **({"usage": dict(action.usage)} if action.usage else {}),
                    },
                    state_key=seat.info.get("state_key"),
                    terminated=bool(terminations[agent]),
                    truncated=bool(truncations[agent]),
                    token_ids=action.token_ids,
                    logprobs=action.logprobs,
                    prompt_token_ids=action.prompt_token_ids,
                )
            )
        if info.get("new_subtask"):
            seat.subtask = env.subtask_of(agent)
            seat.conversation = Conversation.start(
                info["instructions"],
                observations[agent],
                env_id=seat.conversation.env_id,
                task_id=seat.conversation.task_id,
            )
        elif agent in generated:
            seat.conversation.messages += [
                {"role": "assistant", "content": generated[agent].text},
                {"role": "user", "content": observations[agent]},
            ]
        seat.observation = observations[agent]
        _refresh(seat, info, policies[agent])
    return ended


def _result(game: _Game) -> TeamEpisode:
    last = next(iter(game.seats.values())).info
    outcome, success = float(last["outcome"]), bool(last["success"])
    for seat in game.seats.values():
        seat.trajectory.outcome, seat.trajectory.success = outcome, success
    return TeamEpisode(
        trajectories={agent: seat.trajectory for agent, seat in game.seats.items()},
        outcome=outcome,
        success=success,
        turns=int(last["turn"]),
        subtasks=game.env.subtasks,
        events=game.recorder.events if game.recorder else [],
    )


def _new_seat(
    env_id: str, task_id: str, observation: str, info: dict, member: int, seed: int
) -> _Seat:
    instructions = info.get("instructions", "")
    group_id = f"{env_id}/{task_id}"
    trajectory = Trajectory(
        task_id=task_id,
        group_id=group_id,
        traj_id=f"{group_id}/{member}",
        env_id=env_id,
        seed=seed,
        instructions=instructions,
        initial_observation=observation,
    )
    conversation = Conversation.start(instructions, observation, env_id=env_id, task_id=task_id)
    return _Seat(conversation, trajectory, observation, info)


def _refresh(seat: _Seat, info: dict[str, Any], policy: Any) -> None:
    seat.info = info
    conversation = seat.conversation
    conversation.info = strip_privileged(info)
    conversation.admissible_actions = info.get("admissible_actions")
    conversation.turn = len(conversation.actions)
    privileged = bool(getattr(policy, "privileged", False))
    conversation.privileged = dict(info.get("privileged", {})) if privileged else None
