"""The conformance check for multi-agent (PettingZoo ``ParallelEnv``) turngym envs.

:func:`check_parallel_env` runs PettingZoo's own ``parallel_api_test`` and ``parallel_seed_test``
and then turngym's contract per agent, as :func:`turngym.testing.check_env` does for one agent:

1. every standard ``info`` key for every live agent, at reset (with ``instructions``) and at
   every step; ``reward_components`` sum to each agent's reward; ``outcome``/``success`` set
   exactly on the last step, equal for every agent of a team;
2. two instances side by side, same seed and same actions => same observations, rewards and
   state keys;
3. ``privileged`` never leaks into an agent's observation;
4. adversarial actions (empty, 100 KB, garbage, unicode, prompt injection, a valid action in
   chatter) to every agent never crash and get ``valid_action=False`` from every agent that
   had to act on them (an agent whose info says ``busy=False`` is idle and is not judged);
5. stepping after the end raises :class:`turngym.error.ResetNeeded`.

PettingZoo's AEC ``api_test`` is not run: it asserts ``observation.dtype ==
observation_space.dtype``, which no text (``str``) observation has. The AEC view of a parallel
env (``pettingzoo.utils.parallel_to_aec``) is PettingZoo's own code.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from turngym.error import ConformanceError, ResetNeeded

__all__ = ["check_parallel_env"]


def _fail(message: str) -> None:
    raise ConformanceError(message)


def check_parallel_env(
    factory: Callable[[], Any], *, seed: int = 0, episodes: int = 2, max_steps: int = 300
) -> None:
    """Checks a PettingZoo ``ParallelEnv`` against PettingZoo's tests and turngym's contract.

    Args:
        factory: a zero-argument function returning a fresh env (two instances are compared).
        seed: base seed of the episodes played.
        episodes: episodes played side by side with random admissible actions.
        max_steps: cap on steps per episode (the env's turn limit normally ends it first).

    Raises:
        ConformanceError: with a message saying what broke.
    """
    from pettingzoo.test import parallel_api_test, parallel_seed_test

    from turngym.testing import _check_info, _check_no_leak, _check_step, adversarial_actions

    env, twin = factory(), factory()
    try:
        with warnings.catch_warnings():
            # PettingZoo's test resets with made-up options; turngym envs warn that they ignore them.
            warnings.filterwarnings("ignore", message=".*ignores unknown options")
            parallel_api_test(env, num_cycles=max_steps)
        parallel_seed_test(factory, num_cycles=min(max_steps, 50))
        rng = np.random.default_rng(seed)
        for episode in range(episodes):
            _play_pair(env, twin, seed + episode, rng, max_steps, _check_info, _check_step)
        _check_adversarial(env, seed, adversarial_actions, _check_step)
        _check_no_leak_at_reset(env, seed, _check_info, _check_no_leak)
    finally:
        env.close()
        twin.close()


def _pick(info: dict[str, Any], rng: np.random.Generator) -> str:
    admissible = info.get("admissible_actions") or ["wait"]
    return admissible[int(rng.integers(len(admissible)))]


def _play_pair(env, twin, seed, rng, max_steps, check_info, check_step) -> None:
    where = f"episode seed={seed}"
    obs_a, infos_a = env.reset(seed=seed)
    obs_b, infos_b = twin.reset(seed=seed)
    if obs_a != obs_b:
        _fail(f"{where}: two instances reset with the same seed differ")
    for agent in env.agents:
        check_info(infos_a[agent], f"{where} reset {agent}", at_reset=True)
    for step in range(max_steps):
        actions = {agent: _pick(infos_a[agent], rng) for agent in env.agents}
        result_a, result_b = env.step(actions), twin.step(actions)
        if result_a[:4] != result_b[:4]:
            _fail(f"{where} step {step}: two instances given the same seed and actions diverged")
        observations, rewards, terminations, truncations, infos_a = result_a
        ends = set()
        for agent in actions:
            result = (
                observations[agent],
                rewards[agent],
                terminations[agent],
                truncations[agent],
                infos_a[agent],
            )
            check_step(result, f"{where} step {step} {agent} action {actions[agent]!r}")
            if infos_a[agent]["state_key"] != result_b[4][agent]["state_key"]:
                _fail(f"{where} step {step}: {agent}'s state_key differs between instances")
            ends.add((terminations[agent], truncations[agent], infos_a[agent]["outcome"]))
        if len(ends) > 1:
            _fail(f"{where} step {step}: agents disagree on the end or the team outcome: {ends}")
        if not env.agents:
            try:
                env.step({})
            except ResetNeeded:
                return
            _fail(f"{where}: step() after the end must raise turngym.error.ResetNeeded")
    _fail(f"{where}: no episode end after {max_steps} steps; set a turn limit")


def _check_adversarial(env, seed, adversarial_actions, check_step) -> None:
    for name, action in adversarial_actions("wait").items():
        _, infos = env.reset(seed=seed)
        # One step of each agent's first admissible action, so some agents are mid-task.
        first = {a: (infos[a].get("admissible_actions") or ["wait"])[0] for a in env.agents}
        _, _, _, _, infos = env.step(first)
        if not env.agents:
            continue
        # An agent whose info says busy=False is idle: its action is ignored, not judged.
        acting = [a for a in env.agents if infos[a].get("busy", True)]
        try:
            result = env.step({agent: action for agent in env.agents})
        except Exception as error:  # noqa: BLE001 - any crash is the failure being checked
            _fail(f"adversarial action {name!r} crashed the env: {type(error).__name__}: {error}")
        observations, rewards, terminations, truncations, infos = result
        for agent in acting:
            where = f"adversarial action {name!r} to {agent}"
            check_step(
                (
                    observations[agent],
                    rewards[agent],
                    terminations[agent],
                    truncations[agent],
                    infos[agent],
                ),
                where,
            )
            if infos[agent]["valid_action"]:
                _fail(f"{where} was accepted as valid")
            if not observations[agent].strip():
                _fail(f"{where}: the feedback observation is empty")
            if len(observations[agent]) > 20_000:
                _fail(f"{where}: feedback of {len(observations[agent])} chars")


def _check_no_leak_at_reset(env, seed, check_info, check_no_leak) -> None:
    observations, infos = env.reset(seed=seed)
    for agent in env.agents:
        check_no_leak(observations[agent] + infos[agent]["instructions"], infos[agent], agent)
