"""The ALFWorld expert: plays the game's walkthrough (verified through the engine when generated)."""

from __future__ import annotations

from turngym.policy import WalkthroughExpert

__all__ = ["ALFWorldExpert"]


class ALFWorldExpert(WalkthroughExpert):
    """Plays ``info["privileged"]["walkthrough"]``; wins every generated task.

    Generated games carry the walkthrough their generator proved on the engine; official games carry
    the one ALFWorld's data set ships (``game.tw-pddl["walkthrough"]``). After a divergence (the
    expert took over a started episode) it answers ``look``, which changes nothing.
    """
