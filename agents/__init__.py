"""Policies and the learner.

Light policies import eagerly; the transformers policy, the OpenAI-compatible policy, the tiny
model builder and the learner load on first use (they need torch/transformers/httpx), so
``import turngym.agents`` stays light.
"""

from turngym.agents.expert import expert
from turngym.agents.random import RandomPolicy
from turngym.policy import Conversation, GeneratedAction, Policy

__all__ = [
    "Conversation",
    "GeneratedAction",
    "HFPolicy",
    "Learner",
    "LearnerConfig",
    "OpenAIPolicy",
    "Policy",
    "PromptTemplate",
    "RandomPolicy",
    "SamplingConfig",
    "build_tiny_model",
    "expert",
    "run_bench",
]

#: Heavy public names -> the module that defines them (imported on first access).
_LAZY = {
    "HFPolicy": "turngym.agents.hf",
    "OpenAIPolicy": "turngym.agents.openai_compat",
    "Learner": "turngym.agents.learner",
    "LearnerConfig": "turngym.agents.learner_config",
    "build_tiny_model": "turngym.agents.tiny",
    "PromptTemplate": "turngym.agents.prompts",
    "SamplingConfig": "turngym.agents.sampling",
    "run_bench": "turngym.agents.bench",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'turngym.agents' has no attribute {name!r}")
