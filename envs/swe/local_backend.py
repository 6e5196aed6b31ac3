"""The ``local`` SWE backend: bubblewrap jails around a workspace folder on the host.

Each command runs in a fresh ``bwrap`` jail:

* as an unprivileged host uid (root drops to :data:`JAIL_UID` before starting bwrap; another user
  stays itself), in its own user namespace (uid 1000 inside, never root), ``--cap-drop ALL``,
  no new privileges, no further user namespaces (``--disable-userns``): nothing can be remounted;
* new pid/network/ipc/uts/mount namespaces: no network, and no process outlives the command;
* on a private root filesystem, read-only: the Debian bookworm root the Docker base image is made
  from (:func:`~turngym.envs.swe.rootfs.local_rootfs`, unpacked once into the turngym cache), with
  its ``/usr/bin/python3``; nothing of the host's ``/usr`` (what the agent can read does not
  depend on the host: no host package of the task's project leaks its clean source), over it a
  two-line ``passwd`` and ``group`` and a per-process copy of pytest and its dependencies with the
  sandbox tool at ``/opt/turngym``; never the checkout, the turngym cache or the task file; a
  private ``/tmp`` and the workspace read-write at ``/testbed``.

Limits: the tool's timeout (process group killed), RLIMIT_FSIZE and, without cgroups, RLIMIT_AS
and RLIMIT_NPROC; when this process may create cgroups (root), a per-sandbox cgroup with
``pids.max``, a memory limit and a CPU quota of ``Limits.cpus`` cores (v2 ``cpu.max``, v1
``cpu.cfs_quota_us``). Without a CPU cgroup (not root, or no ``cpu`` controller delegated),
each process of a command gets RLIMIT_CPU = ``ceil(timeout * cpus) + 1`` seconds instead: a
process cannot spin longer than its share, but a command's processes together can use more
than ``cpus`` cores until the timeout (:attr:`LocalSandbox.cpu_limit` says which applies).

When this process is root, the workspace and every grading tree are tmpfs mounts sized as
docker's ``/testbed`` (``min(disk_mb, memory_mb / 2)`` MB, ``Limits.inodes`` inodes): a hard
bound while a command runs (RLIMIT_FSIZE alone lets a command write many 64 MB files before it
ends), where a full workspace is ENOSPC for the agent's command, as on docker; the jail's
``/tmp`` is a tmpfs of at most 64 MB (``--size``, bubblewrap >= 0.8); their pages count against
the memory cgroup. Not root, the workspace is a host folder bounded by the check after each
command only (below).

After every call the host counts the workspace (:func:`~turngym.envs.swe.local_tree.scan`:
``find``, no recursion, names as bytes) against ``Limits.disk_mb`` bytes *and* ``Limits.inodes``
entries, stopping at the first breach, before any file is read; a breach ends the episode
(``quota_exceeded``, outcome 0) and no diff of that workspace is ever made. Within the quotas the
diff is read one file at a time; names that are not UTF-8 are left out of it and named in the
command's feedback. Removal (close, grading trees, reaping) is ``rm -rf``, whatever the depth.

The starting tree lives on the host (:class:`StartTree`); the agent's diff is read by the host
(regular files only; no agent process is alive then) and graded in a fresh jail over a new copy
(:meth:`LocalSandbox.evaluate`). Everything lives under :data:`LOCAL_ROOT`, named after the owning
process, which holds a lock on ``<pid>.lock`` while it lives: :func:`reap` (run at each process's
first sandbox and by ``turngym swe reap``) removes the folders and cgroups of dead owners.

Needs ``bwrap`` (Debian: ``apt-get install bubblewrap``), pytest in this interpreter, the root
filesystem (``python -m turngym.envs.swe.rootfs``; ``docker/ci_setup.sh`` builds it) and the
project's source in the turngym cache (``python -m turngym.envs.swe.build fetch``).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

from turngym.envs.swe import local_state
from turngym.envs.swe.local_state import (  # noqa: F401 - reap, _cgroup_roots: re-exported
    INPUT_MOUNT,
    JAIL_UID,
    LOCAL_ROOT,
    TOOL_MOUNT,
    _cgroup_roots,
    _drop,
    _make_cgroups,
    _remove_cgroup,
    _runtime,
    reap,
)
from turngym.envs.swe.local_tree import (
    Scan,
    diff_digest,
    mount_tmpfs,
    remove_tree,
    scan,
    tree_diff,
)
from turngym.envs.swe.rootfs import JAIL_PYTHON, local_rootfs, rootfs_reason
from turngym.envs.swe.sandbox_base import (
    WORKSPACE,
    Limits,
    Sandbox,
    SandboxError,
    StartTree,
    new_frame,
    tool_answer,
    tool_payload,
)
from turngym.error import DependencyNotInstalled

__all__ = ["LocalSandbox", "bwrap_available", "local_available", "reap", "LOCAL_ROOT", "JAIL_UID"]

_BWRAP_OK = False  # bwrap worked once in this process (checked at every sandbox start until then)
_BWRAP_SIZE: bool | None = None  # this bwrap takes --size for a tmpfs (None: not asked yet)


def bwrap_available() -> str | None:
    """None when bubblewrap can make an unprivileged jail here, else the reason (for pytest skips)."""
    global _BWRAP_OK
    if _BWRAP_OK:
        return None
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (Debian: apt-get install bubblewrap)"
    args = ["bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL",
            "--uid", "1000", "--gid", "1000", "--ro-bind", "/usr", "/usr", *_root_links(), "true"]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, preexec_fn=_drop, cwd="/")
    if done.returncode != 0:
        return (
            f"bwrap cannot create an unprivileged jail (uid {JAIL_UID}) here: {done.stderr.strip()}"
        )
    _BWRAP_OK = True
    return None


def local_available(projects: list[str]) -> str | None:
    """None when the local backend can run and grade tasks of ``projects``, else the reason."""
    from turngym.envs.swe.projects import project, project_source

    reason = bwrap_available() or rootfs_reason()
    if reason:
        return reason
    try:
        local_state._distributions()
        for name in projects:
            project_source(project(name))
    except DependencyNotInstalled as error:
        return str(error)
    return None


def _root_links() -> list[str]:
    args = []
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = f"/{name}"
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


class LocalSandbox(Sandbox):
    """A workspace folder on the host, used only through bubblewrap (see the module docstring)."""

    backend = "local"

    def __init__(self, start: StartTree, limits: Limits, task: str = "") -> None:
        reason = bwrap_available()
        if reason:
            raise DependencyNotInstalled(
                f"backend='local' needs bubblewrap: {reason}; or use backend='docker'."
            )
        self.rootfs = local_rootfs()
        self.site = _runtime()
        self.python = JAIL_PYTHON
        self.extra_binds: list[str] = []  # binds of host folders beyond the root filesystem: none
        self.limits, self.start = limits, start
        self.root = LOCAL_ROOT / f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.root.mkdir(mode=0o700)
        self.workspace = self.root / "workspace"
        self.cgroups = _make_cgroups(limits)
        #: "cgroup" (a CPU quota of ``limits.cpus`` cores) or "rlimit" (RLIMIT_CPU per process).
        self.cpu_limit = "cgroup" if any(_has_cpu_quota(g) for g in self.cgroups) else "rlimit"
        try:
            #: The workspace is a tmpfs sized as docker's (root only): a full one is ENOSPC.
            self.bounded = self._bound(self.workspace)
            _populate(self.workspace, start)
        except BaseException:
            self._cleanup(self.root, self.cgroups)
            raise
        self.initial = {"diff_hash": hashlib.sha1(b"").hexdigest()}
        super().__init__()

    def _bound(self, folder: Path) -> bool:
        # As docker's /testbed: tmpfs pages count against the memory cgroup, so the disk stays
        # below half of it (a disk fill ends in ENOSPC, not in the OOM killer).
        size = min(self.limits.disk_mb, self.limits.memory_mb // 2) << 20
        return mount_tmpfs(folder, size, self.limits.inodes)

    def _cleanup_args(self) -> tuple[Any, ...]:
        return (self.root, self.cgroups)

    @staticmethod
    def _cleanup(root: Path, cgroups: list[Path]) -> None:
        remove_tree(root)
        for group in cgroups:
            _remove_cgroup(group)

    def _bwrap(self, workspace: Path, inputs: Path | None, frame_fd: int) -> list[str]:
        args = ["bwrap", "--die-with-parent", "--new-session", "--unshare-all", "--unshare-user",
                "--disable-userns", "--cap-drop", "ALL", "--uid", "1000", "--gid", "1000", "--clearenv",
                "--ro-bind", str(self.rootfs), "/",
                "--ro-bind", str(self.site / "etc" / "passwd"), "/etc/passwd",
                "--ro-bind", str(self.site / "etc" / "group"), "/etc/group",
                "--ro-bind", str(self.site), TOOL_MOUNT, "--proc", "/proc", "--dev", "/dev",
                "--perms", "1777", *_tmp_size(self.limits), "--tmpfs", "/tmp",
                "--bind", str(workspace), WORKSPACE]  # fmt: skip
        if inputs is not None:
            args += ["--ro-bind", str(inputs), INPUT_MOUNT]
        args += [
            "--remount-ro",
            "/",
        ]  # the jail's own root folder: nothing new appears there either
        environment = {
            "PATH": f"{TOOL_MOUNT}/bin:/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "PYTHONPATH": f"{TOOL_MOUNT}",
            "PYTHONDONTWRITEBYTECODE": "1",
            "TURNGYM_FRAME_FD": str(frame_fd),
        }
        for key, value in environment.items():
            args += ["--setenv", key, value]
        return args + ["--chdir", WORKSPACE]

    def _enter_limits(self) -> None:
        # Runs in the child between fork and exec: join the cgroups so every descendant is counted.
        for group in self.cgroups:
            (group / "cgroup.procs").write_text(str(os.getpid()))
        _drop()

    def _jail(
        self, request: dict[str, Any], timeout: float, workspace: Path, inputs: Path | None
    ) -> dict[str, Any]:
        rlimits = self.limits.rlimits(memory=not self.cgroups)
        if (
            not self.cgroups
        ):  # RLIMIT_NPROC counts every process of the uid, so allow for the existing ones
            rlimits["RLIMIT_NPROC"] = _user_processes(JAIL_UID) + self.limits.pids
        if self.cpu_limit == "rlimit":
            rlimits["RLIMIT_CPU"] = math.ceil(timeout * self.limits.cpus) + 1
        request = dict(request, workspace=WORKSPACE, base=None, timeout=timeout, python=self.python, site=TOOL_MOUNT,
                       max_output=self.limits.max_output, rlimits=rlimits)  # fmt: skip
        payload, refused = tool_payload(request)
        if payload is None:
            return refused
        frame = new_frame()
        read_end, write_end = os.pipe()
        os.write(write_end, frame.encode())
        os.close(write_end)
        command = [*self._bwrap(workspace, inputs, read_end), self.python, "-I", "-B",
                   f"{TOOL_MOUNT}/turngym/swe_tool.py", payload]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, timeout=timeout + 15, cwd="/",
                                  preexec_fn=self._enter_limits, pass_fds=(read_end,))  # fmt: skip
        except subprocess.TimeoutExpired:
            return {"error": f"the sandbox did not answer in {timeout + 15:.0f} s and was killed"}
        finally:
            os.close(read_end)
        result = tool_answer(done.stdout, frame, killed=done.returncode in (-9, 137))
        if result is not None:
            return result
        raise SandboxError(f"bwrap failed (exit {done.returncode}): {done.stderr.decode()[-500:]}")

    def call(
        self, request: dict[str, Any], *, as_root: bool = False, timeout: float | None = None
    ) -> dict[str, Any]:
        if self.closed:
            raise SandboxError("the sandbox is closed")
        timeout = float(timeout if timeout is not None else self.limits.command_timeout)
        result = self._jail(request, timeout, self.workspace, None)
        found = self._scan()
        if found.over:  # counted before anything is read: no diff of this workspace is made
            result["quota_exceeded"] = True
            _note(result, f"[{found.over}; the episode ends]")
            return result
        if found.odd and request["op"] == "run":
            shown = ", ".join(found.odd[:3]) + (", ..." if len(found.odd) > 3 else "")
            _note(result, f"[{len(found.odd)} file(s) left out of your diff: names that are not "
                          f"UTF-8, hold control characters or are too long: {shown}]")  # fmt: skip
        if "error" not in result or request["op"] == "diff":
            result["diff_hash"] = diff_digest(self.start.files, self.workspace, found)
        return result

    def _scan(self) -> Scan:
        return scan(self.workspace, self.limits.inodes, self.limits.disk_mb << 20)

    def agent_diff(self, stop: bool = False) -> str:  # no agent process outlives a command here
        found = self._scan()
        if found.over:
            raise SandboxError(f"the workspace is over its quota: {found.over}")
        return tree_diff(self.start.files, self.workspace, found)

    def evaluate(self, diff: str, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        grader = LOCAL_ROOT / f"{os.getpid()}-{uuid.uuid4().hex[:12]}-grade"
        grader.mkdir(mode=0o700)
        try:
            inputs = grader / "in"
            inputs.mkdir()
            (inputs / "agent.diff").write_text(diff)
            (inputs / "test.patch").write_text(request.pop("test_patch", ""))
            os.chmod(inputs, 0o755)
            self._bound(grader / "testbed")  # the agent's code runs in grading too
            _populate(grader / "testbed", self.start)
            request = dict(request, op="grade", diff_path=f"{INPUT_MOUNT}/agent.diff",
                           test_patch_path=f"{INPUT_MOUNT}/test.patch")  # fmt: skip
            return self._jail(request, timeout, grader / "testbed", inputs)
        finally:
            remove_tree(grader)


def _populate(folder: Path, start: StartTree) -> None:
    """``start`` written into ``folder`` and it and its parent (the jail's root) given to the
    jail's uid, as the agent's workspace and every grading tree are."""
    start.materialize(folder, JAIL_UID)
    if os.geteuid() == 0:
        os.chown(folder.parent, JAIL_UID, JAIL_UID)


def _user_processes(uid: int) -> int:
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                count += os.stat(f"/proc/{entry}").st_uid == uid
            except OSError:
                pass
    return count


def _tmp_size(limits: Limits) -> list[str]:
    """``--size`` of the jail's /tmp (as docker's: 1/8 of the memory, at most 64 MB), where this
    bubblewrap has it (>= 0.8); its pages count against the memory cgroup either way."""
    global _BWRAP_SIZE
    if _BWRAP_SIZE is None:
        help_text = subprocess.run(["bwrap", "--help"], capture_output=True, text=True).stdout
        _BWRAP_SIZE = "--size" in help_text
    return ["--size", str(min(64, limits.memory_mb // 8) << 20)] if _BWRAP_SIZE else []


def _has_cpu_quota(group: Path) -> bool:
    return (group / "cpu.max").exists() or (group / "cpu.cfs_quota_us").exists()


def _note(result: dict[str, Any], text: str) -> None:
    """Appends ``text`` to a command's output (the agent's feedback)."""
    if "output" in result:
        result["output"] = f"{result['output']}\n{text}"
