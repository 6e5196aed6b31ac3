"""Policies and the learner.

Light policies import eagerly; the transformers policy, the OpenAI-compatible policy and the
learner load on first use (they need the ``[train]`` extra).
"""

from turngym.agents.expert import expert
from turngym.agents.random import RandomPolicy
from turngym.policy import Conversation, GeneratedAction, Policy

__all__ = ["Conversation", "GeneratedAction", "Policy", "RandomPolicy", "expert"]
