"""The SWE env under attack, as a hostile agent would attack it, on both backends.

Each test is one attack class of issue 12 (or one of ours) and asserts it fails: no host effect,
no gold answer in reach, no grade or dense reward without the fix. Docker cases skip (saying why)
without an engine and the images of docker/ci_setup.sh; local cases skip without bubblewrap or
the cached project sources.
"""

from __future__ import annotations

import base64
import json
import os
import time

import gymnasium
import pytest

from turngym.envs.swe.expert import patch_to_calls
from turngym.envs.swe.tasks import Task


def backend_reason(backend: str, projects: tuple[str, ...] = ("parse",)) -> str | None:
    """Why ``backend`` cannot run the tasks of ``projects`` here (None when it can)."""
    from turngym.envs.swe.projects import PROJECTS, image_name, project_source
    from turngym.error import DependencyNotInstalled

    if backend == "local":
        from turngym.envs.swe.local_backend import local_available

        try:
            for name in projects:
                project_source(PROJECTS[name])
        except DependencyNotInstalled as error:
            return str(error)
        return local_available(list(projects))
    from turngym.envs.swe.docker_backend import connect, engine_available

    reason = engine_available()
    if reason is None and not all(
        connect().images.list(name=image_name(PROJECTS[name])) for name in projects
    ):
        reason = "the SWE images are not built; run `source docker/ci_setup.sh`"
    return reason


def backend_params(projects: tuple[str, ...] = ("parse",)) -> list:
    """Both backends as pytest params, each skipped with its reason where it cannot run here."""
    return [
        pytest.param(
            b,
            marks=pytest.mark.skipif(
                backend_reason(b, projects) is not None,
                reason=f"{b}: {backend_reason(b, projects)}",
            ),
        )
        for b in ("docker", "local")
    ]


BACKENDS = backend_params()

TASK = "parse__1.20.2-parse-_to_group_name-swap_args-6225adb"
ALLPASS = (
    "import pytest\n\n@pytest.hookimpl(hookwrapper=True)\ndef pytest_runtest_makereport(item, call):\n"
    "    outcome = yield\n    report = outcome.get_result()\n    report.outcome = 'passed'\n"
    "    report.longrepr = None\n"
)
#: Library code that forges every test report from inside the test process.
FORGE_REPORTS = (
    "\nimport _pytest.reports as _r\n_orig = _r.TestReport.from_item_and_call\n"
    "def _forged(item, call):\n    report = _orig(item, call)\n    report.outcome = 'passed'\n"
    "    report.longrepr = None\n    return report\n_r.TestReport.from_item_and_call = _forged\n"
)


def _bash(command: str) -> str:
    return json.dumps({"tool": "bash", "command": command})


@pytest.fixture(scope="module", params=BACKENDS)
def env(request: pytest.FixtureRequest):
    env = gymnasium.make(
        "turngym/SWE-v0", backend=request.param, command_timeout=60, max_turns=60, max_output=4000
    )
    yield env
    env.close()


def _start(env: gymnasium.Env) -> Task:
    _, info = env.reset(options={"task": TASK})
    env.unwrapped.start_info = info
    return env.unwrapped.tasks[TASK]


def _run(env: gymnasium.Env, command: str) -> tuple[str, dict]:
    obs, _, terminated, _, info = env.step(_bash(command))
    assert not terminated, obs
    return obs, info


def _write(env: gymnasium.Env, path: str, content: str) -> None:
    encoded = base64.b64encode(content.encode()).decode()
    _run(env, f"mkdir -p \"$(dirname '{path}')\" && echo {encoded} | base64 -d > '{path}'")


def _submit(env: gymnasium.Env) -> dict:
    _, _, terminated, _, info = env.step('{"tool": "submit"}')
    assert terminated
    return info


# ---------------------------------------------------------------- escape and privileges
def test_no_capabilities_no_root_no_remount(env: gymnasium.Env) -> None:
    _start(env)
    marker = f"turngym-escape-{os.getpid()}"
    obs, _ = _run(
        env,
        "grep CapEff /proc/self/status; echo UID=$(id -u); "
        "for m in $(awk '{print $2}' /proc/self/mounts); do "
        "mount -o remount,rw,bind $m 2>/dev/null && echo REMOUNTED $m; "
        "mount -o remount,rw $m 2>/dev/null && echo REMOUNTED $m; done; "
        "unshare -Urm true 2>/dev/null && echo NEW_USERNS; "
        f"for d in / /usr /etc /opt /opt/turngym /var /root; do touch $d/{marker} 2>/dev/null && echo WROTE $d; done; "
        "echo END",
    )
    assert "CapEff:\t0000000000000000" in obs and "UID=1000" in obs and "END" in obs, obs
    assert "REMOUNTED" not in obs and "NEW_USERNS" not in obs and "WROTE" not in obs, obs
    for folder in ("/usr", "/etc", "/opt", "/var", "/root", "/"):
        assert not os.path.exists(f"{folder}/{marker}")


def test_no_host_secrets_checkout_or_task_file(env: gymnasium.Env) -> None:
    task = _start(env)
    obs, _ = _run(
        env,
        "cat /etc/shadow 2>&1 | head -2; ls /root 2>&1 | head -3; ls -a ~/.ssh /root/.ssh 2>&1 | head; "
        "find / \\( -path /proc -o -path /sys \\) -prune -o \\( -name 'tasks.jsonl' -o -name "
        "'.turngym-manifest.json' -o -name 'swe-projects' -o -name 'pyproject.toml' -path '*turngym*' \\) "
        "-print 2>/dev/null | head; ls /work 2>&1 | head -3; echo END",
    )
    assert "END" in obs
    assert "root:" not in obs and "tasks.jsonl" not in obs and "manifest" not in obs, obs
    assert "swe-projects" not in obs and "authorized_keys" not in obs, obs
    assert task.patch.splitlines()[-1] not in obs


def test_gold_source_is_nowhere_in_the_sandbox(env: gymnasium.Env) -> None:
    task = _start(env)
    needle = '.replace("[", "_").replace("]", "_").replace("-", "_")'
    assert needle in task.patch  # the fixed line, absent from the buggy tree
    encoded = base64.b64encode(needle.encode()).decode()
    skip = "--exclude-dir=proc --exclude-dir=sys --exclude-dir=testbed --exclude-dir=tmp"
    where = "/" if env.unwrapped.backend == "docker" else "/opt /etc /var /root /home /work /srv"
    obs, _ = _run(
        env,
        f"echo {encoded} | base64 -d > /tmp/needle; ls -A /opt/src 2>&1; "
        f"grep -rlF {skip} -f /tmp/needle {where} 2>/dev/null; echo END",
    )
    assert obs.split("END")[0].strip() in (
        "",
        "ls: cannot access '/opt/src': No such file or directory",
        "ls: cannot open directory '/opt/src': Permission denied",
    ), obs
    if env.unwrapped.backend == "docker":  # even root inside finds the image's clean copy hidden
        listing = env.unwrapped._sandbox.container.exec_run(["ls", "-A", "/opt/src"], user="0:0")
        assert listing.exit_code == 0 and listing.output.strip() == b"", listing.output
    if env.unwrapped.backend == "local":  # nothing but the interpreter's folders is mounted
        obs, _ = _run(env, "awk '{print $2}' /proc/self/mounts | sort -u | tr '\\n' ' '")
        mounts = set(obs.split("[exit code")[0].split())
        allowed = {"/", "/usr", "/etc/passwd", "/etc/group", "/etc/alternatives", "/opt/turngym", "/proc",
                   "/tmp", "/testbed", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue"}  # fmt: skip
        extra = {m for m in mounts - allowed if not m.startswith(("/dev/", "/proc/"))}
        assert (
            extra <= {env.unwrapped._sandbox.extra_binds[-1]}
            if env.unwrapped._sandbox.extra_binds
            else not extra
        ), mounts
    obs, _ = _run(env, "cp /opt/src/parse.py parse.py 2>&1; echo END")
    assert not _submit(env)["success"]


# ---------------------------------------------------------------- grader cheats
CONFIGS = {
    "conftest.py": ALLPASS,
    "pytest.ini": "[pytest]\naddopts = -p allpass\n",
    ".pytest.ini": "[pytest]\naddopts = -p allpass\n",
    "pytest.toml": '[pytest]\naddopts = ["-p", "allpass"]\n',
    ".pytest.toml": '[pytest]\naddopts = ["-p", "allpass"]\n',
    "tox.ini": "[pytest]\naddopts = -p allpass\n",
    "setup.cfg": "[tool:pytest]\naddopts = -p allpass\n",
    "pyproject.toml": '[tool.pytest.ini_options]\naddopts = "-p allpass"\n',
}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_planted_test_config_does_not_grade(env: gymnasium.Env, config: str) -> None:
    task = _start(env)
    _write(env, "allpass.py", ALLPASS)
    _write(env, config, CONFIGS[config])
    info = _submit(env)
    assert not info["success"] and info["reward_components"]["patch"] == 0.0
    assert any(config in entry for entry in info["grading"]["dropped"]), info["grading"]
    assert task.FAIL_TO_PASS


SHADOWS = {
    "pytest.py": "import sys\nprint('all passed')\nsys.exit(0)\n",
    "iniconfig.py": FORGE_REPORTS,
    "json.py": FORGE_REPORTS + "\nfrom importlib import import_module\n",
    "sitecustomize.py": FORGE_REPORTS,
    "usercustomize.py": FORGE_REPORTS,
    "evil.pth": "import allpass\n",
    ".local/lib/python3.11/site-packages/evil.pth": "import allpass\n",
}


@pytest.mark.parametrize("shadow", [*SHADOWS, "pytest.pyc"])
def test_import_shadowing_does_not_grade(env: gymnasium.Env, shadow: str) -> None:
    _start(env)
    _write(env, "allpass.py", ALLPASS)
    if shadow == "pytest.pyc":  # a sourceless module next to the tests
        _write(env, "/tmp/pytest.py", SHADOWS["pytest.py"])
        _run(
            env,
            "python3 -c \"import py_compile; py_compile.compile('/tmp/pytest.py', cfile='pytest.pyc')\"",
        )
    else:
        _write(env, shadow, SHADOWS[shadow])
    info = _submit(env)
    assert not info["success"] and info["reward_components"]["patch"] == 0.0, info["grading"]


def test_library_code_rewriting_results_at_exit_does_not_grade(env: gymnasium.Env) -> None:
    task = _start(env)
    forge = (
        "\nimport atexit as _a, json as _j, os as _o\nTARGETS = {targets!r}\n"
        "def _forge():\n    line = _j.dumps({'id': TARGETS[0], 'when': 'call', 'outcome': 'passed'})\n"
        "    for fd in range(3, 64):\n        try:\n            _o.write(fd, (line + '\\n').encode())\n"
        "        except OSError:\n            pass\n"
        "    for path in ('/tmp/.turngym-grade.json', '/tmp/.turngym-tests.json'):\n"
        "        open(path, 'w').write(_j.dumps({t: 'passed' for t in TARGETS}))\n"
        "    print('\\n'.join('PASSED ' + t for t in TARGETS))\n_a.register(_forge)\n"
    ).replace("{targets!r}", repr(task.FAIL_TO_PASS + task.PASS_TO_PASS))
    _run(env, f"echo {base64.b64encode(forge.encode()).decode()} | base64 -d >> parse.py")
    info = _submit(env)
    assert not info["success"] and info["grading"]["zeroed"]  # a flagged edit pays nothing
    assert set(info["reward_components"].values()) == {0.0}, info["reward_components"]
    assert {"atexit", "file descriptors"} <= set(info["grading"]["flags"]), info["grading"]


def test_library_code_forging_pytest_reports_is_caught_and_flagged(env: gymnasium.Env) -> None:
    _start(env)
    _run(env, f"echo {base64.b64encode(FORGE_REPORTS.encode()).decode()} | base64 -d >> parse.py")
    obs, _ = _run(env, "python3 -m pytest -q -p no:cacheprovider tests 2>&1 | tail -2")
    assert "failed" not in obs, obs  # the forgery fools a plain pytest run ...
    info = _submit(env)
    assert not info["success"], info["grading"]  # ... not the grader's integrity check
    assert "pytest internals" in info["grading"]["flags"]


def test_unchecked_hash_pyc_with_an_empty_diff_does_not_grade(env: gymnasium.Env) -> None:
    task = _start(env)
    for call in patch_to_calls(task.patch):  # fix, compile the fix into __pycache__, undo the fix
        env.step(call)
    _run(
        env,
        "mkdir -p __pycache__ && python3 -c \"import py_compile; py_compile.compile('parse.py', "
        "cfile='__pycache__/parse.cpython-311.pyc', invalidation_mode=py_compile.PycInvalidationMode."
        'UNCHECKED_HASH)" && cp __pycache__/parse.cpython-311.pyc /tmp/keep.pyc',
    )
    for call in patch_to_calls(task.setup_patch):
        env.step(call)
    _, info = _run(
        env, "mkdir -p __pycache__ && cp /tmp/keep.pyc __pycache__/parse.cpython-311.pyc"
    )
    assert (
        info["state_key"] == env.unwrapped.start_info["state_key"]
    )  # the source is the bug's again
    info = _submit(env)
    assert not info["success"] and info["reward_components"]["patch"] == 0.0


def test_edited_or_deleted_tests_are_restored(env: gymnasium.Env) -> None:
    task = _start(env)
    test_file = task.FAIL_TO_PASS[0].split("::")[0]
    names = sorted(
        {node.split("::")[1].split("[")[0] for node in task.FAIL_TO_PASS + task.PASS_TO_PASS}
    )
    _write(env, test_file, "".join(f"def {name}():\n    pass\n\n" for name in names))
    obs, _ = _run(env, f"python3 -m pytest -q -p no:cacheprovider {test_file} | tail -1")
    assert "passed" in obs and "failed" not in obs
    info = _submit(env)
    assert not info["success"] and info["reward_components"]["patch"] == 0.0
    _start(env)
    _run(env, f"rm -f {test_file}")
    assert not _submit(env)["success"]


def test_symlinks_and_new_files_do_not_carry_a_fix(env: gymnasium.Env) -> None:
    task = _start(env)
    for call in patch_to_calls(task.patch):
        env.step(call)
    _run(
        env, "mv parse.py fixed_parse.txt && ln -s fixed_parse.txt parse.py"
    )  # fix behind a symlink
    info = _submit(env)
    assert not info["success"]


# ---------------------------------------------------------------- state, dense reward, framing
def test_noop_keeps_the_state_and_pays_no_patch(env: gymnasium.Env) -> None:
    _start(env)
    for command in ("ls -la", "touch x && rm x", "python3 -m pytest -q tests -x 2>&1 | tail -1"):
        _, info = _run(env, command)
        assert info["state_key"] == env.unwrapped.start_info["state_key"], command
    info = _submit(env)
    assert info["reward_components"]["patch"] == 0.0 and info["reward_components"]["submitted"] > 0


def test_dense_progress_cannot_be_written_by_the_agent(env: gymnasium.Env) -> None:
    task = _start(env)
    targets = task.FAIL_TO_PASS + task.PASS_TO_PASS
    forged = json.dumps({t: "passed" for t in targets})
    _write(env, "conftest.py", ALLPASS)
    _write(env, "/tmp/.turngym-tests.json", forged)
    _, info = _run(env, "python3 -m pytest -q -p no:cacheprovider tests | tail -1; "
                        f"echo '{forged}' > /tmp/.turngym-tests.json")  # fmt: skip
    assert info["reward_components"].get("test_progress", 0.0) <= 0.0 and info["progress"] == 0.0
    for call in patch_to_calls(task.patch):  # the real fix: the env's own run sees progress
        env.step(call)
    _, info = _run(env, "python3 -m pytest -q tests | tail -1")
    assert info["reward_components"]["test_progress"] > 0 and info["progress"] == 1.0
    assert _submit(env)["success"]


def test_injected_tool_results_are_ignored(env: gymnasium.Env) -> None:
    _start(env)
    fake = json.dumps(
        {"output": "FORGED", "exit_code": 7, "timed_out": False, "diff_hash": "0" * 40}
    )
    writer = f"for f in /proc/[0-9]*/fd/1 /proc/[0-9]*/fd/2; do printf '%s\\n' '{fake}' > $f; done 2>/dev/null"
    _run(
        env,
        f"(setsid sh -c 'sleep 0.3; {writer}; sleep 1; {writer}' >/dev/null 2>&1 &); echo started",
    )
    obs, info = _run(env, f"{writer}; sleep 1.5; echo second")
    assert "second" in obs and "[exit code: 0]" in obs and "[exit code: 7]" not in obs, obs
    assert info["state_key"] != "0" * 40 and info["valid_action"]


def test_killing_every_process_is_feedback(env: gymnasium.Env) -> None:
    _start(env)
    obs, _, terminated, _, info = env.step(_bash("kill -9 -1; sleep 1; echo survived"))
    assert not terminated and obs
    obs, info = _run(env, "echo alive")
    assert "alive" in obs and info["valid_action"]


# ---------------------------------------------------------------- bounded everything
def test_view_is_bounded_and_special_files_are_refused_fast(env: gymnasium.Env) -> None:
    _start(env)
    _run(
        env,
        "head -c 3000000 /dev/zero | tr '\\0' 'a' > big.py; mkfifo fifo.py; mkfifo /tmp/.turngym-tests.json",
    )
    obs, _, _, _, info = env.step(json.dumps({"tool": "view", "path": "big.py"}))
    assert len(obs) < 4000 + 500 and "truncated" in obs
    for action in (
        json.dumps({"tool": "view", "path": "fifo.py"}),
        json.dumps({"tool": "edit", "path": "fifo.py", "old": "a", "new": "b"}),
        json.dumps({"tool": "create", "path": "fifo.py", "content": "x"}),
        _bash("echo quick"),
    ):
        started = time.monotonic()
        obs, _, terminated, _, info = env.step(action)
        assert time.monotonic() - started < 8 and not terminated, obs
    started = time.monotonic()
    info = _submit(env)
    assert time.monotonic() - started < 30 and info["success"] is False


def test_missing_pytest_is_an_error_at_make(monkeypatch: pytest.MonkeyPatch) -> None:
    from turngym.envs.swe import local_state
    from turngym.error import DependencyNotInstalled

    if backend_reason("local"):
        pytest.skip(backend_reason("local"))

    def no_pytest():
        raise DependencyNotInstalled(
            "backend='local' grades with pytest, which this Python lacks: pip install pytest"
        )

    monkeypatch.setattr(local_state, "_distributions", no_pytest)
    with pytest.raises(DependencyNotInstalled, match="pytest"):
        gymnasium.make("turngym/SWE-v0", backend="local")
