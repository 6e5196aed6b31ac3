"""The tiny offline models the agent, learner and bench tests share (built once, cached)."""

from __future__ import annotations

from pathlib import Path

try:
    import torch

    # pytest-xdist runs one worker per core; a tiny model gains nothing from more intra-op
    # threads, and oversubscribed threads slow every worker down many times over.
    torch.set_num_threads(1)
except ImportError:  # the agent extras are not installed; the tests using them skip
    pass

#: Short corridors and a 4-turn limit keep episodes short enough for CPU learning tests.
CORRIDOR_KWARGS = {"lengths": (1, 2), "max_turns": 4}


def corridor_model() -> Path:
    """A tiny chat LM for Corridor, warmed up on 30% expert / 70% random actions (built in ~5 s).

    It starts weakly informed (about half its episodes succeed), the usual point where RL
    starts after SFT, so the learning tests can measure an improvement in a few iterations.
    """
    from turngym.agents.tiny import tiny_model_dir

    return tiny_model_dir(env_kwargs=CORRIDOR_KWARGS, expert_fraction=0.3, warmup_steps=100)


def untrained_model() -> Path:
    """A tiny LM with no warm-up: its outputs are mostly malformed actions."""
    from turngym.agents.tiny import tiny_model_dir

    return tiny_model_dir(env_kwargs=CORRIDOR_KWARGS, warmup_steps=0, episodes=16)
