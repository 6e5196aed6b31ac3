"""Action parsing (strict, Search-R1 tags) and answer scoring (SQuAD exact match and F1).

An action is exactly one ``<search>query</search>`` or ``<answer>text</answer>`` block, optionally
preceded by one ``<think>...</think>`` block, with nothing but whitespace around them.

>>> parse_action("<think>who wrote it?</think> <search>The Zeldom Harbor</search>").kind
'search'
>>> parse_action("Sure! <answer>Paris</answer>").error
'text outside the tags: write only <search>...</search> or <answer>...</answer> (optionally after <think>...</think>)'
>>> round(f1_score("the Zeldom Harbor", ["Zeldom harbor!"]), 2), exact_match("The  Zeldom", ["zeldom"])
(1.0, 1.0)
"""

from __future__ import annotations

import collections
import re
import string
from dataclasses import dataclass

__all__ = [
    "Action",
    "parse_action",
    "normalize_answer",
    "exact_match",
    "f1_score",
    "MAX_QUERY_CHARS",
]

#: Longest query or answer accepted (longer ones are invalid with feedback).
MAX_QUERY_CHARS = 1_000
_TAGS = ("think", "search", "answer", "information")
_ANY_TAG = re.compile(r"</?\s*(?:" + "|".join(_TAGS) + r")\s*>", re.IGNORECASE)
_ACTION = re.compile(
    r"\s*(?:<think>(?P<think>.*?)</think>\s*)?<(?P<kind>search|answer)>(?P<body>.*?)</(?P=kind)>\s*",
    re.DOTALL,
)
_BLOCK = re.compile(r"<(search|answer)>(.*?)</\1>", re.DOTALL)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


@dataclass(frozen=True)
class Action:
    """A parsed action: ``kind`` is ``"search"`` or ``"answer"``; ``error`` is set when invalid."""

    kind: str | None
    body: str = ""
    error: str | None = None


def parse_action(text: str) -> Action:
    """Parses one action strictly; anything but exactly one tag block is an :class:`Action` with an error."""
    if not text.strip():
        return Action(None, error="empty action")
    match = _ACTION.fullmatch(text)
    if match is not None and not _ANY_TAG.search(match["body"] + (match["think"] or "")):
        kind, body = match["kind"], match["body"].strip()
        if not body:
            return Action(
                None,
                error=f"empty {kind}: put a {'query' if kind == 'search' else 'text'} between the tags",
            )
        if len(body) > MAX_QUERY_CHARS:
            return Action(
                None, error=f"{kind} of {len(body)} characters; the limit is {MAX_QUERY_CHARS}"
            )
        return Action(kind, body)
    if not _ANY_TAG.search(text):
        return Action(None, error="no <search> or <answer> tag")
    blocks = [b for b in _BLOCK.findall(text) if not _ANY_TAG.search(b[1])]
    if len(blocks) > 1:
        return Action(
            None, error="more than one action: give one <search> or one <answer> per turn"
        )
    if match is not None:
        return Action(None, error="tags nested inside another tag")
    if len(re.findall(r"<(?:search|answer)>", text)) != len(
        re.findall(r"</(?:search|answer)>", text)
    ):
        return Action(
            None, error="unbalanced tags: every <search> or <answer> needs its closing tag"
        )
    return Action(
        None,
        error="text outside the tags: write only <search>...</search> or "
        "<answer>...</answer> (optionally after <think>...</think>)",
    )


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation and articles, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold_answers: list[str]) -> float:
    """1.0 when the normalised prediction equals any normalised gold answer."""
    guess = normalize_answer(prediction)
    return float(any(guess == normalize_answer(gold) for gold in gold_answers))


def f1_score(prediction: str, gold_answers: list[str]) -> float:
    """Best token-level F1 (SQuAD) of the prediction against the gold answers."""
    guess = normalize_answer(prediction).split()
    best = 0.0
    for gold in gold_answers:
        truth = normalize_answer(gold).split()
        common = sum((collections.Counter(guess) & collections.Counter(truth)).values())
        if not guess or not truth:
            best = max(best, float(guess == truth))
            continue
        if common:
            precision, recall = common / len(guess), common / len(truth)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best
