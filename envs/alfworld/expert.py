"""The ALFWorld expert: plays the game's walkthrough (verified through the engine when generated)."""

from __future__ import annotations

from turngym.envs.alfworld.env import normalize_command
from turngym.policy import Conversation

__all__ = ["ALFWorldExpert"]


class ALFWorldExpert:
    """Plays ``info["privileged"]["walkthrough"]``; wins every generated task.

    Generated games carry the walkthrough their generator proved on the engine; official games carry
    the one ALFWorld's data set ships (``game.tw-pddl["walkthrough"]``). While the episode's earlier
    actions are a prefix of the walkthrough, the next command is played; after a divergence (the
    expert took over a started episode) it answers ``look``, which changes nothing.
    """

    privileged = True

    def act(self, batch: list[Conversation]) -> list[str]:
        """One command per conversation."""
        return [self._next(conversation) for conversation in batch]

    @staticmethod
    def _next(conversation: Conversation) -> str:
        privileged = conversation.privileged or {}
        walkthrough = [normalize_command(c) for c in privileged.get("walkthrough") or []]
        admissible = {normalize_command(c): c for c in conversation.admissible_actions or []}
        done = [normalize_command(a) for a in conversation.actions]
        if len(done) < len(walkthrough) and walkthrough[: len(done)] == done:
            step = walkthrough[len(done)]
            return admissible.get(step, step)
        return "look"
