"""turngym: Gymnasium-style environments for multi-turn agentic RL with LLM agents.

    >>> import gymnasium, turngym
    >>> env = gymnasium.make("turngym/TextWorld-Easy-v1")          # doctest: +SKIP
    >>> trajs = turngym.rollout("turngym/TextWorld-Easy-v1", turngym.agents.RandomPolicy(),
    ...                         num_episodes=8, group_size=4)       # doctest: +SKIP

Importing turngym registers every env id and imports neither torch, transformers nor docker.
"""

from turngym import error
from turngym.core import Outcome, Start, TextSpace, TurnEnv, stable_hash
from turngym.policy import Conversation, GeneratedAction, Policy
from turngym.pool import EnvPool
from turngym.registration import list_envs, make, register
from turngym.rollout import rollout
from turngym.trajectory import Trajectory, Turn, load_trajectories, save_trajectories
from turngym.wrappers import GateReward

__version__ = "0.1.0"

__all__ = [
    "Conversation",
    "EnvPool",
    "GateReward",
    "GeneratedAction",
    "Outcome",
    "Policy",
    "Start",
    "TextSpace",
    "Trajectory",
    "Turn",
    "TurnEnv",
    "error",
    "list_envs",
    "load_trajectories",
    "make",
    "register",
    "rollout",
    "save_trajectories",
    "stable_hash",
    "__version__",
]

import turngym.envs  # noqa: E402,F401  (registers every turngym/ id)


def __getattr__(name: str):
    # Subpackages that may pull heavy dependencies load on first use.
    if name in {"agents", "credit", "testing", "cli"}:
        import importlib

        return importlib.import_module(f"turngym.{name}")
    raise AttributeError(f"module 'turngym' has no attribute {name!r}")
