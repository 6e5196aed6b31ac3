"""What both SWE backends share: the :class:`Sandbox` interface, limits, the live-sandbox registry,
the host's pristine starting trees (:class:`StartTree`) and the framing of the tool's answers.

Every sandbox registers itself on creation and is closed by whichever comes first: ``close()``
(the env's next reset or ``env.close()``), garbage collection (``weakref.finalize``), or interpreter
exit (``atexit``), so an exception, a KeyboardInterrupt or a forgotten env never leaks one.
"""

from __future__ import annotations

import functools
import io
import os
import secrets
import shutil
import stat
import tarfile
import tempfile
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from turngym.envs.swe.sandbox.swe_diff import apply_diff, tree_entry
from turngym.envs.swe.sandbox.swe_proc import chown_tree
from turngym.envs.swe.sandbox.swe_tool import encode_request
from turngym.exit_hooks import at_exit

__all__ = [
    "Limits",
    "Sandbox",
    "SandboxError",
    "StartTree",
    "SANDBOX_DIR",
    "WORKSPACE",
    "TOOL_FILES",
    "close_all",
    "new_frame",
    "tool_answer",
    "tool_payload",
    "unframe",
]

SANDBOX_DIR = Path(__file__).parent / "sandbox"
#: The repository's path inside every sandbox.
WORKSPACE = "/testbed"
#: The files of the in-sandbox tool (copied into every sandbox).
TOOL_FILES = (
    "swe_tool.py",
    "swe_diff.py",
    "swe_proc.py",
    "swe_grade.py",
    "swe_canary.py",
    "turngym_grade_runner.py",
)


class SandboxError(RuntimeError):
    """The sandbox itself failed (engine gone, container killed); the episode cannot go on."""


def new_frame() -> str:
    """A per-call secret that frames the tool's answer (only the tool and the host know it)."""
    return f"<turngym:{secrets.token_hex(16)}>"


def unframe(stdout: bytes, frame: str) -> dict[str, Any] | None:
    """The tool's JSON answer between two copies of ``frame`` in ``stdout``; None if absent."""
    import json

    text = stdout.decode("utf-8", "replace")
    start = text.find(frame)
    end = text.find(frame, start + len(frame)) if start >= 0 else -1
    if end < 0:
        return None
    try:
        value = json.loads(text[start + len(frame) : end])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def tool_payload(request: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    """``(payload, None)``: the request as the tool's command-line argument; ``(None, answer)``
    with an error answer for the agent when it is too large to pass (over ~120 KB compressed)."""
    payload = encode_request(request)
    if len(payload) > 120_000:
        too_large = (
            "the request is too large (over ~120 KB compressed); split it into smaller edits"
        )
        return None, {"error": too_large}
    return payload, None


def tool_answer(stdout: bytes, frame: str, killed: bool) -> dict[str, Any] | None:
    """The tool's framed answer; else, if the tool was ``killed``, an error answer saying so
    (the episode goes on); else None (the caller raises a :class:`SandboxError`)."""
    result = unframe(stdout, frame)
    if result is None and killed:
        killed_text = (
            "the sandbox tool was killed (out of memory or time); the command did not finish"
        )
        return {"error": killed_text}
    return result


class StartTree:
    """A task's starting repository (clean code + the bug), kept on the host.

    It is what the agent's sandbox starts from and what every grading sandbox starts from, so
    nothing the agent does can change it. Members keep their kind (folder, file, symlink) and mode.
    """

    def __init__(self, members: list[tuple[str, str, Any, int]]) -> None:
        self.members = members  # (relative path, "dir"|"file"|"link", bytes|target|None, mode)
        # the files as read_tree reads a workspace, so an untouched start diffs empty against it
        kept = ((rel, tree_entry(rel, data)) for rel, kind, data, _ in members if kind == "file")
        self.files = {rel: data for rel, data in kept if data is not None}
        self._archives: dict[tuple[str, int], bytes] = {}

    @classmethod
    def build(cls, clean: str | os.PathLike, patch: str = "") -> StartTree:
        """``clean`` (a folder) with ``patch`` applied; caches skipped; symlinks kept as symlinks."""
        return _start_tree(os.fspath(clean), patch)

    def archive(self, prefix: str, uid: int = 0) -> bytes:
        """A tar of the tree under ``prefix/`` (or at its top when empty) owned by ``uid`` (cached)."""
        key = (prefix, uid)
        if key not in self._archives:
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w") as archive:
                if prefix:
                    root = tarfile.TarInfo(prefix)
                    root.type, root.mode, root.uid, root.gid = tarfile.DIRTYPE, 0o755, uid, uid
                    archive.addfile(root)
                for rel, kind, data, mode in self.members:
                    info = tarfile.TarInfo(f"{prefix}/{rel}" if prefix else rel)
                    info.uid = info.gid = uid
                    info.mode = mode
                    if kind == "dir":
                        info.type = tarfile.DIRTYPE
                        archive.addfile(info)
                    elif kind == "link":
                        info.type, info.linkname = tarfile.SYMTYPE, data
                        archive.addfile(info)
                    else:
                        info.size = len(data)
                        archive.addfile(info, io.BytesIO(data))
            self._archives[key] = buffer.getvalue()
        return self._archives[key]

    def materialize(self, dest: str | os.PathLike, uid: int | None = None) -> None:
        """Writes the tree into the (new or empty) folder ``dest``; chowns it to ``uid`` if given."""
        dest = os.fspath(dest)
        os.makedirs(dest, exist_ok=True)
        for rel, kind, data, mode in self.members:
            path = os.path.join(dest, rel)
            if kind == "dir":
                os.makedirs(path, exist_ok=True)
                os.chmod(path, mode)
            elif kind == "link":
                os.symlink(data, path)
            else:
                with open(path, "wb") as handle:
                    handle.write(data)
                os.chmod(path, mode)
        if uid is not None and os.geteuid() == 0:
            chown_tree(dest, uid)


@functools.lru_cache(maxsize=16)
def _start_tree(clean: str, patch: str) -> StartTree:
    with tempfile.TemporaryDirectory(prefix="turngym-start-") as tmp:
        work = os.path.join(tmp, "repo")
        shutil.copytree(
            clean,
            work,
            symlinks=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".turngym-manifest.json"),
        )
        if patch:
            apply_diff(work, patch)
        members: list[tuple[str, str, Any, int]] = []
        for folder, dirs, names in os.walk(work):
            dirs.sort()
            for name in sorted(dirs) + sorted(names):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, work)
                info = os.lstat(path)
                mode = stat.S_IMODE(info.st_mode)
                if stat.S_ISLNK(info.st_mode):
                    members.append((rel, "link", os.readlink(path), 0o777))
                elif stat.S_ISDIR(info.st_mode):
                    members.append((rel, "dir", None, mode | 0o755))
                elif stat.S_ISREG(info.st_mode):
                    with open(path, "rb") as handle:
                        members.append((rel, "file", handle.read(), (mode | 0o644) & 0o755))
    tree = StartTree(members)
    return tree


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandbox.

    Attributes:
        command_timeout: seconds one command may run before its process group is killed.
        max_output: characters of command output kept (head and tail; the middle is elided).
        memory_mb: memory limit (the container's cgroup; RLIMIT_AS per process on ``local``).
        pids: process limit (the container's pids cgroup; a cgroup or RLIMIT_NPROC on ``local``).
        cpus: CPU cores' worth of time (docker: ``nano_cpus``; local: the sandbox cgroup's CPU
            quota, else RLIMIT_CPU per process, see ``local_backend.py``).
        file_mb: the largest file a command may write (RLIMIT_FSIZE).
        disk_mb: size of the workspace tmpfs (docker) or the workspace quota (local).
        inodes: files and folders the workspace may hold (the tmpfs's ``nr_inodes`` on docker,
            the workspace quota on local): a flood of empty files ends the episode instead of
            slowing every later step.
    """

    command_timeout: float = 30.0
    max_output: int = 10_000
    memory_mb: int = 1024
    pids: int = 256
    cpus: float = 1.0
    file_mb: int = 64
    disk_mb: int = 256
    inodes: int = 50_000

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

    def agent_diff(self, stop: bool = False) -> str:
        """The agent's changes to the starting tree, read from outside its sandbox (after killing
        every agent process when ``stop``)."""
        raise NotImplementedError

    def evaluate(self, diff: str, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Grades ``diff`` in a fresh grading sandbox (``request``: the tool's ``grade`` fields)."""
        raise NotImplementedError

    def renew(self, start: StartTree | None, task: str = "") -> bool:
        """Readies this sandbox for a new episode starting from ``start``; False if it cannot."""
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


at_exit(close_all)
