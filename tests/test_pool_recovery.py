"""Worker replacement on a loaded machine (issue 24): a replacement's start-up is timed against
``start_timeout`` and its retried episode's ``step_timeout`` starts once it serves; a circuit
breaker reports workers that cannot start; ``max_episodes_per_worker`` and the memory ceiling
``max_worker_growth_mib`` recycle workers between episodes without changing a trajectory; a
worker gives freed memory back when an episode ends."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import turngym
from helpers.slow_envs import (
    exit_hook_corridor,
    flagged_build_corridor,
    fragmenting_corridor,
    leaky_corridor,
)
from turngym.pool import EnvPool, WorkersCannotStart
from turngym.pool_recycle import release_free_memory

ENV = "turngym/Corridor-v0"


def deterministic(batch):
    return ["go west" if len(c.messages) % 6 == 0 else "go east" for c in batch]


def _killer(pool: EnvPool, at_call: int = 2):
    calls = 0

    def policy(batch):
        nonlocal calls
        calls += 1
        if calls == at_call:
            os.kill(pool.pids[1], 9)
            time.sleep(0.3)
        return deterministic(batch)

    return policy


@pytest.mark.parametrize("mode", ["lockstep", "async"])
def test_replacement_slower_than_step_timeout_serves_its_retried_episode(tmp_path, mode, capfd):
    flag = tmp_path / "slow"
    kwargs = {"flag": str(flag), "build_s": 3.0}
    reference = turngym.rollout(ENV, deterministic, num_episodes=6, num_envs=1, progress=False)
    with EnvPool(flagged_build_corridor, 2, kwargs, step_timeout=1.5) as pool:
        flag.touch()  # from now on a worker needs 3 s to build, twice the step timeout
        trajectories = turngym.rollout(
            flagged_build_corridor, _killer(pool), num_episodes=6, pool=pool, mode=mode,
            progress=False,
        )  # fmt: skip
        assert pool.restarts == 1
    assert not [t.metadata["failed"] for t in trajectories if "failed" in t.metadata]
    assert len([t for t in trajectories if "retried" in t.metadata]) == 1
    assert [t.turns for t in trajectories] == [t.turns for t in reference]
    assert "during start-up" not in capfd.readouterr().err


def test_a_replacement_past_start_timeout_is_named_and_the_breaker_trips(tmp_path):
    flag = tmp_path / "slow"
    kwargs = {"flag": str(flag), "build_s": 60.0}
    with EnvPool(flagged_build_corridor, 2, kwargs, start_timeout=5.0, max_restarts=50) as pool:
        flag.touch()
        started = time.monotonic()
        with pytest.raises(WorkersCannotStart) as caught:
            turngym.rollout(
                flagged_build_corridor, _killer(pool), num_episodes=8, pool=pool, progress=False
            )
        message = str(caught.value)
        assert "did not finish building its envs within start_timeout=5.0 s" in message
        assert "3 env workers" in message and "in a row" in message
        assert '__name__ == "__main__"' not in message  # not the re-import hint: a slow build
        assert pool.restarts <= 3 and time.monotonic() - started < 90
        assert len(caught.value.trajectories) >= 1  # the finished ones come with the error
        with pytest.raises(WorkersCannotStart):
            pool.submit(1, "reset", {"seed": 0}).result(timeout=5)


def test_an_env_that_cannot_be_built_trips_the_breaker_with_its_error(tmp_path):
    flag = tmp_path / "broken"
    kwargs = {"flag": str(flag), "fail": True}
    with EnvPool(flagged_build_corridor, 2, kwargs, max_restarts=100) as pool:
        flag.touch()
        with pytest.raises(WorkersCannotStart, match="this corridor cannot be built"):
            turngym.rollout(
                flagged_build_corridor, _killer(pool), num_episodes=8, pool=pool, progress=False
            )
        assert pool.restarts < 5  # not 100 restarts burnt


@pytest.mark.parametrize(("mode", "workers"), [("lockstep", 2), ("async", 2), ("lockstep", 1)])
def test_recycled_workers_give_the_same_trajectories(mode, workers):
    reference = turngym.rollout(ENV, deterministic, num_episodes=12, group_size=2, num_envs=1)
    with EnvPool(ENV, 3, workers=workers, max_episodes_per_worker=2) as pool:
        first = pool.pids
        runs = [
            turngym.rollout(ENV, deterministic, num_episodes=12, group_size=2, pool=pool, mode=mode)
            for _ in range(2)
        ]
        # One env per worker: recycled at resets. Three envs on one worker: only when all three
        # are between episodes, i.e. between the rollout calls here (see pool_process's doc).
        assert pool.recycled >= (4 if workers > 1 else 1) and pool.restarts == 0
        assert not set(pool.pids) & set(first)
    for run in runs:
        assert [t.turns for t in run] == [t.turns for t in reference]
        assert not [t for t in run if "retried" in t.metadata or "failed" in t.metadata]


def test_max_episodes_per_worker_is_checked():
    with pytest.raises(turngym.error.InvalidArgumentError, match="positive int"):
        EnvPool(ENV, 2, max_episodes_per_worker=0)
    with pytest.raises(turngym.error.InvalidArgumentError, match="executor='process'"):
        EnvPool(ENV, 2, workers=0, max_episodes_per_worker=5)


def test_a_leaking_worker_is_recycled_at_the_memory_ceiling():
    """1 MiB kept per reset, a 25 MiB ceiling: the worker is replaced every ~26 episodes, so it
    never holds much more than the ceiling, and the trajectories are those of a kept env."""
    from turngym.pool_recycle import resident_bytes

    reference = turngym.rollout(
        leaky_corridor, deterministic, num_episodes=90, env_kwargs={"leak_mib": 0}, progress=False
    )  # in this process, leaking nothing
    with EnvPool(leaky_corridor, 1, workers=1, max_worker_growth_mib=25) as pool:
        start = resident_bytes(pool.pids[0])
        run = turngym.rollout(
            leaky_corridor, deterministic, num_episodes=90, pool=pool, progress=False
        )
        assert pool.recycled >= 2 and pool.restarts == 0
        assert resident_bytes(pool.pids[0]) < start + 40 * 2**20
    assert [t.turns for t in run] == [t.turns for t in reference]
    with EnvPool(leaky_corridor, 1, workers=1, max_worker_growth_mib=None) as pool:
        turngym.rollout(leaky_corridor, deterministic, num_episodes=90, pool=pool)
        assert pool.recycled == 0  # the ceiling, not chance, recycled them above


def test_an_env_that_needs_the_memory_is_warned_about_not_restarted():
    """A worker past the ceiling within its first episodes is an env that needs it: one warning,
    then no more recycling by memory (never a restart at every reset)."""
    with EnvPool(leaky_corridor, 1, {"leak_mib": 8}, workers=1, max_worker_growth_mib=20) as pool:
        with pytest.warns(RuntimeWarning, match="not a leak.*raise max_worker_growth_mib"):
            turngym.rollout(leaky_corridor, deterministic, num_episodes=30, pool=pool)
        assert pool.recycled == 0


def test_the_memory_ceiling_is_on_by_default_and_checked():
    with EnvPool(ENV, 1) as pool:
        assert pool.max_worker_growth_mib == turngym.pool.MAX_WORKER_GROWTH_MIB == 2048
    for bad in (0, -1, "1G", True):
        with pytest.raises(turngym.error.InvalidArgumentError, match="max_worker_growth_mib"):
            EnvPool(ENV, 1, max_worker_growth_mib=bad)


def _rss_after_one_episode(monkeypatch, release: str) -> float:
    from turngym.pool_recycle import resident_bytes

    monkeypatch.setenv("TURNGYM_RELEASE_MEMORY", release)  # spawn: the worker reads this one
    with EnvPool(fragmenting_corridor, 1, workers=1, mp_context="spawn") as pool:
        turngym.rollout(
            fragmenting_corridor, deterministic, num_episodes=1, pool=pool, progress=False
        )
        time.sleep(0.5)  # the worker releases after its reply
        return resident_bytes(pool.pids[0]) / 2**20


@pytest.mark.skipif(not release_free_memory(), reason="needs glibc")
def test_a_worker_gives_freed_memory_back_when_an_episode_ends(monkeypatch):
    """A reset that frees 62 of the 64 MiB it allocated leaves holes in the worker's heap: kept
    (RSS stays up) unless the worker trims when the episode ends."""
    kept = _rss_after_one_episode(monkeypatch, "0")
    released = _rss_after_one_episode(monkeypatch, "1")
    assert kept - released > 40, (kept, released)


PARENT_DIES = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
from helpers.slow_envs import sleepy_corridor
from turngym.pool import EnvPool

if __name__ == "__main__":
    pool = EnvPool(sleepy_corridor, 1, {"step_s": 1.5}, workers=1)
    pool.submit(0, "reset", {"seed": 0}).result()
    pool.submit(0, "step", "go east")
    time.sleep(0.5)
    os._exit(0)  # mid-command, no clean-up: the worker answers a closed pipe
"""


def test_a_worker_whose_parent_died_mid_command_exits_quietly():
    """Its answer has nowhere to go: the worker exits, with no BrokenPipeError traceback."""
    tests = os.path.dirname(os.path.abspath(__file__))
    done = subprocess.run(
        [sys.executable, "-c", PARENT_DIES, tests], capture_output=True, text=True, timeout=120
    )  # waits for the worker too: it holds the same stderr
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_a_closed_pool_s_workers_run_their_exit_hooks(tmp_path):
    """A worker ends through os._exit (multiprocessing): its exit hooks (SWE's site folder, docker
    removals in flight) run anyway when the pool closes it."""
    flag = tmp_path / "exited"
    with EnvPool(exit_hook_corridor, 1, {"flag": str(flag)}, workers=1) as pool:
        first = pool.pids[0]
        turngym.rollout(exit_hook_corridor, deterministic, num_episodes=1, pool=pool,
                        env_kwargs={"flag": str(flag)}, progress=False)  # fmt: skip
        assert not flag.exists()
    assert flag.read_text() == str(first)


FORKED = """
import atexit, os, sys
sys.path.insert(0, sys.argv[1])
from turngym.envs.toy.corridor import CorridorEnv
from turngym.pool import EnvPool
import turngym

def note():
    with open(sys.argv[2], "a") as handle:
        handle.write(f"{os.getpid()}\\n")

if __name__ == "__main__":
    atexit.register(note)  # the parent's hook: a forked worker inherits it
    with EnvPool("turngym/Corridor-v0", 1, workers=1, mp_context="fork") as pool:
        turngym.rollout("turngym/Corridor-v0", lambda b: ["go east"] * len(b), num_episodes=1,
                        pool=pool, progress=False)
    os._exit(0)  # the parent's own exit skips it: only a worker could have run it
"""


def test_a_forked_worker_does_not_run_its_parent_s_exit_hooks(tmp_path):
    """They are the parent's (its sandboxes' finalizers, close_all): a fork worker skips them."""
    tests = os.path.dirname(os.path.abspath(__file__))
    notes = tmp_path / "notes"
    done = subprocess.run([sys.executable, "-c", FORKED, tests, str(notes)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not notes.exists(), notes.read_text()


USER_SCRIPT = """
import atexit, os, sys
import turngym
from turngym.pool import EnvPool

def note():
    with open(sys.argv[1], "a") as handle:
        handle.write(f"{os.getpid()}\\n")

atexit.register(note)  # top level: the forkserver imports this script, its workers inherit it

if __name__ == "__main__":
    with EnvPool("turngym/Corridor-v0", 1, workers=1, mp_context="forkserver") as pool:
        turngym.rollout("turngym/Corridor-v0", lambda b: ["go east"] * len(b), num_episodes=1,
                        pool=pool, progress=False)
    os._exit(0)
"""


def test_a_worker_runs_turngym_s_exit_hooks_not_the_user_s(tmp_path):
    """A user's hook (writing results, say) that a forkserver worker inherits (the forkserver
    imports the script) stays unrun there: only turngym's clean-ups run when a worker ends.
    (A spawn worker ends through sys.exit, so Python runs all its hooks, as it always did.)"""
    script, notes = tmp_path / "user_script.py", tmp_path / "notes"
    script.write_text(USER_SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(notes)], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not notes.exists(), notes.read_text()
