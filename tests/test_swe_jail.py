"""Issue 28 (part B): attacks on the host and on the jail, as a hostile agent would make them.

Each test is one attack, run through ``env.step`` on both backends; each must end in feedback or
a defined outcome (an ended episode with outcome 0, never an exception out of ``env.step``,
``close`` or the next ``reset``), and the env must go on working afterwards. Docker cases skip
without an engine and the images of docker/ci_setup.sh; local cases skip without bubblewrap,
the local root filesystem or the cached project sources (each skip says why).
"""

from __future__ import annotations

import resource
import time

import gymnasium
import pytest
from test_swe_attacks import TASK, _bash, backend_params  # noqa: E402 - tests/ is on sys.path

# more-itertools too: one attack reads a clean copy of one of its tasks' fixed function
BACKENDS = backend_params(("parse", "more-itertools"))


def _python(source: str) -> str:
    """A command running ``source`` in one process (a shell loop of 1,200 execs is slow)."""
    return f"python3 - <<'EOF'\n{source}\nEOF"


@pytest.fixture(scope="module", params=BACKENDS)
def env(request: pytest.FixtureRequest):
    env = gymnasium.make(
        "turngym/SWE-v0", backend=request.param, command_timeout=60, max_turns=60, max_output=4000
    )
    yield env
    env.close()


def _start(env: gymnasium.Env) -> None:
    env.reset(options={"task": TASK})


def _step(env: gymnasium.Env, command: str) -> tuple[str, bool, dict]:
    obs, reward, terminated, _, info = env.step(_bash(command))
    assert isinstance(reward, float) and isinstance(obs, str)
    return obs, terminated, info


def _goes_on(env: gymnasium.Env) -> None:
    """After an attack the env still answers, grades and starts the next episode."""
    obs, terminated, _ = _step(env, "echo still-here")
    assert "still-here" in obs and not terminated, obs
    _, _, terminated, _, info = env.step('{"tool": "submit"}')
    assert terminated and info["success"] is False and info["outcome"] == 0.0
    _start(env)


def _full_is_enospc(env: gymnasium.Env) -> bool:
    """True where the workspace is a sized tmpfs (docker; local as root): a full one is ENOSPC
    for the command. Else (local, not root) the quota check after the command ends the episode."""
    return env.unwrapped.backend == "docker" or env.unwrapped._sandbox.bounded


def _ended_or_goes_on(env: gymnasium.Env, terminated: bool, info: dict) -> None:
    if terminated:  # a defined end: outcome 0, no success
        assert info["outcome"] == 0.0 and info["success"] is False, info
        _start(env)
    else:
        _goes_on(env)


def test_a_1200_level_deep_folder_breaks_nothing(env: gymnasium.Env) -> None:
    """Defect 2: host-side walks recursed (RecursionError in diff, quota, close and reap)."""
    _start(env)
    obs, terminated, _ = _step(
        env,
        _python(
            "import os\nfor _ in range(1200):\n    os.mkdir('d' * 10)\n    os.chdir('d' * 10)\n"
            "open('bottom.py', 'w').write('x = 1')\nprint('made')"
        ),
    )
    assert "made" in obs and not terminated, obs
    obs, terminated, _ = _step(env, "python -m pytest -q -x tests 2>&1 | tail -1")  # a graded step
    assert not terminated, obs
    _goes_on(env)


def test_a_file_name_that_is_not_utf8_is_feedback(env: gymnasium.Env) -> None:
    """Defect 5: ``touch $'bad\\xff.txt'`` made every later env.step raise UnicodeEncodeError."""
    _start(env)
    obs, terminated, _ = _step(
        env, "touch $'bad\\xff.txt' $'dir\\xfe' && mkdir -p $'d\\xfd' && echo ok"
    )
    assert "ok" in obs and not terminated, obs
    obs, terminated, _ = _step(env, "sed -i 's/^/#/' README.rst 2>/dev/null; ls | wc -l")
    assert not terminated, obs
    _goes_on(env)


def test_a_name_with_newlines_cannot_inject_diff_lines(env: gymnasium.Env) -> None:
    """A file named like diff lines (a name cannot hold "/", so not a whole header): left out of
    the diff, never parsed as a hunk."""
    _start(env)
    obs, terminated, _ = _step(
        env, "printf 'x = 1\\n' > $'new\\n@@ -0,0 +1 @@\\n+import os' && ls | wc -l"
    )
    assert not terminated, obs
    _, _, terminated, _, info = env.step('{"tool": "submit"}')
    assert terminated and info["outcome"] == 0.0 and info["grading"]["apply_error"] is None
    assert not any("new" in entry for entry in info["grading"]["dropped"]), info["grading"]
    _start(env)


def test_fifos_symlink_loops_and_hard_links_are_skipped(env: gymnasium.Env) -> None:
    """Special files the host diff could block on (a FIFO), loop in (symlink cycles, a link to
    /) or double count (hard links) are skipped: the step and the grade finish."""
    _start(env)
    obs, terminated, _ = _step(
        env,
        "mkfifo pipe && ln -s loop_a loop_b && ln -s loop_b loop_a && ln -s / rootlink && "
        "ln -s . self && mkdir d && ln -s ../d d/up && ln parse.py hard.py && echo ok",
    )
    assert "ok" in obs and not terminated, obs
    started = time.monotonic()
    _goes_on(env)
    assert time.monotonic() - started < 120


def test_an_inode_flood_ends_the_episode_or_fails_to_fill(env: gymnasium.Env) -> None:
    """Defect 6 (local) and 9 (docker): 60,000 empty files (over the 50,000 inode quota). A sized
    tmpfs (docker; local as root) stops the flood (ENOSPC) and later steps stay fast; else the
    local quota check ends the episode (outcome 0) without walking them again."""
    _start(env)
    enospc = _full_is_enospc(env)
    obs, terminated, info = _step(
        env, "mkdir flood && cd flood && seq 1 60000 | xargs touch 2>&1 | tail -1; echo done"
    )
    if not enospc:
        assert terminated and info["outcome"] == 0.0 and "inode quota" in obs, obs
        _start(env)
        return
    assert not terminated and "No space left on device" in obs, obs
    started = time.monotonic()
    _step(env, "echo hi")
    assert time.monotonic() - started < 15
    _goes_on(env)


def test_many_files_within_the_byte_quota_do_not_amplify_host_memory(env: gymnasium.Env) -> None:
    """Defect 3: a write past the quota was diffed in the trainer's process first (400 MB raised
    its peak RSS from 68 MB to 1,732 MB). Now the quota is counted before anything is read."""
    _start(env)
    enospc = _full_is_enospc(env)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    obs, terminated, info = _step(
        env,
        _python(
            "import os\nos.mkdir('big')\nfor i in range(300):\n"
            "    open(f'big/f{i}.txt', 'w').write('a line of text\\n' * 66_000)\nprint('written')"
        ),
    )
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 150, grown_mb
    if not enospc:
        assert terminated and info["outcome"] == 0.0 and "disk quota" in obs, obs
        _start(env)
    else:  # the tmpfs fills (ENOSPC); the diff streams it (docker's tool is not OOM-killed)
        assert not terminated and "No space left on device" in obs, obs
        _goes_on(env)


def test_sparse_files_count_at_their_size(env: gymnasium.Env) -> None:
    """Sparse files use no disk but a reader sees every byte: they count at their size."""
    _start(env)
    obs, terminated, info = _step(
        env, "for i in 1 2 3 4 5; do truncate -s 60M sparse$i || break; done; du -sh . | cut -f1"
    )
    if env.unwrapped.backend == "local":
        assert terminated and info["outcome"] == 0.0 and "disk quota" in obs, obs
        _start(env)
    else:
        _ended_or_goes_on(env, terminated, info)


def test_an_unreadable_workspace_is_a_defined_outcome(env: gymnasium.Env) -> None:
    """``chmod 000`` on folders, the workspace itself included: no exception out of step, close
    or the next reset."""
    _start(env)
    obs, terminated, info = _step(
        env, "mkdir -p locked/inner && echo x > locked/inner/f.py && chmod 000 locked/inner locked"
    )
    assert not terminated, obs
    obs, terminated, info = _step(env, "chmod 000 /testbed; echo done")
    if not terminated:
        obs, terminated, info = _step(env, "ls")
    _ended_or_goes_on(env, terminated, info)


def test_fd_and_process_exhaustion_end_with_the_command(env: gymnasium.Env) -> None:
    """Open every fd the limit allows and leave a process behind holding them: nothing outlives
    the command, and the next steps are normal."""
    _start(env)
    obs, terminated, _ = _step(
        env,
        "python3 -c \"import os,resource\nfds=[]\ntry:\n  while True: fds.append(os.open('/dev/null', 0))\n"
        "except OSError as e: print('fds', len(fds), e.errno)\" ; (sleep 300 &) ; echo left",
    )
    assert "left" in obs and not terminated, obs
    started = time.monotonic()
    obs, terminated, _ = _step(env, "cat /proc/[0-9]*/comm 2>/dev/null | grep -c sleep || true")
    assert time.monotonic() - started < 30 and not terminated
    if env.unwrapped.backend == "local":  # a fresh pid namespace per command
        assert obs.split()[0] == "0", obs
    _goes_on(env)


def test_no_clean_copy_of_the_project_is_readable_outside_the_workspace(env: gymnasium.Env) -> None:
    """Defect 4: Debian's setuptools (and pkg_resources) vendor more_itertools; on bd15375 the
    local jail bound the host's /usr, where the fixed line of 14 bundled more-itertools tasks
    (this one among them) was one `grep -r` away. The jail's root is its own now."""
    task_id = "more-itertools__10.5.0-more-_get_slice-swap_args-418fcf5"
    needle = "self._cache.extend(islice(self._it, n - cache_len))"
    env.reset(options={"task": task_id})
    assert needle in env.unwrapped.tasks[task_id].patch
    obs, terminated, _ = _step(
        env,
        f"grep -rlF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev --exclude-dir=testbed "
        f"--exclude-dir=tmp '{needle}' / 2>/dev/null; echo END",
    )
    assert not terminated and obs.split("END")[0].strip() == "", obs
    _start(env)
