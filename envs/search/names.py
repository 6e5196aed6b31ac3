"""Fictional names composed of syllables, so no language model can know the world's facts.

Every entity of the generated world gets a name no real encyclopedia holds ("Talvor Emberlin",
"Karsomir Guild"). Words are drawn from a syllable inventory with numpy and de-duplicated on
their lowercase form, so two entities never share a name and answers stay unambiguous. Names
stay shorter than 24 characters (the conformance check's privileged-leak threshold).
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["SYLLABLES", "WordPool", "unique_words"]

_ONSETS = (
    "b",
    "br",
    "d",
    "dr",
    "f",
    "g",
    "gr",
    "h",
    "k",
    "kr",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "th",
    "v",
    "z",
    "sh",
    "st",
    "y",
    "c",
)
_VOWELS = ("a", "e", "i", "o", "u", "ae", "ei", "ou", "y")
_CODAS = ("", "", "n", "r", "l", "s", "m", "x", "th")
#: Every syllable (onset + vowel + coda), sorted so the inventory never depends on set order.
SYLLABLES: tuple[str, ...] = tuple(
    sorted({o + v + c for o, v, c in itertools.product(_ONSETS, _VOWELS, _CODAS)})
)


def unique_words(
    rng: np.random.Generator,
    count: int,
    *,
    syllables: tuple[int, int] = (2, 3),
    max_chars: int = 11,
    taken: set[str] | None = None,
) -> list[str]:
    """Draws ``count`` distinct capitalised words of ``syllables[0]..syllables[1]`` syllables.

    Args:
        rng: the generator (the world's only source of randomness).
        count: how many words.
        syllables: inclusive range of syllables per word.
        max_chars: longest word kept.
        taken: lowercase words already used elsewhere; the new words avoid them and are added.

    Returns:
        The words, in draw order (deterministic given ``rng``'s state).
    """
    taken = set() if taken is None else taken
    inventory = np.array(SYLLABLES)
    words: list[str] = []
    low, high = syllables
    while len(words) < count:
        batch = max(64, int((count - len(words)) * 1.3))
        lengths = rng.integers(low, high + 1, size=batch)
        parts = rng.integers(0, len(inventory), size=(batch, high))
        pieces = inventory[parts]
        for row, length in zip(pieces.tolist(), lengths.tolist(), strict=True):
            word = "".join(row[:length])
            if len(word) > max_chars or word in taken:
                continue
            taken.add(word)
            words.append(word.capitalize())
            if len(words) == count:
                break
    return words


class WordPool:
    """Hands out disjoint slices of unique words (one pool per world, so names never collide)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.taken: set[str] = set()

    def take(
        self, count: int, *, syllables: tuple[int, int] = (2, 3), max_chars: int = 11
    ) -> list[str]:
        """``count`` new words, distinct from every word this pool gave before."""
        return unique_words(
            self.rng, count, syllables=syllables, max_chars=max_chars, taken=self.taken
        )
