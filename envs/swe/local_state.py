"""Host-side state of the SWE local backend: the jail's uid, the per-process site folder (pytest
and its dependencies, the sandbox tool, a two-line passwd), per-sandbox cgroups (pids, memory,
CPU), and reaping what dead owners left under :data:`LOCAL_ROOT` (see ``local_backend.py``).

Reaping removes with ``rm -rf`` (:func:`~turngym.envs.swe.local_tree.remove_tree`), never a
recursive Python walk: a workspace an agent filled with a 1,200-level-deep folder, odd names or
``chmod 000`` folders goes like any other."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from turngym.cache import pid_alive
from turngym.envs.swe.local_tree import remove_tree
from turngym.envs.swe.rootfs import JAIL_PYTHON
from turngym.envs.swe.sandbox_base import SANDBOX_DIR, TOOL_FILES, Limits
from turngym.error import DependencyNotInstalled
from turngym.exit_hooks import at_exit

__all__ = ["JAIL_UID", "LOCAL_ROOT", "TOOL_MOUNT", "INPUT_MOUNT", "owner_pid", "reap"]

#: The host uid the jails run as when this process is root (any uid no account uses).
JAIL_UID = int(os.environ.get("TURNGYM_SWE_UID", "60999")) if os.geteuid() == 0 else os.geteuid()
LOCAL_ROOT = Path(tempfile.gettempdir()) / f"turngym-swe-{os.geteuid()}"
TOOL_MOUNT, INPUT_MOUNT = "/opt/turngym", "/opt/turngym-in"
CGROUP_PREFIX = "turngym-swe-"
CPU_PERIOD_US = 100_000


def _drop() -> None:
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(JAIL_UID)
        os.setuid(JAIL_UID)


def _distributions() -> list[Any]:
    """pytest and everything it requires here (pure-Python; copied into the jail's site)."""
    from importlib import metadata

    try:
        queue, seen = [metadata.distribution("pytest")], {}
        from packaging.requirements import Requirement  # a dependency of pytest's
    except (metadata.PackageNotFoundError, ImportError) as error:
        raise DependencyNotInstalled(
            "backend='local' grades with pytest, which this Python lacks: pip install pytest "
            "(or pip install 'turngym[swe]')"
        ) from error
    while queue:
        dist = queue.pop()
        seen[dist.metadata["Name"].lower()] = dist
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            if requirement.name.lower() not in seen:
                try:
                    queue.append(metadata.distribution(requirement.name))
                except metadata.PackageNotFoundError:
                    pass
    return list(seen.values())


_RUNTIME: dict[int, tuple[Path, Any]] = {}  # pid -> (its site folder, its held lock file)


_RUNTIME_LOCK = threading.Lock()


def _runtime() -> Path:
    """This process's site folder (pytest + tool + passwd), made once; reaps dead owners first."""
    with _RUNTIME_LOCK:
        return _make_runtime()


def _make_runtime() -> Path:
    pid = os.getpid()
    if pid in _RUNTIME:
        return _RUNTIME[pid][0]
    LOCAL_ROOT.mkdir(mode=0o711, exist_ok=True)
    os.chmod(LOCAL_ROOT, 0o711)
    lock = open(LOCAL_ROOT / f"{pid}.lock", "w")  # noqa: SIM115 - held for the process's life
    fcntl.flock(lock, fcntl.LOCK_EX)
    reap()
    site = LOCAL_ROOT / f"{pid}-site"
    shutil.rmtree(site, ignore_errors=True)
    for dist in _distributions():
        for file in dist.files or []:
            if str(file).startswith("..") or "__pycache__" in str(file):
                continue
            source, target = Path(dist.locate_file(file)), site / str(file)
            if source.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
    for name in TOOL_FILES:
        (site / "turngym").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SANDBOX_DIR / name, site / "turngym" / name)
    (site / "bin").mkdir(exist_ok=True)
    for name in ("python", "python3"):  # the root filesystem's interpreter, as the jail sees it
        (site / "bin" / name).symlink_to(JAIL_PYTHON)
    (site / "bin" / "pytest").write_text('#!/bin/sh\nexec python3 -m pytest "$@"\n')
    (site / "etc").mkdir(exist_ok=True)
    (site / "etc" / "passwd").write_text(
        "root:x:0:0::/root:/bin/bash\nagent:x:1000:1000::/testbed:/bin/bash\n"
    )
    (site / "etc" / "group").write_text("root:x:0:\nagent:x:1000:\n")
    # Bytecode made now (the jail runs with -B and cannot write it): pytest imports in ~0.1 s, not
    # ~1 s. Made by this interpreter: the jail's uses it when their versions match (bookworm: 3.11).
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", str(site)], capture_output=True
    )
    for folder, _dirs, names in os.walk(site):
        os.chmod(folder, 0o755)
        for name in names:
            if not os.path.islink(os.path.join(folder, name)):
                os.chmod(os.path.join(folder, name), 0o755 if folder.endswith("bin") else 0o644)
    _RUNTIME[pid] = (site, lock)
    at_exit(_remove_runtime, pid)
    return site


def _remove_runtime(pid: int) -> None:
    """At exit (of the process that made it, not of a forked child): its site folder and lock."""
    if os.getpid() != pid or pid not in _RUNTIME:
        return
    site, lock = _RUNTIME.pop(pid)
    shutil.rmtree(site, ignore_errors=True)
    (LOCAL_ROOT / f"{pid}.lock").unlink(missing_ok=True)
    lock.close()


def _owner_dead(pid: int) -> bool:
    if pid == os.getpid():
        return False
    lock = LOCAL_ROOT / f"{pid}.lock"
    if lock.exists():
        with open(lock) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False  # its owner (or a forked child of it) still holds the lock
            return True
    return not pid_alive(pid)


def _cgroup_roots() -> list[Path]:
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        return [root]
    return [root / "pids", root / "memory", root / "cpu"]


def _remove_cgroup(group: Path) -> None:
    for _ in range(50):
        try:
            for pid in (group / "cgroup.procs").read_text().split():
                os.kill(int(pid), signal.SIGKILL)
            group.rmdir()
            return
        except (OSError, ValueError):
            if not group.exists():
                return
        time.sleep(0.02)


def owner_pid(name: str) -> int | None:
    """The pid that owns a local-sandbox entry or cgroup named ``name`` (without
    :data:`CGROUP_PREFIX`): ``<pid>-site``, ``<pid>.lock``, ``<pid>-<id>``; None if none."""
    head = name.split("-", 1)[0].split(".", 1)[0]
    return int(head) if head.isdigit() else None


def reap() -> int:
    """Removes the workspaces, site folders and cgroups of local sandboxes whose owner died."""
    removed = 0
    if LOCAL_ROOT.is_dir():
        for entry in sorted(LOCAL_ROOT.iterdir()):
            owner = owner_pid(entry.name)
            if owner is not None and _owner_dead(owner):
                if entry.is_dir() and not entry.is_symlink():
                    remove_tree(entry)
                    removed += 1
                elif not entry.name.endswith(".lock"):
                    entry.unlink(missing_ok=True)
        for entry in LOCAL_ROOT.glob("*.lock"):
            if entry.stem.isdigit() and _owner_dead(int(entry.stem)):
                entry.unlink(missing_ok=True)
    for root in _cgroup_roots():
        for group in root.glob(f"{CGROUP_PREFIX}*") if root.is_dir() else []:
            owner = owner_pid(group.name[len(CGROUP_PREFIX) :])
            if owner is not None and _owner_dead(owner):
                _remove_cgroup(group)
                removed += 1
    return removed


def _make_cgroups(limits: Limits) -> list[Path]:
    """Per-sandbox cgroups (v2, or v1 pids+memory+cpu) when this process may create them, else [].

    The CPU quota is ``limits.cpus`` cores' worth of every 100 ms period (v2 ``cpu.max``, v1
    ``cpu.cfs_quota_us``); a v1 host without a ``cpu`` hierarchy gets the other two only."""
    name = f"{CGROUP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
    quota = max(1000, int(limits.cpus * CPU_PERIOD_US))
    settings = {"pids.max": str(limits.pids), "memory.max": str(limits.memory_mb << 20),
                "memory.limit_in_bytes": str(limits.memory_mb << 20),
                "cpu.max": f"{quota} {CPU_PERIOD_US}", "cpu.cfs_period_us": str(CPU_PERIOD_US),
                "cpu.cfs_quota_us": str(quota)}  # fmt: skip
    made: list[Path] = []
    try:
        for parent in _cgroup_roots():
            if not parent.is_dir():  # a v1 host without this hierarchy
                continue
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
