"""The private root filesystem of the ``local`` SWE backend's jails.

The local backend's jails no longer bind the host's ``/usr``: each one runs on a read-only copy of
the same Debian root filesystem the Docker base image is made from (``debootstrap --variant=minbase
--include=python3 bookworm``, slimmed), so what an agent can read in the jail does not depend on
the host (a host package of a task's project, such as the clean ``more_itertools`` Debian's
setuptools vendors, is out of reach).

:func:`local_rootfs` returns that folder, ``$TURNGYM_CACHE/swe-local/rootfs-bookworm``, and makes it
when missing. When this process is root, the jails run as another uid, which cannot traverse a
cache in root's home (``/root`` is 0700, and bubblewrap resolves even a passed folder fd by
path); the folder is then ``/tmp/turngym-swe-0/rootfs-bookworm`` (beside the local backend's
workspaces, 0711) whenever the cache is not reachable to other users: unpacked again after a
reboot clears ``/tmp`` (~10 s), from the tarball kept in the cache. It unpacks the root filesystem tarball ``docker/build_base.sh`` caches
(``$TURNGYM_CACHE/swe-docker/rootfs-bookworm-python3.tar``), and first builds that tarball with
the same recipe when it is missing too (root and ``debootstrap`` needed; the Debian mirror must be
reachable). The folder is published atomically (unpacked beside it, then renamed) under a lock,
so concurrent processes build it once. The tarball and the folder are built once per cache; the
CI makes both in ``docker/ci_setup.sh``.

    python -m turngym.envs.swe.rootfs          # build it (prints its path; exit 2 saying why not)

Known host dependence left: pytest and its dependencies come from the interpreter that runs
turngym (pure-Python files copied into the jail's ``/opt/turngym``), see ``local_state.py``.
"""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from turngym.cache import cache_root, remove_stale_builds
from turngym.error import DependencyNotInstalled

__all__ = ["SUITE", "JAIL_PYTHON", "MOUNT_POINTS", "local_rootfs", "rootfs_reason", "main"]

#: The Debian release (the Docker base image's, see docker/build_base.sh).
SUITE = "bookworm"
#: The interpreter inside the root filesystem.
JAIL_PYTHON = "/usr/bin/python3"
#: Folders the jail mounts over; made in the read-only root so bubblewrap need not create them.
MOUNT_POINTS = ("testbed", "opt/turngym", "opt/turngym-in", "tmp", "proc", "dev")
_MARKER = ".turngym-rootfs"
#: What a sandbox never reads (docs, man pages, locales, apt lists): as docker/build_base.sh drops.
_SLIM = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale")


def _tarball() -> Path:
    return cache_root() / "swe-docker" / f"rootfs-{SUITE}-python3.tar"


def _folder() -> Path:
    cached = cache_root() / "swe-local" / f"rootfs-{SUITE}"
    if os.geteuid() != 0 or _reachable(cached.parent.parent):
        return cached
    # local_state.LOCAL_ROOT (not imported: local_state imports this module); reap() never
    # removes it (its name does not start with an owner's pid).
    return Path(tempfile.gettempdir()) / f"turngym-swe-{os.geteuid()}" / f"rootfs-{SUITE}"


def _reachable(folder: Path) -> bool:
    """True when any user may traverse every folder down to ``folder``."""
    parts = folder.resolve().parts
    for index in range(1, len(parts) + 1):
        if not os.stat(os.path.join(*parts[:index])).st_mode & 0o001:
            return False
    return True


def _stamp(tarball: Path) -> str:
    info = tarball.stat()
    return f"{tarball.name} {info.st_size} {int(info.st_mtime)}\n"


def rootfs_reason() -> str | None:
    """None when the root filesystem is built or can be made offline (its tarball is cached);
    else the reason, with the command that builds it (for pytest skips and ``local_available``)."""
    if (_folder() / _MARKER).is_file() or _tarball().is_file():
        return None
    return (
        f"the local backend's root filesystem is not built ({_folder()}); build it once with "
        "`python -m turngym.envs.swe.rootfs` (root and debootstrap; downloads Debian "
        f"{SUITE}) or `bash docker/build_base.sh`"
    )


@functools.lru_cache(maxsize=4)
def _cached_rootfs(cache: str) -> Path:
    folder = _folder()
    if (folder / _MARKER).is_file():
        return folder
    folder.parent.mkdir(mode=0o711, parents=True, exist_ok=True)
    with open(folder.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder; the others wait and find it made
        if not (folder / _MARKER).is_file():
            tarball = _tarball()
            if not tarball.is_file():
                _build_tarball(tarball)
            _unpack(tarball, folder)
    return folder


def local_rootfs() -> Path:
    """The jail's root filesystem folder (read-only to jails); built into the cache if missing.

    Raises:
        DependencyNotInstalled: it is missing and cannot be built here (the message says why and
            what to run).
    """
    return _cached_rootfs(str(cache_root()))


def _build_tarball(tarball: Path) -> None:
    """``debootstrap`` minbase + python3, slimmed, tarred to ``tarball`` (build_base.sh's recipe)."""
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        raise DependencyNotInstalled(
            f"the local SWE backend needs its root filesystem {_folder()}, made from {tarball}; "
            "building it needs root and debootstrap (apt-get install debootstrap), or run "
            "`bash docker/build_base.sh` as root"
        )
    tarball.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".rootfs.", dir=tarball.parent))
    try:
        root = work / "root"
        done = subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3", SUITE, str(root)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise DependencyNotInstalled(
                f"debootstrap {SUITE} failed (is the Debian mirror reachable?): "
                f"{(done.stdout + done.stderr)[-800:]}"
            )
        for name in _SLIM:
            _remove(root / name)
        for name in ("var/lib/apt/lists", "var/cache/apt", "var/log"):
            for entry in (root / name).glob("*"):
                _remove(entry)
        partial = tarball.with_suffix(".tar.tmp")
        subprocess.run(
            ["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."], check=True
        )
        os.replace(partial, tarball)
    finally:
        _remove(work)


def _unpack(tarball: Path, folder: Path) -> None:
    remove_stale_builds(folder.parent)
    host = os.uname().nodename.replace(".", "_") or "host"
    tmp = Path(
        tempfile.mkdtemp(prefix=f".{folder.name}.tmp.{host}.{os.getpid()}.", dir=folder.parent)
    )
    try:
        # Device nodes are not needed (the jail mounts its own /dev) and cannot be made unprivileged.
        done = subprocess.run(
            ["tar", "-C", str(tmp), "--numeric-owner", "--exclude=./dev/*", "-xf", str(tarball)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise DependencyNotInstalled(
                f"unpacking {tarball} failed: {done.stderr[-500:]}; delete it and rebuild it "
                "(python -m turngym.envs.swe.rootfs)"
            )
        if not (tmp / JAIL_PYTHON.lstrip("/")).exists():
            raise DependencyNotInstalled(
                f"{tarball} has no {JAIL_PYTHON}; delete it and rebuild it "
                "(python -m turngym.envs.swe.rootfs)"
            )
        for name in MOUNT_POINTS:
            (tmp / name).mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o755)
        (tmp / _MARKER).write_text(_stamp(tarball))
        _remove(folder)  # an unfinished earlier one (no marker)
        os.rename(tmp, folder)
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    """Removes ``path`` whatever its depth (``rm -rf``: no recursion limit in Python)."""
    if os.path.lexists(path):
        subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], capture_output=True)


def main() -> int:
    """Builds the root filesystem (if missing) and prints its path."""
    try:
        print(local_rootfs())
    except DependencyNotInstalled as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
