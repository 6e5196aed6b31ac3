"""The WebShop expert: search the instruction, open the target, choose its options, buy.

It reads ``privileged`` (the target's ASIN, its title inside ``goal`` and ``target_options``):
searches the instruction first, as a person would; if the target is not on the first results page
it searches the target's title instead (then pages through the results), opens the target,
clicks the values of ``target_options`` (the goal's own values where the target has them) and
buys. On the generated catalogs this scores 1.0 on every task; on real data a human goal may ask
for a value the target lacks, which no purchase can satisfy.
"""

from __future__ import annotations

import json

from turngym.policy import Conversation

__all__ = ["WebShopExpert"]


class WebShopExpert:
    """A privileged policy for ``turngym/WebShop-*`` (see the module doc)."""

    privileged = True

    def act(self, batch: list[Conversation]) -> list[str]:
        """One action per conversation."""
        return [self._act(conversation) for conversation in batch]

    def _act(self, conversation: Conversation) -> str:
        secret = conversation.privileged or {}
        target = str(secret.get("target_asin", "")).lower()
        goal = json.loads(secret.get("goal", "{}"))
        options: dict[str, str] = json.loads(secret.get("target_options", "{}"))
        admissible = conversation.admissible_actions or []
        history = conversation.actions
        searches = [a for a in history if a.startswith("search[")]
        if any(a.startswith("search[") for a in admissible):
            if not searches:
                return admissible[0]  # the instruction itself
            return f"search[{goal.get('name', '')}]"
        if "click[buy now]" in admissible:
            opened = max(
                (i for i, a in enumerate(history) if a == f"click[{target}]"), default=None
            )
            if opened is None:
                return "click[< prev]"
            chosen = set(history[opened + 1 :])
            for value in options.values():
                click = f"click[{' '.join(value.split()).lower()}]"
                if click not in chosen and click in admissible:
                    return click
            return "click[buy now]"
        if set(admissible) == {"click[back to search]", "click[< prev]"}:
            return "click[< prev]"  # a description/features/reviews page
        if f"click[{target}]" in admissible:
            return f"click[{target}]"
        if len(searches) >= 2 and "click[next >]" in admissible:
            return "click[next >]"
        return "click[back to search]"
