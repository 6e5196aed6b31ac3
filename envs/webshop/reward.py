"""WebShop's outcome reward, equal to ``get_reward`` of the original ``web_agent_site/engine/goal.py``.

For a bought product with chosen option values, against a goal with attributes ``A``, options ``O``
and price bound ``P``::

    R = r_type * (N_attr + N_opt + 1[price <= P]) / (|A| + |O| + 1)

* ``N_attr``: goal attributes ``g`` with ``token_set_ratio(p, g) > 85`` for one of the product's
  ``Attributes`` ``p``, or, failing that, ``g`` a substring of the lowercased title, of the
  lowercased bullet points joined by spaces, or of the lowercased description.
* ``N_opt``: goal option values ``g`` for which one chosen value ``p`` has
  ``token_set_ratio(normalize_color(p), normalize_color(g)) > 85``. Each goal option counts at
  most once, so ``N_opt <= |O|``. Nothing else counts: not the option's name, not the product text.
* ``r_type``: ``title_score`` = share of the goal title's nouns (see :mod:`.nouns`) found among
  the bought title's nouns. ``r_type`` is 1.0, lowered to 0.5 unless the query matches, >= 2
  category levels match or ``title_score > 0.2``; it is then 0.1 if ``title_score < 0.1`` and 0.0
  if ``title_score == 0`` (those two rules apply even when the query matches).
* :func:`token_set_ratio` is thefuzz's (>= 0.20, on rapidfuzz): both strings lowercased, every
  character that is not a letter or digit turned into a space, characters 128-255 dropped, then
  rapidfuzz's ``token_set_ratio`` rounded to an integer. So ``"small"`` matches ``"x-small"``
  (100), and ``"light blue"`` does not match ``"black"``.
* :func:`normalize_color` is the original's: the first name of :data:`COLOR_SET` (the original's
  list, in its order) that is a substring of the value, else the value. In that order
  ``"light blue"`` becomes ``"blue"`` and ``"antique graywash"`` becomes ``"ash"``.

Deliberate divergences from ``goal.py`` (each one only where the original is ill-defined):

1. **Synthetic goals' options.** For a goal whose ``goal_options`` is a dict (synthetic goals),
   the original passes ``goal_options.items()``: it compares chosen values to ``(name, value)``
   tuples, whose text after thefuzz's processing is ``"size 8"``. Here a dict's values are
   compared, as for a human goal's list. The two differ where the name's token decides the ratio:
   for the goal ``size: 8``, a chosen ``8.5`` (tokens ``8 5``) matches the value ``8`` (shared
   token ``8``, ratio 100) but not ``"size 8"``; a chosen value equal to an option *name* matches
   the tuple only. On the 675 synthetic goal/purchase pairs of the real product page in
   ``../shared/data/realdata/webshop_tests`` the scores differ in 18, all of this ``8`` / ``8.5`` kind.
2. **No price bound.** When ``price_upper <= 0`` the original's price term is ``None`` and the sum
   raises ``TypeError``; here the price term then counts as met. No goal of the original has such
   a bound (it is a grid price or 1,000,000).
3. **Nouns.** ``r_type`` tags titles with :mod:`.nouns` (a lexicon tagger, no model download) by
   default; ``WebShopEnv(noun_tagger="spacy:en_core_web_lg")`` tags them with spaCy as the original
   does (``en_core_web_lg`` in the release, ``en_core_web_sm`` since 2024). The tagger is the only
   input that may make ``title_score`` differ.
4. **thefuzz 0.19.** The original pins thefuzz 0.19.0, which (without python-Levenshtein) scores
   with difflib's ``SequenceMatcher``; here the score is thefuzz >= 0.20's (rapidfuzz's indel
   ratio). On the 5,006 distinct attribute and option pairs of our comparison with ``goal.py``
   (real WebShop strings) the two gave the same integer; ``tests/test_webshop_original.py``
   checks :func:`token_set_ratio` against thefuzz >= 0.20 itself.

``lenient=True`` (``WebShopEnv(reward_variant="lenient")``) selects an earlier turngym rule, *not*
the original: a chosen value also counts when it appears in the product's text, ``size`` needs an
exact match, and the count runs over chosen values (capped at ``|O|``); colours are normalised
with :data:`COLOR_SET` as above. It is off by default.

The outcome is ``raw`` clipped to [0, 1] (with the original rule ``raw`` never leaves it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from turngym.envs.webshop.nouns import NounTagger, title_nouns
from turngym.error import missing_dependency

try:  # WebShop's own fuzzy title match (thefuzz there; rapidfuzz is its maintained successor)
    from rapidfuzz import fuzz
    from rapidfuzz.utils import default_process
except ImportError:
    raise missing_dependency("rapidfuzz", "webshop") from None

__all__ = [
    "RewardBreakdown",
    "COLOR_SET",
    "FUZZY_THRESHOLD",
    "token_set_ratio",
    "normalize_color",
    "type_reward",
    "attribute_matches",
    "option_matches",
    "goal_option_values",
    "webshop_reward",
    "best_options",
]

FUZZY_THRESHOLD = 85
CATEGORY_SEPARATOR = "›"
NO_PRICE_BOUND = 1_000_000.0
#: The original's colour names (``web_agent_site/engine/normalize.py``), in its order.
COLOR_SET: tuple[str, ...] = tuple(
    """alabaster apricot aqua ash asphalt azure banana beige black blue blush bordeaux bronze
    brown burgundy camel camo caramel champagne charcoal cheetah chestnut chocolate christmas coffee
    cognac copper coral cranberry cream crystal dark denim eggplant elephant espresso fuchsia gold
    granite grape graphite grass gray green grey heather indigo ivory ivy khaki lavender lemon
    leopard light lilac lime magenta maroon mauve merlot midnight mint mocha multicolor mushroom
    mustard natural navy nude olive orange peach pewter pink plum purple rainbow red rose royal
    rust sand sapphire seashell silver skull slate steel stone stonewash sunflower tan taupe teal
    tiger turquoise violet walnut wheat white wine yellow""".split()
)
_HIGH_LATIN = {code: None for code in range(128, 256)}
#: The lenient variant's exact-match option names.
_EXACT_MATCH_OPTIONS = ("size",)


@dataclass(frozen=True)
class RewardBreakdown:
    """Every part of WebShop's reward for one purchase."""

    total: float  # the outcome: raw clipped to [0, 1]
    raw: float  # the formula, unclipped
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


def token_set_ratio(first: Any, second: Any) -> int:
    """thefuzz's ``fuzz.token_set_ratio`` (full processing, ASCII forced), an int in [0, 100].

    >>> token_set_ratio("x-small", "small"), token_set_ratio("light blue", "black")
    (100, 27)
    """
    if first is None or second is None:
        return 0
    return int(round(fuzz.token_set_ratio(_process(str(first)), _process(str(second)))))


@lru_cache(maxsize=262_144)
def _process(text: str) -> str:
    """thefuzz's ``full_process(text, force_ascii=True)``."""
    return default_process(text.translate(_HIGH_LATIN))


@lru_cache(maxsize=262_144)
def normalize_color(value: str) -> str:
    """The first name of :data:`COLOR_SET` found in ``value``, else ``value`` (the original's rule).

    >>> normalize_color("light blue"), normalize_color("antique graywash"), normalize_color("xl")
    ('blue', 'ash', 'xl')
    """
    for name in COLOR_SET:
        if name in value:
            return name
    return value


def _bullets(product: Mapping[str, Any]) -> str:
    bullets = product.get("BulletPoints") or []
    return (bullets if isinstance(bullets, str) else " ".join(map(str, bullets))).lower()


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
    title = str(product.get("Title", "")).lower()
    bullets = _bullets(product)
    description = str(product.get("Description") or "").lower()
    count = 0
    for wanted in goal_attributes:
        if any(
            token_set_ratio(have, wanted) > FUZZY_THRESHOLD
            for have in product.get("Attributes") or []
        ):
            count += 1
        elif wanted in title or wanted in bullets or wanted in description:
            count += 1
    return count


def goal_option_values(goal_options: Mapping[str, str] | Sequence[str] | None) -> list[str]:
    """The goal's option values: a human goal's list, or a synthetic goal's dict values."""
    if not goal_options:
        return []
    if isinstance(goal_options, Mapping):
        return [str(value) for value in goal_options.values()]
    return [str(value) for value in goal_options]


def _matches(chosen: str, wanted: str) -> bool:
    return token_set_ratio(normalize_color(chosen), normalize_color(wanted)) > FUZZY_THRESHOLD


def option_matches(
    product: Mapping[str, Any],
    goal_options: Mapping[str, str] | Sequence[str] | None,
    chosen: Mapping[str, str],
    *,
    lenient: bool = False,
) -> int:
    """How many goal options the chosen values hit (``N_opt``; see the module doc).

    ``product`` is read only by ``lenient=True``.
    """
    wanted = goal_option_values(goal_options)
    if lenient:
        return min(len(wanted), _lenient_count(product, wanted, chosen))
    values = [str(value) for value in chosen.values()]
    return sum(any(_matches(value, goal) for value in values) for goal in wanted)


def _lenient_count(
    product: Mapping[str, Any], wanted: Sequence[str], chosen: Mapping[str, str]
) -> int:
    fields = (str(product.get("Title", "")).lower(), _bullets(product))
    fields += (str(product.get("Description") or "").lower(),)
    goals = [normalize_color(value) for value in wanted]
    count = 0
    for name, value in chosen.items():
        value = normalize_color(str(value))
        if str(name).lower() in _EXACT_MATCH_OPTIONS:
            hit = value in goals
        else:
            hit = any(token_set_ratio(goal, value) > FUZZY_THRESHOLD for goal in goals)
        count += bool(hit or any(value in field for field in fields))
    return count


def webshop_reward(
    product: Mapping[str, Any],
    goal: Mapping[str, Any],
    price: float,
    chosen: Mapping[str, str],
    nouns: NounTagger = title_nouns,
    *,
    lenient: bool = False,
) -> RewardBreakdown:
    """WebShop's reward for buying ``product`` at ``price`` with options ``chosen``.

    ``nouns`` tags titles for ``r_type`` (see :func:`type_reward`); ``lenient`` selects the
    non-original option rule of the module doc.

    >>> product = {"Title": "Velora Dark Chocolate Bar", "name": "Velora Dark Chocolate Bar",
    ...            "Attributes": ["gluten free"], "BulletPoints": [], "Description": "",
    ...            "query": "dark chocolate bar", "product_category": "a › b › c"}
    >>> goal = dict(product, attributes=["gluten free", "dairy free"],
    ...             goal_options={"flavor": "mint"}, price_upper=20.0)
    >>> webshop_reward(product, goal, 10.0, {"flavor": "mint"}).total  # (1 + 1 + 1) / 4
    0.75
    """
    type_parts = type_reward(product, goal, nouns)
    goal_attributes = list(goal.get("attributes") or [])
    goal_options = goal.get("goal_options") or {}
    n_attr = attribute_matches(product, goal_attributes)
    n_option = option_matches(product, goal_options, chosen, lenient=lenient)
    price_upper = float(goal.get("price_upper", NO_PRICE_BOUND))
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


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).lower() == " ".join(b.split()).lower()


def best_options(
    product: Mapping[str, Any], goal: Mapping[str, Any], *, lenient: bool = False
) -> dict[str, str]:
    """Option values to buy ``product`` with for ``goal``: exactly what the goal asks.

    For each goal option value, in the goal's order: the product's option value that equals it
    (case and spacing aside), in the goal's option group when the goal names one; only when the
    product has no such value, the first value that the reward counts for it (see
    :func:`option_matches`). One value per option group; groups the goal does not ask about are
    left unchosen (the reward ignores them).
    """
    product_options: Mapping[str, Sequence[str]] = product.get("options") or {}
    goal_options = goal.get("goal_options") or {}
    named = isinstance(goal_options, Mapping)
    wanted = list(goal_options.items()) if named else [(None, v) for v in goal_options]
    chosen: dict[str, str] = {}

    def groups(name: str | None) -> list[tuple[str, Sequence[str]]]:
        free = [(g, vs) for g, vs in product_options.items() if g not in chosen]
        preferred = [(g, vs) for g, vs in free if name is not None and g == str(name).lower()]
        return preferred + [(g, vs) for g, vs in free if (g, vs) not in preferred]

    for name, value in wanted:
        value = str(value)
        pick = next(
            ((g, v) for g, vs in groups(name) for v in vs if _same(v, value)),
            None,
        )
        if pick is None:
            pick = next(
                (
                    (g, v)
                    for g, vs in groups(name)
                    for v in vs
                    if option_matches(product, [value], {g: v}, lenient=lenient)
                ),
                None,
            )
        if pick is not None:
            chosen[pick[0]] = pick[1]
    return chosen
