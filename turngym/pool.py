"""``EnvPool``: env instances kept alive across many :func:`turngym.rollout` calls.

A pool holds ``num_envs`` env instances spread over ``workers`` worker processes
(:mod:`turngym.pool_process`; several envs per process when ``num_envs > workers``; all in this
process when ``workers=0``), or over Ray actors (``executor="ray"``, the ``[ray]`` extra,
:mod:`turngym.pool_ray`). Every command is
``submit(env_index, "reset" | "step", argument) -> concurrent.futures.Future``, so a lock-step
runner can send a whole turn before reading any reply and an asynchronous runner can wait on each
env on its own. Start-up is paid once: a training loop keeps one pool for its whole run.

    >>> with turngym.EnvPool("turngym/Corridor-v0", num_envs=4) as pool:   # doctest: +SKIP
    ...     for iteration in range(100):
    ...         trajs = turngym.rollout("turngym/Corridor-v0", policy, num_episodes=8, pool=pool)

Failure handling (what the rollout runner relies on):

- A worker that dies (killed, segfault, out of memory) or does not answer a command within
  ``step_timeout`` seconds (it is then killed; a replacement's start-up counts against
  ``start_timeout`` instead) fails its pending futures with :class:`WorkerDied`,
  naming the env id, env index, worker pid and exit status. The pool starts a replacement worker
  at once; the envs the dead worker hosted are *lost* until their next ``reset`` (a ``step`` on a
  lost env fails with :class:`WorkerDied` without reaching a worker), because their episodes died
  with the process. After ``max_restarts`` replacements the pool refuses new work; after
  :data:`~turngym.pool_base.START_FAILURES_TO_BREAK` replacements in a row that fail before
  serving, every command fails with :class:`WorkersCannotStart` naming the cause.
- ``max_episodes_per_worker`` recycles workers between episodes (bounded memory for envs whose
  engines leak; see :mod:`turngym.pool_process`), and so does ``max_worker_growth_mib`` (on by
  default: a worker that grew 2 GiB past its size after its first episode), whatever the family.
- An env that raises inside a worker fails only that command's future with
  :class:`EnvCommandError` carrying the worker's traceback; the worker and its other envs go on.
- ``close()`` (also on ``with`` exit, garbage collection and interpreter exit) asks every worker to
  close its envs, kills those that do not exit within 5 s, and reaps them; pending futures fail
  with :class:`WorkerDied`.

Worker processes start with ``forkserver`` on Linux (``spawn`` elsewhere): both re-import the main
script, so a script that builds a pool (or calls ``rollout`` with ``num_envs > 1``) at top level
must guard it with ``if __name__ == "__main__":``; the error raised otherwise says so.
"""

from __future__ import annotations

import os
import traceback
import weakref
from concurrent.futures import Future
from typing import Any

from turngym.error import InvalidArgumentError, TurnGymError
from turngym.exit_hooks import at_exit
from turngym.pool_base import (
    EnvCommandError,
    EnvSource,
    WorkerDied,
    WorkersCannotStart,
    build_env,
    round_robin,
    run_command,
)
from turngym.registration import check_env_id

__all__ = [
    "EXECUTORS",
    "EnvCommandError",
    "EnvPool",
    "EnvSource",
    "MAX_WORKER_GROWTH_MIB",
    "WorkerDied",
    "WorkersCannotStart",
    "build_env",
    "round_robin",
    "rollout_workers",
    "run_command",
]

#: Executor names accepted by :class:`EnvPool`.
EXECUTORS = ("process", "inprocess", "ray")
#: Default ``max_worker_growth_mib``: the most a worker may grow past its first episode's size.
MAX_WORKER_GROWTH_MIB = 2048.0


def rollout_workers(num_envs: int, workers: int | None) -> int:
    """The ``workers`` a rollout's own pool gets: the caller's, or one process per env when
    there are several and none (in-process) for a single env, which gains nothing from a worker."""
    if workers is not None:
        return workers
    return num_envs if num_envs > 1 else 0


class _InProcessBackend:
    """Envs in this process, run at submit time (``workers=0``): no start-up, no pickling."""

    def __init__(self, pool: EnvPool) -> None:
        self.name = pool.name
        self.envs = [build_env(pool.source, pool.env_kwargs) for _ in range(pool.num_envs)]

    def submit(self, index: int, method: str, argument: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(run_command(self.envs[index], method, argument))
        except Exception as error:  # noqa: BLE001 - same contract as a worker's reply
            if isinstance(error, TurnGymError) and not isinstance(error, InvalidArgumentError):
                future.set_exception(error)
            else:
                detail = f"{type(error).__name__}: {error}\n{traceback.format_exc()}"
                future.set_exception(EnvCommandError(f"{self.name} raised:\n{detail}"))
        return future

    def pids(self) -> list[int]:
        return [os.getpid()] if self.envs else []

    def close(self) -> None:
        for env in self.envs:
            env.close()


class EnvPool:
    """``num_envs`` envs of one id kept alive in workers; a context manager.

    Args:
        env_id: a registered id, or a picklable env factory called with ``env_kwargs``.
        num_envs: env instances, i.e. the most episodes that can be live at once (and the
            largest policy batch a lock-step rollout can form).
        env_kwargs: keyword arguments for ``turngym.make`` (or the factory).
        workers: worker processes (``executor="process"``) or Ray actors (``"ray"``) hosting the
            envs round-robin; default one per env. ``0`` runs every env in this process.
        executor: ``"process"`` (local worker processes), ``"inprocess"`` (same as
            ``workers=0``) or ``"ray"`` (Ray actors; ``pip install 'turngym[ray]'``).
        mp_context: multiprocessing start method (default forkserver on Linux, else spawn).
        step_timeout: seconds a worker may take for one command before it is killed and
            replaced (None: wait forever). In-process envs cannot be interrupted: ignored there.
        start_timeout: seconds a worker (the first ones and every replacement) may take to build
            its envs; a command sent to a replacement meanwhile gets its ``step_timeout`` from
            the moment the replacement serves.
        max_restarts: replacement workers started over the pool's life before it gives up.
        max_episodes_per_worker: recycle a worker (a fresh process) after it started this many
            episodes, at a reset when its other envs are between episodes (None: never). Bounds
            a worker's memory whatever its env leaks; trajectories stay the same (see
            :mod:`turngym.pool_process`). Process executor only.
        max_worker_growth_mib: recycle a worker the same way once its RSS has grown this many
            MiB past what it held after its first episode (None: never): a ceiling on what any
            leak can cost, on by default. An env that needs that much more within its first
            episodes gets a warning instead of a restart at every reset. Process executor on
            Linux; ignored by the other executors.
        ray_options: options for the Ray actors (e.g. ``{"num_cpus": 1}``), executor ``"ray"`` only.
    """

    def __init__(
        self,
        env_id: EnvSource,
        num_envs: int = 1,
        env_kwargs: dict[str, Any] | None = None,
        *,
        workers: int | None = None,
        executor: str = "process",
        mp_context: str | None = None,
        step_timeout: float | None = None,
        start_timeout: float = 300.0,
        max_restarts: int = 100,
        max_episodes_per_worker: int | None = None,
        max_worker_growth_mib: float | None = MAX_WORKER_GROWTH_MIB,
        ray_options: dict[str, Any] | None = None,
    ) -> None:
        if executor not in EXECUTORS:
            raise InvalidArgumentError(
                f"executor={executor!r} is not one of {', '.join(EXECUTORS)}; use 'process' for "
                "local worker processes or 'ray' (pip install 'turngym[ray]') for a Ray cluster."
            )
        if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
            raise InvalidArgumentError(f"num_envs={num_envs!r} must be a positive int")
        workers = num_envs if workers is None else workers
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
            raise InvalidArgumentError(f"workers={workers!r} must be an int >= 0 (0: in-process)")
        if step_timeout is not None and not step_timeout > 0:
            raise InvalidArgumentError(f"step_timeout={step_timeout!r} must be > 0 or None")
        if executor == "inprocess":
            workers = 0
        if not start_timeout > 0:
            raise InvalidArgumentError(f"start_timeout={start_timeout!r} must be > 0 seconds")
        if max_episodes_per_worker is not None and (
            not isinstance(max_episodes_per_worker, int)
            or isinstance(max_episodes_per_worker, bool)
            or max_episodes_per_worker < 1
        ):
            raise InvalidArgumentError(
                f"max_episodes_per_worker={max_episodes_per_worker!r} must be a positive int or None"
            )
        if max_episodes_per_worker is not None and (workers == 0 or executor != "process"):
            raise InvalidArgumentError(
                "max_episodes_per_worker recycles worker processes: use it with "
                "executor='process' and workers >= 1"
            )
        if max_worker_growth_mib is not None and (
            isinstance(max_worker_growth_mib, bool)
            or not isinstance(max_worker_growth_mib, (int, float))
            or not max_worker_growth_mib > 0
        ):
            raise InvalidArgumentError(
                f"max_worker_growth_mib={max_worker_growth_mib!r} must be a positive number of "
                "MiB or None (never recycle by memory)"
            )
        if executor == "ray" and workers == 0:
            raise InvalidArgumentError("executor='ray' needs workers >= 1 (Ray actors)")
        if isinstance(env_id, str):
            check_env_id(env_id)  # an unknown id fails here, not in every worker
        elif not callable(env_id):
            raise InvalidArgumentError(
                f"env_id={env_id!r} must be a registered id or a picklable env factory"
            )
        self.source = env_id
        self.name = env_id if isinstance(env_id, str) else getattr(env_id, "__name__", "custom")
        self.num_envs = num_envs
        self.env_kwargs = dict(env_kwargs or {})
        self.workers = min(workers, num_envs)
        self.executor = "inprocess" if self.workers == 0 else executor
        self.step_timeout, self.start_timeout, self.max_restarts = (
            step_timeout,
            start_timeout,
            max_restarts,
        )
        self.max_episodes_per_worker = max_episodes_per_worker
        self.max_worker_growth_mib = max_worker_growth_mib
        self.closed = False
        self._backend: Any
        if self.executor == "inprocess":
            self._backend = _InProcessBackend(self)
        elif self.executor == "ray":
            from turngym.pool_ray import RayBackend

            self._backend = RayBackend(self, self.workers, ray_options or {})
        else:
            from turngym.pool_process import ProcessBackend

            self._backend = ProcessBackend(self, self.workers, mp_context)
        _LIVE_POOLS.add(self)

    def submit(self, env_index: int, method: str, argument: Any = None) -> Future:
        """Sends ``reset`` (argument ``{"seed": s, "options": o}``) or ``step`` (the action) to env
        ``env_index``; the future holds what the env returned."""
        if self.closed:
            raise TurnGymError("this EnvPool is closed; build a new one")
        if not 0 <= env_index < self.num_envs:
            raise InvalidArgumentError(f"env_index={env_index} is outside 0..{self.num_envs - 1}")
        return self._backend.submit(env_index, method, argument)

    @property
    def pids(self) -> list[int]:
        """The pids of the current workers (this process's for in-process envs)."""
        return list(self._backend.pids())

    @property
    def restarts(self) -> int:
        """How many workers were replaced so far."""
        return int(getattr(self._backend, "restarts", 0))

    @property
    def recycled(self) -> int:
        """How many workers were recycled so far (``max_episodes_per_worker``,
        ``max_worker_growth_mib``)."""
        return int(getattr(self._backend, "recycled", 0))

    def matches(self, env_id: EnvSource, env_kwargs: dict[str, Any] | None) -> bool:
        """Whether this pool runs ``env_id`` built with ``env_kwargs`` (None: any kwargs)."""
        same_id = env_id == self.source or env_id == self.name
        return same_id and (env_kwargs is None or dict(env_kwargs) == self.env_kwargs)

    def close(self) -> None:
        """Closes every env and stops every worker (idempotent)."""
        if self.closed:
            return
        self.closed = True
        _LIVE_POOLS.discard(self)
        self._backend.close()

    def __enter__(self) -> EnvPool:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001, S110 - nothing to report to at collection time
            pass

    def __repr__(self) -> str:
        return (
            f"EnvPool({self.name!r}, num_envs={self.num_envs}, workers={self.workers}, "
            f"executor={self.executor!r}{', closed' if self.closed else ''})"
        )


_LIVE_POOLS: weakref.WeakSet[EnvPool] = weakref.WeakSet()


@at_exit
def _close_live_pools() -> None:
    for pool in list(_LIVE_POOLS):
        try:
            pool.close()
        except Exception:  # noqa: BLE001, S110 - interpreter exit: best effort
            pass
