"""The local executor of :class:`turngym.EnvPool`: worker processes connected by pipes.

Each worker process hosts its share of the pool's envs and answers ``(request id, env, method,
argument)`` commands in order; a reader thread per worker resolves the commands' futures, notices
a dead worker (EOF on its pipe) or a command past ``step_timeout`` (it kills the worker), fails the
pending futures with :class:`~turngym.pool_base.WorkerDied`, marks the worker's envs lost and starts
a replacement. See :mod:`turngym.pool` for the contract.

Start-up. A worker (first or replacement) has ``start_timeout`` seconds to build its envs; commands
sent to it meanwhile wait in its pipe, and their ``step_timeout`` runs from the moment it serves,
so a replacement on a loaded machine (or of a slow-to-build env) serves the episode it was started
for. :data:`~turngym.pool_base.START_FAILURES_TO_BREAK` replacements in a row that die or time out
before serving trip a circuit breaker: the pool stops replacing them and every command fails with
:class:`~turngym.pool_base.WorkersCannotStart` naming the cause.

Recycling (``max_episodes_per_worker``, ``max_worker_growth_mib``) and giving freed memory back
when an episode ends: :mod:`turngym.pool_recycle`.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from concurrent.futures import Future
from typing import Any

from turngym.error import TurnGymError
from turngym.exit_hooks import run_exit_hooks
from turngym.pool_base import (
    START_FAILURES_TO_BREAK,
    EnvCommandError,
    EnvSource,
    WorkerDied,
    WorkersCannotStart,
    build_env,
    episode_ended,
    round_robin,
    run_command,
)
from turngym.pool_recycle import MemoryReleaser, RecyclePolicy

__all__ = ["ProcessBackend", "default_context"]

_POLL_SECONDS = 0.2
_MAIN_GUARD_HINT = (
    " If your script builds a pool or calls turngym.rollout with num_envs > 1 at top level, put "
    'that code under `if __name__ == "__main__":` (workers start with forkserver/spawn, which '
    "re-import the main script)."
)


def default_context() -> str:
    """forkserver on Linux (it never forks a parent holding torch/tokenizer threads), else spawn."""
    return "forkserver" if sys.platform.startswith("linux") else "spawn"


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def _worker_main(
    connection: Any, source: EnvSource, env_kwargs: dict[str, Any], count: int, exit_hooks: bool
) -> None:
    """A worker process: builds ``count`` envs, then answers ``(id, index, method, arg)`` commands;
    runs the process's exit hooks when it ends if ``exit_hooks``."""
    try:
        envs = [build_env(source, env_kwargs) for _ in range(count)]
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which raises
        connection.send(
            (None, "error", f"{type(error).__name__}: {error}\n{traceback.format_exc()}")
        )
        return
    connection.send((None, "ok", os.getpid()))
    releaser = MemoryReleaser()
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):  # the parent went away
            break
        if message is None:
            break
        request_id, index, method, argument = message
        try:
            reply = (request_id, "ok", run_command(envs[index], method, argument))
        except BaseException as error:  # noqa: BLE001 - one env's failure is that command's
            reply = (
                request_id,
                "error",
                f"{type(error).__name__}: {error}\n{traceback.format_exc()}",
            )
        try:
            connection.send(reply)
        except OSError:  # the parent went away mid-command (killed, or exited): nobody to answer
            break
        if episode_ended(method, reply[2]):  # after the reply: off the caller's path
            releaser.episode_ended()
    for env in envs:
        try:
            env.close()
        except Exception:  # noqa: BLE001, S110 - closing is best effort
            pass
    if exit_hooks:  # os._exit follows: turngym's exit hooks run now or never (exit_hooks module)
        run_exit_hooks()


class _Pending:
    """A command sent to a worker and not answered yet."""

    __slots__ = ("future", "index", "method", "sent_at", "timeout")

    def __init__(
        self, future: Future, index: int, method: str, sent_at: float, timeout: float | None
    ) -> None:
        self.future, self.index, self.method = future, index, method
        self.sent_at, self.timeout = sent_at, timeout


class _Worker:
    """One worker process, its pipe, the futures of its unanswered commands and its reader thread."""

    def __init__(self, pool: ProcessBackend, slot: int, indices: list[int]) -> None:
        self.pool, self.slot, self.indices = pool, slot, indices
        parent, child = pool.context.Pipe()
        self.connection = parent
        self.process = pool.context.Process(
            target=_worker_main,
            args=(child, pool.source, pool.env_kwargs, len(indices), pool.exit_hooks),
            daemon=True,
            name=f"turngym-env-worker-{slot}",
        )
        self.started_at = time.monotonic()
        self.process.start()
        child.close()
        self.pid = self.process.pid
        self.lock = threading.Lock()
        self.pending: dict[int, _Pending] = {}
        self.ready = Future()
        self.ready_at: float | None = None  # when it started serving
        self.episodes = 0  # resets sent to it (max_episodes_per_worker)
        self.base_rss: int | None = None  # bytes held when its first episode ended
        self.retiring = False  # recycled: its exit is not a death
        self.dead: str | None = None
        self.reader = threading.Thread(
            target=self._read, daemon=True, name=f"{self.process.name}-reader"
        )
        self.reader.start()

    def send(
        self, future: Future, index: int, method: str, argument: Any, timeout: float | None
    ) -> None:
        with self.lock:
            if self.dead is not None:
                future.set_exception(WorkerDied(self.dead))
                return
            request_id = next(self.pool.ids)
            self.pending[request_id] = _Pending(future, index, method, time.monotonic(), timeout)
            try:
                local = index // len(self.pool.workers)  # its position among this worker's envs
                self.connection.send((request_id, local, method, argument))
            except (BrokenPipeError, OSError):
                pass  # the reader sees the death and fails the future

    def _read(self) -> None:
        connection = self.connection
        try:
            while True:
                if not connection.poll(_POLL_SECONDS):
                    if self.pool.closing and not self.process.is_alive():
                        raise EOFError
                    self._check_deadlines()
                    continue
                request_id, status, payload = connection.recv()
                if request_id is None:  # the start-up message
                    if status == "ok":
                        self.ready_at = time.monotonic()
                        self.ready.set_result(payload)
                        self.pool.started(self)
                        continue
                    self.dead = f"an env worker could not build {self.pool.name}:\n{payload}"
                    self.ready.set_exception(TurnGymError(self.dead))
                    self.process.join(5)
                    break
                with self.lock:
                    command = self.pending.pop(request_id, None)
                if command is None or command.future.done():
                    continue
                if status == "ok":
                    if episode_ended(command.method, payload):
                        self.pool.idle.add(command.index)
                    command.future.set_result(payload)
                else:
                    command.future.set_exception(
                        EnvCommandError(f"{self.pool.name} raised in a worker:\n{payload}")
                    )
        except (EOFError, OSError, ConnectionError):
            pass
        self._on_exit()

    def _check_deadlines(self) -> None:
        if self.dead is not None or self.retiring:
            return
        now = time.monotonic()
        if self.ready_at is None:
            if now - self.started_at > self.pool.start_timeout:
                self.dead = (
                    f"the env worker (pid {self.pid}) of {self.pool.name} did not finish building "
                    f"its envs within start_timeout={self.pool.start_timeout} s (a slow env or a "
                    "loaded machine; raise start_timeout) and was killed"
                )
                self.process.kill()
            return
        with self.lock:
            late = any(
                c.timeout is not None and max(c.sent_at, self.ready_at) + c.timeout < now
                for c in self.pending.values()
            )
        if late:
            self.dead = (
                f"the env worker (pid {self.pid}) of {self.pool.name} did not answer within "
                f"step_timeout={self.pool.step_timeout} s and was killed"
            )
            self.process.kill()

    def _on_exit(self) -> None:
        self.process.join(5)
        if self.pool.closing:
            self._fail("the env pool was closed", restart=False)
            return
        if self.retiring:
            self._fail(f"the env worker (pid {self.pid}) was recycled", restart=False)
            return
        reason = self.dead or (
            f"the env worker (pid {self.pid}) of {self.pool.name} "
            f"{_describe_exit(self.process.exitcode)}"
        )
        if not self.ready.done():
            reason += " during start-up."
            code = self.process.exitcode
            if self.dead is None and code is not None and code > 0:
                reason += _MAIN_GUARD_HINT  # an exception before the worker ran: re-import?
            self.ready.set_exception(TurnGymError(reason))
        self._fail(reason, restart=True)

    def _fail(self, reason: str, restart: bool) -> None:
        with self.lock:
            self.dead = self.dead or reason
            pending, self.pending = list(self.pending.values()), {}
        if restart:
            self.pool.replace(self, reason)
        for command in pending:
            if not command.future.done():
                command.future.set_exception(WorkerDied(reason))

    def stop(self) -> None:
        with self.lock:
            try:
                self.connection.send(None)
            except (BrokenPipeError, OSError):
                pass

    def idle(self) -> bool:
        """No command in flight."""
        with self.lock:
            return not self.pending


class ProcessBackend:
    """Envs in worker processes connected by pipes; a reader thread per worker resolves futures."""

    def __init__(self, pool: Any, workers: int, mp_context: str | None) -> None:
        self.source, self.env_kwargs, self.name = pool.source, pool.env_kwargs, pool.name
        self.step_timeout, self.max_restarts = pool.step_timeout, pool.max_restarts
        self.start_timeout = pool.start_timeout
        self.recycle = RecyclePolicy(
            self.name,
            getattr(pool, "max_episodes_per_worker", None),
            getattr(pool, "max_worker_growth_mib", None),
        )
        self.context = mp.get_context(mp_context or default_context())
        self.exit_hooks = self.context.get_start_method() != "fork"  # see _worker_main
        self.ids = itertools.count()
        self.closing = False
        self.starting = True  # the first workers: a failure raises from __init__, no replacing
        self.restarts = self.recycled = 0
        self.start_failures = 0  # replacements in a row that died before serving
        self.broken: str | None = None  # why the circuit breaker tripped
        self.lost: dict[int, str] = {}
        self.idle: set[int] = set(range(pool.num_envs))  # envs between episodes
        self.lock = threading.Lock()
        split = round_robin(pool.num_envs, workers)
        self.workers = [_Worker(self, slot, indices) for slot, indices in enumerate(split)]
        try:
            for worker in self.workers:
                worker.ready.result(timeout=pool.start_timeout)
        except BaseException:
            self.close()
            raise
        self.starting = False

    def submit(self, index: int, method: str, argument: Any) -> Future:
        future: Future = Future()
        with self.lock:
            if self.broken is not None:
                future.set_exception(WorkersCannotStart(self.broken))
                return future
            if method == "reset":
                self.lost.pop(index, None)
            elif index in self.lost:
                future.set_exception(WorkerDied(self.lost[index]))
                return future
            worker = self.workers[index % len(self.workers)]
            if method == "reset":
                worker = self._recycled(worker, index)
                worker.episodes += 1
            self.idle.discard(index)
        worker.send(future, index, method, argument, self.step_timeout)
        return future

    def _recycled(self, worker: _Worker, index: int) -> _Worker:
        """``worker``, or a fresh one in its place when it is due and can go (see module doc)."""
        if not self.recycle.due(worker):
            return worker
        others_free = all(i in self.idle or i in self.lost for i in worker.indices if i != index)
        if not (others_free and worker.ready_at is not None and worker.idle()):
            return worker
        worker.retiring = True
        worker.stop()
        self.recycled += 1
        fresh = self.workers[worker.slot] = _Worker(self, worker.slot, worker.indices)
        return fresh

    def started(self, worker: _Worker) -> None:
        """``worker`` serves: the start-failure streak ends."""
        with self.lock:
            self.start_failures = 0

    def replace(self, dead: _Worker, reason: str) -> None:
        with self.lock:
            for index in dead.indices:
                self.lost[index] = reason
            if self.closing or self.starting or self.workers[dead.slot] is not dead:
                return
            if dead.ready_at is None:
                self.start_failures += 1
                if self.start_failures >= START_FAILURES_TO_BREAK:
                    self.broken = (
                        f"{self.start_failures} env workers of {self.name} in a row failed before "
                        f"serving; the pool stopped replacing them. The last: {reason}"
                    )
                    print(f"turngym: {self.broken}", file=sys.stderr)
                    return
            self.restarts += 1
            if self.restarts > self.max_restarts:
                print(
                    f"turngym: {reason}; max_restarts={self.max_restarts} reached, not replacing it",
                    file=sys.stderr,
                )
                return
            print(f"turngym: {reason}; starting a replacement worker", file=sys.stderr)
            self.workers[dead.slot] = _Worker(self, dead.slot, dead.indices)

    def pids(self) -> list[int]:
        return [w.pid for w in self.workers]

    def close(self) -> None:
        self.closing = True
        for worker in self.workers:
            worker.stop()
        deadline = time.monotonic() + 5
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)
        for worker in self.workers:
            worker.reader.join(5)
            worker.connection.close()
