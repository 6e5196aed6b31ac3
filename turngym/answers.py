"""SQuAD answer scoring, shared by the envs that grade a free-text answer (SearchQA's reward,
the orchestra's aggregation reward): normalisation, exact match and token F1, as the SQuAD
evaluation script defines them (lowercase, drop punctuation and the articles a/an/the, split on
whitespace; F1 of two empty answers is 1, of one empty answer 0).

>>> normalize_answer("The  Zeldom-Harbor, an Atlas!")
'zeldomharbor atlas'
>>> round(f1_score("the Blue river", ["blue river delta"]), 4), exact_match("The  Zeldom", ["zeldom"])
(0.8, 1.0)
"""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Sequence

__all__ = ["exact_match", "f1_score", "normalize_answer"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation and articles, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold_answers: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals any normalised gold answer."""
    guess = normalize_answer(prediction)
    return float(any(guess == normalize_answer(gold) for gold in gold_answers))


def f1_score(prediction: str, gold_answers: Sequence[str]) -> float:
    """Best token-level F1 (SQuAD) of the prediction against the gold answers."""
    guess = normalize_answer(prediction).split()
    best = 0.0
    for gold in gold_answers:
        truth = normalize_answer(gold).split()
        if not guess or not truth:
            best = max(best, float(guess == truth))
            continue
        common = sum((collections.Counter(guess) & collections.Counter(truth)).values())
        if common:
            precision, recall = common / len(guess), common / len(truth)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best
