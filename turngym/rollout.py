"""``turngym.rollout``: run a policy over many episodes, batching every live episode's turn.

Each turn, the observations of all live episodes go to the policy in ONE ``act`` call (so an LLM
policy generates for the whole batch at once); then the envs step in parallel, one worker process
per env when ``num_envs > 1`` (text envs are CPU-bound Python: threads would serialise on the GIL).
Gymnasium's ``AsyncVectorEnv`` is not used because its auto-reset steps every env in lock-step and
cannot give each episode its own task and seed; ``benchmarks/rollout_speed.py`` measures both.

Episodes ``i = 0 .. num_episodes-1`` form groups of ``group_size`` consecutive episodes. Every
episode of group ``g`` resets with seed ``seed + g`` (same task, same env randomness), so group
members differ only by the policy's choices, as GRPO/GiGPO/SALT require.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium

from turngym.error import InvalidArgumentError, TurnGymError
from turngym.policy import Conversation, call_policy
from turngym.registration import make
from turngym.trajectory import Trajectory, Turn

__all__ = ["check_rollout_counts", "rollout", "strip_privileged"]

EnvSource = str | Callable[[], gymnasium.Env]
#: Reset info keys copied into ``Trajectory.metadata`` (benchmarks break results down by them).
_RESET_METADATA = ("task_type", "difficulty", "hops", "rooms")


def strip_privileged(info: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``info`` without the ``privileged`` key (what non-privileged policies see)."""
    return {key: value for key, value in info.items() if key != "privileged"}


def _build_env(source: EnvSource, env_kwargs: dict[str, Any]) -> gymnasium.Env:
    if isinstance(source, str):
        return make(source, **env_kwargs)
    return source(**env_kwargs)


# ---------------------------------------------------------------------------- env runners
class _LocalRunner:
    """Steps the envs one after another in this process (``num_envs == 1`` or debugging)."""

    def __init__(self, source: EnvSource, env_kwargs: dict[str, Any], num_envs: int):
        self.envs = [_build_env(source, env_kwargs) for _ in range(num_envs)]

    def call(self, commands: list[tuple[int, str, Any]]) -> list[Any]:
        results = []
        for slot, method, argument in commands:
            env = self.envs[slot]
            results.append(env.reset(seed=argument) if method == "reset" else env.step(argument))
        return results

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _worker(connection: Any, source: EnvSource, env_kwargs: dict[str, Any]) -> None:
    try:
        env = _build_env(source, env_kwargs)
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which raises
        connection.send(("error", f"{type(error).__name__}: {error}\n{traceback.format_exc()}"))
        return
    connection.send(("ok", None))
    while True:
        method, argument = connection.recv()
        if method == "close":
            env.close()
            connection.close()
            return
        try:
            result = env.reset(seed=argument) if method == "reset" else env.step(argument)
            connection.send(("ok", result))
        except BaseException as error:  # noqa: BLE001
            connection.send(("error", f"{type(error).__name__}: {error}\n{traceback.format_exc()}"))


class _ProcessRunner:
    """One env per worker process; commands to all workers are sent before any reply is read."""

    def __init__(self, source: EnvSource, env_kwargs: dict[str, Any], num_envs: int, context: str):
        ctx = mp.get_context(context)
        self.connections, self.processes = [], []
        for _ in range(num_envs):
            parent, child = ctx.Pipe()
            process = ctx.Process(target=_worker, args=(child, source, env_kwargs), daemon=True)
            process.start()
            child.close()
            self.connections.append(parent)
            self.processes.append(process)
        for connection in self.connections:
            self._receive(connection)

    @staticmethod
    def _receive(connection: Any) -> Any:
        try:
            status, payload = connection.recv()
        except EOFError:
            raise TurnGymError("an env worker process died; see its stderr above") from None
        if status == "error":
            raise TurnGymError(f"an env worker raised:\n{payload}")
        return payload

    def call(self, commands: list[tuple[int, str, Any]]) -> list[Any]:
        for slot, method, argument in commands:
            self.connections[slot].send((method, argument))
        return [self._receive(self.connections[slot]) for slot, _, _ in commands]

    def close(self) -> None:
        for connection in self.connections:
            try:
                connection.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()


# ---------------------------------------------------------------------------- episodes
@dataclass
class _Episode:
    index: int
    seed: int
    trajectory: Trajectory
    conversation: Conversation
    observation: str = ""
    info: dict[str, Any] = field(default_factory=dict)


def _default_context() -> str:
    # forkserver avoids forking a parent that holds torch/tokenizer threads.
    return "forkserver" if sys.platform.startswith("linux") else "spawn"


def check_rollout_counts(num_episodes: int, group_size: int, num_envs: int) -> None:
    """Raises InvalidArgumentError unless all three are positive ints and ``group_size`` divides
    ``num_episodes`` (shared by the single- and multi-agent runners)."""
    for name, value in (
        ("num_episodes", num_episodes),
        ("group_size", group_size),
        ("num_envs", num_envs),
    ):
        if not isinstance(value, int) or value < 1:
            raise InvalidArgumentError(f"{name}={value!r} must be a positive int")
    if num_episodes % group_size:
        raise InvalidArgumentError(
            f"num_episodes={num_episodes} is not a multiple of group_size={group_size}; "
            f"use num_episodes={group_size * max(1, num_episodes // group_size)}."
        )


def rollout(
    env_id: EnvSource,
    policy: Any,
    *,
    num_episodes: int,
    seed: int = 0,
    group_size: int = 1,
    num_envs: int = 1,
    env_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
    mp_context: str | None = None,
) -> list[Trajectory]:
    """Runs ``policy`` for ``num_episodes`` episodes and returns their trajectories in order.

    Args:
        env_id: a registered id, or a picklable zero-argument env factory.
        policy: an object with ``act(list[Conversation]) -> list[str]`` or such a callable.
        num_episodes: how many trajectories; a multiple of ``group_size``.
        seed: episode ``i`` resets with seed ``seed + i // group_size``.
        group_size: G, the number of episodes per task group.
        num_envs: envs stepped in parallel (worker processes when > 1); also the policy's
            batch size.
        env_kwargs: keyword arguments for ``turngym.make``.
        progress: show a progress bar (tqdm, on stderr).
        mp_context: multiprocessing start method for the workers (default forkserver on Linux).
    """
    check_rollout_counts(num_episodes, group_size, num_envs)
    env_kwargs = dict(env_kwargs or {})
    name = env_id if isinstance(env_id, str) else getattr(env_id, "__name__", "custom")
    num_envs = min(num_envs, num_episodes)
    privileged_policy = bool(getattr(policy, "privileged", False))
    runner: _LocalRunner | _ProcessRunner = (
        _LocalRunner(env_id, env_kwargs, 1)
        if num_envs == 1
        else _ProcessRunner(env_id, env_kwargs, num_envs, mp_context or _default_context())
    )
    from tqdm.auto import tqdm

    bar = tqdm(total=num_episodes, desc=f"rollout {name}", disable=not progress, unit="ep")
    queue = deque(range(num_episodes))
    free = list(range(num_envs))
    live: dict[int, _Episode] = {}
    finished: dict[int, Trajectory] = {}

    def start_episodes() -> None:
        starts = []
        while free and queue:
            index = queue.popleft()
            starts.append((free.pop(0), index))
        if not starts:
            return
        results = runner.call(
            [(slot, "reset", seed + index // group_size) for slot, index in starts]
        )
        for (slot, index), (observation, info) in zip(starts, results, strict=True):
            episode_seed = seed + index // group_size
            group_id = f"{name}/seed{episode_seed}"
            instructions = info.get("instructions", "")
            trajectory = Trajectory(
                task_id=str(info.get("task_id", "")),
                group_id=group_id,
                traj_id=f"{group_id}/{index % group_size}",
                env_id=name,
                seed=episode_seed,
                instructions=instructions,
                initial_observation=observation,
                metadata={k: v for k, v in info.items() if k in _RESET_METADATA},
            )
            conversation = Conversation.start(
                instructions, observation, env_id=name, task_id=trajectory.task_id
            )
            episode = _Episode(index, episode_seed, trajectory, conversation, observation, info)
            _refresh(episode, privileged_policy)
            live[slot] = episode

    try:
        start_episodes()
        while live:
            slots = sorted(live)
            actions = call_policy(policy, [live[slot].conversation for slot in slots])
            results = runner.call(
                [(slot, "step", action.text) for slot, action in zip(slots, actions, strict=True)]
            )
            for slot, action, result in zip(slots, actions, results, strict=True):
                episode = live[slot]
                observation, reward, terminated, truncated, info = result
                episode.trajectory.turns.append(
                    Turn(
                        observation=episode.observation,
                        action=action.text,
                        reward=float(reward),
                        reward_components=dict(info.get("reward_components", {})),
                        info=strip_privileged(info),
                        state_key=episode.info.get("state_key"),
                        terminated=bool(terminated),
                        truncated=bool(truncated),
                        token_ids=action.token_ids,
                        logprobs=action.logprobs,
                        prompt_token_ids=action.prompt_token_ids,
                    )
                )
                episode.observation, episode.info = observation, info
                if terminated or truncated:
                    trajectory = episode.trajectory
                    trajectory.outcome = info.get("outcome")
                    trajectory.success = info.get("success")
                    trajectory.privileged = dict(info.get("privileged", {}))
                    finished[episode.index] = trajectory
                    del live[slot]
                    free.append(slot)
                    bar.update(1)
                else:
                    episode.conversation.messages.append(
                        {"role": "assistant", "content": action.text}
                    )
                    episode.conversation.messages.append({"role": "user", "content": observation})
                    _refresh(episode, privileged_policy)
            start_episodes()
    finally:
        bar.close()
        runner.close()
    return [finished[index] for index in range(num_episodes)]


def _refresh(episode: _Episode, privileged_policy: bool) -> None:
    conversation, info = episode.conversation, episode.info
    conversation.info = strip_privileged(info)
    conversation.admissible_actions = info.get("admissible_actions")
    conversation.turn = int(info.get("turn", len(episode.trajectory.turns)))
    conversation.privileged = dict(info.get("privileged", {})) if privileged_policy else None
