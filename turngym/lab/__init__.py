"""The credit lab: what each credit method buys, measured with the credit isolated.

A policy whose capacity is not the question (:class:`TabularPolicy`, one logit per
(``state_key``, admissible action); :class:`LinearPolicy`, fixed hashed features of
(observation, action)) is trained by the same update for every method (REINFORCE or PPO with
Adam), on a fixed task set, with paired seeds; only the advantage differs. It uses
``turngym.rollout`` and ``turngym.credit`` exactly as a user does, so any env with admissible
actions and any credit function ``fn(batch) -> Tensor[n_traj, max_turns]`` (``--method
module:fn``) can be compared. See ``turngym lab --help`` and ``benchmarks/results/credit_lab/``.

>>> from turngym.lab import LabConfig, run_one
>>> config = LabConfig("turngym/Corridor-v0", {"lengths": [2], "max_turns": 6}, episodes=16,
...                    tasks=2, group_size=4)
>>> run = run_one(config, "grpo", seed=0)
>>> run["curve"]["episodes"]
[8, 16]
"""

from .cli import PRESETS, run_lab
from .methods import BUILTIN, LabMethod, resolve_method
from .policies import LinearPolicy, TabularPolicy, make_policy
from .stats import interval, paired, run_scores, summarize
from .train import LabConfig, anchor_statistics, policy_update, run_one

__all__ = [
    "BUILTIN",
    "PRESETS",
    "LabConfig",
    "LabMethod",
    "LinearPolicy",
    "TabularPolicy",
    "anchor_statistics",
    "interval",
    "make_policy",
    "paired",
    "policy_update",
    "resolve_method",
    "run_lab",
    "run_one",
    "run_scores",
    "summarize",
]
