"""Reward wrappers. One transform each, named verb + target.

:class:`GateReward` implements gated reward accumulation (G-RA): immediate (low-priority) reward
components count only if the episode's high-priority reward reaches a threshold,

    r~_t = r_low_t * 1[R_high >= delta],        R = R_high + sum_t r~_t,

and, for a chain of priorities (R_1, delta_1), (R_2, delta_2), ..., (R_k, delta_k), rest:

    R = R_1 + 1[R_1 >= delta_1] * (R_2 + 1[R_2 >= delta_2] * (... (R_k + 1[R_k >= delta_k] * R_rest)))

where R_i is the episode sum of the components named at level i and R_rest the sum of every other
component. Whether a gate opens is known only at the episode's end, so the wrapper withholds
every reward until then and settles on the last step (intermediate steps pay 0 and report the
withheld components in ``info["gate_pending"]``). ``turngym.credit.gated`` applies the same rule
to recorded trajectories.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium

from turngym.error import InvalidArgumentError

__all__ = ["GateReward", "gate_chain", "parse_chain"]


def gate_chain(levels: Sequence[tuple[float, float]], rest: float) -> tuple[float, list[bool]]:
    """Settles a G-RA chain: ``levels`` = [(R_i, delta_i)] from highest priority down.

    Returns the gated return and which gates opened.

    >>> gate_chain([(1.0, 1.0)], rest=0.3)
    (1.3, [True])
    >>> gate_chain([(0.0, 1.0)], rest=0.3)
    (0.0, [False])
    """
    total, opened, gate_open = 0.0, [], True
    for value, threshold in levels:
        if not gate_open:
            opened.append(False)
            continue
        total += value
        gate_open = value >= threshold
        opened.append(gate_open)
    if gate_open:
        total += rest
    return total, opened


def parse_chain(
    chain: Sequence[tuple[str | Sequence[str], float]],
) -> list[tuple[tuple[str, ...], float]]:
    """Checks a G-RA chain ``[(component name(s), delta), ...]`` and normalises its names to tuples.

    >>> parse_chain([("outcome", 1), (["patch", "submitted"], 0.1)])
    [(('outcome',), 1.0), (('patch', 'submitted'), 0.1)]
    """
    levels = []
    for entry in chain:
        try:
            names, delta = entry
        except (TypeError, ValueError):
            raise InvalidArgumentError(
                f"chain entry {entry!r} must be a (component names, delta) pair."
            ) from None
        names = (
            (names,)
            if isinstance(names, str)
            else tuple(names)
            if isinstance(names, (list, tuple))
            else ()
        )
        if not names or not all(isinstance(name, str) for name in names):
            raise InvalidArgumentError(
                f"chain level {names!r} must be a component name or a sequence of names, e.g. "
                "chain=[('outcome', 1.0), ('progress', 0.5)]."
            )
        levels.append((names, float(delta)))
    if not levels:
        raise InvalidArgumentError("chain must name at least one (component names, delta) level.")
    return levels


class GateReward(gymnasium.Wrapper):
    """Gated reward accumulation over an episode (G-RA), settled on the episode's last step.

    Args:
        env: a turngym env (its steps report ``reward_components``).
        threshold: delta of the single-gate form: the immediate components count only when the
            episode's ``"outcome"`` component reaches it.
        chain: the general form, ``[(component names, delta), ...]`` from highest priority down;
            a name may be a str or a sequence of str (their sum). Components not named in the
            chain form the lowest level. Overrides ``threshold``.

    Example: ``GateReward(env, threshold=1.0)`` pays format/progress rewards only in episodes
    that succeed, so a policy cannot farm them while failing the task.
    """

    def __init__(
        self,
        env: gymnasium.Env,
        threshold: float = 1.0,
        chain: Sequence[tuple[str | Sequence[str], float]] | None = None,
    ) -> None:
        super().__init__(env)
        self.levels = parse_chain([("outcome", threshold)] if chain is None else chain)
        self._pending: dict[str, float] = {}

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._pending = {}
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        observation, _, terminated, truncated, info = self.env.step(action)
        for name, value in info.get("reward_components", {}).items():
            self._pending[name] = self._pending.get(name, 0.0) + float(value)
        info = dict(info)
        if not (terminated or truncated):
            info["gate_pending"] = dict(self._pending)
            info["reward_components"] = {}
            return observation, 0.0, terminated, truncated, info
        named = {name for names, _ in self.levels for name in names}
        level_values = [
            (sum(self._pending.get(n, 0.0) for n in names), d) for names, d in self.levels
        ]
        rest_names = sorted(set(self._pending) - named)
        rest = sum(self._pending[n] for n in rest_names)
        reward, opened = gate_chain(level_values, rest)
        components: dict[str, float] = {}
        for (names, _), was_reached in zip(self.levels, [True, *opened[:-1]], strict=True):
            for name in names:
                components[name] = self._pending.get(name, 0.0) if was_reached else 0.0
        for name in rest_names:
            components[f"gated_{name}"] = self._pending[name] if opened[-1] else 0.0
        info["reward_components"] = components
        info["gates_opened"] = opened
        self._pending = {}
        return observation, float(reward), terminated, truncated, info
