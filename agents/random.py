"""The random policy: a baseline that speaks each env family's action syntax.

================  ================================================================================
env lists its     a uniformly random admissible action (TextWorld, ALFWorld, WebShop, Corridor,
actions           the orchestra's orchestrator)
SearchQA          (instructions name ``<search>`` and ``<answer>``) the first action searches; later
syntax            ones search (a few random words of the question and the passages shown) or, with
                  probability ``answer_probability``, answer with a random title of a retrieved
                  passage, so its score is what blind retrieval-and-guessing gets
SWE tool-call     (instructions name ``{"tool": ...}``) a random JSON call: ``bash`` with a look-around
syntax            command, ``view`` of a file named in the observations, or ``submit`` with
                  probability ``submit_probability``
anything else     a random word from a small fallback list (mostly invalid: that is the point)
================  ================================================================================

The family is told from the conversation's instructions (the syntax an env teaches), not from the
env id, so it works for custom envs that use the same syntax.
"""

from __future__ import annotations

import json
import re

import numpy as np

from turngym.policy import Conversation

__all__ = ["RandomPolicy"]

#: Used when an env cannot enumerate its actions and its syntax is not one of the above.
_FALLBACK_WORDS = (
    "look",
    "help",
    "inventory",
    "go north",
    "search[item]",
    "<answer>unknown</answer>",
)
#: ``Doc i (id: ..., title: <title>) text`` lines of SearchQA's <information> blocks.
_TITLE = re.compile(r"title: ([^\n)]{1,200})\)")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{3,40}")
_PATH = re.compile(r"[\w./-]{1,150}\.(?:py|txt|cfg|toml|md|rst|json|ini)\b")
_SHELL = ("ls", "ls -R | head -50", "git status", "git diff", "python -m pytest -q -x", "pwd")
_TEXT_CHARS = 20_000  # of each message scanned for words, titles and paths (bounded work)


def _user_text(conversation: Conversation) -> list[str]:
    return [
        str(m.get("content", ""))[:_TEXT_CHARS]
        for m in conversation.messages
        if m.get("role") == "user"
    ]


class RandomPolicy:
    """A random action in the env family's syntax; deterministic given ``seed``.

    Args:
        seed: seeds the policy's generator.
        answer_probability: SearchQA: chance that a turn after the first answers.
        submit_probability: SWE: chance that a turn submits.
    """

    privileged = False

    def __init__(
        self, seed: int = 0, answer_probability: float = 0.3, submit_probability: float = 0.1
    ) -> None:
        self.rng = np.random.default_rng(seed)
        self.answer_probability = float(answer_probability)
        self.submit_probability = float(submit_probability)

    def act(self, batch: list[Conversation]) -> list[str]:
        return [self._one(conversation) for conversation in batch]

    def _choice(self, options: list[str] | tuple[str, ...]) -> str:
        return options[int(self.rng.integers(len(options)))]

    def _one(self, conversation: Conversation) -> str:
        if conversation.admissible_actions:
            return self._choice(conversation.admissible_actions)
        system = next(
            (str(m.get("content", "")) for m in conversation.messages if m.get("role") == "system"),
            "",
        )
        if "<search>" in system and "<answer>" in system:
            return self._search_action(conversation)
        if '"tool"' in system:
            return self._tool_call(conversation)
        return self._choice(_FALLBACK_WORDS)

    def _search_action(self, conversation: Conversation) -> str:
        texts = _user_text(conversation)
        titles = sorted({t.strip() for text in texts for t in _TITLE.findall(text) if t.strip()})
        if titles and self.rng.random() < self.answer_probability:
            return f"<answer>{self._choice(titles)}</answer>"
        words = sorted({w for text in texts for w in _WORD.findall(text)})
        if not words:
            return "<search>history</search>"
        count = int(self.rng.integers(1, 4))
        return f"<search>{' '.join(self._choice(words) for _ in range(count))}</search>"

    def _tool_call(self, conversation: Conversation) -> str:
        draw = self.rng.random()
        if draw < self.submit_probability:
            return json.dumps({"tool": "submit"})
        paths = sorted({p for text in _user_text(conversation) for p in _PATH.findall(text)})
        if paths and draw < 0.55:
            return json.dumps({"tool": "view", "path": self._choice(paths)})
        return json.dumps({"tool": "bash", "command": self._choice(_SHELL)})
