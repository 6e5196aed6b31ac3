"""The tool that runs *inside* a SWE sandbox (Docker container or bubblewrap jail).

Self-contained (standard library and its sibling files only, Python >= 3.8) so it runs with any
image's ``python3``. The host sends one request per call as ``argv[1]`` = base64(zlib(JSON)); the
tool prints one JSON result framed by a per-call secret (``FRAME json FRAME``), which it reads
from ``$TURNGYM_FRAME`` (docker: the environment of a root exec, unreadable to the agent's uid)
or from the pipe ``$TURNGYM_FRAME_FD`` (local: drained before any agent process exists). It marks
itself non-dumpable at once, so the agent's processes can open neither its ``/proc`` fds nor its
environment: a detached process cannot inject a result. Run as root (docker), it does file work
with the agent's effective uid and runs commands as the agent (``agent_uid``).

Requests (``op``):

=========  ==================================================================================
setup      (empty ``workspace`` and the ``clean`` folders,) copy ``stage`` or ``src`` into
           ``workspace`` keeping symlinks, apply ``patch``, snapshot the result into ``base``
run        ``bash -c command`` in the workspace: timeout (kills the process group), output capped
view       numbered lines ``start..end`` of a workspace file (at most ``max_output`` characters)
edit       replace the one occurrence of ``old`` by ``new`` in a file
create     write a (new or existing) file
diff       unified diff workspace vs ``base`` (and its hash)
stop       kill every process of the agent's uid
apply      apply a unified diff to the workspace
grade      (grader sandbox) filter ``diff_path`` by the allow-list, apply it and ``test_patch``,
           run the tests (:mod:`turngym_grade_runner` or the given ``command``), report statuses
=========  ==================================================================================
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator

try:  # imported on the host as part of turngym
    from .swe_diff import (
        MAX_FILE_BYTES,
        SKIP_DIRS,
        SKIP_SUFFIXES,
        _encodable,
        _open_regular,
        _skipped_dir,
        _walk,
        apply_diff,
        hunk_sides,
        make_diff,
        make_diff_files,
        parse_diff,
        read_tree,
    )
    from .swe_grade import grade as _grade
    from .swe_proc import chown_tree
    from .swe_proc import read_text as _read_text
    from .swe_proc import run as _run
    from .swe_proc import write_text as _write_text
except ImportError:  # run as a script inside a sandbox, next to its sibling files
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from swe_diff import (  # type: ignore[no-redef]
        MAX_FILE_BYTES,
        SKIP_DIRS,
        SKIP_SUFFIXES,
        _encodable,
        _open_regular,
        _skipped_dir,
        _walk,
        apply_diff,
        hunk_sides,
        make_diff,
        make_diff_files,
        parse_diff,
        read_tree,
    )
    from swe_grade import grade as _grade  # type: ignore[no-redef]
    from swe_proc import chown_tree  # type: ignore[no-redef]
    from swe_proc import read_text as _read_text  # type: ignore[no-redef]
    from swe_proc import run as _run  # type: ignore[no-redef]
    from swe_proc import write_text as _write_text  # type: ignore[no-redef]

MAX_DIFF_CHARS = 32_000_000

__all__ = [
    "diff_chunks",
    "make_diff",
    "make_diff_files",
    "apply_diff",
    "parse_diff",
    "hunk_sides",
    "encode_request",
    "handle",
]


def encode_request(request: dict) -> str:
    """Encodes a request for ``argv[1]``."""
    return base64.b64encode(zlib.compress(json.dumps(request).encode(), 6)).decode()


def diff_chunks(start: dict, paths, read) -> Iterator[str]:
    """The text of ``make_diff_files(start, tree)`` file by file, in path order, without holding
    the tree: ``paths`` are the tree's files, ``read(path)`` reads one (None when it cannot)."""
    for rel in sorted(set(start) | set(paths)):
        old = start.get(rel)
        new = read(rel) if rel in paths else None
        if old != new:
            yield make_diff_files(
                {} if old is None else {rel: old}, {} if new is None else {rel: new}
            )


def _tree_paths(root: str) -> set:
    """The relative paths :func:`read_tree` would read below ``root``, none of them read."""
    found = set()
    for folder, dirs, names in _walk(root):
        dirs[:] = [d for d in dirs if not _skipped_dir(d) and _encodable(d)]
        for name in names:
            if not name.endswith(SKIP_SUFFIXES) and _encodable(name):
                found.add(os.path.relpath(os.path.join(folder, name), root))
    return found


def _read_one(root: str, rel: str):
    handle = _open_regular(os.path.join(root, rel))
    if handle is None:
        return None
    with handle:
        return handle.read(MAX_FILE_BYTES + 1)


def _diff_result(request: dict) -> dict:
    """The workspace's diff hash (and the diff with ``with_diff``), one file in memory at a time:
    a workspace filled with text files no longer costs the tool their whole diff at once."""
    root, keep = request["workspace"], request.get("with_diff")
    digest, kept, size = hashlib.sha1(), [], 0
    for chunk in diff_chunks(
        read_tree(request["base"]), _tree_paths(root), lambda rel: _read_one(root, rel)
    ):
        digest.update(chunk.encode())
        size += len(chunk)
        if keep:
            if size > MAX_DIFF_CHARS:
                return {"error": "the workspace diff is larger than 32 MB; undo some changes"}
            kept.append(chunk)
    return {"diff": "".join(kept) if keep else None, "diff_hash": digest.hexdigest()}


def _resolve(request: dict) -> str:
    root = os.path.realpath(request["workspace"])
    path = os.path.realpath(os.path.join(root, request["path"]))
    if path != root and not path.startswith(root + os.sep):
        raise ValueError(
            f"path {request['path']!r} is outside the repository {request['workspace']}"
        )
    return path


@contextlib.contextmanager
def _as_agent(request: dict):
    """File work with the agent's effective uid when the tool runs as root."""
    uid = request.get("agent_uid")
    if os.geteuid() != 0 or not uid:
        yield
        return
    os.setegid(int(uid))
    os.seteuid(int(uid))
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def _stop(request: dict) -> dict:
    """Kills every process of the agent's uid; repeats while a fork bomb refills."""
    uid = int(request.get("agent_uid") or os.getuid())
    spared = {os.getpid(), os.getppid()}  # the parent is `timeout`, holding the exec
    if uid == 0:
        return {"error": "stop kills the agent's user, never root"}
    for _ in range(300):
        left = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in spared:
                continue
            try:
                with open(f"/proc/{entry}/status") as handle:
                    fields = dict(
                        line.split(":", 1) for line in handle.read().splitlines() if ":" in line
                    )
            except OSError:
                continue  # exited meanwhile
            if int(fields["Uid"].split()[0]) == uid and not fields["State"].strip().startswith("Z"):
                left.append(int(entry))
        if not left:
            return {"stopped": True}
        for sig in (signal.SIGSTOP, signal.SIGKILL):  # frozen first: a fork bomb cannot refill
            for pid in left:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
        time.sleep(0.005)
    return {"error": "the agent's processes kept respawning"}


def _empty(folder: str) -> None:
    """Deletes everything inside ``folder`` (a mount point itself cannot go), whatever its depth
    (``rm -rf``: shutil.rmtree recursed and raised RecursionError past ~1,000 levels)."""
    paths = [os.path.join(folder, name) for name in os.listdir(folder)]
    if paths:
        subprocess.run(["rm", "-rf", "--one-file-system", "--", *paths], check=False)


def _setup(request: dict) -> None:
    workspace, base = request["workspace"], request["base"]
    if request.get("clean"):  # a reused container: nothing of the last episode may remain
        for folder in [workspace, *request["clean"]]:
            if os.path.isdir(folder):
                _empty(folder)
        if shutil.which("ipcrm"):  # System V shared memory, semaphores, message queues
            subprocess.run(["ipcrm", "--all"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    source = request.get("stage") or request.get("src")
    if source:
        shutil.copytree(source, workspace, symlinks=True, dirs_exist_ok=True)
    if request.get("stage"):
        shutil.rmtree(request["stage"], ignore_errors=True)
    if request.get("patch"):
        apply_diff(workspace, request["patch"])
    shutil.rmtree(base, ignore_errors=True)
    shutil.copytree(workspace, base, symlinks=True, ignore=shutil.ignore_patterns(*SKIP_DIRS))
    for folder, _dirs, names in os.walk(base):  # readable by the agent's uid, writable by none
        os.chmod(folder, 0o755)
        for name in names:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, 0o644)
    if request.get("owner") is not None:
        chown_tree(workspace, int(request["owner"]))


def _view(request: dict) -> dict:
    lines = _read_text(_resolve(request)).splitlines()
    start = max(1, int(request.get("start") or 1))
    end = min(len(lines), int(request.get("end") or len(lines)), start + 399)
    limit = int(request.get("max_output", 20000))
    shown, used = [], 0
    for number in range(start, end + 1):
        line = f"{number:6d}  {lines[number - 1]}"
        if used + len(line) + 1 > limit:
            room = limit - used
            if room > 40:
                shown.append(line[:room] + " ...")
            shown.append(f"[output truncated at {limit} characters; view fewer or later lines]")
            break
        shown.append(line)
        used += len(line) + 1
    return {"text": "\n".join(shown), "lines": len(lines)}


def handle(request: dict) -> dict:
    """Serves one request (see the module docstring)."""
    op, result = request["op"], {}
    if op == "setup":
        _setup(request)
    elif op == "run":
        result = _run(request)
    elif op == "stop":  # with ``with_diff``: then the diff, in the same call (grading)
        result = _stop(request)
        if "error" in result or not request.get("with_diff"):
            return result
    elif op == "view":
        with _as_agent(request):
            return _view(request)
    elif op in ("edit", "create"):
        with _as_agent(request):
            path = _resolve(request)
            if op == "edit":
                text = _read_text(path)
                count = text.count(request["old"]) if request["old"] else 0
                if count != 1:
                    return {"error": f"old text found {count} times in {request['path']}; it must occur "
                            "exactly once (add context lines)"}  # fmt: skip
                _write_text(path, text.replace(request["old"], request["new"], 1))
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                _write_text(path, request["content"])
    elif op == "apply":
        apply_diff(request["workspace"], request["patch"])
    elif op == "grade":
        return _grade(request)
    elif op != "diff":
        return {"error": f"unknown op {op!r}"}
    if request.get("base"):  # local: the host hashes the workspace itself
        with _as_agent(request):
            result.update(_diff_result(request))
    return result


def _secret() -> str:
    frame = os.environ.pop("TURNGYM_FRAME", "")
    fd = os.environ.pop("TURNGYM_FRAME_FD", "")
    if fd:
        with os.fdopen(int(fd), "rb") as handle:
            frame = handle.read(256).decode().strip()
    return frame


def main() -> None:
    try:  # PR_SET_DUMPABLE 0: the agent's processes cannot open our /proc fds or environment
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    frame = _secret()
    try:
        request = json.loads(zlib.decompress(base64.b64decode(sys.argv[1])))
        result = handle(request)
    except (OSError, ValueError, KeyError, UnicodeDecodeError) as error:
        result = {"error": f"{type(error).__name__}: {error}"}
    sys.stdout.write(frame + json.dumps(result) + frame + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
