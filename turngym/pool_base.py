"""What :class:`turngym.EnvPool` and its backends share: the errors, how an env is built and
commanded, and where each env lives. The backends (:mod:`turngym.pool_process`,
:mod:`turngym.pool_ray`) import this module, never :mod:`turngym.pool`, which chooses between them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium

from turngym.error import InvalidArgumentError, TurnGymError
from turngym.registration import make

__all__ = [
    "EnvCommandError",
    "EnvSource",
    "START_FAILURES_TO_BREAK",
    "WorkerDied",
    "WorkersCannotStart",
    "build_env",
    "episode_ended",
    "round_robin",
    "run_command",
]

EnvSource = str | Callable[..., gymnasium.Env]
#: Replacement workers in a row that die or time out before serving, after which a pool stops
#: replacing them and raises :class:`WorkersCannotStart` (instead of burning ``max_restarts``).
START_FAILURES_TO_BREAK = 3


class WorkerDied(TurnGymError):
    """An env worker died or timed out; its envs' live episodes are gone (the pool replaced it)."""


class WorkersCannotStart(TurnGymError):
    """The pool's workers keep failing before they serve (their env cannot be built, or building it
    takes longer than ``start_timeout``); the pool stopped replacing them. Build a new pool once the
    cause in the message is fixed."""


class EnvCommandError(TurnGymError):
    """``env.reset``/``env.step`` raised inside a worker; the message holds its traceback."""


def round_robin(num_envs: int, workers: int) -> list[list[int]]:
    """The env indexes each worker hosts: env ``i`` lives on worker ``i % workers``, at position
    ``i // workers`` among that worker's envs.

    >>> round_robin(5, 2)
    [[0, 2, 4], [1, 3]]
    """
    return [list(range(num_envs))[slot::workers] for slot in range(workers)]


def build_env(source: EnvSource, env_kwargs: dict[str, Any]) -> gymnasium.Env:
    """``turngym.make(source, **env_kwargs)`` for an id, ``source(**env_kwargs)`` for a factory."""
    if isinstance(source, str):
        return make(source, **env_kwargs)
    return source(**env_kwargs)


def run_command(env: gymnasium.Env, method: str, argument: Any) -> Any:
    """Runs one pool command on ``env``: ``reset`` takes ``{"seed", "options"}``, ``step`` an action."""
    if method == "reset":
        return env.reset(**(argument or {}))
    if method == "step":
        return env.step(argument)
    raise InvalidArgumentError(f"unknown env command {method!r}; use 'reset' or 'step'")


def episode_ended(method: str, reply: Any) -> bool:
    """Whether ``reply`` (to ``method``) left the env between episodes (a step that terminated or
    truncated); a reset starts an episode."""
    if method != "step" or not isinstance(reply, tuple) or len(reply) != 5:
        return False
    return bool(reply[2] or reply[3])
