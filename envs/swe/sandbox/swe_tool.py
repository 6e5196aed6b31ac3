"""The tool that runs *inside* a SWE sandbox (Docker container or bubblewrap jail).

Self-contained (standard library only, Python >= 3.8) so it runs with any image's ``python3``.
The host sends one request per call as ``argv[1]`` = base64(zlib(JSON)); the tool prints one
JSON line. Every agent action is one call, so a turn costs one ``exec``.

Requests (``op``):

=========  ==================================================================================
setup      (empty ``workspace`` and the ``clean`` folders,) copy ``src`` into ``workspace``, apply
           ``patch``, snapshot the result into ``base``
run        ``bash -c command`` in the workspace: timeout (kills the process group), output capped
view       numbered lines ``start..end`` of a workspace file
edit       replace the one occurrence of ``old`` by ``new`` in a file
create     write a (new or existing) file
diff       unified diff workspace vs ``base`` (and its hash)
stop       kill every other process of the calling (unprivileged) user
apply      apply a unified diff to the workspace
grade      restore test files from ``base``, apply ``test_patch``, run pytest on ``files``, report
           each test's status
=========  ==================================================================================
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
import zlib

__all__ = ["make_diff", "apply_diff", "parse_diff", "hunk_sides", "encode_request", "handle"]

SKIP_DIRS = {"__pycache__", ".pytest_cache", ".git", ".mypy_cache", ".hypothesis"}
SKIP_SUFFIXES = (".pyc", ".pyo")
TEST_CONFIG = {"conftest.py", "pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml"}
#: Files an agent could add to hijack the grading run (shadow pytest or its report plugin, hook into
#: the interpreter): removed at grading unless the repository had them at the start.
SHADOWING = TEST_CONFIG | {
    "pytest.py",
    "py.py",
    "pluggy.py",
    "turngym_pytest_report.py",
    "sitecustomize.py",
    "usercustomize.py",
    "__main__.py",
}
SHADOWING_DIRS = {"pytest", "_pytest", "pluggy", "py"}
MAX_FILE_BYTES = 2_000_000


def encode_request(request: dict) -> str:
    """Encodes a request for ``argv[1]``."""
    return base64.b64encode(zlib.compress(json.dumps(request).encode(), 6)).decode()


def _files(root: str) -> dict:
    found = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(names):
            if name.endswith(SKIP_SUFFIXES):
                continue
            path = os.path.join(folder, name)
            if os.path.isfile(path) and not os.path.islink(path):
                found[os.path.relpath(path, root)] = path
    return found


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(MAX_FILE_BYTES + 1)


def make_diff(base: str, workspace: str) -> str:
    """A git-style unified diff from folder ``base`` to folder ``workspace``."""
    old, new = _files(base), _files(workspace)
    chunks = []
    for rel in sorted(set(old) | set(new)):
        a = _read(old[rel]) if rel in old else None
        b = _read(new[rel]) if rel in new else None
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
            a_text.splitlines(True),
            b_text.splitlines(True),
            "a/" + rel if a is not None else "/dev/null",
            "b/" + rel if b is not None else "/dev/null",
        )
        body = "".join(
            line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
            for line in lines
        )
        chunks.append(header + body)
    return "".join(chunks)


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def parse_diff(text: str) -> list:
    """[(path, is_new, is_deleted, [(old start line, hunk lines) per hunk])] of a unified diff."""
    files, lines, i = [], text.splitlines(True), 0
    while i < len(lines):
        if lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            src, dst = lines[i][4:].split("\t")[0].strip(), lines[i + 1][4:].split("\t")[0].strip()
            path = dst if dst != "/dev/null" else src
            path = path[2:] if path[:2] in ("a/", "b/") else path
            entry = [path, src == "/dev/null", dst == "/dev/null", []]
            i += 2
            while i < len(lines) and _HUNK.match(lines[i]):
                hunk, start, i = [], int(_HUNK.match(lines[i]).group(1)), i + 1
                while i < len(lines) and lines[i][:1] in (" ", "-", "+", "\\", "\n"):
                    if (
                        lines[i].startswith(("--- ", "+++ "))
                        and i + 1 < len(lines)
                        and lines[i + 1].startswith("+++ ")
                    ):
                        break
                    hunk.append(lines[i])
                    i += 1
                entry[3].append((start, hunk))
            files.append(entry)
        else:
            i += 1
    return files


def hunk_sides(hunk: list) -> tuple:
    old, new = [], []
    for index, line in enumerate(hunk):
        tag, body = line[:1], line[1:] if line != "\n" else "\n"
        if tag == "\\":
            target = (
                old if hunk[index - 1][:1] == "-" else new if hunk[index - 1][:1] == "+" else None
            )
            for side in [old, new] if target is None else [target]:
                if side:
                    side[-1] = side[-1].rstrip("\n")
            continue
        if tag in (" ", "\n", "-"):
            old.append(body)
        if tag in (" ", "\n", "+"):
            new.append(body)
    return "".join(old), "".join(new)


def apply_diff(workspace: str, diff: str, skip=lambda path: False) -> list:
    """Applies a unified diff (exact context match, no fuzz); returns the paths changed."""
    changed = []
    for path, is_new, is_deleted, hunks in parse_diff(diff):
        if skip(path):
            continue
        target = os.path.join(workspace, path)
        if is_deleted:
            os.remove(target)
            changed.append(path)
            continue
        text = "" if is_new else open(target, encoding="utf-8").read()
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
        with open(target, "w", encoding="utf-8") as handle:
            handle.write(text)
        changed.append(path)
    return changed


def _diff_result(request: dict) -> dict:
    diff = make_diff(request["base"], request["workspace"])
    return {
        "diff": diff if request.get("with_diff") else None,
        "diff_hash": hashlib.sha1(diff.encode()).hexdigest(),
    }


def _resolve(request: dict) -> str:
    root = os.path.realpath(request["workspace"])
    path = os.path.realpath(os.path.join(root, request["path"]))
    if path != root and not path.startswith(root + os.sep):
        raise ValueError(
            f"path {request['path']!r} is outside the repository {request['workspace']}"
        )
    return path


def _limits(request: dict):
    def apply() -> None:
        import resource

        for name, value in (request.get("rlimits") or {}).items():
            resource.setrlimit(getattr(resource, name), (value, value))

    return apply


def _run(request: dict) -> dict:
    env = dict(os.environ, **(request.get("env") or {}))
    process = subprocess.Popen(
        ["bash", "-c", request["command"]],
        cwd=request["workspace"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_limits(request),
    )
    limit, head, total = int(request.get("max_output", 20000)), bytearray(), 0
    tail = b""
    deadline, timed_out = time.monotonic() + float(request.get("timeout", 30)), False
    fd = process.stdout.fileno()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.5))
        if not ready:
            if process.poll() is not None:
                break
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        total += len(chunk)
        if len(head) < limit // 2:
            head.extend(chunk[: limit // 2 - len(head)])
        tail = (tail + chunk)[-(limit // 2) :]
    if not timed_out:
        try:
            process.wait(timeout=max(0.0, min(2.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            timed_out = True
    try:  # whatever the command left behind in its process group goes too
        os.killpg(process.pid, signal.SIGKILL)
    except OSError:
        pass
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
    result = {
        "output": text,
        "exit_code": None if timed_out else code,
        "timed_out": timed_out,
        "bytes": total,
    }
    report = request.get("report")
    if report and os.path.exists(report):
        try:
            result["tests"] = json.load(open(report))
        except ValueError:
            result["tests"] = {}
        os.remove(report)
    return result


def _restore(source: str, target: str) -> None:
    if os.path.islink(target) or os.path.isfile(target):
        os.remove(target)  # never write through a symlink the agent planted
    elif os.path.isdir(target):
        shutil.rmtree(target)
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    shutil.copyfile(source, target)


def _grade(request: dict) -> dict:
    workspace, base, files = request["workspace"], request["base"], request["files"]
    original = _files(base)
    for folder, dirs, names in os.walk(workspace):
        links = [d for d in dirs if os.path.islink(os.path.join(folder, d))]
        for name in names + links:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, workspace)
            shadowing = (
                name in SHADOWING or SHADOWING_DIRS & set(rel.split(os.sep)[:-1]) or name in links
            )
            if rel not in original and shadowing:
                os.remove(path)
    for rel in original:
        name = os.path.basename(rel)
        if rel in files or name in TEST_CONFIG or name.startswith("test_"):
            _restore(original[rel], os.path.join(workspace, rel))
    if request.get("test_patch"):  # SWE-bench: the instance's test changes go in after the agent's
        apply_diff(workspace, request["test_patch"])
    report = "/tmp/.turngym-grade.json"
    if os.path.lexists(report):  # planted by the agent: only this run's report counts
        os.remove(report)
    quoted = " ".join(shlex.quote(f) for f in files)
    command = f"{request.get('python', 'python3')} -m pytest -q -p no:cacheprovider -p turngym_pytest_report {quoted}"
    env = dict(request.get("env") or {}, TURNGYM_PYTEST_REPORT=report)
    run = _run(dict(request, command=command, report=report, env=env))
    return {
        "tests": run.get("tests", {}),
        "output": run["output"][-4000:],
        "timed_out": run["timed_out"],
    }


def _stop() -> dict:
    """Kills every other process of this (unprivileged) user; repeats while a fork bomb refills."""
    uid, spared = (
        os.getuid(),
        {os.getpid(), os.getppid()},
    )  # the parent is `timeout`, holding the exec
    if uid == 0:
        return {"error": "stop runs as the agent's user, never as root"}
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
        for pid in left:
            try:
                os.kill(
                    pid, signal.SIGSTOP
                )  # frozen first, so a fork bomb cannot refill while we kill
            except OSError:
                pass
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.005)
    return {"error": "the agent's processes kept respawning"}


def _empty(folder: str) -> None:
    """Deletes everything inside ``folder`` (a mount point itself cannot go)."""
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)


def handle(request: dict) -> dict:
    """Serves one request (see the module docstring)."""
    op, result = request["op"], {}
    if op == "setup":
        if request.get("clean"):  # a reused container: nothing of the last episode may remain
            for folder in [request["workspace"], *request["clean"]]:
                if os.path.isdir(folder):
                    _empty(folder)
            if shutil.which("ipcrm"):  # System V shared memory, semaphores, message queues
                subprocess.run(
                    ["ipcrm", "--all"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
        if request.get("src"):
            shutil.copytree(request["src"], request["workspace"], dirs_exist_ok=True)
        if request.get("patch"):
            apply_diff(request["workspace"], request["patch"])
        shutil.rmtree(request["base"], ignore_errors=True)
        shutil.copytree(
            request["workspace"], request["base"], ignore=shutil.ignore_patterns(*SKIP_DIRS)
        )
        if request.get("owner") is not None:
            uid = int(request["owner"])
            for folder, _, names in os.walk(request["workspace"]):
                for name in [folder] + [os.path.join(folder, n) for n in names]:
                    os.lchown(name, uid, uid)
    elif op == "run":
        result = _run(request)
    elif op == "stop":
        return _stop()
    elif op == "view":
        lines = open(_resolve(request), encoding="utf-8", errors="replace").read().splitlines()
        start = max(1, int(request.get("start") or 1))
        end = min(len(lines), int(request.get("end") or len(lines)), start + 399)
        result = {
            "text": "\n".join(f"{n:6d}  {lines[n - 1]}" for n in range(start, end + 1)),
            "lines": len(lines),
        }
        return result
    elif op == "edit":
        path = _resolve(request)
        text = open(path, encoding="utf-8").read()
        count = text.count(request["old"]) if request["old"] else 0
        if count != 1:
            return {
                "error": f"old text found {count} times in {request['path']}; it must occur exactly once "
                "(add context lines)"
            }
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text.replace(request["old"], request["new"], 1))
    elif op == "create":
        path = _resolve(request)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(request["content"])
    elif op == "apply":
        apply_diff(request["workspace"], request["patch"])
    elif op == "grade":
        return _grade(request)
    elif op != "diff":
        return {"error": f"unknown op {op!r}"}
    result.update(_diff_result(request))
    return result


def main() -> None:
    try:
        request = json.loads(zlib.decompress(base64.b64decode(sys.argv[1])))
        result = handle(request)
    except (OSError, ValueError, KeyError, UnicodeDecodeError) as error:
        result = {"error": f"{type(error).__name__}: {error}"}
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
