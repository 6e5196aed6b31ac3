"""Unified diffs of repository trees, and the allow-list a graded diff must pass.

Standard library only (Python >= 3.8): it runs on the host and inside every sandbox.

The grading allow-list (:func:`filter_diff`) keeps only changes an honest fix makes:

* edits and deletions of files the repository tracked at the start, if they were text;
* new text files with a suffix in :data:`NEW_SUFFIXES`; a new ``.py``/``.pyi`` only inside a
  package of the starting tree (a folder with ``__init__.py``; new sub-packages count when the
  diff adds their ``__init__.py``), so nothing new can shadow a top-level module;

and drops, naming each in the returned list: test files (restored from the task, as SWE-bench
does), test-runner configuration (``conftest.py``, ``pytest.ini``, ``.pytest.ini``,
``pytest.toml``, ``.pytest.toml``, ``tox.ini``, ``setup.cfg``, ``pyproject.toml``), interpreter
hooks (``sitecustomize``, ``usercustomize``, ``*.pth``, ``__main__.py``), binary files, paths
outside the repository, and anything larger than :data:`MAX_FILE_BYTES`.
"""

from __future__ import annotations

import difflib
import os
import posixpath
import re

__all__ = [
    "make_diff",
    "make_diff_files",
    "parse_diff",
    "hunk_sides",
    "split_lines",
    "apply_diff",
    "filter_diff",
    "is_test_path",
    "read_tree",
    "MAX_FILE_BYTES",
    "tree_entry",
    "NEW_SUFFIXES",
    "RUNNER_CONFIG",
]

SKIP_DIRS = {"__pycache__", ".pytest_cache", ".git", ".mypy_cache", ".hypothesis"}
SKIP_SUFFIXES = (".pyc", ".pyo")
MAX_FILE_BYTES = 2_000_000
#: Files that configure the test runner: never taken from the agent.
RUNNER_CONFIG = {
    "conftest.py",
    "pytest.ini",
    ".pytest.ini",
    "pytest.toml",
    ".pytest.toml",
    "tox.ini",
    "setup.cfg",
    "pyproject.toml",
}
#: Files that hook the interpreter: never taken from the agent.
HOOKS = {"sitecustomize.py", "usercustomize.py", "__main__.py"}
#: Suffixes a new file may have.
NEW_SUFFIXES = {".py", ".pyi", ".txt", ".rst", ".md", ".json", ".csv", ".html", ".yml", ".yaml"}
TEST_DIRS = {"tests", "test", "testing"}


def _open_regular(path: str):
    """A file object for ``path`` if it is a regular file (no symlink, FIFO or device), else None."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    import stat

    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")


def _skipped_dir(name: str) -> bool:
    return name in SKIP_DIRS or name.endswith(".egg-info")


def tree_entry(rel: str, data: bytes) -> bytes | None:
    """What :func:`read_tree` keeps of the regular file at ``rel`` holding ``data``: None for a
    cache or build-metadata file, else ``data`` cut to its first :data:`MAX_FILE_BYTES` + 1."""
    parts = rel.split("/")
    if rel.endswith(SKIP_SUFFIXES) or any(_skipped_dir(part) for part in parts[:-1]):
        return None
    return data if len(data) <= MAX_FILE_BYTES else data[: MAX_FILE_BYTES + 1]


def _walk(root: str):
    """``os.walk(root)`` without recursion (its Python < 3.12 version recurses once per level, so
    a 1,200-level-deep folder raised RecursionError); folder links are listed, never entered."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        dirs = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
        names = [e.name for e in entries if not e.is_dir(follow_symlinks=False)]
        yield folder, dirs, names
        stack.extend(os.path.join(folder, d) for d in reversed(dirs))


def _encodable(name: str) -> bool:
    """False for a name that is not UTF-8 or holds a control character (a newline would split a
    diff header): it cannot be part of a diff, nor of an honest fix."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(ord(char) < 32 or ord(char) == 127 for char in name)


def read_tree(root: str) -> dict:
    """{relative path: bytes} of the regular files below ``root`` (no symlinks or special files;
    caches skipped; files over :data:`MAX_FILE_BYTES` read as their first bytes + 1; names that
    are not UTF-8 or hold control characters left out)."""
    found = {}
    for folder, dirs, names in _walk(root):
        dirs[:] = sorted(d for d in dirs if not _skipped_dir(d) and _encodable(d))
        for name in sorted(names):
            if name.endswith(SKIP_SUFFIXES) or not _encodable(name):
                continue
            handle = _open_regular(os.path.join(folder, name))
            if handle is not None:
                with handle:
                    found[os.path.relpath(os.path.join(folder, name), root)] = handle.read(
                        MAX_FILE_BYTES + 1
                    )
    return found


def split_lines(text: str) -> list:
    """``text``'s lines, each with its ending, split at ``\\n`` only (a ``\\r\\n`` line keeps its
    ``\\r``; form feeds and Unicode line separators stay inside lines, as git and patch see them)."""
    lines = text.split("\n")
    ended = [line + "\n" for line in lines[:-1]]
    return ended + [lines[-1]] if lines[-1] else ended


def make_diff_files(old: dict, new: dict) -> str:
    """A git-style unified diff from the file map ``old`` to ``new`` ({path: bytes})."""
    chunks = []
    for rel in sorted(set(old) | set(new)):
        a, b = old.get(rel), new.get(rel)
        if a == b:
            continue
        header = f"diff --git a/{rel} b/{rel}\n"
        try:
            a_text = "" if a is None else a.decode("utf-8")
            b_text = "" if b is None else b.decode("utf-8")
        except UnicodeDecodeError:
            chunks.append(header + f"Binary files a/{rel} and b/{rel} differ\n")
            continue
        lines = difflib.unified_diff(
            split_lines(a_text),
            split_lines(b_text),
            "a/" + rel if a is not None else "/dev/null",
            "b/" + rel if b is not None else "/dev/null",
        )
        body = "".join(
            line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
            for line in lines
        )
        if a is not None and b is not None and not body:
            continue
        if not body:  # a new or deleted empty file: headers without hunks
            body = f"--- {'/dev/null' if a is None else 'a/' + rel}\n+++ {'/dev/null' if b is None else 'b/' + rel}\n"
        chunks.append(header + body)
    return "".join(chunks)


def make_diff(base: str, workspace: str) -> str:
    """A git-style unified diff from folder ``base`` to folder ``workspace``."""
    return make_diff_files(read_tree(base), read_tree(workspace))


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_BINARY = re.compile(r"^Binary files a/(.+) and b/(.+) differ$")


def parse_diff(text: str) -> list:
    """[(path, is_new, is_deleted, [(old start line, hunk lines) per hunk])] of a unified diff.

    A ``Binary files ... differ`` entry comes back with ``hunks=None``.
    """
    return [entry for entry, _ in _parse(text)]


def _parse(text: str) -> list:
    """parse_diff's entries, each with the text of its block (its ``diff --git`` line included)."""
    files, lines, i = [], split_lines(text), 0
    while i < len(lines):
        begin = i - 1 if i and lines[i - 1].startswith("diff --git ") else i
        binary = _BINARY.match(lines[i].rstrip("\n"))
        if binary:
            files.append(([binary.group(2), False, False, None], "".join(lines[begin : i + 1])))
            i += 1
        elif lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            src, dst = lines[i][4:].split("\t")[0].strip(), lines[i + 1][4:].split("\t")[0].strip()
            path = dst if dst != "/dev/null" else src
            path = path[2:] if path[:2] in ("a/", "b/") else path
            entry = [path, src == "/dev/null", dst == "/dev/null", []]
            i += 2
            while i < len(lines) and _HUNK.match(lines[i]):
                hunk, start, i = [], int(_HUNK.match(lines[i]).group(1)), i + 1
                while i < len(lines) and (
                    lines[i][:1] in (" ", "-", "+", "\\", "\n") or lines[i] == "\r\n"
                ):
                    if (
                        lines[i].startswith(("--- ", "+++ "))
                        and i + 1 < len(lines)
                        and lines[i + 1].startswith("+++ ")
                    ):
                        break
                    hunk.append(lines[i])
                    i += 1
                entry[3].append((start, hunk))
            files.append((entry, "".join(lines[begin:i])))
        else:
            i += 1
    return files


def hunk_sides(hunk: list) -> tuple:
    """(old text, new text) of one hunk."""
    old, new = [], []
    for index, line in enumerate(hunk):
        tag, body = line[:1], line[1:] if line != "\n" else "\n"
        if tag == "\\":
            target = (
                old if hunk[index - 1][:1] == "-" else new if hunk[index - 1][:1] == "+" else None
            )
            for side in [old, new] if target is None else [target]:
                if side and side[-1].endswith("\n"):
                    side[-1] = side[-1][:-1]
            continue
        if line in ("\n", "\r\n"):  # an empty context line whose leading space was stripped
            tag, body = " ", line
        if tag in (" ", "-"):
            old.append(body)
        if tag in (" ", "+"):
            new.append(body)
    return "".join(old), "".join(new)


def _safe_path(path: str) -> bool:
    norm = posixpath.normpath(path)
    return bool(path) and not path.startswith("/") and norm == path and not norm.startswith("..")


def apply_diff(workspace: str, diff: str, skip=lambda path: False) -> list:
    """Applies a unified diff (exact context match, no fuzz); returns the paths changed.

    Never writes through a symlink or outside ``workspace``; raises ValueError when a hunk does
    not apply.
    """
    changed = []
    root = os.path.realpath(workspace)
    for path, is_new, is_deleted, hunks in parse_diff(diff):
        if skip(path) or hunks is None:
            continue
        target = os.path.join(root, path)
        real = os.path.realpath(os.path.dirname(target))
        if not _safe_path(path) or not (real == root or real.startswith(root + os.sep)):
            raise ValueError(f"diff path {path!r} is outside the repository")
        if os.path.islink(target):
            os.remove(target)
        if is_deleted:
            if os.path.lexists(target):
                os.remove(target)
            changed.append(path)
            continue
        text = ""
        if not is_new and os.path.exists(target):
            with open(target, "rb") as handle:  # bytes: line ends stay as they are (CRLF, mixed)
                text = handle.read().decode("utf-8")
        shift = 0  # lines added minus removed by the hunks applied so far
        for start, hunk in hunks:
            old, new = hunk_sides(hunk)
            start += shift
            shift += new.count("\n") - old.count("\n")
            if not old:
                text = new + text
                continue
            # The occurrence nearest the line the hunk names (context may repeat in a file).
            spots = [m.start() for m in re.finditer(re.escape(old), text)]
            if not spots:
                raise ValueError(f"hunk does not apply cleanly to {path}")
            spot = min(spots, key=lambda at: abs(text.count("\n", 0, at) + 1 - start))
            text = text[:spot] + new + text[spot + len(old) :]
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(text.encode("utf-8"))
        changed.append(path)
    return changed


def is_test_path(path: str) -> bool:
    """True for files a test runner collects or configures: tests/, test_*.py, *_test.py, conftest.py."""
    parts = path.split("/")
    name = parts[-1]
    return (
        bool(TEST_DIRS & set(parts[:-1]))
        or (name.startswith("test_") and name.endswith(".py"))
        or name.endswith("_test.py")
        or name == "conftest.py"
    )


def filter_diff(diff: str, tracked: dict, test_files=()) -> tuple:
    """(the diff restricted to the grading allow-list, [(path, reason) dropped]).

    ``tracked`` maps each file of the starting tree to True when it is text; a folder is a package
    when ``<folder>/__init__.py`` is tracked. See the module docstring for the rules.
    """
    parsed = _parse(diff)
    entries = [entry for entry, _ in parsed]
    new_inits = {
        posixpath.dirname(e[0])
        for e in entries
        if e[1] and posixpath.basename(e[0]) == "__init__.py"
    }

    def package(folder: str) -> bool:
        while folder and folder + "/__init__.py" not in tracked:
            if folder not in new_inits:
                return False
            folder = posixpath.dirname(folder)
        return bool(folder)

    kept, dropped = [], []
    for (path, is_new, _, hunks), block in parsed:
        name, suffix = posixpath.basename(path), posixpath.splitext(path)[1]
        reason = None
        if not _safe_path(path) or any(p in SKIP_DIRS for p in path.split("/")):
            reason = "not a repository path"
        elif hunks is None:
            reason = "binary file"
        elif len(block) > 4 * MAX_FILE_BYTES:
            reason = "too large"
        elif path in test_files or is_test_path(path):
            reason = "test file (restored from the task)"
        elif name in RUNNER_CONFIG or name in HOOKS or suffix == ".pth":
            reason = "test-runner configuration or interpreter hook"
        elif path in tracked:
            if not tracked[path]:
                reason = "binary file"
        elif not is_new:
            reason = "not a tracked file"
        elif suffix not in NEW_SUFFIXES:
            reason = f"new file type {suffix or '(none)'} is not allowed"
        elif suffix in (".py", ".pyi") and not package(posixpath.dirname(path)):
            reason = "new module outside the repository's packages"
        if reason:
            dropped.append((path, reason))
        else:
            kept.append(block)
    return "".join(kept), dropped
