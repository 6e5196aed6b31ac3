"""turngym's credit methods as verl advantage estimators, and the patch that feeds them.

verl (0.9.x) computes advantages in ``verl.trainer.ppo.ray_trainer.compute_advantage``. For an
estimator registered with ``@register_adv_est(name)`` it passes ``token_level_rewards``,
``response_mask``, ``index`` (the prompt ``uid``) and ``config``, and passes the batch's
``non_tensor_batch`` only when ``name == "gdpo"``. Turn-level methods need what lives there (the
per-turn rewards, state keys and actions the agent loop put in ``AgentLoopOutput.extra_fields``);
registered through the front door alone, GiGPO and SALT would see one reward per sequence and
nothing to group states by: GRPO. :func:`compute_advantage` below is the one-function change:

    *An estimator that sets ``fn.needs_non_tensor_batch = True`` receives ``non_tensor_batch``
    and ``batch`` as keyword arguments, exactly as GDPO does.*

Proposed upstream, that attribute check would replace the ``"gdpo"`` name test. Until then
:func:`turngym.integrations.verl.install` puts this function in place of verl's (module globals of
``ray_trainer`` and ``v1.utils``); estimators without the attribute go to verl's original.

Turns are rebuilt from the batch: turn ``k`` of row ``i`` is the ``k``-th maximal run of 1s in
``response_mask[i]`` (the agent loop masks env tokens 0), so a row needs exactly as many runs as
its ``turngym_turn_rewards`` list has entries; anything else raises :class:`TurnSplitError`
naming the row. Each turn's advantage is given to every token of its run; ``returns`` equal the
advantages (as verl's GRPO returns them). The ``uid`` is the task group.

``turngym_igpo`` also needs ``turngym_gold_probs`` per episode (``p(gold answer | context)``
before the first and after every turn, ``turns + 1`` values, teacher-forced under the policy, as
IGPO's own verl-based code computes them); the agent loop has no model to score with, so a
reward or post-rollout step must add it; without it the estimator raises.

Divergences from verl's own estimators: none in the interface; the numbers are
``turngym.credit``'s, with its defaults (e.g. GiGPO's gamma 0.95, not ``algorithm.gamma``). Pass
hyperparameters with :func:`configure` or the ``TURNGYM_VERL_CREDIT`` environment variable (JSON
``{"turngym_gigpo": {"step_weight": 1.0}}``; set it in the Ray runtime env so workers see it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

import turngym.credit as credit
from turngym.error import InvalidArgumentError, TurnGymError
from turngym.integrations.common import TurnSplitError, gather_runs, mask_runs
from turngym.trajectory import Trajectory, Turn

__all__ = [
    "ESTIMATORS",
    "EXTRA_FIELDS",
    "MissingTurnDataError",
    "compute_advantage",
    "configure",
    "gated_turn_rewards",
    "make_estimator",
    "trajectories_from_batch",
]

#: The ``extra_fields`` keys the agent loop fills (one list per episode, one entry per turn).
EXTRA_FIELDS = (
    "turngym_turn_rewards",
    "turngym_state_keys",
    "turngym_actions",
    "turngym_valid",
    "turngym_progress",
    "turngym_reward_components",
    "turngym_outcome",
    "turngym_success",
)
#: verl estimator name -> turngym.credit method.
ESTIMATORS = {
    "turngym_grpo": "grpo",
    "turngym_rloo": "rloo",
    "turngym_gigpo": "gigpo",
    "turngym_salt": "salt",
    "turngym_igpo": "igpo",
}
_CONFIG: dict[str, dict[str, Any]] = {}


class MissingTurnDataError(TurnGymError, ValueError):
    """A turngym estimator got no per-turn data (verl's unpatched ``compute_advantage``)."""


def configure(estimator: str, **kwargs: Any) -> None:
    """Sets the ``turngym.credit`` keyword arguments of a registered estimator.

    ``gate={"threshold": 1.0}`` (or ``{"chain": ...}``) first replaces the turn rewards by
    G-RA's gated rewards (:func:`turngym.credit.gated`).

    >>> configure("turngym_gigpo", step_weight=0.5)
    >>> _settings("turngym_gigpo")
    {'step_weight': 0.5}
    >>> configure("turngym_gigpo")  # back to the defaults
    """
    if estimator not in ESTIMATORS:
        raise InvalidArgumentError(
            f"unknown turngym estimator {estimator!r}; choose one of {sorted(ESTIMATORS)}"
        )
    _CONFIG[estimator] = dict(kwargs)
    if not kwargs:
        del _CONFIG[estimator]


def _settings(estimator: str) -> dict[str, Any]:
    if estimator in _CONFIG:
        return dict(_CONFIG[estimator])
    raw = os.environ.get("TURNGYM_VERL_CREDIT", "")
    if not raw:
        return {}
    try:
        table = json.loads(raw)
    except json.JSONDecodeError as error:
        raise InvalidArgumentError(
            f"TURNGYM_VERL_CREDIT is not JSON ({error}); set it like "
            '\'{"turngym_gigpo": {"step_weight": 1.0}}\''
        ) from None
    return dict(table.get(estimator, {}))


def _column(non_tensor_batch: Mapping[str, Any], key: str, n: int) -> list[Any]:
    values = non_tensor_batch.get(key)
    if values is None:
        return [None] * n
    return list(values)


def trajectories_from_batch(
    response_mask: torch.Tensor,
    non_tensor_batch: Mapping[str, Any],
    *,
    index: Sequence[Any] | None = None,
    token_level_rewards: torch.Tensor | None = None,
) -> list[Trajectory]:
    """Rebuilds one :class:`~turngym.Trajectory` per row of a verl batch.

    Args:
        response_mask: ``[B, L]`` 1 on generated tokens.
        non_tensor_batch: the batch's non-tensor data, holding the :data:`EXTRA_FIELDS` lists.
        index: the group id of each row (verl's ``uid``); default ``non_tensor_batch["uid"]``.
        token_level_rewards: ``[B, L]``; its row sum is the outcome when ``turngym_outcome`` is
            missing.

    Raises:
        MissingTurnDataError: a row has no ``turngym_turn_rewards``.
        TurnSplitError: a row's mask has no runs or not one run per turn.
    """
    n = int(response_mask.shape[0])
    if index is None:
        index = non_tensor_batch.get("uid")
    runs = mask_runs(response_mask, what="verl batch")
    rewards = _column(non_tensor_batch, "turngym_turn_rewards", n)
    keys = _column(non_tensor_batch, "turngym_state_keys", n)
    actions = _column(non_tensor_batch, "turngym_actions", n)
    valid = _column(non_tensor_batch, "turngym_valid", n)
    progress = _column(non_tensor_batch, "turngym_progress", n)
    components = _column(non_tensor_batch, "turngym_reward_components", n)
    outcomes = _column(non_tensor_batch, "turngym_outcome", n)
    trajectories = []
    for row in range(n):
        if rewards[row] is None:
            raise MissingTurnDataError(
                f"verl batch row {row} has no 'turngym_turn_rewards': produce rollouts with "
                "turngym's agent loop (agent_name 'turngym_agent') or put per-turn lists of the "
                f"keys {list(EXTRA_FIELDS)} in AgentLoopOutput.extra_fields."
            )
        turn_rewards = [float(r) for r in rewards[row]]
        if len(runs[row]) != len(turn_rewards):
            raise TurnSplitError(
                f"verl batch row {row}: response_mask has {len(runs[row])} runs of generated "
                f"tokens but turngym_turn_rewards has {len(turn_rewards)} turns; each action must "
                "be one run of 1s. Was the response cut at rollout.response_length mid-episode?"
            )
        turns = []
        for t, reward in enumerate(turn_rewards):
            info: dict[str, Any] = {}
            key = keys[row][t] if keys[row] is not None else None
            if valid[row] is not None:
                info["valid_action"] = bool(valid[row][t])
            if progress[row] is not None:
                info["progress"] = float(progress[row][t])
            parts = components[row][t] if components[row] is not None else {}
            start, end = runs[row][t]
            turns.append(
                Turn(
                    action=str(actions[row][t]) if actions[row] is not None else f"turn{t}",
                    reward=reward,
                    reward_components={k: float(v) for k, v in dict(parts or {}).items()},
                    info=info,
                    state_key=None if key is None else str(key),
                    token_ids=[0] * (end - start),
                )
            )
        if outcomes[row] is not None:
            outcome = float(outcomes[row])
        elif token_level_rewards is not None:
            outcome = float(token_level_rewards[row].sum())
        else:
            outcome = float(sum(turn_rewards))
        group = str(index[row]) if index is not None else "all"
        trajectories.append(
            Trajectory(turns=turns, group_id=group, traj_id=f"row{row}", outcome=outcome)
        )
    return trajectories


def gated_turn_rewards(batch: credit.TurnBatch, gate: Mapping[str, Any]) -> torch.Tensor:
    """G-RA as a reward transform: :func:`turngym.credit.gated` turn rewards of ``batch``."""
    return credit.gated(batch, **dict(gate))


def make_estimator(name: str, method: str | Callable[..., torch.Tensor]) -> Callable[..., Any]:
    """A verl estimator ``fn(token_level_rewards, response_mask, index, config, non_tensor_batch,
    batch) -> (advantages, returns)`` running ``turngym.credit.<method>``."""
    function = getattr(credit, method) if isinstance(method, str) else method

    def estimator(
        token_level_rewards: torch.Tensor,
        response_mask: torch.Tensor,
        index: np.ndarray | None = None,
        config: Any = None,
        non_tensor_batch: Mapping[str, Any] | None = None,
        batch: Any = None,
        **_: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if non_tensor_batch is None:
            raise MissingTurnDataError(
                f"verl called {name!r} without non_tensor_batch: its compute_advantage forwards "
                "per-turn data only to 'gdpo', so turn-level credit would collapse to GRPO. Call "
                "turngym.integrations.verl.install() in every trainer process (e.g. Ray runtime "
                "env worker_process_setup_hook=turngym.integrations.verl.install) and use "
                "trainer.use_v1=False."
            )
        trajectories = trajectories_from_batch(
            response_mask, non_tensor_batch, index=index, token_level_rewards=token_level_rewards
        )
        turn_batch = credit.TurnBatch.from_trajectories(trajectories).to(response_mask.device)
        kwargs = _settings(name)
        gate = kwargs.pop("gate", None)
        if gate is not None:
            kwargs["rewards"] = gated_turn_rewards(turn_batch, gate)
        if method == "igpo" and "gold_probs" not in kwargs:
            kwargs["gold_probs"] = _gold_probs(non_tensor_batch, turn_batch)
        per_turn = function(turn_batch, **kwargs)
        # trajectories_from_batch has split the mask and matched one run to each turn
        tokens = gather_runs(per_turn, response_mask).to(token_level_rewards.dtype)
        return tokens, tokens

    estimator.needs_non_tensor_batch = True  # type: ignore[attr-defined]
    estimator.__name__ = f"{name}_estimator"
    estimator.__doc__ = f"verl advantage estimator running turngym.credit.{method}."
    return estimator


def _gold_probs(non_tensor_batch: Mapping[str, Any], batch: credit.TurnBatch) -> torch.Tensor:
    rows = non_tensor_batch.get("turngym_gold_probs")
    if rows is None or any(r is None for r in rows):
        raise MissingTurnDataError(
            "turngym_igpo needs 'turngym_gold_probs' in extra_fields: per episode, "
            "p(gold answer | context) before the first and after every turn (turns + 1 values)."
        )
    out = torch.zeros(batch.num_trajectories, batch.max_turns + 1)
    for i, values in enumerate(rows):
        out[i, : len(values)] = torch.as_tensor(list(values), dtype=torch.float32)
    return out.to(batch.device)


def compute_advantage(
    data: Any,
    adv_estimator: Any,
    gamma: float = 1.0,
    lam: float = 1.0,
    num_repeat: int = 1,
    norm_adv_by_std_in_grpo: bool = True,
    config: Any = None,
) -> Any:
    """verl's ``compute_advantage`` that also forwards ``non_tensor_batch`` and ``batch`` to
    every estimator with ``needs_non_tensor_batch = True`` (see the module docstring)."""
    from verl.trainer.ppo import core_algos

    from turngym.integrations.verl import _original_compute_advantage

    name = getattr(adv_estimator, "value", adv_estimator)
    estimator = core_algos.ADV_ESTIMATOR_REGISTRY.get(name)
    if estimator is None or not getattr(estimator, "needs_non_tensor_batch", False):
        return _original_compute_advantage()(
            data, adv_estimator, gamma, lam, num_repeat, norm_adv_by_std_in_grpo, config
        )
    if "response_mask" not in data.batch.keys():
        from verl.trainer.ppo.ray_trainer import compute_response_mask

        data.batch["response_mask"] = compute_response_mask(data)
    kwargs: dict[str, Any] = {
        "token_level_rewards": data.batch["token_level_rewards"],
        "response_mask": data.batch["response_mask"],
        "config": config,
        "non_tensor_batch": data.non_tensor_batch,
        "batch": data.batch,
    }
    if "uid" in data.non_tensor_batch:
        kwargs["index"] = data.non_tensor_batch["uid"]
    if "reward_baselines" in data.batch:
        kwargs["reward_baselines"] = data.batch["reward_baselines"]
    advantages, returns = estimator(**kwargs)
    data.batch["advantages"] = advantages
    data.batch["returns"] = returns
    return data
