"""SWE sandboxes contain what an agent can throw at them, on both backends.

No network; the memory limit kills; ``sleep 1000`` times out; writes outside the workspace fail;
a fork bomb, a disk fill and 100 MB of output are contained and the sandbox keeps answering;
edits to missing files and binary garbage come back as feedback. Docker cases skip (saying why)
when no engine answers; local cases skip without bubblewrap or the cached project sources.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid

import gymnasium
import pytest

from turngym.envs.swe.local_backend import bwrap_available
from turngym.envs.swe.projects import PROJECTS, image_name, project_source
from turngym.error import DependencyNotInstalled


def _reason(backend: str) -> str | None:
    if backend == "local":
        try:
            project_source(PROJECTS["parse"])
        except DependencyNotInstalled as error:
            return str(error)
        return bwrap_available()
    from turngym.envs.swe.docker_backend import connect, engine_available

    reason = engine_available()
    if reason is None and not connect().images.list(name=image_name(PROJECTS["parse"])):
        reason = "the SWE images are not built; run `source docker/ci_setup.sh`"
    return reason


BACKENDS = [
    pytest.param(b, marks=pytest.mark.skipif(_reason(b) is not None, reason=f"{b}: {_reason(b)}"))
    for b in ("docker", "local")
]
TASK = "parse__1.20.2"  # parse's tasks reset fastest


def _bash(command: str) -> str:
    return json.dumps({"tool": "bash", "command": command})


@pytest.fixture(params=BACKENDS)
def env(request: pytest.FixtureRequest):
    env = gymnasium.make(
        "turngym/SWE-v0",
        backend=request.param,
        command_timeout=3,
        memory_mb=256,
        pids=64,
        max_output=2000,
        max_turns=50,
    )
    task = next(t for t in env.unwrapped.task_ids if t.startswith(TASK))
    env.reset(options={"task": task})
    yield env
    env.close()


def _still_answers(env: gymnasium.Env) -> None:
    obs, _, terminated, _, info = env.step(_bash("echo alive"))
    assert not terminated and "alive" in obs and "[exit code: 0]" in obs


def test_no_network(env: gymnasium.Env) -> None:
    probe = (
        "import socket; socket.create_connection(('1.1.1.1', 53), timeout=2); print('CONNECTED')"
    )
    obs, *_ = env.step(
        _bash(f'python3 -c "{probe}"; python3 -c "import socket; print(socket.if_nameindex())"')
    )
    assert "CONNECTED" not in obs and ("unreachable" in obs or "Errno" in obs)
    assert "eth0" not in obs  # only the loopback interface exists


def test_memory_limit_kills(env: gymnasium.Env) -> None:
    obs, *_ = env.step(_bash("python3 -c \"x = b'x' * (600 * 1024 * 1024); print('ALLOCATED')\""))
    assert "ALLOCATED" not in obs
    assert "[exit code: -9]" in obs or "[exit code: 137]" in obs or "MemoryError" in obs
    _still_answers(env)


def test_sleep_1000_times_out(env: gymnasium.Env) -> None:
    started = time.monotonic()
    obs, _, terminated, _, info = env.step(_bash("echo before; sleep 1000"))
    assert time.monotonic() - started < 15
    assert (
        "timed out after 3 s" in obs and "before" in obs and info["valid_action"] and not terminated
    )
    started = time.monotonic()
    env.step(_bash("sleep 1000 & echo detached"))  # a background process does not hold the turn
    assert time.monotonic() - started < 10
    _still_answers(env)


def test_writes_outside_workspace_fail(env: gymnasium.Env) -> None:
    marker = f"turngym-escape-{uuid.uuid4().hex}"
    obs, *_ = env.step(
        _bash(
            f"touch /usr/{marker}; echo x > /etc/{marker}; echo x > /opt/{marker}; "
            f"echo x > /tmp/{marker} && echo TMP_OK; echo x > ok.txt && echo WS_OK"
        )
    )
    assert "WS_OK" in obs and "TMP_OK" in obs  # the workspace and a private /tmp are writable
    assert obs.count("Read-only file system") + obs.count("Permission denied") >= 3
    for folder in ("/usr", "/etc", "/opt", "/tmp"):
        assert not os.path.exists(f"{folder}/{marker}"), (
            f"the sandbox wrote {folder}/{marker} on the host"
        )
    obs, _, _, _, info = env.step(
        json.dumps({"tool": "create", "path": "../../etc/passwd2", "content": "x"})
    )
    assert not info["valid_action"] and "outside the repository" in obs


def test_fork_bomb_is_contained(env: gymnasium.Env) -> None:
    sandbox = env.unwrapped._sandbox
    if sandbox.backend == "local" and not sandbox.cgroups and os.geteuid() == 0:
        pytest.skip(
            "local backend as root without cgroups cannot bound processes; not running a fork bomb"
        )
    started = time.monotonic()
    obs, _, terminated, _, info = env.step(_bash("bomb() { bomb | bomb & }; bomb"))
    assert time.monotonic() - started < 30 and info["valid_action"]
    _still_answers(env)
    # Grading and the next episode stop whatever the bomb left running (docker reuses the container).
    task = env.unwrapped.task_id
    *_, info = env.step('{"tool": "submit"}')
    assert "sandbox_error" not in info
    env.reset(options={"task": task})
    assert sandbox.backend == "local" or env.unwrapped._sandbox is sandbox
    _still_answers(env)


def test_disk_fill_is_contained(env: gymnasium.Env) -> None:
    obs, *_ = env.step(_bash("head -c 100M /dev/zero > huge; wc -c < huge; rm huge"))
    # RLIMIT_FSIZE stops one big file at 64 MB. The apparent size is checked, not the blocks
    # `ls -s` counts: those include the file system's own indirect blocks (65540 on CI's disk).
    assert "File size limit exceeded" in obs and re.search(r"^67108864$", obs, re.M), obs
    bounded = getattr(env.unwrapped._sandbox, "bounded", False)  # local as root: a tmpfs
    obs, _, terminated, _, _ = env.step(
        _bash("for i in 1 2 3 4 5 6; do head -c 60M /dev/zero > fill$i || break; done")
    )
    if (
        env.unwrapped.backend == "docker" or bounded
    ):  # the tmpfs workspace fills up: ENOSPC, the sandbox goes on
        assert "No space left on device" in obs and not terminated
        _still_answers(env)
    else:  # the local workspace quota (checked after the command) ends the episode
        assert terminated and "exceeds" in obs


def test_100mb_output_is_truncated(env: gymnasium.Env) -> None:
    started = time.monotonic()
    obs, *_ = env.step(_bash("head -c 100000000 /dev/zero | tr '\\0' 'y'; echo END"))
    assert time.monotonic() - started < 20
    assert (
        len(obs) < 3000
        and "bytes of output omitted" in obs
        and obs.rstrip().endswith("[exit code: 0]")
    )
    assert "END" in obs  # the tail is kept


def test_bad_edits_and_binary_garbage_are_feedback(env: gymnasium.Env) -> None:
    for action in [
        json.dumps({"tool": "edit", "path": "nope/missing.py", "old": "a", "new": "b"}),
        json.dumps({"tool": "edit", "path": "parse.py", "old": "zzz-not-there", "new": "b"}),
        json.dumps({"tool": "view", "path": "/etc/shadow"}),
        bytes(range(256)).decode("latin-1"),
    ]:
        obs, reward, terminated, _, info = env.step(action)
        assert not info["valid_action"] and not terminated and obs and reward < 0
    obs, *_ = env.step(
        _bash("printf '\\x00\\xff\\xfe binary \\x1b[31m'; head -c 3000 /dev/urandom")
    )
    assert "[exit code: 0]" in obs
    _still_answers(env)


def test_local_jail_binds_only_what_the_interpreter_needs() -> None:
    """The jail's command line binds its own root filesystem (never the host's /usr), the tool's
    site and the workspace; never the checkout, the cache or a host home."""
    from pathlib import Path

    from turngym.cache import cache_root
    from turngym.envs.swe import local_backend
    from turngym.envs.swe.sandbox_base import Limits, StartTree

    if _reason("local"):
        pytest.skip(_reason("local"))
    tree = StartTree([("a.py", "file", b"x = 1\n", 0o644)])
    sandbox = local_backend.LocalSandbox(tree, Limits())
    try:
        args = sandbox._bwrap(sandbox.workspace, None, 3)
        sources = [
            args[i + 1] for i, a in enumerate(args) if a in ("--bind", "--ro-bind", "--ro-bind-try")
        ]
        checkout = str(Path(local_backend.__file__).resolve().parents[2])
        assert args[args.index("/") - 2 : args.index("/")] == ["--ro-bind", str(sandbox.rootfs)]
        for source in sources:
            if source == str(sandbox.rootfs):
                continue
            assert not source.startswith((checkout, str(cache_root()), "/root", "/home")), source
            assert source.startswith(str(local_backend.LOCAL_ROOT)), source
        assert "/usr" not in sources and not sandbox.extra_binds
        assert "--cap-drop" in args and "--disable-userns" in args and "--remount-ro" in args
        obs = sandbox.call({"op": "run", "command": "cat a.py; ls /"})["output"]
        assert "x = 1" in obs and "work" not in obs.split()
    finally:
        sandbox.close()


def test_an_untouched_start_tree_diffs_empty_even_with_files_over_the_read_limit(tmp_path) -> None:
    """The local backend diffs the workspace (read_tree: files cut at MAX_FILE_BYTES + 1, caches
    skipped) against the start tree's files, so those must be read the same way."""
    from turngym.envs.swe.sandbox.swe_diff import MAX_FILE_BYTES, make_diff_files, read_tree
    from turngym.envs.swe.sandbox_base import StartTree

    big = b"x" * (MAX_FILE_BYTES + 500)
    tree = StartTree(
        [
            ("pkg", "dir", None, 0o755),
            ("pkg/data.txt", "file", big, 0o644),
            ("pkg/mod.py", "file", b"VALUE = 1\n", 0o644),
            ("pkg/__pycache__", "dir", None, 0o755),
            ("pkg/__pycache__/mod.cpython-311.pyc", "file", b"\x00cached", 0o644),
            ("pkg.egg-info", "dir", None, 0o755),
            ("pkg.egg-info/PKG-INFO", "file", b"Name: pkg\n", 0o644),
        ]
    )
    tree.materialize(tmp_path / "workspace")
    assert (tmp_path / "workspace" / "pkg" / "data.txt").read_bytes() == big
    assert set(tree.files) == {"pkg/data.txt", "pkg/mod.py"}
    assert make_diff_files(tree.files, read_tree(str(tmp_path / "workspace"))) == ""


def test_tool_payload_and_answer_turn_oversize_and_killed_calls_into_feedback() -> None:
    """Both backends pass requests and read answers through these: an edit too large for a
    command line and a tool killed mid-command are the agent's feedback, not a dead episode."""
    from turngym.envs.swe.sandbox_base import new_frame, tool_answer, tool_payload

    payload, refused = tool_payload({"op": "create", "path": "a.py", "content": "x = 1\n"})
    assert payload and refused is None
    huge = os.urandom(200_000).hex()  # incompressible
    payload, refused = tool_payload({"op": "create", "path": "a.py", "content": huge})
    assert payload is None and "too large" in refused["error"]
    frame = new_frame()
    framed = f"noise{frame}{json.dumps({'output': 'ok'})}{frame}".encode()
    assert tool_answer(framed, frame, killed=True) == {"output": "ok"}
    assert "was killed" in tool_answer(b"partial", frame, killed=True)["error"]
    assert tool_answer(b"partial", frame, killed=False) is None
