"""The ``local`` SWE backend: bubblewrap jails around a workspace folder on the host.

Each command runs in a fresh ``bwrap`` with every top-level folder of the host bound read-only,
a private ``/tmp``, the workspace bound read-write at ``/testbed``, a read-only snapshot of the
starting code, and new user/pid/network/ipc/uts namespaces (no network; processes cannot outlive
the command, because the pid namespace dies with it). Limits: the tool's timeout (process group
killed), RLIMIT_FSIZE/RLIMIT_AS per process, and, when this process may create cgroups (root),
a per-sandbox cgroup with ``pids.max`` (fork bombs) and a memory limit; otherwise RLIMIT_NPROC.
The workspace is checked against ``Limits.disk_mb`` after every command.

Needs ``bwrap`` (Debian: ``apt-get install bubblewrap``) and the project's source in the turngym
cache (``python -m turngym.envs.swe.build fetch``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from turngym.envs.swe.sandbox.swe_tool import encode_request, handle
from turngym.envs.swe.sandbox_base import (
    REPORT_PATH,
    SANDBOX_DIR,
    WORKSPACE,
    Limits,
    Sandbox,
    SandboxError,
)
from turngym.error import DependencyNotInstalled

__all__ = ["LocalSandbox", "bwrap_available", "local_available"]

BASE_MOUNT = "/tmp/.turngym-base"
_SKIP_ROOT = {"proc", "dev", "tmp", "sys", "run", "testbed"}


def _rebind_hidden_host_paths() -> list[str]:
    """``--ro-bind`` arguments for what the sandboxed tool needs from below /tmp or /run.

    The jail mounts an empty /tmp (and no /run), which would hide an interpreter, a virtualenv
    or a checkout living there (CI often clones into /tmp): ``execvp .venv/bin/python: No such
    file``. The interpreter's prefixes, its import path and the sandbox tool are bound again,
    read-only, on top. Folders directly at /tmp or /run themselves are never exposed.
    """
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(SANDBOX_DIR), *sys.path}
    candidates.add(str(Path(sys.executable).parent))
    hidden = []
    for path in candidates:
        if not path or not os.path.isdir(path):
            continue
        parts = Path(os.path.abspath(path)).parts
        if len(parts) > 2 and parts[1] in ("tmp", "run"):
            hidden.append(os.path.abspath(path))
    kept: list[str] = []
    for path in sorted(hidden):  # a folder inside one already bound needs no bind of its own
        if not any(path == k or path.startswith(k + os.sep) for k in kept):
            kept.append(path)
    return [arg for path in kept for arg in ("--ro-bind", path, path)]


_BWRAP_OK = False  # bwrap worked once in this process (checked at every sandbox start until then)


def bwrap_available() -> str | None:
    """None when bubblewrap works here, else the reason (for pytest skips)."""
    global _BWRAP_OK
    if _BWRAP_OK:
        return None
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (Debian: apt-get install bubblewrap)"
    done = subprocess.run(
        ["bwrap", "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return f"bwrap cannot create namespaces here: {done.stderr.strip()}"
    _BWRAP_OK = True
    return None


def local_available(projects: list[str]) -> str | None:
    """None when the local backend can run tasks of ``projects``, else the reason."""
    from turngym.envs.swe.projects import project, project_source

    reason = bwrap_available()
    if reason:
        return reason
    try:
        for name in projects:
            project_source(project(name))
    except DependencyNotInstalled as error:
        return str(error)
    return None


def _make_cgroups(limits: Limits) -> list[Path]:
    """Per-sandbox cgroups (v2 or v1 pids+memory) when this process may create them, else []."""
    name = f"turngym-swe-{uuid.uuid4().hex[:12]}"
    root = Path("/sys/fs/cgroup")
    settings = {
        "pids.max": str(limits.pids),
        "memory.max": str(limits.memory_mb << 20),
        "memory.limit_in_bytes": str(limits.memory_mb << 20),
    }
    made: list[Path] = []
    roots = [root] if (root / "cgroup.controllers").exists() else [root / "pids", root / "memory"]
    try:
        for parent in roots:
            group = parent / name
            group.mkdir()
            made.append(group)
            for key, value in settings.items():
                if (group / key).exists():
                    (group / key).write_text(value)
        return made
    except OSError:
        for group in made:
            group.rmdir()
        return []


class LocalSandbox(Sandbox):
    """A workspace folder on the host, used only through bubblewrap (see the module docstring)."""

    backend = "local"

    def __init__(self, source: Path, limits: Limits, patch: str = "", task: str = "") -> None:
        reason = bwrap_available()
        if reason:
            raise DependencyNotInstalled(
                f"backend='local' needs bubblewrap: {reason}; or use backend='docker'."
            )
        self.limits = limits
        self.root = Path(tempfile.mkdtemp(prefix="turngym-swe-"))
        self.workspace, self.base = self.root / "workspace", self.root / "base"
        self.cgroups = _make_cgroups(limits)
        try:
            self.initial = handle(
                {
                    "op": "setup",
                    "src": str(source),
                    "patch": patch,
                    "workspace": str(self.workspace),
                    "base": str(self.base),
                }
            )
            if "error" in self.initial:
                raise SandboxError(f"setting up {task} failed: {self.initial['error']}")
        except BaseException:
            self._cleanup(self.root, self.cgroups)
            raise
        super().__init__()

    def _cleanup_args(self) -> tuple[Any, ...]:
        return (self.root, self.cgroups)

    @staticmethod
    def _cleanup(root: Path, cgroups: list[Path]) -> None:
        shutil.rmtree(root, ignore_errors=True)
        for group in cgroups:
            try:
                group.rmdir()
            except OSError:
                pass

    def _bwrap(self) -> list[str]:
        args = ["bwrap", "--die-with-parent", "--new-session", "--unshare-all", "--clearenv"]
        for entry in sorted(os.listdir("/")):
            if entry not in _SKIP_ROOT and not os.path.islink(f"/{entry}"):
                args += ["--ro-bind", f"/{entry}", f"/{entry}"]
            elif os.path.islink(f"/{entry}"):
                args += ["--symlink", os.readlink(f"/{entry}"), f"/{entry}"]
        python_bin = str(Path(sys.executable).parent)
        environment = {
            "PATH": f"{python_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": WORKSPACE,
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(SANDBOX_DIR),
            "PYTEST_ADDOPTS": "-p turngym_pytest_report",
            "TURNGYM_PYTEST_REPORT": REPORT_PATH,
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        for key, value in environment.items():
            args += ["--setenv", key, value]
        return args + [
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
            *_rebind_hidden_host_paths(),
            "--bind",
            str(self.workspace),
            WORKSPACE,
            "--ro-bind",
            str(self.base),
            BASE_MOUNT,
            "--chdir",
            WORKSPACE,
        ]

    def _enter_limits(self) -> None:
        # Runs in the child between fork and exec: join the cgroups so every descendant is counted.
        for group in self.cgroups:
            (group / "cgroup.procs").write_text(str(os.getpid()))

    def call(
        self, request: dict[str, Any], *, as_root: bool = False, timeout: float | None = None
    ) -> dict[str, Any]:
        if self.closed:
            raise SandboxError("the sandbox is closed")
        timeout = float(timeout if timeout is not None else self.limits.command_timeout)
        rlimits = self.limits.rlimits(memory=not self.cgroups)
        if (
            not self.cgroups
        ):  # RLIMIT_NPROC counts every process of the user, so allow for the existing ones
            rlimits["RLIMIT_NPROC"] = _user_processes() + self.limits.pids
        request = dict(
            request,
            workspace=WORKSPACE,
            base=BASE_MOUNT,
            timeout=timeout,
            python=sys.executable,
            max_output=self.limits.max_output,
            rlimits=rlimits,
        )
        payload = encode_request(request)
        if len(payload) > 120_000:
            return {
                "error": "the request is too large (over ~120 KB compressed); split it into smaller edits"
            }
        command = self._bwrap() + [sys.executable, str(SANDBOX_DIR / "swe_tool.py"), payload]
        try:
            done = subprocess.run(
                command, capture_output=True, timeout=timeout + 15, preexec_fn=self._enter_limits
            )
        except subprocess.TimeoutExpired:
            return {"error": f"the sandbox did not answer in {timeout + 15:.0f} s and was killed"}
        lines = done.stdout.decode("utf-8", "replace").strip().splitlines()
        try:
            result = json.loads(lines[-1])
        except (IndexError, ValueError):
            if done.returncode in (-9, 137):
                return {
                    "error": "the sandbox tool was killed (out of memory or time); the command did not finish"
                }
            raise SandboxError(
                f"bwrap failed (exit {done.returncode}): {done.stderr.decode()[-500:]}"
            ) from None
        if request["op"] == "run" and _size_mb(self.workspace) > self.limits.disk_mb:
            result["quota_exceeded"] = True
        return result


def _user_processes() -> int:
    uid = os.getuid()
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                count += os.stat(f"/proc/{entry}").st_uid == uid
            except OSError:
                pass
    return count


def _size_mb(folder: Path) -> float:
    total = 0
    for path, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(path, name)).st_size
            except OSError:
                pass
    return total / (1 << 20)
