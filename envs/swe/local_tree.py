"""Host-side work on a local sandbox's workspace, bounded whatever the agent left in it.

Everything here runs in the trainer's process over a folder an agent wrote, so none of it may
recurse, hold the whole tree in memory, assume a file name is text, or follow a link:

* :func:`scan` lists the tree with ``find -P`` (no recursion limit, any path length, names as
  bytes, links never followed) and stops as soon as the byte or inode quota is exceeded, before
  any file is read; a file counts ``max(size, allocated)`` bytes, every entry one inode;
* :func:`read_file` opens one regular file below the workspace (no link, FIFO or device; a path
  longer than the host allows is skipped) and reads at most ``MAX_FILE_BYTES + 1`` bytes;
* :func:`tree_diff` and :func:`diff_digest` diff the scanned files against the start tree one
  file at a time: the digest (every step) holds one file in memory, the diff (grading) the diff
  text, both bounded by the quota;
* :func:`remove_tree` removes a folder of any depth with ``rm -rf`` (after unmounting what is
  mounted below it, and making every folder writable for a non-root owner);
* :func:`mount_tmpfs` (root only) puts a size- and inode-limited tmpfs on a folder: a hard
  bound *during* a command, which the quota check after it cannot be (an agent can write many
  files of RLIMIT_FSIZE each before its command ends).

A path that is not UTF-8 or holds a control character cannot be part of a unified diff (nor of
an honest fix): it is left out of the diff, and :attr:`Scan.odd` names it for the agent's
feedback.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field

from turngym.envs.swe.sandbox.swe_diff import MAX_FILE_BYTES, tree_entry
from turngym.envs.swe.sandbox.swe_tool import diff_chunks

__all__ = [
    "Scan",
    "scan",
    "read_file",
    "tree_diff",
    "diff_digest",
    "remove_tree",
    "mount_tmpfs",
    "unmount_below",
]

_CHUNK = 1 << 16
_PATH_MAX = os.pathconf("/", "PC_PATH_MAX")


@dataclass
class Scan:
    """What :func:`scan` found below a workspace.

    Attributes:
        entries: inodes counted (every file, folder, link or other entry below the root).
        used: bytes counted (files: ``max(size, allocated)``; others: allocated).
        files: relative path -> size of each regular file whose path can be diffed.
        odd: relative paths (shown with escapes) left out of the diff: not UTF-8, a control
            character, or too long for the host to open.
        over: why the scan stopped early (a quota exceeded), else None.
    """

    entries: int = 0
    used: int = 0
    files: dict[str, int] = field(default_factory=dict)
    odd: list[str] = field(default_factory=list)
    over: str | None = None


def _diffable(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        return None
    return text


def scan(root: str | os.PathLike, max_entries: int, max_bytes: int) -> Scan:
    """Counts and lists the tree below ``root``; stops once either quota is exceeded."""
    result = Scan()
    process = subprocess.Popen(
        ["find", "-P", os.fspath(root), "-mindepth", "1", "-printf", r"%y\0%s\0%b\0%P\0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    pending, fields = b"", []
    room = _PATH_MAX - len(os.fsencode(os.path.abspath(root))) - 2  # longest openable relative path
    try:
        while result.over is None:
            chunk = process.stdout.read(_CHUNK)
            if not chunk:
                break
            parts = (pending + chunk).split(b"\0")
            pending = parts.pop()
            fields.extend(parts)
            usable = len(fields) - len(fields) % 4
            for index in range(0, usable, 4):
                kind, size, blocks, rel = fields[index : index + 4]
                _count(result, kind, int(size), int(blocks) * 512, rel, room)
                if result.entries > max_entries:
                    result.over = (
                        f"the workspace holds more than {max_entries} files and folders "
                        "(the inode quota)"
                    )
                elif result.used > max_bytes:
                    result.over = (
                        f"the workspace holds more than {max_bytes >> 20} MB (the disk quota)"
                    )
                if result.over:
                    break
            del fields[:usable]
    finally:
        process.kill()
        process.stdout.close()
        process.wait()
    return result


def _count(result: Scan, kind: bytes, size: int, allocated: int, rel: bytes, room: int) -> None:
    result.entries += 1
    if kind != b"f":
        result.used += allocated
        return
    result.used += max(size, allocated)
    name = _diffable(rel)
    if name is None or len(rel) > room:
        result.odd.append(rel.decode("utf-8", "backslashreplace"))
    elif tree_entry(name, b"") is not None:  # caches and build metadata are never diffed
        result.files[name] = size


def read_file(root: str | os.PathLike, rel: str) -> bytes | None:
    """The first ``MAX_FILE_BYTES + 1`` bytes of the regular file ``root/rel``; None if it is not
    one (a link, FIFO, device, a path too long to open, or gone)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(os.path.join(os.fspath(root), rel), flags)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks, left = [], MAX_FILE_BYTES + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _chunks(start: dict[str, bytes], root: str | os.PathLike, found: Scan) -> Iterator[str]:
    """Each changed file's part of the unified diff, in path order, one file read at a time."""
    return diff_chunks(start, found.files, lambda rel: read_file(root, rel))


def tree_diff(start: dict[str, bytes], root: str | os.PathLike, found: Scan) -> str:
    """The unified diff from the start files to the scanned workspace (as ``make_diff_files``)."""
    return "".join(_chunks(start, root, found))


def diff_digest(start: dict[str, bytes], root: str | os.PathLike, found: Scan) -> str:
    """SHA-1 of :func:`tree_diff`'s text, computed without holding it."""
    digest = hashlib.sha1()
    for chunk in _chunks(start, root, found):
        digest.update(chunk.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def remove_tree(path: str | os.PathLike) -> bool:
    """Removes ``path`` and everything below it, whatever its depth or names; True when gone.

    A non-root owner first makes every folder of it writable and searchable (an agent can
    ``chmod 000`` its folders); root needs not. Never crosses into another file system.
    """
    path = os.fspath(path)
    if not os.path.lexists(path):
        return True
    if os.geteuid() == 0:
        unmount_below(path)
    else:
        subprocess.run(
            ["chmod", "-R", "u+rwx", "--", path],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    subprocess.run(
        ["rm", "-rf", "--one-file-system", "--", path],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return not os.path.lexists(path)


def mount_tmpfs(folder: str | os.PathLike, size_bytes: int, inodes: int) -> bool:
    """Mounts a tmpfs of ``size_bytes`` and ``inodes`` on ``folder`` (made if missing); True when
    mounted, False where this process may not mount (not root)."""
    if os.geteuid() != 0:
        return False
    os.makedirs(folder, exist_ok=True)
    options = f"size={size_bytes},nr_inodes={inodes},mode=0755"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "turngym-swe", os.fspath(folder)],
        capture_output=True,
    )
    return done.returncode == 0


def _unescape(raw: bytes) -> str:
    """A mount point as /proc/self/mountinfo writes it (space, tab, newline, backslash octal)."""
    return os.fsdecode(re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), raw))


def unmount_below(path: str | os.PathLike) -> None:
    """Lazily unmounts every mount at or below ``path``, deepest first (a dead owner's tmpfs)."""
    prefix = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo", "rb") as handle:
            points = [_unescape(line.split()[4]) for line in handle]
    except OSError:
        return
    for point in sorted(
        (p for p in points if p == prefix or p.startswith(prefix + "/")), key=len, reverse=True
    ):
        subprocess.run(["umount", "-l", point], capture_output=True)
