"""What both SWE backends share: the :class:`Sandbox` interface, limits, and the live-sandbox registry.

Every sandbox registers itself on creation and is closed by whichever comes first: ``close()``
(the env's next reset or ``env.close()``), garbage collection (``weakref.finalize``), or interpreter
exit (``atexit``), so an exception, a KeyboardInterrupt or a forgotten env never leaks one.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Limits", "Sandbox", "SandboxError", "SANDBOX_DIR", "WORKSPACE", "close_all"]

SANDBOX_DIR = Path(__file__).parent / "sandbox"
#: The repository's path inside every sandbox.
WORKSPACE = "/testbed"
#: Where the agent's pytest runs write per-test statuses (read back by the env for dense rewards).
REPORT_PATH = "/tmp/.turngym-tests.json"


class SandboxError(RuntimeError):
    """The sandbox itself failed (engine gone, container killed); the episode cannot go on."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandbox.

    Attributes:
        command_timeout: seconds one command may run before its process group is killed.
        max_output: characters of command output kept (head and tail; the middle is elided).
        memory_mb: memory limit (the container's cgroup; RLIMIT_AS per process on ``local``).
        pids: process limit (the container's pids cgroup; a cgroup or RLIMIT_NPROC on ``local``).
        cpus: CPU share (docker only).
        file_mb: the largest file a command may write (RLIMIT_FSIZE).
        disk_mb: size of the workspace tmpfs (docker) or the workspace quota (local).
    """

    command_timeout: float = 30.0
    max_output: int = 10_000
    memory_mb: int = 1024
    pids: int = 256
    cpus: float = 1.0
    file_mb: int = 64
    disk_mb: int = 256

    def rlimits(self, memory: bool) -> dict[str, int]:
        limits = {"RLIMIT_FSIZE": self.file_mb << 20, "RLIMIT_CORE": 0}
        if memory:
            limits["RLIMIT_AS"] = self.memory_mb << 20
        return limits


_LIVE: weakref.WeakValueDictionary[int, Sandbox] = weakref.WeakValueDictionary()
_LOCK = threading.Lock()


class Sandbox:
    """One isolated copy of a repository with the in-sandbox tool; ``call`` serves one request."""

    backend: str = ""

    def __init__(self) -> None:
        with _LOCK:
            _LIVE[id(self)] = self
        self._finalizer = weakref.finalize(self, type(self)._cleanup, *self._cleanup_args())

    def _cleanup_args(self) -> tuple[Any, ...]:
        """Arguments of the static ``_cleanup`` (must not reference ``self``)."""
        return ()

    @staticmethod
    def _cleanup(*args: Any) -> None:
        raise NotImplementedError

    def call(
        self, request: dict[str, Any], *, as_root: bool = False, timeout: float | None = None
    ) -> dict[str, Any]:
        """Runs the in-sandbox tool with ``request`` (workspace/base paths are filled in)."""
        raise NotImplementedError

    def stop_processes(self) -> None:
        """Kills every process the agent left running (before grading)."""

    def renew(self, patch: str, task: str = "") -> bool:
        """Readies this sandbox for a new episode on the same code with ``patch``; False if it cannot."""
        return False

    @property
    def closed(self) -> bool:
        finalizer = getattr(self, "_finalizer", None)  # None while the subclass is still starting
        return finalizer is not None and not finalizer.alive

    def close(self) -> None:
        """Destroys the sandbox (idempotent)."""
        self._finalizer()


def close_all() -> None:
    """Closes every live sandbox of this process."""
    with _LOCK:
        live = list(_LIVE.values())
    for sandbox in live:
        sandbox.close()


atexit.register(close_all)
