"""Atomic file writes: every file turngym writes (trajectories, metrics, checkpoints, caches) goes
through :func:`atomic_write` so a reader sees the old file or the new one, never half of one.

The data goes to a hidden sibling ``.<name>.tmp.<host>.<pid>.<random>`` that is renamed over the
target when complete. On any error (a full disk, an exception in the writer, Ctrl-C) the temporary
file is removed before the error propagates. A process killed mid-write (SIGKILL, power loss)
cannot clean up, so the next atomic write into the same folder sweeps the temporaries whose writer
is gone (same host) or that are a day old (any host); :func:`sweep_temp_files` does it on demand.

A write that fails because the filesystem is full (``ENOSPC``/``EDQUOT``, or a short write such as
numpy's ``OSError: 47692 requested and 12256 written`` on a disk with no space left) raises
:class:`DiskFullError`, which says which folder is full and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from turngym.error import TurnGymError

__all__ = [
    "DiskFullError",
    "STALE_TEMP_S",
    "append_line",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "disk_full_error",
    "is_disk_full",
    "sweep_temp_files",
    "temp_owner",
    "temp_path",
]

#: A temporary file older than this is stale whoever wrote it (writes take minutes at most).
STALE_TEMP_S = 24 * 3600.0
#: Free bytes below which a failed write is put down to a full disk.
_NEARLY_FULL = 1 << 20
HOST = socket.gethostname().replace(".", "_") or "host"
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.tmp\.(?P<host>[^.]+)\.(?P<pid>\d+)\.[^.]+")
_swept: set[Path] = set()
_swept_lock = threading.Lock()


class DiskFullError(TurnGymError, OSError):
    """A write failed because its filesystem is full; the message names the folder."""


def is_disk_full(error: BaseException, folder: str | os.PathLike) -> bool:
    """Whether ``error`` (raised while writing into ``folder``) means the filesystem is full."""
    if isinstance(error, DiskFullError):
        return True
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(error, OSError) and error.errno is None:  # e.g. numpy's short-write error
        try:
            return shutil.disk_usage(folder).free < _NEARLY_FULL
        except OSError:
            return False
    return False


def disk_full_error(folder: str | os.PathLike, error: BaseException) -> DiskFullError:
    """The :class:`DiskFullError` for a write into ``folder`` that failed with ``error``."""
    try:
        free = f"{shutil.disk_usage(folder).free / 2**20:.1f} MiB free"
    except OSError:
        free = "free space unknown"
    return DiskFullError(
        errno.ENOSPC,
        f"the disk holding {folder} is full ({free}; the write failed with {error}). Free space "
        "there, or write elsewhere ($TURNGYM_CACHE moves turngym's cache); nothing partial was "
        "left behind.",
    )


def temp_owner(name: str) -> tuple[str, int] | None:
    """``(host, pid)`` of the writer of a temporary name made by this module, else None."""
    match = _TEMP_NAME.fullmatch(name)
    return (match["host"], int(match["pid"])) if match else None


def sweep_temp_files(folder: str | os.PathLike, max_age_s: float = STALE_TEMP_S) -> list[Path]:
    """Removes the temporary files and folders in ``folder`` whose writer is gone; returns them.

    One is stale when its writer ran on this host and is dead, or when it is older than
    ``max_age_s`` (a writer on another host sharing the folder).
    """
    from turngym.cache import pid_alive

    removed = []
    now = time.time()
    folder = Path(folder)
    for entry in folder.iterdir() if folder.is_dir() else ():
        owner = temp_owner(entry.name)
        if owner is None:
            continue
        try:
            age = now - entry.lstat().st_mtime
        except OSError:
            continue
        host, pid = owner
        if (host == HOST and not pid_alive(pid)) or age > max_age_s:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()
            removed.append(entry)
    return removed


def temp_path(target: Path) -> Path:
    """A fresh temporary name beside ``target`` that :func:`sweep_temp_files` recognises."""
    return target.with_name(f".{target.name}.tmp.{HOST}.{os.getpid()}.{os.urandom(4).hex()}")


def sweep_once(folder: Path) -> None:
    """Sweeps ``folder`` the first time this process writes into it (the "next start")."""
    with _swept_lock:
        if folder in _swept:
            return
        _swept.add(folder)
    sweep_temp_files(folder)


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "w", *, encoding: str | None = "utf-8", fsync: bool = False
) -> Iterator[IO[Any]]:
    """Opens a temporary sibling of ``path`` for writing; renames it over ``path`` on success.

    Args:
        path: the file to write (its folder is created).
        mode: ``"w"`` (text) or ``"wb"`` (bytes).
        encoding: text encoding (ignored for ``"wb"``).
        fsync: flush the data to the device before the rename (survives power loss, slower).

    Raises:
        DiskFullError: the filesystem is full (the temporary file is removed).

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "hello.txt"
    >>> with atomic_write(target) as handle:
    ...     _ = handle.write("hello")
    >>> target.read_text()
    'hello'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode={mode!r}; use 'w' (text) or 'wb' (bytes)")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_once(target.parent)
    tmp = temp_path(target)
    try:
        with open(tmp, mode, encoding=None if mode == "wb" else encoding) as handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as error:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if is_disk_full(error, target.parent):
            raise disk_full_error(target.parent, error) from error
        raise


def atomic_write_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """Writes ``text`` to ``path`` atomically (see :func:`atomic_write`); returns the path."""
    with atomic_write(path, "w", encoding=encoding) as handle:
        handle.write(text)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Writes ``data`` to ``path`` atomically (see :func:`atomic_write`); returns the path."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def append_line(path: str | os.PathLike, line: str, *, encoding: str = "utf-8") -> None:
    """Appends ``line`` and a newline to ``path`` (a JSONL log) whole or not at all.

    The line goes out in one ``write`` on an ``O_APPEND`` descriptor; if that fails part-way
    (a full disk) the file is cut back to its size before, so a log never holds half a line
    from an error (a process killed mid-write can still leave one: readers skip a torn *last*
    line). A full disk raises :class:`DiskFullError`.
    """
    target = Path(path)
    data = (line.rstrip("\n") + "\n").encode(encoding)
    descriptor = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        before = os.fstat(descriptor).st_size
        try:
            written = 0
            while written < len(data):
                written += os.write(descriptor, data[written:])
        except BaseException as error:
            with contextlib.suppress(OSError):
                os.ftruncate(descriptor, before)
            if is_disk_full(error, target.parent):
                raise disk_full_error(target.parent, error) from error
            raise
    finally:
        os.close(descriptor)
