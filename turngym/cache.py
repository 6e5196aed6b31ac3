"""The on-disk cache for generated artefacts (games, catalogs, indexes, corpora).

Artefacts live in ``$TURNGYM_CACHE`` or ``$XDG_CACHE_HOME/turngym`` (default ``~/.cache/turngym``), one
folder per key. A folder is published atomically (built in a temporary folder, then renamed) with
a manifest holding each file's SHA-256; :func:`cached_dir` verifies the manifest on every load and
rebuilds a folder whose files are missing or corrupt.

A build killed midway (SIGKILL, power loss) cannot clean up its temporary folder
(``.<key>.tmp.<host>.<pid>.<random>``); the next build in the same namespace removes temporary
folders whose builder process is gone (same host) or that are older than a day (any host). A build
that fails on a full disk raises :class:`turngym.atomic.DiskFullError` (not the bare short-write
error numpy or pickle give) and leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from turngym.atomic import disk_full_error, is_disk_full

__all__ = ["cache_root", "cached_dir", "file_digest", "pid_alive", "remove_stale_builds"]

MANIFEST = ".turngym-manifest.json"
#: A temporary build folder older than this is stale whoever made it (builds take minutes at most).
STALE_BUILD_S = 24 * 3600.0
_HOST = socket.gethostname().replace(".", "_") or "host"
#: ``tempfile.mkdtemp(prefix=".<key>.")`` names of builds before the host/pid naming.
_LEGACY_TMP = re.compile(r"\.[^/]+\.[a-z0-9_]{8}")


def cache_root() -> Path:
    """The cache folder: ``$TURNGYM_CACHE`` if set, else ``$XDG_CACHE_HOME/turngym``."""
    env = os.environ.get("TURNGYM_CACHE")
    if env:
        root = Path(env)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "turngym"
    root.mkdir(parents=True, exist_ok=True)
    return root


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _manifest(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): file_digest(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }


def _is_valid(folder: Path) -> bool:
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return False
    try:
        expected = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return bool(expected) and _manifest(folder) == expected


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (in this pid namespace); when that cannot be
    told, True, so that whoever asks keeps what the process may still own."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's) or cannot be told: keep its folder
    return True


def remove_stale_builds(parent: Path, max_age_s: float = STALE_BUILD_S) -> list[Path]:
    """Deletes the temporary build folders in ``parent`` left by dead builders; returns them.

    A folder is stale when the process named in it ran on this host and is gone, or when it is
    older than ``max_age_s`` (a builder on another host sharing the cache, or an old naming).
    Published cache folders never start with a dot, so they are never touched.
    """
    removed = []
    now = time.time()
    for entry in parent.iterdir() if parent.is_dir() else ():
        if not entry.name.startswith(".") or not entry.is_dir():
            continue
        head, _, tail = entry.name.rpartition(".tmp.")
        host, _, rest = tail.partition(".")
        pid = rest.partition(".")[0]
        try:
            age = now - entry.stat().st_mtime
        except OSError:
            continue
        ours = bool(head) and pid.isdigit()
        legacy = not ours and _LEGACY_TMP.fullmatch(entry.name) is not None
        dead = ours and host == _HOST and not pid_alive(int(pid))
        if dead or ((ours or legacy) and age > max_age_s):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def cached_dir(namespace: str, key: str, build: Callable[[Path], None]) -> Path:
    """Returns the verified cache folder ``namespace/key``, building it with ``build(tmp)`` if needed.

    ``build`` writes the artefact's files into the temporary folder it is given. A folder that
    fails verification (a file edited, truncated or deleted) is deleted and rebuilt, with a
    warning saying so.
    """
    folder = cache_root() / namespace / key
    if folder.exists():
        if _is_valid(folder):
            return folder
        warnings.warn(
            f"turngym cache {folder} is corrupt or incomplete; rebuilding it", stacklevel=2
        )
        shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_builds(folder.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.tmp.{_HOST}.{os.getpid()}.", dir=folder.parent))
    try:
        try:
            build(tmp)
            (tmp / MANIFEST).write_text(json.dumps(_manifest(tmp), indent=0))
        except OSError as error:
            if is_disk_full(error, tmp):
                raise disk_full_error(folder.parent, error) from error
            raise
        try:
            os.rename(tmp, folder)
        except OSError:
            # Another process published the same key first; theirs is equivalent.
            if not _is_valid(folder):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
