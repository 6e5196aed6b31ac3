"""EnvPool: kept workers, dead and hung workers, clean closing, policy failures on a kept pool."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

import turngym
from helpers.pool_envs import faulty_corridor
from turngym.error import InvalidArgumentError, PolicyError, TurnGymError
from turngym.pool import EnvCommandError, EnvPool

ENV = "turngym/Corridor-v0"


def deterministic(batch):
    """A policy whose answer depends only on the conversation (east twice, then west, ...)."""
    return ["go west" if len(c.messages) % 6 == 0 else "go east" for c in batch]


def _gone(pid: int) -> bool:
    """True when ``pid`` no longer exists or is not a zombie waiting to be reaped."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                time.sleep(0.05)
                continue
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return not psutil.pid_exists(pid)


def test_kept_pool_keeps_its_workers_and_matches_fresh_runs():
    fresh = turngym.rollout(
        ENV, deterministic, num_episodes=8, group_size=2, num_envs=2, progress=False
    )
    with EnvPool(ENV, num_envs=2) as pool:
        pids = pool.pids
        assert len(set(pids)) == 2 and os.getpid() not in pids
        runs = [
            turngym.rollout(
                ENV, deterministic, num_episodes=8, group_size=2, pool=pool, progress=False
            )
            for _ in range(3)
        ]
        assert pool.pids == pids
    assert all([t.to_dict() for t in run] == [t.to_dict() for t in fresh] for run in runs)
    assert pool.closed and all(_gone(pid) for pid in pids)


def test_many_envs_per_worker_and_in_process_envs_batch_together():
    batches = []

    def policy(batch):
        batches.append(len(batch))
        return deterministic(batch)

    with EnvPool(ENV, num_envs=6, workers=2) as pool:
        assert len(pool.pids) == 2
        shared = turngym.rollout(
            ENV, policy, num_episodes=12, group_size=3, pool=pool, progress=False
        )
    assert batches[0] == 6
    batches.clear()
    local = turngym.rollout(
        ENV, policy, num_episodes=12, group_size=3, num_envs=6, workers=0, progress=False
    )
    assert batches[0] == 6  # six episodes live in this process, one policy call for all of them
    assert [t.to_dict() for t in local] == [t.to_dict() for t in shared]


@pytest.mark.parametrize("mode", ["lockstep", "async"])
def test_sigkilled_worker_episode_is_retried_and_run_completes(mode, capfd):
    reference = turngym.rollout(ENV, deterministic, num_episodes=6, num_envs=1, progress=False)
    with EnvPool(ENV, num_envs=3, workers=3) as pool:
        before = pool.pids
        calls = 0

        def killer(batch):
            nonlocal calls
            calls += 1
            if calls == 2:
                os.kill(before[1], 9)
                time.sleep(0.3)  # the death is seen while the step is pending or before it
            return deterministic(batch)

        trajectories = turngym.rollout(
            ENV, killer, num_episodes=6, pool=pool, mode=mode, progress=False
        )
        after = pool.pids
        # the pool replaced the worker and stays usable
        assert after[0] == before[0] and after[2] == before[2] and after[1] != before[1]
        again = turngym.rollout(ENV, deterministic, num_episodes=6, pool=pool, progress=False)
    assert _gone(before[1])
    retried = [t for t in trajectories if "retried" in t.metadata]
    assert len(retried) == 1 and "killed by SIGKILL" in retried[0].metadata["retried"]
    # the retried episode restarted from reset: same trajectory as an undisturbed run
    assert [t.turns for t in trajectories] == [t.turns for t in reference]
    assert [t.to_dict() for t in again] == [t.to_dict() for t in reference]
    err = capfd.readouterr().err
    assert "turngym/Corridor-v0 episode" in err and "task 'L" in err and "retrying it once" in err


def test_episode_that_kills_its_worker_twice_is_recorded_failed(capfd):
    trajectories = turngym.rollout(
        faulty_corridor,
        deterministic,
        num_episodes=4,
        num_envs=2,
        progress=False,
        env_kwargs={"bad_seed": 2, "fault": "kill"},
    )
    failed = [t for t in trajectories if "failed" in t.metadata]
    assert [t.seed for t in failed] == [2]
    assert failed[0].success is False and failed[0].outcome == 0.0 and len(failed[0].turns) == 1
    assert all(t.success is not None for t in trajectories)
    assert "recorded as failed" in capfd.readouterr().err


def test_hung_worker_is_killed_after_step_timeout():
    started = time.monotonic()
    trajectories = turngym.rollout(
        faulty_corridor,
        deterministic,
        num_episodes=3,
        num_envs=3,
        progress=False,
        env_kwargs={"bad_seed": 1, "fault": "hang"},
        step_timeout=1.0,
        mode="async",
    )
    assert time.monotonic() - started < 30
    assert "did not answer within step_timeout" in trajectories[1].metadata["failed"]
    assert trajectories[0].success is not None and "failed" not in trajectories[2].metadata


def test_env_exception_raises_with_finished_trajectories_and_pool_survives():
    with EnvPool(faulty_corridor, 2, {"bad_seed": 3, "fault": "raise"}) as pool:
        pids = pool.pids
        with pytest.raises(EnvCommandError, match="the faulty corridor broke") as caught:
            turngym.rollout(
                faulty_corridor, deterministic, num_episodes=8, pool=pool, progress=False
            )
        assert [t.seed for t in caught.value.trajectories] == [0, 1, 2][
            : len(caught.value.trajectories)
        ]
        assert len(caught.value.trajectories) >= 2
        ok = turngym.rollout(
            faulty_corridor, deterministic, num_episodes=2, pool=pool, progress=False
        )
        assert len(ok) == 2 and pool.pids == pids


@pytest.mark.parametrize("mode", ["lockstep", "async"])
def test_policy_failures_name_the_episode_and_keep_the_pool(mode):
    def wrong_count(batch):
        return ["go east"]

    def raises(batch):
        raise ValueError("model exploded")

    def slow(batch):
        time.sleep(2)
        return deterministic(batch)

    with EnvPool(ENV, num_envs=2) as pool:
        pids = pool.pids
        kw = dict(num_episodes=4, pool=pool, mode=mode, progress=False)
        with pytest.raises(PolicyError, match=r"exactly one action.*episode 0 \(turngym/Corridor"):
            turngym.rollout(ENV, wrong_count, **kw)
        with pytest.raises(PolicyError, match=r"raised ValueError: model exploded.*task 'L"):
            turngym.rollout(ENV, raises, **kw)
        started = time.monotonic()
        with pytest.raises(PolicyError, match="policy_timeout=0.3"):
            turngym.rollout(ENV, slow, policy_timeout=0.3, **kw)
        assert time.monotonic() - started < 1.5
        assert len(turngym.rollout(ENV, deterministic, **kw)) == 4 and pool.pids == pids


def test_async_policy_protocol_and_lockstep_equivalence():
    class AsyncPolicy:
        max_in_flight = in_flight = 0

        async def act(self, batch):
            import asyncio

            AsyncPolicy.in_flight += 1
            AsyncPolicy.max_in_flight = max(AsyncPolicy.max_in_flight, AsyncPolicy.in_flight)
            await asyncio.sleep(0.001)
            AsyncPolicy.in_flight -= 1
            return deterministic(batch)

    kw = dict(num_episodes=12, group_size=2, num_envs=4, progress=False)
    lockstep = turngym.rollout(ENV, deterministic, **kw)
    awaited = turngym.rollout(
        ENV, AsyncPolicy(), mode="async", batch_size=1, policy_concurrency=2, **kw
    )
    assert [t.to_dict() for t in awaited] == [t.to_dict() for t in lockstep]
    assert AsyncPolicy.max_in_flight == 2
    # an async policy also works in lock-step mode
    assert [t.to_dict() for t in turngym.rollout(ENV, AsyncPolicy(), **kw)] == [
        t.to_dict() for t in lockstep
    ]


def test_pool_closes_on_exceptions_and_at_interpreter_exit(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with EnvPool(ENV, num_envs=2) as pool:
            pids = pool.pids
            raise RuntimeError("boom")
    assert pool.closed and all(_gone(pid) for pid in pids)
    with pytest.raises(TurnGymError, match="closed"):
        pool.submit(0, "reset", {"seed": 0})
    script = tmp_path / "leak.py"
    script.write_text(
        textwrap.dedent(
            """
        import turngym
        if __name__ == "__main__":
            pool = turngym.EnvPool("turngym/Corridor-v0", num_envs=2)  # never closed
            print(*pool.pids, flush=True)
        """
        )
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert all(_gone(int(pid)) for pid in result.stdout.split())


def test_unguarded_script_gets_a_clear_error(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text('import turngym\npool = turngym.EnvPool("turngym/Corridor-v0", num_envs=2)\n')
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert 'if __name__ == "__main__"' in result.stderr


def test_bad_pool_arguments(monkeypatch):
    with pytest.raises(InvalidArgumentError, match="'process' for local worker processes or 'ray'"):
        EnvPool(ENV, 2, executor="threads")
    with pytest.raises(InvalidArgumentError, match="num_envs"):
        EnvPool(ENV, 0)
    with pytest.raises(InvalidArgumentError, match="unknown env id"):
        EnvPool("turngym/Missing-v0", 2)  # before any worker starts
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(ImportError, match=r"turngym\[ray\]"):
        EnvPool(ENV, 2, executor="ray")
    with EnvPool(ENV, 2, workers=0) as pool:
        with pytest.raises(InvalidArgumentError, match="exceeds the pool's 2 envs"):
            turngym.rollout(
                ENV, deterministic, num_episodes=2, num_envs=3, pool=pool, progress=False
            )
        with pytest.raises(InvalidArgumentError, match="pool runs"):
            turngym.rollout("turngym/TextWorld-Easy-v0", deterministic, num_episodes=2, pool=pool)
        with pytest.raises(InvalidArgumentError, match="mode="):
            turngym.rollout(ENV, deterministic, num_episodes=2, pool=pool, mode="fast")
