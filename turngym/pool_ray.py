"""The Ray executor of :class:`turngym.EnvPool` (``executor="ray"``; ``pip install 'turngym[ray]'``).

Each worker is a Ray actor hosting its share of the pool's envs, so the envs of one pool can spread
over every machine of a Ray cluster (SWE sandboxes, heavy simulators) while the driver code stays
the same: ``EnvPool(env_id, 64, workers=16, executor="ray")``. Commands are actor method calls
(``ObjectRef.future()``); an actor that dies (node lost, OOM-killed, ``ray.kill``) or exceeds
``step_timeout`` (it is then killed) fails its pending commands with :class:`WorkerDied` and is
replaced by a fresh actor, exactly like a local worker process.

When to use it: only when one machine is not enough. A Ray actor call costs more than a local pipe
round trip: ``benchmarks/rollout_speed.py`` measured, with 2 workers on a 2-core machine,
1,188 steps/s through Ray actors vs 11,921 through local pipes for envs that do no work (0.10x),
and 0.89x once each step does 2 ms of work. On one machine the default process pool is faster. The driver calls ``ray.init()`` when Ray is not initialised yet
(connecting to ``$RAY_ADDRESS`` when set); call ``ray.init(address=...)`` yourself to choose.
``ray_options`` go to ``ActorClass.options`` (e.g. ``{"num_cpus": 1, "resources": {...}}``).

As with local workers, a replacement actor has ``start_timeout`` seconds to build its envs, a
command's ``step_timeout`` runs from the moment its actor serves, and
:data:`~turngym.pool_base.START_FAILURES_TO_BREAK` replacements in a row that fail before serving
stop the replacing (:class:`~turngym.pool_base.WorkersCannotStart`).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future
from typing import Any

from turngym.error import TurnGymError, missing_dependency
from turngym.pool_base import (
    START_FAILURES_TO_BREAK,
    EnvCommandError,
    WorkerDied,
    WorkersCannotStart,
    build_env,
    episode_ended,
    round_robin,
    run_command,
)
from turngym.pool_recycle import MemoryReleaser

__all__ = ["RayBackend", "require_ray"]


def require_ray() -> Any:
    """The ``ray`` module, or :class:`~turngym.error.DependencyNotInstalled` naming the extra."""
    try:
        import ray
    except ImportError:
        raise missing_dependency("ray", "ray") from None
    return ray


class _EnvHost:
    """The body of a Ray actor: ``count`` envs, one command at a time."""

    def __init__(self, source: Any, env_kwargs: dict[str, Any], count: int) -> None:
        self.envs = [build_env(source, env_kwargs) for _ in range(count)]
        self.releaser = MemoryReleaser()

    def pid(self) -> int:
        return os.getpid()

    def call(self, index: int, method: str, argument: Any) -> Any:
        reply = run_command(self.envs[index], method, argument)
        if episode_ended(method, reply):  # freed memory back (pool_recycle): <1 ms, once a second
            self.releaser.episode_ended()
        return reply

    def close(self) -> None:
        for env in self.envs:
            env.close()


class RayBackend:
    """Envs in Ray actors; the same ``submit -> Future`` contract as the process backend."""

    def __init__(self, pool: Any, workers: int, ray_options: dict[str, Any]) -> None:
        self.ray = ray = require_ray()
        if not ray.is_initialized():
            ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=True)
        self.name, self.source, self.env_kwargs = pool.name, pool.source, pool.env_kwargs
        self.step_timeout, self.max_restarts = pool.step_timeout, pool.max_restarts
        self.start_timeout = pool.start_timeout
        self.start_failures = 0
        self.broken: str | None = None
        self.actor_class = ray.remote(_EnvHost).options(**{"max_concurrency": 1, **ray_options})
        self.split = round_robin(pool.num_envs, workers)
        self.lock = threading.Lock()
        self.lost: dict[int, str] = {}
        self.restarts = 0
        self.closing = False
        self.ready: list[Future] = [Future() for _ in self.split]
        self.actors = [self._start(slot) for slot in range(len(self.split))]
        try:
            self._pids = [ready.result(timeout=pool.start_timeout) for ready in self.ready]
        except Exception as error:
            self.close()
            raise TurnGymError(f"a Ray env actor could not build {self.name}: {error}") from None

    def _start(self, slot: int) -> Any:
        """A new actor for ``slot``; ``self.ready[slot]`` resolves to its pid once it serves."""
        actor = self.actor_class.remote(self.source, self.env_kwargs, len(self.split[slot]))
        ready = self.ready[slot] = actor.pid.remote().future()
        ready.add_done_callback(lambda done: self._started(done))
        return actor

    def _started(self, ready: Future) -> None:
        if ready.exception() is None:
            with self.lock:
                self.start_failures = 0

    def _start_timed_out(self, actor: Any, ready: Future) -> None:
        if not ready.done():
            actor._turngym_reason = (
                f"the Ray env actor of {self.name} did not finish building its envs within "
                f"start_timeout={self.start_timeout} s (a slow env or a loaded cluster; raise "
                "start_timeout) and was killed"
            )
            self.ray.kill(actor, no_restart=True)

    def submit(self, index: int, method: str, argument: Any) -> Future:
        outer: Future = Future()
        with self.lock:
            if self.broken is not None:
                outer.set_exception(WorkersCannotStart(self.broken))
                return outer
            if method == "reset":
                self.lost.pop(index, None)
            elif index in self.lost:
                outer.set_exception(WorkerDied(self.lost[index]))
                return outer
            slot = index % len(self.split)
            actor, ready = self.actors[slot], self.ready[slot]
        if actor is None:
            outer.set_exception(
                WorkerDied(f"the Ray actor of {self.name} was not replaced (max_restarts)")
            )
            return outer
        inner = actor.call.remote(index // len(self.split), method, argument).future()
        timers: list[threading.Timer] = []

        def arm(_: Future) -> None:  # the step timeout runs once the actor serves
            if inner.done():
                return
            timer = threading.Timer(self.step_timeout, self._timed_out, (slot, actor, inner))
            timer.daemon = True
            timers.append(timer)
            timer.start()

        if self.step_timeout is not None:
            ready.add_done_callback(arm)

        def settle(done: Future) -> None:
            for timer in timers:
                timer.cancel()
            try:
                outer.set_result(done.result())
            except self.ray.exceptions.RayActorError as error:
                reason = getattr(actor, "_turngym_reason", None) or (
                    f"the Ray env actor of {self.name} died: {str(error).splitlines()[0]}"
                )
                self._replace(slot, actor, reason)
                outer.set_exception(WorkerDied(reason))
            except self.ray.exceptions.RayTaskError as error:
                outer.set_exception(EnvCommandError(f"{self.name} raised in a Ray actor:\n{error}"))
            except Exception as error:  # noqa: BLE001 - e.g. the object was lost with its node
                self._replace(slot, actor, f"the Ray env actor of {self.name} failed: {error}")
                outer.set_exception(WorkerDied(str(error)))

        inner.add_done_callback(settle)
        return outer

    def _timed_out(self, slot: int, actor: Any, inner: Future) -> None:
        if not inner.done():
            actor._turngym_reason = (
                f"the Ray env actor of {self.name} did not answer within "
                f"step_timeout={self.step_timeout} s and was killed"
            )
            self.ray.kill(actor, no_restart=True)

    def _replace(self, slot: int, dead: Any, reason: str) -> None:
        with self.lock:
            if self.closing or self.actors[slot] is not dead:
                return
            for index in self.split[slot]:
                self.lost[index] = reason
            if not self.ready[slot].done() or self.ready[slot].exception() is not None:
                self.start_failures += 1
                if self.start_failures >= START_FAILURES_TO_BREAK:
                    self.broken = (
                        f"{self.start_failures} Ray env actors of {self.name} in a row failed "
                        f"before serving; the pool stopped replacing them. The last: {reason}"
                    )
                    self.actors[slot] = None
                    return
            self.restarts += 1
            if self.restarts > self.max_restarts:
                self.actors[slot] = None
                return
            actor = self.actors[slot] = self._start(slot)
            self._pids[slot] = None
            timer = threading.Timer(
                self.start_timeout, self._start_timed_out, (actor, self.ready[slot])
            )
            timer.daemon = True
            timer.start()

    def pids(self) -> list[int | None]:
        with self.lock:
            missing = [
                slot for slot, pid in enumerate(self._pids) if pid is None and self.actors[slot]
            ]
        for slot in missing:
            self._pids[slot] = self.ready[slot].result(timeout=self.start_timeout)
        return list(self._pids)

    def close(self) -> None:
        self.closing = True
        for actor in self.actors:
            if actor is None:
                continue
            try:
                self.ray.get(actor.close.remote(), timeout=10)
            except Exception:  # noqa: BLE001, S110 - a dead actor has nothing to close
                pass
            self.ray.kill(actor, no_restart=True)
