"""The local executor of :class:`turngym.EnvPool`: worker processes connected by pipes.

Each worker process hosts its share of the pool's envs and answers ``(request id, env, method,
argument)`` commands in order; a reader thread per worker resolves the commands' futures, notices
a dead worker (EOF on its pipe) or a command past ``step_timeout`` (it kills the worker), fails the
pending futures with :class:`~turngym.pool.WorkerDied`, marks the worker's envs lost and starts a
replacement. See :mod:`turngym.pool` for the contract.
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
from turngym.pool import (
    EnvCommandError,
    EnvSource,
    WorkerDied,
    build_env,
    round_robin,
    run_command,
)

__all__ = ["ProcessBackend", "default_context"]

_POLL_SECONDS = 0.2


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
    connection: Any, source: EnvSource, env_kwargs: dict[str, Any], count: int
) -> None:
    """A worker process: builds ``count`` envs, then answers ``(id, index, method, arg)`` commands."""
    try:
        envs = [build_env(source, env_kwargs) for _ in range(count)]
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which raises
        connection.send(
            (None, "error", f"{type(error).__name__}: {error}\n{traceback.format_exc()}")
        )
        return
    connection.send((None, "ok", os.getpid()))
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
        connection.send(reply)
    for env in envs:
        try:
            env.close()
        except Exception:  # noqa: BLE001, S110 - closing is best effort
            pass


class _Worker:
    """One worker process, its pipe, the futures of its unanswered commands and its reader thread."""

    def __init__(self, pool: ProcessBackend, slot: int, indices: list[int]) -> None:
        self.pool, self.slot, self.indices = pool, slot, indices
        parent, child = pool.context.Pipe()
        self.connection = parent
        self.process = pool.context.Process(
            target=_worker_main,
            args=(child, pool.source, pool.env_kwargs, len(indices)),
            daemon=True,
            name=f"turngym-env-worker-{slot}",
        )
        self.process.start()
        child.close()
        self.pid = self.process.pid
        self.lock = threading.Lock()
        self.pending: dict[int, tuple[Future, float | None]] = {}
        self.ready = Future()
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
            deadline = None if timeout is None else time.monotonic() + timeout
            self.pending[request_id] = (future, deadline)
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
                        self.ready.set_result(payload)
                    else:
                        self.ready.set_exception(
                            TurnGymError(
                                f"an env worker could not build {self.pool.name}:\n{payload}"
                            )
                        )
                        self.process.join(5)
                        self._fail(
                            f"the env worker could not build {self.pool.name}", restart=False
                        )
                        return
                    continue
                with self.lock:
                    future, _ = self.pending.pop(request_id, (None, None))
                if future is None or future.done():
                    continue
                if status == "ok":
                    future.set_result(payload)
                else:
                    future.set_exception(
                        EnvCommandError(f"{self.pool.name} raised in a worker:\n{payload}")
                    )
        except (EOFError, OSError, ConnectionError):
            pass
        self._on_exit()

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        with self.lock:
            late = any(d is not None and d < now for _, d in self.pending.values())
        if late and self.dead is None:
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
        reason = self.dead or (
            f"the env worker (pid {self.pid}) of {self.pool.name} {_describe_exit(self.process.exitcode)}"
        )
        if not self.ready.done():
            reason += (
                " during start-up. If your script builds a pool or calls turngym.rollout with "
                'num_envs > 1 at top level, put that code under `if __name__ == "__main__":` '
                "(workers start with forkserver/spawn, which re-import the main script)."
            )
            self.ready.set_exception(TurnGymError(reason))
        self._fail(reason, restart=True)

    def _fail(self, reason: str, restart: bool) -> None:
        with self.lock:
            self.dead = self.dead or reason
            pending, self.pending = list(self.pending.values()), {}
        if restart:
            self.pool.replace(self, reason)
        for future, _ in pending:
            if not future.done():
                future.set_exception(WorkerDied(reason))

    def stop(self) -> None:
        with self.lock:
            try:
                self.connection.send(None)
            except (BrokenPipeError, OSError):
                pass


class ProcessBackend:
    """Envs in worker processes connected by pipes; a reader thread per worker resolves futures."""

    def __init__(self, pool: Any, workers: int, mp_context: str | None) -> None:
        self.source, self.env_kwargs, self.name = pool.source, pool.env_kwargs, pool.name
        self.step_timeout, self.max_restarts = pool.step_timeout, pool.max_restarts
        self.context = mp.get_context(mp_context or default_context())
        self.ids = itertools.count()
        self.closing = False
        self.restarts = 0
        self.lost: dict[int, str] = {}
        self.lock = threading.Lock()
        split = round_robin(pool.num_envs, workers)
        self.workers = [_Worker(self, slot, indices) for slot, indices in enumerate(split)]
        try:
            for worker in self.workers:
                worker.ready.result(timeout=pool.start_timeout)
        except BaseException:
            self.close()
            raise

    def submit(self, index: int, method: str, argument: Any) -> Future:
        future: Future = Future()
        with self.lock:
            if method == "reset":
                self.lost.pop(index, None)
            elif index in self.lost:
                future.set_exception(WorkerDied(self.lost[index]))
                return future
            worker = self.workers[index % len(self.workers)]
        worker.send(future, index, method, argument, self.step_timeout)
        return future

    def replace(self, dead: _Worker, reason: str) -> None:
        with self.lock:
            for index in dead.indices:
                self.lost[index] = reason
            if self.closing or self.workers[dead.slot] is not dead:
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
