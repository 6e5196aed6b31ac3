"""The on-disk cache for generated artefacts (games, catalogs, indexes, corpora).

Artefacts live in ``$TURNGYM_CACHE`` or ``$XDG_CACHE_HOME/turngym`` (default ``~/.cache/turngym``), one
folder per key. A folder is published atomically (built in a temporary folder, then renamed) with
a manifest holding each file's SHA-256; :func:`cached_dir` verifies the manifest on every load and
rebuilds a folder whose files are missing or corrupt.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

__all__ = ["cache_root", "cached_dir", "file_digest"]

MANIFEST = ".turngym-manifest.json"


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
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=folder.parent))
    try:
        build(tmp)
        (tmp / MANIFEST).write_text(json.dumps(_manifest(tmp), indent=0))
        try:
            os.rename(tmp, folder)
        except OSError:
            # Another process published the same key first; theirs is equivalent.
            if not _is_valid(folder):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
