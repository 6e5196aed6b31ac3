"""The ``grade`` op of the in-sandbox tool (runs in a fresh grading sandbox; standard library only).

Filters the agent's diff by the allow-list (``swe_diff.filter_diff``), applies it and the task's
``test_patch``, then runs pytest through ``turngym_grade_runner.py`` (statuses from its
nonce-authenticated pipe and from the ``-rA`` log) or another framework's ``command`` (the host
parses that log).
"""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import os
import random
import shutil
import time
import tokenize

try:  # imported on the host as part of turngym
    from .swe_canary import CANARIES_PER_GRADE, plant
    from .swe_diff import apply_diff, filter_diff, read_tree
    from .swe_proc import LOG_LIMIT, chown_tree, collect, read_text, spawn
except ImportError:  # run inside a sandbox, next to swe_diff.py and swe_proc.py
    from swe_canary import CANARIES_PER_GRADE, plant  # type: ignore[no-redef]
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
    """(per-test statuses, what the runner's tripwires found, {"end": exit status or None,
    "collect_errors": [node ids]}) from the runner's records."""
    statuses, tampered, prefix = {}, [], (nonce + " ").encode()
    session = {"end": None, "collect_errors": []}
    for line in records.split(b"\n"):
        if not line.startswith(prefix):
            continue
        try:
            record = json.loads(line[len(prefix) :])
        except ValueError:
            continue
        tampered.extend(n for n in record.get("tampered", []) if n not in tampered)
        if "end" in record:
            session["end"] = record["end"]
            break  # whatever comes after the session's end is not the runner's
        if "collect_error" in record:
            session["collect_errors"].append(record["collect_error"])
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
    return statuses, tampered, session


def _plant_canaries(workspace: str, files: list, targets: list, count: int) -> dict:
    """Plants ``count`` canaries (half must pass) in the graded files holding target tests."""
    holding = sorted({t.split("::")[0] for t in targets} & set(files)) or sorted(set(files))
    holding = [
        f for f in holding if f.endswith(".py") and os.path.isfile(os.path.join(workspace, f))
    ]
    if not holding or count <= 0:
        return {}
    rng = random.SystemRandom()
    outcomes = [index % 2 == 0 for index in range(count)]
    rng.shuffle(outcomes)
    per_file = {}
    for passes in outcomes:
        per_file.setdefault(rng.choice(holding), []).append(passes)
    planted = {}
    for rel, wanted in per_file.items():
        path = os.path.join(workspace, rel)
        with open(path, "rb") as handle:
            data = handle.read()
        try:
            source = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        new, nodes = plant(source, wanted, rng, rel, targets)
        with open(path, "wb") as handle:
            handle.write(new.encode("utf-8"))
        planted.update(nodes)
    return planted


def _refuse_encodings(workspace: str, changed: list, tree: dict) -> list:
    """Puts back every changed Python file whose source encoding (as the interpreter reads its
    BOM or coding cookie) is not UTF-8/ASCII; returns [(path, reason)] for them."""
    refused = []
    for rel in changed:
        path = os.path.join(workspace, rel)
        if not rel.endswith((".py", ".pyi")) or not os.path.isfile(path):
            continue
        with open(path, "rb") as handle:
            head = handle.read(4096)
        try:
            encoding = codecs.lookup(tokenize.detect_encoding(io.BytesIO(head).readline)[0]).name
        except (SyntaxError, LookupError) as error:
            encoding = f"unknown ({error})"
        if encoding in ("utf-8", "ascii", "utf-8-sig"):
            continue
        if rel in tree:
            with open(path, "wb") as handle:
                handle.write(tree[rel])
        else:
            os.remove(path)
        refused.append(
            (rel, f"source encoding {encoding} is refused (Python files must be UTF-8 or ASCII)")
        )
    return refused


def _sources(workspace: str, changed: list, limit: int = 8_000_000) -> dict:
    """{path: text} of the changed Python files after the patch (for the host's diff analysis)."""
    found, total = {}, 0
    for rel in changed:
        if not rel.endswith((".py", ".pyi")):
            continue
        try:
            with open(os.path.join(workspace, rel), "rb") as handle:
                data = handle.read(limit + 1 - total)
        except OSError:
            continue
        total += len(data)
        if total > limit:
            found[rel] = None  # too much to send: the host flags it
            break
        found[rel] = data.decode("utf-8", "replace")
    return found


def _fingerprints(workspace: str, files: list) -> dict:
    """sha256 of the graded test files and every conftest.py (checked again after the run)."""
    paths = set(files)
    for folder, dirs, names in os.walk(workspace):
        dirs[:] = [d for d in dirs if d not in ("__pycache__", ".git")]
        paths.update(
            os.path.relpath(os.path.join(folder, n), workspace) for n in names if n == "conftest.py"
        )
    found = {}
    for rel in sorted(paths):
        try:
            with open(os.path.join(workspace, rel), "rb") as handle:
                found[rel] = hashlib.sha256(handle.read()).hexdigest()
        except OSError:
            found[rel] = None
    return found


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
    result = {"dropped": dropped, "tests": {}}
    try:
        changed = apply_diff(workspace, kept)
    except (ValueError, OSError) as error:
        result.update(
            applied=hashlib.sha1(kept.encode()).hexdigest(),
            apply_error=f"the patch does not apply: {error}",
        )
        return result
    refused = _refuse_encodings(workspace, changed, tree)
    dropped.extend(refused)
    if refused:  # the refused files are back as they were: the graded patch is the rest
        kept = filter_diff(kept, tracked, set(files) | {path for path, _ in refused})[0]
    patched = [p for p in changed if p not in dict(refused)]  # the agent's files, as applied
    result.update(applied=hashlib.sha1(kept.encode()).hexdigest(),
                  sources=_sources(workspace, patched))  # fmt: skip
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
    canaries = _plant_canaries(workspace, files, request.get("targets") or [],
                               int(request.get("canaries", CANARIES_PER_GRADE)))  # fmt: skip
    fingerprints = _fingerprints(workspace, files)
    nonce = hashlib.sha256(os.urandom(32)).hexdigest()
    nonce_read, nonce_write = os.pipe()
    report_read, report_write = os.pipe()
    os.write(nonce_write, nonce.encode())
    os.close(nonce_write)
    runner = os.path.join(os.path.dirname(os.path.abspath(__file__)), "turngym_grade_runner.py")
    command = [request.get("python", "python3"), "-I", "-B", runner, str(nonce_read), str(report_write),
               workspace, request.get("site") or "", json.dumps(patched), "--", "-rA", "-q", "--tb=short", "--color=no", "-p", "no:cacheprovider",
               "--rootdir", workspace, "-c", _config(workspace, scratch), *files]  # fmt: skip
    process = spawn(request, command, env, pass_fds=(nonce_read, report_write))
    os.close(nonce_read)
    os.close(report_write)
    head, tail, total, timed_out, records = collect(
        process, deadline, LOG_LIMIT, extra_fd=report_read
    )
    os.close(report_read)
    log = (bytes(head) + (tail if total > len(head) else b"")).decode("utf-8", "replace")
    statuses, tampered, session = _statuses(records, nonce)
    tampered.extend(f"{rel} changed during the run" for rel, digest in _fingerprints(workspace, files).items()
                    if fingerprints.get(rel, digest) != digest)  # fmt: skip
    result.update(
        tests=statuses,
        tampered=tampered,
        canaries=canaries,
        session=session,
        log_tests=_log_statuses(log, (request.get("targets") or []) + list(canaries)),
        output=log[-4000:],
        log=log,  # the host parses it as SWE-bench does for external tasks (harness.parsers)
        timed_out=timed_out,
    )
    return result
