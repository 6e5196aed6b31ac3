"""The bookkeeping both schedules of :func:`turngym.rollout` share: starting, recording,
finishing, retrying and failing episodes, and turning policy failures into
:class:`~turngym.error.PolicyError` naming the episodes (see :mod:`turngym.rollout`)."""

from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from turngym.error import PolicyError
from turngym.policy import Conversation, GeneratedAction, call_policy
from turngym.pool import EnvPool, WorkerDied
from turngym.trajectory import Trajectory, Turn

__all__ = ["AbandonableExecutor", "Episode", "RolloutRun", "strip_privileged"]

#: Reset info keys copied into ``Trajectory.metadata`` (benchmarks break results down by them).
_RESET_METADATA = ("task_type", "difficulty", "hops", "rooms")


def strip_privileged(info: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``info`` without the ``privileged`` key (what non-privileged policies see)."""
    return {key: value for key, value in info.items() if key != "privileged"}


class AbandonableExecutor(Executor):
    """Runs each call in a daemon thread of its own, which interpreter exit never waits for.

    ``concurrent.futures.ThreadPoolExecutor`` joins its threads at exit, so a policy call that
    hangs past ``policy_timeout`` would hold ``sys.exit`` until it returned (forever for a call
    that never does). A timed-out call here is abandoned: the rollout raises on time, the thread
    finishes (or not) on its own, and the process exits without it.
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as error:  # noqa: BLE001 - handed to whoever waits
                future.set_exception(error)
            else:
                future.set_result(result)

        threading.Thread(target=run, daemon=True, name="turngym-policy").start()
        return future


@dataclass
class Episode:
    """A live episode: its env slot, trajectory so far, and the conversation the policy sees."""

    index: int
    slot: int
    trajectory: Trajectory
    conversation: Conversation
    observation: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"episode {self.index} ({self.trajectory.traj_id}, task {self.trajectory.task_id!r})"


class RolloutRun:
    """The bookkeeping both schedules share: starting, recording, finishing and failing episodes."""

    def __init__(
        self,
        pool: EnvPool,
        policy: Any,
        num_episodes: int,
        seed: int,
        group_size: int,
        progress: bool,
        policy_timeout: float | None,
    ) -> None:
        from tqdm.auto import tqdm

        self.pool, self.policy, self.name = pool, policy, pool.name
        #: Envs of the pool this run keeps live (its first ``num_envs``).
        self.num_envs = pool.num_envs
        self.num_episodes, self.seed, self.group_size = num_episodes, seed, group_size
        self.policy_timeout = policy_timeout
        self.privileged = bool(getattr(policy, "privileged", False))
        self.queue: deque[int] = deque(range(num_episodes))
        self.finished: dict[int, Trajectory] = {}
        self.retried: dict[int, str] = {}
        self.bar = tqdm(
            total=num_episodes, desc=f"rollout {self.name}", disable=not progress, unit="ep"
        )
        self._executor = AbandonableExecutor()
        self.recorder: Any = None  # a credit TrajectoryRecorder fed as episodes finish

    # ------------------------------------------------------------------ episodes
    def episode_seed(self, index: int) -> int:
        return self.seed + index // self.group_size

    def reset_argument(self, index: int) -> dict[str, Any]:
        return {"seed": self.episode_seed(index)}

    def _trajectory(self, index: int, **fields: Any) -> Trajectory:
        """A trajectory of episode ``index``, its group, id, env and seed filled in."""
        seed = self.episode_seed(index)
        group_id = f"{self.name}/seed{seed}"
        return Trajectory(
            group_id=group_id,
            traj_id=f"{group_id}/{index % self.group_size}",
            env_id=self.name,
            seed=seed,
            **fields,
        )

    def begin(self, slot: int, index: int, reset_result: Any) -> Episode:
        """The episode ``index`` after its env reset on ``slot``."""
        observation, info = reset_result
        trajectory = self._trajectory(
            index,
            task_id=str(info.get("task_id", "")),
            instructions=info.get("instructions", ""),
            initial_observation=observation,
            metadata={k: v for k, v in info.items() if k in _RESET_METADATA},
        )
        trajectory.reset_state_key = info.get("state_key")
        if index in self.retried:
            trajectory.metadata["retried"] = self.retried[index]
        conversation = Conversation.start(
            trajectory.instructions, observation, env_id=self.name, task_id=trajectory.task_id
        )
        episode = Episode(index, slot, trajectory, conversation, observation, info)
        self._refresh(episode)
        return episode

    def record(self, episode: Episode, action: GeneratedAction, result: Any) -> bool:
        """Appends the turn; returns True when the episode ended (it is then finished)."""
        observation, reward, terminated, truncated, info = result
        turn_info = strip_privileged(info)
        usage = action.usage or _usage_from_tokens(action)
        if usage is not None:
            turn_info["usage"] = dict(usage)
        episode.trajectory.turns.append(
            Turn(
                observation=episode.observation,
                action=action.text,
                reward=float(reward),
                reward_components=dict(info.get("reward_components", {})),
                info=turn_info,
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
            self._finish(episode.index, trajectory)
            return True
        episode.conversation.messages.append({"role": "assistant", "content": action.text})
        episode.conversation.messages.append({"role": "user", "content": observation})
        self._refresh(episode)
        return False

    def worker_died(self, index: int, error: WorkerDied, episode: Episode | None = None) -> None:
        """Episode ``index`` lost its worker: queued again once, else recorded as failed."""
        task = f", task {episode.trajectory.task_id!r}" if episode else ""
        where = f"{self.name} episode {index} (seed {self.episode_seed(index)}{task})"
        if index not in self.retried:
            self.retried[index] = str(error)
            self.queue.appendleft(index)
            print(
                f"turngym: {where} lost its env worker: {error}; retrying it once", file=sys.stderr
            )
            return
        print(
            f"turngym: {where} lost its env worker again: {error}; recorded as failed",
            file=sys.stderr,
        )
        trajectory = episode.trajectory if episode else self._trajectory(index)
        trajectory.success, trajectory.outcome = False, 0.0
        trajectory.metadata.update(failed=str(error), retried=self.retried[index])
        self._finish(index, trajectory)

    def _finish(self, index: int, trajectory: Trajectory) -> None:
        self.finished[index] = trajectory
        if self.recorder is not None and trajectory.turns:
            self.recorder.add_trajectory(trajectory, row=index)
        self.bar.update(1)

    @property
    def complete(self) -> bool:
        return len(self.finished) == self.num_episodes

    def results(self) -> list[Trajectory]:
        return [self.finished[index] for index in range(self.num_episodes)]

    def attach(self, error: BaseException) -> BaseException:
        """Puts the finished trajectories (in episode order) on ``error.trajectories``."""
        if not hasattr(error, "trajectories"):
            try:
                error.trajectories = [self.finished[i] for i in sorted(self.finished)]  # type: ignore[attr-defined]
            except AttributeError:
                pass
        return error

    def _refresh(self, episode: Episode) -> None:
        conversation, info = episode.conversation, episode.info
        conversation.info = strip_privileged(info)
        conversation.admissible_actions = info.get("admissible_actions")
        conversation.turn = int(info.get("turn", len(episode.trajectory.turns)))
        conversation.privileged = dict(info.get("privileged", {})) if self.privileged else None

    # ------------------------------------------------------------------ policy
    def policy_error(self, error: BaseException, batch: list[Episode]) -> PolicyError:
        """A PolicyError naming the episodes of the failed call."""
        names = "; ".join(episode.label for episode in batch[:4])
        more = f" and {len(batch) - 4} more" if len(batch) > 4 else ""
        if isinstance(error, PolicyError):
            return PolicyError(f"{error} Episodes of this call: {names}{more}.")
        if isinstance(error, (TimeoutError, FutureTimeout)):
            return PolicyError(
                f"{type(self.policy).__name__} did not answer within policy_timeout="
                f"{self.policy_timeout} s for {names}{more}; raise policy_timeout or check the model server."
            )
        return PolicyError(
            f"{type(self.policy).__name__} raised {type(error).__name__}: {error} while acting "
            f"for {names}{more}."
        )

    def act(self, batch: list[Episode]) -> list[GeneratedAction]:
        """One sync policy call (lock-step), bounded by ``policy_timeout`` when set."""
        conversations = [episode.conversation for episode in batch]
        try:
            if self.policy_timeout is None:
                return call_policy(self.policy, conversations)
            future = self._executor.submit(call_policy, self.policy, conversations)
            return future.result(timeout=self.policy_timeout)  # a late call is abandoned
        except Exception as error:  # noqa: BLE001 - every policy failure becomes a PolicyError
            raise self.policy_error(error, batch) from error

    def close(self) -> None:
        self.bar.close()


def _usage_from_tokens(action: GeneratedAction) -> dict[str, int] | None:
    if action.token_ids is None or action.prompt_token_ids is None:
        return None
    prompt, completion = len(action.prompt_token_ids), len(action.token_ids)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
