"""WebShop's outcome reward, with the semantics of the original ``web_agent_site/engine/goal.py``.

For a bought product with chosen options, against a goal with attributes ``A``, options ``O``
and price bound ``P``::

    R = r_type * (N_attr + N_opt + 1[price <= P]) / (|A| + |O| + 1)

* ``N_attr``: goal attributes that fuzzy-match one of the product's ``Attributes``
  (``rapidfuzz.fuzz.token_set_ratio > 85``) or appear verbatim in its lowercased title, bullet
  features or description.
* ``N_opt``: chosen option values (after colour normalisation) that match a goal option, exactly
  for the ``size`` option, by token-set ratio > 85 otherwise, or that appear in the title,
  features or description.
* ``r_type``: ``title_score`` = share of the goal title's nouns (see :mod:`.nouns`) found among
  the bought title's nouns. ``r_type`` is 1.0, lowered to 0.5 unless the query matches, >= 2
  category levels match or ``title_score > 0.2``; it is then 0.1 if ``title_score < 0.1`` and 0.0
  if ``title_score == 0``, as in the original (those two rules apply even when the query matches).

The original can exceed 1.0 when several chosen options match (``N_opt > |O|``); the env's outcome
clips to [0, 1] and reports the unclipped value in ``raw``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rapidfuzz import fuzz

from turngym.envs.webshop.nouns import NounTagger, title_nouns

__all__ = [
    "RewardBreakdown",
    "normalize_color",
    "type_reward",
    "attribute_matches",
    "option_matches",
    "webshop_reward",
    "best_options",
    "FUZZY_THRESHOLD",
]

FUZZY_THRESHOLD = 85
EXACT_MATCH_OPTIONS = ("size",)
CATEGORY_SEPARATOR = "›"
#: Colour names, longest first so "navy blue" wins over "blue".
COLOR_NAMES: tuple[str, ...] = tuple(
    sorted(
        """black white grey gray red pink beige brown green blue navy purple yellow gold silver
        ivory burgundy teal orange tan khaki cream coral maroon olive mint lavender turquoise
        charcoal champagne bronze copper rose wine camel nude multicolor clear transparent
        navy_blue light_blue dark_blue sky_blue royal_blue dark_green light_grey dark_grey
        light_gray dark_gray hot_pink light_pink dark_brown off_white rose_gold army_green""".split(),
        key=lambda name: (-len(name), name),
    )
)
COLOR_NAMES = tuple(name.replace("_", " ") for name in COLOR_NAMES)


@dataclass(frozen=True)
class RewardBreakdown:
    """Every part of WebShop's reward for one purchase."""

    total: float  # the outcome: raw clipped to [0, 1]
    raw: float  # the original formula, unclipped
    r_type: float
    title_score: float
    query_match: bool
    category_match: bool
    n_attr: int
    n_option: int
    price_ok: bool
    n_goal_attr: int
    n_goal_option: int

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for ``info``)."""
        return asdict(self)


def normalize_color(value: str) -> str:
    """Maps a value holding a colour name to that colour (``"matte navy blue"`` -> ``"navy blue"``)."""
    for name in COLOR_NAMES:
        if name in value:
            return name
    return value


def _text_fields(product: Mapping[str, Any]) -> tuple[str, str, str]:
    bullets = product.get("BulletPoints", [])
    bullets = bullets if isinstance(bullets, str) else " ".join(bullets)
    return (
        str(product.get("Title", "")).lower(),
        bullets.lower(),
        str(product.get("Description", "")).lower(),
    )


def _in_text(value: str, fields: tuple[str, str, str]) -> bool:
    return any(value in field for field in fields)


def type_reward(
    product: Mapping[str, Any], goal: Mapping[str, Any], nouns: NounTagger = title_nouns
) -> dict[str, Any]:
    """``r_type`` and its inputs: query match, category match, noun overlap of the titles.

    ``nouns`` tags the titles (:func:`.nouns.title_nouns`, or a spaCy pipeline through
    :func:`.nouns.noun_tagger`).
    """
    query_match = product.get("query") == goal.get("query")
    bought_levels = {
        level.strip()
        for level in str(product.get("product_category", "")).split(CATEGORY_SEPARATOR)
    }
    goal_levels = {
        level.strip() for level in str(goal.get("product_category", "")).split(CATEGORY_SEPARATOR)
    }
    category_match = len(bought_levels & goal_levels) >= 2
    bought_nouns = set(nouns(str(product.get("name", product.get("Title", "")))))
    goal_nouns = nouns(str(goal.get("name", "")))
    # The original divides the size of the *set* intersection by the goal's token count.
    title_score = 0.2 if not goal_nouns else len(bought_nouns & set(goal_nouns)) / len(goal_nouns)
    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return {
        "r_type": r_type,
        "query_match": query_match,
        "category_match": category_match,
        "title_score": title_score,
    }


def attribute_matches(product: Mapping[str, Any], goal_attributes: Sequence[str]) -> int:
    """How many goal attributes the product has (fuzzy match to its attributes, or in its text)."""
    fields = _text_fields(product)
    count = 0
    for wanted in goal_attributes:
        if any(
            fuzz.token_set_ratio(have, wanted) > FUZZY_THRESHOLD
            for have in product.get("Attributes", [])
        ):
            count += 1
        elif _in_text(wanted, fields):
            count += 1
    return count


def _goal_option_values(goal_options: Mapping[str, str] | Sequence[str]) -> list[str]:
    values = (
        list(goal_options.values()) if isinstance(goal_options, Mapping) else list(goal_options)
    )
    return [normalize_color(str(value)) for value in values]


def _option_counts(
    name: str, value: str, goal_values: Sequence[str], fields: tuple[str, str, str]
) -> bool:
    value = normalize_color(value)
    if name.lower() in EXACT_MATCH_OPTIONS:
        if value in goal_values:
            return True
    elif any(fuzz.token_set_ratio(wanted, value) > FUZZY_THRESHOLD for wanted in goal_values):
        return True
    return _in_text(value, fields)


def option_matches(
    product: Mapping[str, Any],
    goal_options: Mapping[str, str] | Sequence[str],
    chosen: Mapping[str, str],
) -> int:
    """How many chosen option values count as goal options (see the module doc)."""
    goal_values = _goal_option_values(goal_options)
    fields = _text_fields(product)
    return sum(_option_counts(name, value, goal_values, fields) for name, value in chosen.items())


def webshop_reward(
    product: Mapping[str, Any],
    goal: Mapping[str, Any],
    price: float,
    chosen: Mapping[str, str],
    nouns: NounTagger = title_nouns,
) -> RewardBreakdown:
    """WebShop's reward for buying ``product`` at ``price`` with options ``chosen``.

    ``nouns`` tags titles for ``r_type`` (see :func:`type_reward`).

    >>> product = {"Title": "Velora Dark Chocolate Bar", "name": "Velora Dark Chocolate Bar",
    ...            "Attributes": ["gluten free"], "BulletPoints": [], "Description": "",
    ...            "query": "dark chocolate bar", "product_category": "a › b › c"}
    >>> goal = dict(product, attributes=["gluten free", "dairy free"],
    ...             goal_options={"flavor": "mint"}, price_upper=20.0)
    >>> webshop_reward(product, goal, 10.0, {"flavor": "mint"}).total  # (1 + 1 + 1) / 4
    0.75
    """
    type_parts = type_reward(product, goal, nouns)
    goal_attributes = list(goal.get("attributes", []))
    goal_options = goal.get("goal_options", {})
    n_attr = attribute_matches(product, goal_attributes)
    n_option = option_matches(product, goal_options, chosen)
    price_upper = float(goal.get("price_upper", 1_000_000.0))
    price_ok = bool(price <= price_upper) if price_upper > 0 else True
    denominator = len(goal_attributes) + len(goal_options) + 1
    raw = type_parts["r_type"] * (n_attr + n_option + int(price_ok)) / denominator
    return RewardBreakdown(
        total=min(1.0, max(0.0, raw)),
        raw=raw,
        r_type=type_parts["r_type"],
        title_score=type_parts["title_score"],
        query_match=type_parts["query_match"],
        category_match=type_parts["category_match"],
        n_attr=n_attr,
        n_option=n_option,
        price_ok=price_ok,
        n_goal_attr=len(goal_attributes),
        n_goal_option=len(goal_options),
    )


def best_options(product: Mapping[str, Any], goal: Mapping[str, Any]) -> dict[str, str]:
    """For each option of ``product``, a value that counts as a goal option (an exact one first)."""
    goal_values = _goal_option_values(goal.get("goal_options", {}))
    fields = _text_fields(product)
    chosen: dict[str, str] = {}
    for name, values in product.get("options", {}).items():
        exact = [value for value in values if normalize_color(value) in goal_values]
        counting = exact or [
            value for value in values if _option_counts(name, value, goal_values, fields)
        ]
        if counting:
            chosen[name] = counting[0]
    return chosen
