"""turngym inside SkyRL: every turngym id as a skyrl-gym ``BaseTextEnv``.

Install with ``pip install 'turngym[skyrl]'`` (skyrl-gym >=0.4,<0.5). :func:`register_envs`
registers every id of ``turngym.list_envs()`` with ``skyrl_gym.register`` (same id), so
``skyrl_gym.make("turngym/WebShop-Small-v0", env_config=..., extras={"seed": 3})`` works and
SkyRL's generator can name them as ``env_class``. The adapter :class:`TurngymTextEnv`:

- ``init(prompt)`` resets the env (``extras["seed"]``, ``extras["task"]`` when given) and returns
  the chat: the env's instructions as the system message, the first observation as the user
  message (the dataset prompt is replaced: the env owns the task);
- ``step(text)`` returns ``observations = [{"role": "user", "content": obs}]``, the turn reward,
  ``done = terminated or truncated`` and ``metadata`` with the standard info keys
  (``state_key`` of the state the action led to, ``pre_state_key`` of the one it acted on,
  ``reward_components``, ``valid_action``, ``progress``, ``admissible_actions``, ``outcome``,
  ``success``, ``turn``, ``terminated``, ``truncated``); ``privileged`` is never included;
- ``max_turns`` is read where SkyRL's own envs read it, ``extras["max_turns"]`` (per sample, from
  the dataset row), then ``extras["extra_info"]["max_turns"]`` (skyrl-gym's GSM8K multi-turn
  env), then ``env_config["max_turns"]``, else the env's own turn limit. It is enforced as
  skyrl-gym's envs do (``done = turns >= max_turns``): the step that reaches it returns
  ``done=True`` with ``metadata["truncated"] = True`` (unless the env terminated on that step).
  The env's own turn limit still applies when it is shorter.

What SkyRL cannot pass yet (skyrl-train's ``AdvantageEstimatorRegistry`` functions receive token
rewards, masks and the prompt index only): per-turn state keys, so GiGPO/SALT cannot run inside
SkyRL's trainer; :func:`register_estimators` registers the outcome-level ``turngym_grpo`` and
``turngym_rloo`` there when skyrl-train is installed. skyrl-train is not part of this extra and
this function is NOT exercised by turngym's tests: skyrl-train 0.3.1 requires Python 3.12 and
flash-attn (a CUDA source build), and on Python 3.11 with ray 2.60 its ``ppo_utils`` fails to
import (``PlacementGroupSchedulingStrategy`` moved). It follows skyrl-train 0.3.1's
``AdvantageEstimatorRegistry.register(name, fn)`` / ``list_available()`` and estimator signature
``fn(token_level_rewards, response_mask, index, **kwargs) -> (advantages, returns)``.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium

from turngym import registration
from turngym.integrations.common import check_version
from turngym.testing import STANDARD_INFO_KEYS

SKYRL_GYM_MIN, SKYRL_GYM_BELOW = "0.4", "0.5"
SKYRL_GYM_VERSION = check_version("skyrl-gym", SKYRL_GYM_MIN, SKYRL_GYM_BELOW, extra="skyrl")

import skyrl_gym  # noqa: E402
from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput  # noqa: E402

__all__ = ["SKYRL_GYM_VERSION", "TurngymTextEnv", "register_envs", "register_estimators"]

#: The contract's info keys a step's metadata carries (all but ``privileged``, never shown).
_KEYS = tuple(k for k in STANDARD_INFO_KEYS if k != "privileged")


class TurngymTextEnv(BaseTextEnv):
    """A turngym env as a skyrl-gym text env (see the module docstring)."""

    def __init__(
        self,
        env_id: str,
        env_config: Any = None,
        extras: dict[str, Any] | None = None,
        **env_kwargs: Any,
    ) -> None:
        super().__init__()
        self.env_id = env_id
        config = dict(env_config or {})
        env_kwargs = {**dict(config.get("env_kwargs") or {}), **env_kwargs}
        self.env = registration.make(env_id, **env_kwargs)
        self.extras = dict(extras or {})
        self.max_turns = _max_turns(self.extras, config, self.env)
        self._state_key: str | None = None

    def init(self, prompt: Any = None) -> tuple[list[dict[str, str]], dict[str, Any]]:
        seed = self.extras.get("seed")
        options = {"task": self.extras["task"]} if "task" in self.extras else None
        observation, info = self.env.reset(
            seed=None if seed is None else int(seed), options=options
        )
        self.turns = 0
        self._state_key = info.get("state_key")
        chat = []
        if info.get("instructions"):
            chat.append({"role": "system", "content": info["instructions"]})
        chat.append({"role": "user", "content": observation})
        return chat, {
            "state_key": self._state_key,
            "admissible_actions": info.get("admissible_actions"),
        }

    def step(self, action: str) -> BaseTextEnvStepOutput:
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.turns += 1
        # SkyRL's envs end an episode at ``turns >= max_turns``; the env's own limit may be later.
        truncated = bool(truncated) or (not terminated and self.turns >= self.max_turns)
        metadata = {k: info.get(k) for k in _KEYS}
        metadata.update(
            state_key=info.get("state_key"),
            pre_state_key=self._state_key,
            terminated=bool(terminated),
            truncated=truncated,
        )
        self._state_key = info.get("state_key")
        return BaseTextEnvStepOutput(
            observations=[{"role": "user", "content": observation}],
            reward=float(reward),
            done=bool(terminated or truncated),
            metadata=metadata,
            postprocessed_action=None,
        )

    def close(self) -> None:
        self.env.close()


def _max_turns(extras: dict[str, Any], config: dict[str, Any], env: gymnasium.Env) -> int:
    """The turn limit: extras, then extras' ``extra_info``, then env_config, else the env's."""
    extra_info = extras.get("extra_info")
    for where, value in (
        ('extras["max_turns"]', extras.get("max_turns")),
        (
            'extras["extra_info"]["max_turns"]',
            extra_info.get("max_turns") if isinstance(extra_info, dict) else None,
        ),
        ('env_config["max_turns"]', config.get("max_turns")),
    ):
        if value is None:
            continue
        digits = isinstance(value, (int, str)) and not isinstance(value, bool)
        if not digits or not str(value).isdigit() or int(value) < 1:
            raise ValueError(f"{where}={value!r} is invalid: give a positive int, e.g. 10")
        return int(value)
    spec_limit = getattr(env.spec, "max_episode_steps", None)
    return int(getattr(env.unwrapped, "max_turns", None) or spec_limit or 50)


def register_envs() -> list[str]:
    """Registers every turngym id with skyrl-gym (idempotent); returns the ids."""
    import turngym

    ids = sorted(turngym.list_envs())
    for env_id in ids:
        if env_id not in skyrl_gym.envs.registration.registry:
            skyrl_gym.register(id=env_id, entry_point=functools.partial(TurngymTextEnv, env_id))
    return ids


def register_estimators() -> list[str]:
    """Registers ``turngym_grpo`` / ``turngym_rloo`` in skyrl-train's estimator registry.

    Raises:
        DependencyNotInstalled: skyrl-train is not installed.
    """
    from turngym.error import DependencyNotInstalled

    try:
        from skyrl_train.utils.ppo_utils import AdvantageEstimatorRegistry
    except ImportError:
        raise DependencyNotInstalled(
            "register_estimators needs skyrl-train (SkyRL's trainer): pip install skyrl-train"
        ) from None
    import torch

    def outcome(method: str):
        def estimator(
            token_level_rewards: torch.Tensor, response_mask: torch.Tensor, index: Any, **_: Any
        ) -> tuple[torch.Tensor, torch.Tensor]:
            from turngym.credit import TurnBatch, grpo, rloo
            from turngym.trajectory import Trajectory, Turn

            scores = token_level_rewards.sum(-1).tolist()
            trajs = [
                Trajectory(turns=[Turn(action="episode")], group_id=str(g), outcome=s)
                for g, s in zip(index, scores, strict=False)
            ]
            batch = TurnBatch.from_trajectories(trajs)
            values = (grpo if method == "grpo" else rloo)(batch)[:, 0]
            advantages = values.to(response_mask.device)[:, None] * response_mask
            return advantages, advantages

        return estimator

    names = []
    for method in ("grpo", "rloo"):
        name = f"turngym_{method}"
        if name not in AdvantageEstimatorRegistry.list_available():
            AdvantageEstimatorRegistry.register(name, outcome(method))
        names.append(name)
    return names
