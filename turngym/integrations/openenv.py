"""turngym over OpenEnv: every turngym id as an OpenEnv server, any OpenEnv env as a gymnasium env.

Install with ``pip install 'turngym[openenv]'`` (openenv-core >=0.2.1,<0.3; 0.3 pulls gradio, which pins pillow<13).

Server. :class:`TurngymEnvironment` wraps ``gymnasium.make(env_id)`` in OpenEnv's ``Environment``
interface; :func:`make_app` builds OpenEnv's own FastAPI app around it (HTTP ``/reset``,
``/step``, ``/state``, ``/schema`` and the ``/ws`` session socket; one env instance per
WebSocket session); ``turngym serve env ID --port P`` runs it with uvicorn. An observation
(:class:`TurngymObservation`) carries the text, ``reward``, ``done`` and every standard info key
(``reward_components``, ``valid_action``, ``state_key``, ``progress``, ``admissible_actions``,
``outcome``, ``success``, ``turn``) plus ``instructions`` at reset and ``terminated`` /
``truncated`` (OpenEnv has one ``done``). ``info["privileged"]`` never leaves the process: it is
dropped before anything is serialised, and other info keys pass only when JSON-safe.

Client. :class:`OpenEnvGymEnv` is a ``gymnasium.Env[str, str]`` over any OpenEnv server
(turngym's or another's) through OpenEnv's ``GenericEnvClient``: ``reset(seed)`` and
``step(text)`` are WebSocket messages; the action is sent as ``{action_field: text}`` and the
observation text read from ``observation_field``. For a foreign env that reports none of
turngym's info keys the client fills them (documented divergence): ``reward_components =
{"env": reward}``, ``valid_action = True``, ``state_key`` = a hash of the observation,
``progress`` 0, ``outcome`` = the last reward and ``success = outcome > 0`` on the last step.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from typing import Any

import gymnasium
from pydantic import Field

from turngym import registration
from turngym.core import TextSpace, stable_hash
from turngym.error import ResetNeeded, TurnGymError
from turngym.integrations.common import check_version
from turngym.integrations.openenv_serve import DEFAULT_MAX_BODY_BYTES, session_routes
from turngym.testing import STANDARD_INFO_KEYS

OPENENV_MIN, OPENENV_BELOW = "0.2.1", "0.3"
OPENENV_VERSION = check_version("openenv-core", OPENENV_MIN, OPENENV_BELOW, extra="openenv")

from openenv.core.env_server.http_server import create_fastapi_app  # noqa: E402
from openenv.core.env_server.interfaces import Environment  # noqa: E402
from openenv.core.env_server.types import Action, Observation, State  # noqa: E402
from openenv.core.generic_client import GenericEnvClient  # noqa: E402

__all__ = [
    "OPENENV_VERSION",
    "OpenEnvGymEnv",
    "TurngymAction",
    "TurngymEnvironment",
    "TurngymObservation",
    "TurngymState",
    "generic_client",
    "main",
    "make_app",
]


class TurngymAction(Action):
    """One text action."""

    text: str = Field(default="", description="the agent's action, as text")


class TurngymObservation(Observation):
    """What a turngym env shows after reset/step, with its standard info keys."""

    text: str = ""
    instructions: str = ""
    terminated: bool = False
    truncated: bool = False
    turn: int = 0
    reward_components: dict[str, float] = Field(default_factory=dict)
    valid_action: bool = True
    state_key: str = ""
    progress: float = 0.0
    admissible_actions: list[str] | None = None
    outcome: float | None = None
    success: bool | None = None
    #: The env's other info keys (JSON-safe ones; never ``privileged``).
    info: dict[str, Any] = Field(default_factory=dict)


class TurngymState(State):
    """The session's env id, seed and position."""

    env_id: str = ""
    seed: int | None = None
    state_key: str = ""
    done: bool = False


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


class TurngymEnvironment(Environment):
    """A turngym env behind OpenEnv's ``Environment`` interface (one instance per session)."""

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, env_id: str, env_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.env_id = env_id
        self.env = registration.make(env_id, **dict(env_kwargs or {}))
        self._state = TurngymState(env_id=env_id)

    def _observation(
        self,
        text: str,
        info: dict[str, Any],
        reward: float | None,
        terminated: bool,
        truncated: bool,
    ) -> TurngymObservation:
        extra = {
            k: v
            for k, v in info.items()
            if k not in STANDARD_INFO_KEYS and k != "instructions" and _json_safe(v)
        }
        self._state.state_key = str(info.get("state_key", ""))
        self._state.done = bool(terminated or truncated)
        return TurngymObservation(
            text=text,
            instructions=str(info.get("instructions", "")),
            reward=reward,
            done=bool(terminated or truncated),
            terminated=bool(terminated),
            truncated=bool(truncated),
            turn=int(info.get("turn", 0)),
            reward_components=dict(info.get("reward_components") or {}),
            valid_action=bool(info.get("valid_action", True)),
            state_key=str(info.get("state_key", "")),
            progress=float(info.get("progress") or 0.0),
            admissible_actions=info.get("admissible_actions"),
            outcome=info.get("outcome"),
            success=info.get("success"),
            info=extra,
        )

    def reset(
        self,
        seed: int | None = None,
        episode_id: str | None = None,
        options: dict[str, Any] | None = None,
        **_: Any,
    ) -> TurngymObservation:
        text, info = self.env.reset(seed=seed, options=options)
        self._state = TurngymState(
            env_id=self.env_id, seed=seed, episode_id=episode_id, step_count=0
        )
        return self._observation(text, info, None, False, False)

    def step(
        self, action: TurngymAction, timeout_s: float | None = None, **_: Any
    ) -> TurngymObservation:
        text, reward, terminated, truncated, info = self.env.step(action.text)
        self._state.step_count += 1
        return self._observation(text, info, float(reward), terminated, truncated)

    @property
    def state(self) -> TurngymState:
        return self._state

    def close(self) -> None:
        self.env.close()


def generic_client(base_url: str, **kwargs: Any) -> Any:
    """OpenEnv's ``GenericEnvClient`` for ``base_url``, synchronous on every supported version
    (openenv-core 0.2.1 clients are synchronous; from 0.2.3 they are async and ``.sync()`` wraps
    them)."""
    client = GenericEnvClient(base_url=base_url, **kwargs)
    return client.sync() if hasattr(client, "sync") else client


def make_app(
    env_id: str,
    *,
    env_kwargs: dict[str, Any] | None = None,
    max_concurrent_envs: int = 64,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Any:
    """OpenEnv's FastAPI app serving ``env_id`` (one env instance per WebSocket session on
    ``/ws``), with ``POST /step`` answering 409 naming ``/ws`` and bodies over ``max_body_bytes``
    refused with 413 (see :mod:`turngym.integrations.openenv_serve`)."""
    from turngym.registration import check_env_id

    check_env_id(env_id)
    app = create_fastapi_app(
        lambda: TurngymEnvironment(env_id, env_kwargs),
        TurngymAction,
        TurngymObservation,
        max_concurrent_envs=max_concurrent_envs,
    )
    return session_routes(app, max_body_bytes)


def main(argv: Sequence[str] | None = None) -> int:
    """``turngym serve env ...``: see :func:`turngym.integrations.openenv_serve.main`."""
    from turngym.integrations.openenv_serve import main as serve

    return serve(argv)


class OpenEnvGymEnv(gymnasium.Env[str, str]):
    """Any OpenEnv environment server as a ``gymnasium.Env[str, str]`` (see the module docstring).

    Args:
        base_url: the server, e.g. ``"http://127.0.0.1:8000"``.
        action_field: the action's text field (``"text"`` for turngym servers).
        observation_field: the observation's text field (``"text"`` for turngym servers).
        max_turns: truncate after this many steps (foreign envs may not end on their own).
        message_timeout_s: seconds to wait for each answer of the server; a session's first
            reset builds the env there (TextWorld generates games, ALFWorld translates PDDL:
            tens of seconds on a loaded machine), hence the generous default. Past it,
            :class:`~turngym.error.TurnGymError` says which message timed out.
        wait_s: keep retrying the connection this long (a server that is still starting).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        base_url: str,
        *,
        action_field: str = "text",
        observation_field: str = "text",
        max_turns: int | None = None,
        message_timeout_s: float = 300.0,
        wait_s: float = 0.0,
    ) -> None:
        self.base_url = base_url
        self.action_field, self.observation_field = action_field, observation_field
        self.max_turns = max_turns
        self.observation_space = TextSpace()
        self.action_space = TextSpace()
        self.message_timeout_s = message_timeout_s
        self.client = generic_client(base_url, message_timeout_s=message_timeout_s)
        deadline = time.monotonic() + wait_s
        while True:  # a server started a moment ago may not listen yet
            try:
                self.client.connect()
                break
            except ConnectionError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)
        self._done, self._started, self._turn = False, False, 0

    def _call(self, what: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except TimeoutError as error:
            raise TurnGymError(
                f"the OpenEnv server at {self.base_url} did not answer {what} within "
                f"message_timeout_s={self.message_timeout_s} s; a first reset builds the env on "
                "the server (slow for TextWorld/ALFWorld on a loaded machine): pass a larger "
                "message_timeout_s, or check the server's log"
            ) from error

    def _text(self, observation: dict[str, Any]) -> str:
        value = observation.get(self.observation_field)
        if isinstance(value, str):
            return value
        return json.dumps(observation, sort_keys=True, default=str)

    def _info(self, observation: dict[str, Any], reward: float, done: bool) -> dict[str, Any]:
        info = dict(observation.get("info") or {})
        text = self._text(observation)
        info.update(
            turn=int(observation.get("turn", self._turn)),
            reward_components=dict(observation.get("reward_components") or {"env": reward}),
            valid_action=bool(observation.get("valid_action", True)),
            state_key=str(observation.get("state_key") or stable_hash(text)),
            progress=float(observation.get("progress") or 0.0),
            admissible_actions=observation.get("admissible_actions"),
            outcome=observation.get("outcome", reward if done else None),
            success=observation.get("success", (reward > 0) if done else None),
            privileged={},
        )
        if info["outcome"] is not None:
            info["outcome"] = float(info["outcome"])
        if observation.get("instructions") is not None:
            info["instructions"] = str(observation["instructions"])
        return info

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        payload: dict[str, Any] = {"seed": seed}
        if options:
            payload["options"] = options
        result = self._call("reset", self.client.reset, **payload)
        self._done, self._started, self._turn = False, True, 0
        observation = dict(result.observation or {})
        info = self._info(observation, 0.0, False)
        info.setdefault("instructions", "")
        return self._text(observation), info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if not self._started or self._done:
            raise ResetNeeded("the episode has ended (or never started); call reset() first")
        result = self._call("step", self.client.step, {self.action_field: str(action)})
        self._turn += 1
        observation = dict(result.observation or {})
        reward = float(result.reward or 0.0)
        if not math.isfinite(reward):
            reward = 0.0
        done = bool(result.done)
        truncated = bool(observation.get("truncated", False))
        terminated = bool(observation.get("terminated", done and not truncated))
        if self.max_turns is not None and self._turn >= self.max_turns and not done:
            truncated, done = True, True
        self._done = done
        return (
            self._text(observation),
            reward,
            terminated,
            truncated,
            self._info(observation, reward, done),
        )

    def close(self) -> None:
        self.client.close()
        super().close()
