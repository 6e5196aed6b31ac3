"""Policies for SearchQA: the hop-chain expert and the no-search baseline.

:class:`SearchExpert` is privileged: it reads the question's ``plan`` (start entities and relation
names) but *not* the answer. Each turn it replays the conversation, collects the passages seen so
far, and follows the plan: it searches for the next entity's name, finds that entity's article
among the results (by title), and reads the relation's value from the text with the world's
patterns. The last value (or, for a comparison, the entity with the earlier/later date) is its
answer, so its exact match measures that the questions are answerable from the corpus by search.
On real data (no plan) it searches the question once and answers the gold answer (an oracle).

:class:`NoSearchPolicy` answers at once with a guess taken from the question (the first name it
mentions): the "answer from memory" baseline, near 0 on bridge questions of the fictional world.
"""

from __future__ import annotations

import re
from typing import Any

from turngym.envs.search.answer import normalize_answer
from turngym.envs.search.world import MONTHS, RELATIONS
from turngym.policy import Conversation

__all__ = ["SearchExpert", "NoSearchPolicy", "read_passages", "evaluate"]

_DOC = re.compile(
    r"^Doc \d+ \(id: (?P<id>[^,]*), title: (?P<title>.*?)\) (?P<text>.*)$", re.MULTILINE
)
_NAME = re.compile(r"(?:[A-Z][a-z]+ )*[A-Z][a-z]+")


def read_passages(conversation: Conversation) -> dict[str, str]:
    """Normalised title -> text of every passage shown in the conversation so far."""
    found: dict[str, str] = {}
    for message in conversation.messages:
        if message["role"] == "user" and "<information>" in message["content"]:
            for match in _DOC.finditer(message["content"]):
                found.setdefault(normalize_answer(match["title"]), match["text"])
    return found


def _question(conversation: Conversation) -> str:
    text = conversation.instructions or conversation.observation
    return text.rsplit("Question:", 1)[-1].strip()


def _chronology(value: str) -> tuple[int, int, int]:
    parts = value.split()
    if len(parts) == 3 and parts[1] in MONTHS:
        return int(parts[2]), MONTHS.index(parts[1]), int(parts[0])
    return int(parts[-1]), 0, 0


class SearchExpert:
    """Follows the question's hop chain with searches and reads the answer from the passages."""

    privileged = True

    def act(self, batch: list[Conversation]) -> list[str]:
        return [self._act(conversation) for conversation in batch]

    def _act(self, conversation: Conversation) -> str:
        privileged = conversation.privileged or {}
        plan = privileged.get("plan")
        searched = {
            normalize_answer(a[len("<search>") : -len("</search>")])
            for a in conversation.actions
            if a.startswith("<search>")
        }
        if not plan:
            if not searched:
                return f"<search>{_question(conversation)[:500]}</search>"
            return f"<answer>{(privileged.get('golden_answers') or ['unknown'])[0]}</answer>"
        step = self._next(plan, read_passages(conversation), searched)
        return step if step.startswith("<") else f"<answer>{step}</answer>"

    @staticmethod
    def _read(
        name: str, relation: str, passages: dict[str, str], searched: set[str]
    ) -> tuple[str, bool]:
        """(value, True) when ``name``'s article is known, else (action to take, False)."""
        text = passages.get(normalize_answer(name))
        if text is None:
            if normalize_answer(name) in searched:
                return "unknown", False  # searched already and the article did not come up
            return f"<search>{name}</search>", False
        match = RELATIONS[relation].pattern.search(text)
        return (match["value"], True) if match else ("unknown", False)

    def _next(self, plan: dict[str, Any], passages: dict[str, str], searched: set[str]) -> str:
        resolved = []
        for branch in plan["branches"]:
            name = branch["start"]
            for relation in branch["relations"]:
                name, ok = self._read(name, relation, passages, searched)
                if not ok:
                    return name
            resolved.append(name)
        attribute = plan.get("attribute")
        if attribute is None:
            return resolved[0]
        dated = []
        for name in resolved:
            value, ok = self._read(name, attribute, passages, searched)
            if not ok:
                return value
            dated.append((_chronology(value), name))
        pick = min if plan.get("order") == "earlier" else max
        return pick(dated, key=lambda pair: pair[0])[1]


class NoSearchPolicy:
    """Answers immediately, guessing the first name the question mentions (no search)."""

    privileged = False

    def act(self, batch: list[Conversation]) -> list[str]:
        actions = []
        for conversation in batch:
            question = _question(conversation)
            words = question.split(" ", 1)
            names = _NAME.findall(words[1] if len(words) > 1 else question)
            actions.append(f"<answer>{names[0] if names else 'unknown'}</answer>")
        return actions


def evaluate(env: Any, policy: Any, task_ids: list[str]) -> dict[str, float]:
    """Plays ``policy`` once on each task of ``env`` (unwrapped or not); returns mean EM, F1, turns.

    Builds each :class:`Conversation` as the rollout runner does (``privileged`` only for a
    privileged policy), one episode at a time, so a fixed list of questions can be scored.
    """
    totals = {"exact_match": 0.0, "f1": 0.0, "turns": 0.0, "success": 0.0}
    for task_id in task_ids:
        observation, info = env.reset(options={"task": task_id})
        conversation = Conversation(
            messages=[
                {"role": "system", "content": info["instructions"]},
                {"role": "user", "content": observation},
            ],
            task_id=task_id,
        )
        done = False
        while not done:
            if getattr(policy, "privileged", False):
                conversation.privileged = info["privileged"]
            action = policy.act([conversation])[0]
            observation, _, terminated, truncated, info = env.step(action)
            conversation.messages += [
                {"role": "assistant", "content": action},
                {"role": "user", "content": observation},
            ]
            done = terminated or truncated
        totals["exact_match"] += info.get("exact_match", 0.0)
        totals["f1"] += info.get("f1", 0.0)
        totals["turns"] += info["turn"]
        totals["success"] += bool(info["success"])
    return {key: value / max(1, len(task_ids)) for key, value in totals.items()}
