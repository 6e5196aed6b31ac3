"""turngym inside verl: turn-level advantage estimators, the patch that feeds them, an agent loop.

Install with ``pip install 'turngym[verl]'`` (verl >=0.9.1,<0.10). Then, in every process that
computes advantages (verl's Ray trainer actors), call :func:`install`: it registers

==================  =========================================
verl estimator      turngym method
==================  =========================================
``turngym_grpo``    :func:`turngym.credit.grpo`
``turngym_rloo``    :func:`turngym.credit.rloo`
``turngym_gigpo``   :func:`turngym.credit.gigpo`
``turngym_salt``    :func:`turngym.credit.salt`
``turngym_igpo``    :func:`turngym.credit.igpo` (needs ``turngym_gold_probs`` per episode)
==================  =========================================

and replaces verl's ``compute_advantage`` with :func:`~.advantage.compute_advantage`, which
forwards the per-turn data to them (verl forwards it only to ``gdpo``; see
:mod:`turngym.integrations.verl.advantage`). G-RA is a reward transform: configure any estimator
with ``gate={"threshold": ...}``. The agent loop :class:`~.agent_loop.TurngymAgentLoop`
(``agent_name: turngym_agent``) plays turngym envs and fills ``extra_fields``.

The simplest way to run :func:`install` in every Ray worker is the runtime env's setup hook::

    +ray_kwargs.ray_init.runtime_env.worker_process_setup_hook=turngym.integrations.verl.install

(``docs/verl_turngym_ppo.yaml`` is a complete example). Limits: the per-turn data reaches the
estimators on verl's legacy trainer path (``trainer.use_v1=False``); verl's v1 trainer fetches
only a fixed list of fields from its TransferQueue before computing advantages, so turngym's
estimators raise :class:`~.advantage.MissingTurnDataError` there instead of silently
computing GRPO.
"""

from __future__ import annotations

from typing import Any

from turngym.integrations.common import check_version

VERL_MIN, VERL_BELOW = "0.9.1", "0.10"
VERL_VERSION = check_version("verl", VERL_MIN, VERL_BELOW, extra="verl")

from .advantage import (  # noqa: E402
    ESTIMATORS,
    EXTRA_FIELDS,
    MissingTurnDataError,
    compute_advantage,
    configure,
    make_estimator,
    trajectories_from_batch,
)

__all__ = [
    "ESTIMATORS",
    "EXTRA_FIELDS",
    "MissingTurnDataError",
    "VERL_VERSION",
    "compute_advantage",
    "configure",
    "install",
    "installed",
    "make_estimator",
    "register_estimators",
    "trajectories_from_batch",
    "uninstall",
]

#: Modules whose global ``compute_advantage`` the verl trainers call.
_PATCHED_MODULES = ("verl.trainer.ppo.ray_trainer", "verl.trainer.ppo.v1.utils")
_ORIGINAL: dict[str, Any] = {}
_ESTIMATORS: dict[str, Any] = {}


def _original_compute_advantage() -> Any:
    if "verl.trainer.ppo.ray_trainer" in _ORIGINAL:
        return _ORIGINAL["verl.trainer.ppo.ray_trainer"]
    from verl.trainer.ppo import ray_trainer

    return ray_trainer.compute_advantage


def register_estimators() -> list[str]:
    """Registers the turngym estimators with ``verl``'s ``register_adv_est`` (idempotent)."""
    from verl.trainer.ppo import core_algos

    for name, method in ESTIMATORS.items():
        estimator = _ESTIMATORS.setdefault(name, make_estimator(name, method))
        if core_algos.ADV_ESTIMATOR_REGISTRY.get(name) is not estimator:
            core_algos.ADV_ESTIMATOR_REGISTRY.pop(name, None)
            core_algos.register_adv_est(name)(estimator)
    return list(ESTIMATORS)


def install() -> None:
    """Registers the estimators and the agent loop, and patches ``compute_advantage``.

    Idempotent; safe as a Ray ``worker_process_setup_hook``.
    """
    import importlib

    register_estimators()
    for module_name in _PATCHED_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # v1 needs transfer_queue; without it that trainer cannot run at all
            continue
        if module.compute_advantage is not compute_advantage:
            _ORIGINAL.setdefault(module_name, module.compute_advantage)
            module.compute_advantage = compute_advantage
    from . import agent_loop  # noqa: F401  (registers "turngym_agent")


def installed() -> bool:
    """Whether verl's ``compute_advantage`` is the patched one."""
    from verl.trainer.ppo import ray_trainer

    return ray_trainer.compute_advantage is compute_advantage


def uninstall() -> None:
    """Restores verl's own ``compute_advantage`` (the estimators stay registered)."""
    import importlib

    for module_name, original in list(_ORIGINAL.items()):
        importlib.import_module(module_name).compute_advantage = original
        del _ORIGINAL[module_name]
