"""The TextWorld expert: follows the game's walkthrough, re-plans with TextWorld when it diverged."""

from __future__ import annotations

from turngym.envs.textworld.env import normalize_command
from turngym.policy import Conversation

__all__ = ["TextWorldExpert"]


class TextWorldExpert:
    """Plays the walkthrough from ``info["privileged"]``; wins every generated game.

    While the episode's earlier actions are a prefix of the walkthrough, the next walkthrough
    command is played. Once they are not (the expert took over a started episode, or a command
    was refused), it plays the first command of ``policy_commands``, TextWorld's own winning plan
    from the current state.
    """

    privileged = True

    def act(self, batch: list[Conversation]) -> list[str]:
        """One command per conversation."""
        return [self._next(conversation) for conversation in batch]

    @staticmethod
    def _next(conversation: Conversation) -> str:
        privileged = conversation.privileged or {}
        walkthrough = [normalize_command(c) for c in privileged.get("walkthrough") or []]
        plan = privileged.get("policy_commands") or []
        admissible = {normalize_command(c): c for c in conversation.admissible_actions or []}
        done = [normalize_command(a) for a in conversation.actions]
        if len(done) < len(walkthrough) and walkthrough[: len(done)] == done:
            step = walkthrough[len(done)]
            if step in admissible:
                return admissible[step]
        if plan:
            return plan[0]
        return "look"
