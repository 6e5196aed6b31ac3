"""The random policy: a uniformly random admissible action (or a random word when none listed)."""

from __future__ import annotations

import numpy as np

from turngym.policy import Conversation

__all__ = ["RandomPolicy"]

#: Used when an env cannot enumerate its actions: mostly invalid, which is the point of a baseline.
_FALLBACK_WORDS = (
    "look",
    "help",
    "inventory",
    "go north",
    "search[item]",
    "<answer>unknown</answer>",
)


class RandomPolicy:
    """Picks uniformly among ``admissible_actions``; deterministic given ``seed``."""

    privileged = False

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, batch: list[Conversation]) -> list[str]:
        actions = []
        for conversation in batch:
            options = conversation.admissible_actions or list(_FALLBACK_WORDS)
            actions.append(options[int(self.rng.integers(len(options)))])
        return actions
