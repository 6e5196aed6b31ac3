"""EnvPool with executor="ray": the same trajectories as local workers, kept actors, a killed
actor replaced (local ``ray.init(num_cpus=2)``)."""

from __future__ import annotations

import pytest

import turngym
from turngym.pool import EnvPool

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")

ENV = "turngym/Corridor-v0"
pytestmark = pytest.mark.slow  # ~20 s with the local Ray start on 2 cores


def deterministic(batch):
    return ["go west" if len(c.messages) % 6 == 0 else "go east" for c in batch]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_pool_matches_local_pool_and_survives_a_killed_actor(local_ray):
    kw = dict(num_episodes=8, group_size=2, progress=False)
    with EnvPool(ENV, num_envs=4, workers=2) as pool:
        local = turngym.rollout(ENV, deterministic, pool=pool, **kw)
    with EnvPool(ENV, num_envs=4, workers=2, executor="ray", ray_options={"num_cpus": 0.5}) as pool:
        pids = pool.pids
        assert len(set(pids)) == 2
        first = turngym.rollout(ENV, deterministic, pool=pool, **kw)
        second = turngym.rollout(ENV, deterministic, pool=pool, mode="async", **kw)
        assert pool.pids == pids  # the actors are kept across calls
        calls = 0

        def killer(batch):
            nonlocal calls
            calls += 1
            if calls == 2:
                ray.kill(pool._backend.actors[0], no_restart=True)
            return deterministic(batch)

        third = turngym.rollout(ENV, killer, pool=pool, **kw)
        assert pool.pids[1] == pids[1] and pool.pids[0] != pids[0]
        # After the replacement the same seeded rollouts reproduce the process pool's exactly.
        fourth = turngym.rollout(ENV, deterministic, pool=pool, **kw)
        fifth = turngym.rollout(ENV, deterministic, pool=pool, mode="async", **kw)
    expected = [t.to_dict() for t in local]
    assert [t.to_dict() for t in first] == expected
    assert [t.to_dict() for t in second] == expected
    assert [t.turns for t in third] == [t.turns for t in local]
    assert [t.to_dict() for t in fourth] == expected
    assert [t.to_dict() for t in fifth] == expected
    assert sum("retried" in t.metadata for t in third) >= 1


def test_ray_actor_over_step_timeout_is_replaced_and_env_errors_surface(local_ray):
    from ray import cloudpickle

    import helpers.pool_envs
    from helpers.pool_envs import faulty_corridor
    from turngym.pool import EnvCommandError

    cloudpickle.register_pickle_by_value(helpers.pool_envs)  # Ray workers cannot import tests/
    hang = {"bad_seed": 1, "fault": "hang", "hang_s": 30.0}
    with EnvPool(faulty_corridor, 2, hang, executor="ray", step_timeout=1.0) as pool:
        trajectories = turngym.rollout(
            faulty_corridor, deterministic, num_episodes=3, pool=pool, progress=False
        )
        assert "did not answer within step_timeout=1.0" in trajectories[1].metadata["failed"]
        assert pool.restarts == 2 and "failed" not in trajectories[2].metadata
    broken = {"bad_seed": 0, "fault": "raise"}
    with EnvPool(faulty_corridor, 1, broken, executor="ray") as pool:
        with pytest.raises(EnvCommandError, match="the faulty corridor broke"):
            turngym.rollout(
                faulty_corridor, deterministic, num_episodes=1, pool=pool, progress=False
            )
