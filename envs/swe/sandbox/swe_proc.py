"""Files and processes inside a SWE sandbox: regular-file-only reads and writes, and commands run
as the agent with limits, a timeout and capped output (standard library only; see swe_tool.py)."""

from __future__ import annotations

import os
import select
import signal
import stat
import subprocess
import time

__all__ = [
    "chown_tree",
    "regular",
    "read_text",
    "write_text",
    "child_setup",
    "spawn",
    "collect",
    "run",
    "LOG_LIMIT",
]

LOG_LIMIT = 4_000_000


def regular(path: str, write: bool = False):
    """Opens ``path`` only if it is a regular file (FIFOs, devices, symlinks are refused at once)."""
    flags = (os.O_RDWR if write else os.O_RDONLY) | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if error.errno == 40:  # ELOOP: a symlink
            raise ValueError(f"{os.path.basename(path)} is a symlink; edit its target") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ValueError(f"{os.path.basename(path)} is not a regular file")
    return fd


def chown_tree(root: str, uid: int) -> None:
    """``lchown`` ``root`` and every entry below it to ``uid`` (links themselves, never targets).

    Iterative: no recursion limit whatever the depth (os.walk recurses on Python < 3.12)."""
    os.lchown(root, uid, uid)
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                os.lchown(entry.path, uid, uid)
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)


def read_text(path: str, limit: int = 8_000_000) -> str:
    with os.fdopen(regular(path), "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{os.path.basename(path)} is larger than {limit} bytes")
    return data.decode("utf-8", "replace")


def write_text(path: str, text: str) -> None:
    if os.path.lexists(path):
        fd = regular(path, write=True)
        os.ftruncate(fd, 0)
    else:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(text.encode("utf-8"))


def child_setup(request: dict):
    def apply() -> None:
        import resource

        for name, value in (request.get("rlimits") or {}).items():
            resource.setrlimit(getattr(resource, name), (value, value))
        uid = request.get("agent_uid")
        if uid and os.getuid() == 0:
            os.setgroups([])
            os.setgid(int(uid))
            os.setuid(int(uid))

    return apply


def spawn(request: dict, command: list, env: dict, pass_fds=()) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        cwd=request["workspace"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        pass_fds=pass_fds,
        preexec_fn=child_setup(request),
    )


def collect(process, deadline: float, limit: int, extra_fd=None) -> tuple:
    """(head, tail, total bytes, timed out, bytes read from ``extra_fd``); kills the group at the end."""
    head, tail, total, timed_out, extra = bytearray(), b"", 0, False, bytearray()
    exited = 0.0
    fds = [process.stdout.fileno()] + ([extra_fd] if extra_fd is not None else [])
    while fds:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        ready, _, _ = select.select(fds, [], [], min(remaining, 0.2))
        if not ready:
            if process.poll() is not None:
                # Exited; a descendant may still hold a pipe: give it a moment, then stop reading.
                exited = exited or time.monotonic()
                if extra_fd not in fds or time.monotonic() - exited > 1.0:
                    break
            continue
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                fds.remove(fd)
            elif fd == extra_fd:
                if len(extra) < LOG_LIMIT:
                    extra.extend(chunk)
            else:
                total += len(chunk)
                if len(head) < limit // 2:
                    head.extend(chunk[: limit // 2 - len(head)])
                tail = (tail + chunk)[-(limit // 2) :]
        if (
            process.poll() is not None
            and process.stdout.fileno() not in fds
            and extra_fd not in fds
        ):
            break
    if not timed_out:
        try:
            process.wait(timeout=max(0.0, min(2.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            timed_out = True
    try:  # whatever the command left behind in its process group goes too
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        pass
    return head, tail, total, timed_out, bytes(extra)


def run(request: dict) -> dict:
    env = dict(os.environ, **(request.get("env") or {}))
    process = spawn(request, ["bash", "-c", request["command"]], env)
    limit = int(request.get("max_output", 20000))
    deadline = time.monotonic() + float(request.get("timeout", 30))
    head, tail, total, timed_out, _ = collect(process, deadline, limit)
    try:
        code = process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        code = -9
    if total <= limit:
        output = (
            bytes(head) + tail[len(tail) - (total - len(head)) :]
            if total > len(head)
            else bytes(head)
        )
        text = output.decode("utf-8", "replace")
    else:
        omitted = total - len(head) - len(tail)
        text = (
            f"{bytes(head).decode('utf-8', 'replace')}\n... [{omitted} bytes of output omitted] ...\n"
            f"{tail.decode('utf-8', 'replace')}"
        )
    return {
        "output": text,
        "exit_code": None if timed_out else code,
        "timed_out": timed_out,
        "bytes": total,
    }
