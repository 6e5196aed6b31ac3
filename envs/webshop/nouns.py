"""Offline noun extraction for WebShop's type reward, with no model download.

The original scores product *type* by the overlap of the nouns spaCy's ``en_core_web_lg`` finds
in two titles (tags ``NOUN``/``PROPN``). spaCy's English pipelines are not on PyPI, so this module
ships its own deterministic, lexicon-based tagger that needs no data file:

* a token is ``[a-z]+`` (plus ``'``/``-`` inside a word) after lowercasing; tokens with digits,
  and single letters, are numbers/units (spaCy's ``NUM``/``X``) and never nouns;
* closed-class words (determiners, prepositions, conjunctions, pronouns, auxiliaries) and a
  bundled list of adjectives, adverbs and verbs common in product listings are not nouns;
* open-class suffixes mark adjectives/adverbs/participles (``-ous -ful -less -able -ible -ive
  -ed -ly``);
* every other word (brands, product nouns, materials) is a noun, as spaCy tags most unknown
  capitalised title words ``PROPN``.

Product titles are noun-heavy and the type reward only needs the *overlap* ratio, so this
tagger and spaCy agree on the decisions that matter (same type vs different type); it is not a
general POS tagger.

Where spaCy and a pipeline are installed, :func:`noun_tagger` ``("spacy:en_core_web_lg")`` tags
with it instead, as the original does (``WebShopEnv(noun_tagger=...)``): the name of an installed
pipeline package or the path of one saved with ``nlp.to_disk``. Nothing is downloaded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache, lru_cache

from turngym.error import DependencyNotInstalled, InvalidArgumentError

__all__ = ["title_nouns", "noun_tagger", "NounTagger", "NON_NOUNS", "SPACY_NOUN_TAGS"]

#: A title in, its nouns out (lowercased, in order, duplicates kept).
NounTagger = Callable[[str], tuple[str, ...]]
#: The coarse tags the original counts as nouns (its list also names "PNOUN", which no model emits).
SPACY_NOUN_TAGS = frozenset({"NOUN", "PROPN"})

_TOKEN = re.compile(r"[a-z0-9]+(?:['\-][a-z0-9]+)*")
_NON_NOUN_SUFFIXES = ("ous", "ful", "less", "able", "ible", "ive", "ed", "ly")
#: Suffix rules never apply to these nouns.
_SUFFIX_EXCEPTIONS = frozenset(
    "bed seed feed reed shed sled bread thread tread hood wood food cable table bottle bubble "
    "needle handle candle bundle saddle cradle nozzle puzzle family jelly belly rally lily "
    "olive jewelry supply assembly butterfly dragonfly holly bully reply ally".split()
)
#: Closed-class words and common listing modifiers (adjectives, adverbs, verbs, colours, sizes).
NON_NOUNS: frozenset[str] = frozenset(
    """
    a an the this that these those some any each every all both no not nor or and but so yet
    for with without of in on at by from to into onto over under about above below between
    through during before after against among around near off out up down per via than as
    i me my we our you your he him his she her it its they them their who whom which what
    is are was were be been being am do does did have has had will would can could should
    may might must shall also only just very too more most less least much many few
    x vs etc plus
    new best top great good perfect premium high low long short big small large medium little
    mini tiny huge extra super ultra heavy light lightweight soft hard thick thin wide narrow
    deep shallow warm cool cold hot fresh free dry wet clean easy quick fast slow natural
    organic pure real true full half double single triple dual multi non anti pro classic
    modern vintage rustic simple basic standard deluxe luxury elegant cute pretty beautiful
    stylish casual formal comfortable comfy durable sturdy strong safe portable compact
    adjustable waterproof wireless electric digital smart automatic manual universal
    original plain fine rich dark bright sweet sour salty spicy mild bold creamy crunchy
    black white grey gray red pink beige brown green blue navy purple yellow gold golden
    silver ivory burgundy teal orange multicolor clear transparent
    men mens women womens kids unisex adult baby boys girls
    everyday daily perfect ready available new improved
    made make use used using fit fits keep keeps get gets give gives let lets
    sensitive resistant friendly proof efficient flexible slim relaxed loose tight
    vegan keto raw whole mixed assorted
    """.split()
)


def _is_noun(token: str) -> bool:
    if len(token) < 2 or any(ch.isdigit() for ch in token) or token in NON_NOUNS:
        return False
    if token.endswith("'s"):
        return _is_noun(token[:-2])
    head = token.split("-")[-1]
    if head in NON_NOUNS:
        return False
    if head not in _SUFFIX_EXCEPTIONS and len(head) > 4 and head.endswith(_NON_NOUN_SUFFIXES):
        return False
    return True


@lru_cache(maxsize=262_144)
def title_nouns(title: str) -> tuple[str, ...]:
    """The nouns of a product title, lowercased, in order (duplicates kept, as spaCy's tokens are).

    >>> title_nouns("Velora Gluten Free Dark Chocolate Bar, 12 Count")
    ('velora', 'gluten', 'chocolate', 'bar', 'count')
    """
    return tuple(token for token in _TOKEN.findall(title.lower()) if _is_noun(token))


def noun_tagger(spec: str) -> NounTagger:
    """The noun tagger named by ``spec``: ``"builtin"`` (:func:`title_nouns`) or ``"spacy:<model>"``.

    ``<model>`` is an installed spaCy pipeline (``en_core_web_lg`` is the original's) or the path
    of a pipeline saved with ``nlp.to_disk``; it is loaded once per process.
    """
    if spec == "builtin":
        return title_nouns
    if isinstance(spec, str) and spec.startswith("spacy:") and spec[len("spacy:") :].strip():
        return _spacy_tagger(spec[len("spacy:") :].strip())
    raise InvalidArgumentError(
        f"noun_tagger={spec!r} is not valid; use 'builtin' (no model needed) or 'spacy:<model>' "
        "with an installed spaCy pipeline, e.g. 'spacy:en_core_web_lg' (the original's), or "
        "'spacy:/path/to/pipeline' saved with nlp.to_disk()."
    )


@cache
def _spacy_tagger(model: str) -> NounTagger:
    try:
        import spacy
    except ImportError as error:
        raise DependencyNotInstalled(
            f"noun_tagger='spacy:{model}' needs spaCy: pip install spacy, then a pipeline "
            f"(python -m spacy download {model}); noun_tagger='builtin' needs neither."
        ) from error
    try:
        nlp = spacy.load(model, exclude=["parser", "ner", "lemmatizer", "textcat"])
    except OSError as error:
        raise InvalidArgumentError(
            f"spaCy could not load the pipeline {model!r} ({error}). Install it first "
            f"(python -m spacy download {model}, which needs the network) or pass the path of "
            "a pipeline saved with nlp.to_disk(); noun_tagger='builtin' needs no model."
        ) from error

    @lru_cache(maxsize=262_144)
    def tag(title: str) -> tuple[str, ...]:
        return tuple(token.text.lower() for token in nlp(title) if token.pos_ in SPACY_NOUN_TAGS)

    return tag
