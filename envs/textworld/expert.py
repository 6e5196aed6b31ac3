"""The TextWorld expert: follows the game's walkthrough, re-plans with TextWorld when it diverged."""

from __future__ import annotations

from typing import Any

from turngym.policy import Conversation, WalkthroughExpert

__all__ = ["TextWorldExpert"]


class TextWorldExpert(WalkthroughExpert):
    """Plays the walkthrough from ``info["privileged"]``; wins every generated game.

    Once the episode's actions are not a prefix of the walkthrough (the expert took over a started
    episode, or a command was refused), it plays the first command of ``policy_commands``,
    TextWorld's own winning plan from the current state.
    """

    def off_walkthrough(self, privileged: dict[str, Any], conversation: Conversation) -> str:
        plan = privileged.get("policy_commands") or []
        return plan[0] if plan else "look"
