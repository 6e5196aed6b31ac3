"""The conformance check must catch every kind of broken env it claims to catch."""

from __future__ import annotations

import random

import gymnasium
import pytest

from turngym.core import Outcome
from turngym.envs.toy.corridor import CorridorEnv
from turngym.error import ConformanceError
from turngym.testing import EnvConformanceMixin, adversarial_actions, check_env


class Nondeterministic(CorridorEnv):
    def _act(self, action: str) -> Outcome:
        result = super()._act(action)
        result.observation += f" (wind: {random.random():.3f})"  # global RNG, not self.np_random
        return result


class Leaky(CorridorEnv):
    def _privileged(self) -> dict:
        return {"secret_plan": "walk to the exit named in the instructions now"}

    def _act(self, action: str) -> Outcome:
        result = super()._act(action)
        result.observation += " Hint: " + self._privileged()["secret_plan"]
        return result


class AcceptsAnything(CorridorEnv):
    def _act(self, action: str) -> Outcome:
        if action.strip().lower() in ("go east", "go west", "wait"):
            return super()._act(action)
        return Outcome("You wait.", {"format": 0.0, "progress": 0.0}, valid_action=True)


class CrashesOnGarbage(CorridorEnv):
    def _act(self, action: str) -> Outcome:
        action.encode("ascii")  # UnicodeEncodeError on unicode/binary input
        return super()._act(action)


class CountsInvalidInState(CorridorEnv):
    _invalid = 0

    def _act(self, action: str) -> Outcome:
        result = super()._act(action)
        self._invalid += not result.valid_action
        return result

    def _state(self):
        return [self._position, self._invalid]


class NeverEnds(CorridorEnv):
    default_max_turns = 10_000


class NoInstructions(CorridorEnv):
    def reset(self, *, seed=None, options=None):
        observation, info = super().reset(seed=seed, options=options)
        del info["instructions"]
        return observation, info


class InflatesReward(gymnasium.Wrapper):
    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        return observation, reward + 1.0, terminated, truncated, info


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (Nondeterministic, "diverged"),
        (Leaky, "privileged"),
        (AcceptsAnything, "accepted as valid"),
        (CrashesOnGarbage, "crashed"),
        (CountsInvalidInState, "changed state_key"),
        (lambda: NeverEnds(), "no episode end"),
        (NoInstructions, "instructions"),
        (lambda: InflatesReward(CorridorEnv()), "sum of reward_components"),
    ],
    ids=[
        "nondeterministic",
        "leak",
        "accepts-garbage",
        "crash",
        "state-key",
        "never-ends",
        "no-instructions",
        "reward-sum",
    ],
)
def test_check_env_catches_broken_envs(factory, message: str) -> None:
    with pytest.raises(ConformanceError, match=message):
        check_env(factory, skip_gymnasium=True, max_steps=100)


def test_check_env_passes_a_correct_env_built_by_factory() -> None:
    check_env(CorridorEnv)


def test_check_env_rejects_specless_instance() -> None:
    with pytest.raises(ConformanceError, match="second instance"):
        check_env(CorridorEnv())


def test_adversarial_actions_cover_the_issue_list() -> None:
    actions = adversarial_actions("go east")
    assert {"empty", "huge", "binary", "unicode", "control", "injection", "chatter"} <= set(actions)
    assert len(actions["huge"]) >= 100_000
    assert "go east" in actions["chatter"] and actions["chatter"] != "go east"


class TestCorridorWithMixin(EnvConformanceMixin):
    def make_env(self):
        return gymnasium.make("turngym/Corridor-v0", reward_mode="sparse")
