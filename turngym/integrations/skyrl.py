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
  ``success``, ``turn``, ``terminated``, ``truncated``); ``privileged`` is never included.

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
        self.env = gymnasium.make(env_id, **env_kwargs)
        self.extras = dict(extras or {})
        self.max_turns = int(
            config.get("max_turns", getattr(self.env.unwrapped, "max_turns", 0) or 50)
        )
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
        metadata = {k: info.get(k) for k in _KEYS}
        metadata.update(
            state_key=info.get("state_key"),
            pre_state_key=self._state_key,
            terminated=bool(terminated),
            truncated=bool(truncated),
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
