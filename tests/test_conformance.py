"""The conformance check on EVERY registered turngym id (as Gymnasium does for its own ids)."""

from __future__ import annotations

import gymnasium
import pytest

import turngym
from turngym.testing import check_env

ENV_IDS = sorted(turngym.list_envs())


def test_every_registered_id_is_checked() -> None:
    assert ENV_IDS, "no env registered"
    assert all(env_id in gymnasium.registry for env_id in ENV_IDS)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_conformance(env_id: str) -> None:
    env = gymnasium.make(env_id)
    try:
        check_env(env)
    finally:
        env.close()
