"""The ``grade`` op of the in-sandbox tool (runs in a fresh grading sandbox; standard library only).

Filters the agent's diff by the allow-list (``swe_diff.filter_diff``), applies it and the task's
``test_patch``, then runs pytest through ``turngym_grade_runner.py`` (statuses from its
nonce-authenticated pipe and from the ``-rA`` log) or another framework's ``command`` (the host
parses that log).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time

try:  # imported on the host as part of turngym
    from .swe_diff import apply_diff, filter_diff, read_tree
    from .swe_proc import LOG_LIMIT, chown_tree, collect, read_text, spawn
except ImportError:  # run inside a sandbox, next to swe_diff.py and swe_proc.py
    from swe_diff import apply_diff, filter_diff, read_tree  # type: ignore[no-redef]
    from swe_proc import LOG_LIMIT, chown_tree, collect, read_text, spawn  # type: ignore[no-redef]

__all__ = ["grade", "CONFIGS"]

CONFIGS = (
    ("pytest.ini", None),
    (".pytest.ini", None),
    ("pytest.toml", None),
    (".pytest.toml", None),
    ("pyproject.toml", "[tool.pytest"),
    ("tox.ini", "[pytest]"),
    ("setup.cfg", "[tool:pytest]"),
)
STATUS_WORDS = {"PASSED": "passed", "FAILED": "failed", "ERROR": "failed", "SKIPPED": "skipped",
                "XFAIL": "skipped", "XPASS": "passed"}  # fmt: skip


def _config(workspace: str, scratch: str) -> str:
    """The repository's own pytest configuration file, or an empty one (never discovered)."""
    for name, section in CONFIGS:
        path = os.path.join(workspace, name)
        if os.path.isfile(path) and not os.path.islink(path):
            if section is None or section in read_text(path):
                return path
    empty = os.path.join(scratch, "pytest.ini")
    with open(empty, "w") as handle:
        handle.write("[pytest]\n")
    return empty


def _statuses(records: bytes, nonce: str) -> tuple:
    """(per-test statuses, names of replaced pytest functions) from the runner's records."""
    statuses, tampered, prefix = {}, [], (nonce + " ").encode()
    for line in records.split(b"\n"):
        if not line.startswith(prefix):
            continue
        try:
            record = json.loads(line[len(prefix) :])
        except ValueError:
            continue
        tampered.extend(n for n in record.get("tampered", []) if n not in tampered)
        if "end" in record:
            break  # whatever comes after the session's end is not the runner's
        if "id" not in record:
            continue
        node, outcome, previous = record["id"], record["outcome"], statuses.get(record["id"])
        if outcome == "failed":
            statuses[node] = "failed"
        elif previous != "failed":
            if record["when"] == "call" and outcome == "passed":
                statuses[node] = "passed"
            elif outcome == "skipped" and previous is None:
                statuses[node] = "skipped"
    return statuses, tampered


def _log_statuses(log: str, targets: list) -> dict:
    """SWE-bench's reading of pytest's ``-rA`` summary lines, for the target test ids."""
    wanted, found = set(targets), {}
    for line in log.splitlines():
        word, _, rest = line.partition(" ")
        if word not in STATUS_WORDS:
            continue
        node = rest if rest in wanted else rest.split(" - ", 1)[0]
        if node in wanted:
            found[node] = "failed" if found.get(node) == "failed" else STATUS_WORDS[word]
    return found


def grade(request: dict) -> dict:
    workspace, files = request["workspace"], list(request.get("files") or [])
    if request.get("stage"):  # the pristine starting tree the host sent
        shutil.copytree(request["stage"], workspace, symlinks=True, dirs_exist_ok=True)
        shutil.rmtree(request["stage"], ignore_errors=True)
    tree = read_tree(workspace)
    tracked = {}
    for rel, data in tree.items():
        try:
            data.decode("utf-8")
            tracked[rel] = True
        except UnicodeDecodeError:
            tracked[rel] = False
    diff = read_text(request["diff_path"]) if request.get("diff_path") else ""
    kept, dropped = filter_diff(diff, tracked, set(files))
    result = {"dropped": dropped, "applied": hashlib.sha1(kept.encode()).hexdigest(), "tests": {}}
    try:
        apply_diff(workspace, kept)
    except (ValueError, OSError) as error:
        result["apply_error"] = f"the patch does not apply: {error}"
        return result
    if request.get("test_patch_path"):  # SWE-bench: the instance's test changes go in last
        apply_diff(workspace, read_text(request["test_patch_path"]))
    if request.get("agent_uid") and os.getuid() == 0:
        chown_tree(workspace, int(request["agent_uid"]))
    scratch = request.get("scratch", "/tmp/turngym-grade")
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(os.path.join(scratch, "home"))
    os.chmod(scratch, 0o755)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": os.path.join(scratch, "home"),
           "PYTHONNOUSERSITE": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "TMPDIR": "/tmp"}  # fmt: skip
    if request.get("agent_uid"):
        os.chown(env["HOME"], int(request["agent_uid"]), int(request["agent_uid"]))
    deadline = time.monotonic() + float(request.get("timeout", 180))
    if request.get("command"):  # another framework's command (harness.py); the host parses the log
        process = spawn(request, ["bash", "-c", request["command"]], dict(os.environ, **env))
        head, tail, total, timed_out, _ = collect(process, deadline, LOG_LIMIT)
        log = (bytes(head) + (tail if total > len(head) else b"")).decode("utf-8", "replace")
        result.update(log=log, timed_out=timed_out)
        return result
    nonce = hashlib.sha256(os.urandom(32)).hexdigest()
    nonce_read, nonce_write = os.pipe()
    report_read, report_write = os.pipe()
    os.write(nonce_write, nonce.encode())
    os.close(nonce_write)
    runner = os.path.join(os.path.dirname(os.path.abspath(__file__)), "turngym_grade_runner.py")
    command = [request.get("python", "python3"), "-I", "-B", runner, str(nonce_read), str(report_write),
               workspace, request.get("site") or "", "--", "-rA", "-q", "--tb=short", "--color=no", "-p", "no:cacheprovider",
               "--rootdir", workspace, "-c", _config(workspace, scratch), *files]  # fmt: skip
    process = spawn(request, command, env, pass_fds=(nonce_read, report_write))
    os.close(nonce_read)
    os.close(report_write)
    head, tail, total, timed_out, records = collect(
        process, deadline, LOG_LIMIT, extra_fd=report_read
    )
    os.close(report_read)
    log = (bytes(head) + (tail if total > len(head) else b"")).decode("utf-8", "replace")
    statuses, tampered = _statuses(records, nonce)
    result.update(
        tests={} if tampered else statuses,
        tampered=tampered,
        log_tests=_log_statuses(log, request.get("targets") or []),
        output=log[-4000:],
        log=log,  # the host parses it as SWE-bench does for external tasks (harness.parsers)
        timed_out=timed_out,
    )
    return result
