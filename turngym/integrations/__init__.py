"""Adapters that put turngym's envs and turn-level credit inside other trainers.

One module per trainer, each behind its own extra, none imported by the turngym core:

==========================================  =========================  ==========================
module                                      extra                      what it gives
==========================================  =========================  ==========================
:mod:`turngym.integrations.trl`             ``turngym[trl]``           ``GRPOTrainer`` rollout
                                                                       function, reward function,
                                                                       per-token credit subclass
:mod:`turngym.integrations.verl`            ``turngym[verl]``          advantage estimators, the
                                                                       ``compute_advantage``
                                                                       patch, an agent loop
:mod:`turngym.integrations.skyrl`           ``turngym[skyrl]``         skyrl-gym envs, estimators
:mod:`turngym.integrations.openenv`         ``turngym[openenv]``       OpenEnv server and client
==========================================  =========================  ==========================

Each module checks the trainer's version on import and raises
:class:`~turngym.integrations.common.IntegrationVersionError` naming both versions and the
supported range when they do not fit.
"""

__all__: list[str] = []
