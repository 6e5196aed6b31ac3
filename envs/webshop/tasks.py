"""Tasks (WebShop "goals"): an instruction written from a target product, its attributes, options
and a price bound.

Each generated product is the target of one task (task id = the product's index). The goal keeps the original's fields
(``asin, category, query, name, product_category, instruction_text, attributes, price_upper,
goal_options``). The price bound follows the original rule: the four multiples of $10 above the
price, two drawn, the larger kept; but drawn with the task's own seeded RNG (the original calls
the global ``random`` unseeded, so its bounds change between runs). Other products can satisfy a
task: any product whose attributes, options and price meet the goal scores 1.0.

Splits never share a target product: a target goes to ``test`` when a stable hash of it (of its
index for generated catalogs, of its ASIN for real data) falls in the lowest ``TEST_FRACTION`` of
the range, else to ``train``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any

__all__ = ["make_goal", "price_bound", "split_of", "GOAL_SOURCES", "TEST_FRACTION", "PRICE_RANGE"]

TEST_FRACTION = 0.2
#: Where a WebShop's goals come from: the original's human instructions, its synthetic ones, both.
GOAL_SOURCES = ("human", "synthetic", "both")
#: The original's price grid: $10, $20, ..., $990.
PRICE_RANGE = tuple(10.0 * i for i in range(1, 100))
NO_BOUND = 1_000_000.0

_OPTION_PHRASES = {
    "color": "in {v} color",
    "size": "in size {v}",
    "flavor": "in {v} flavor",
    "scent": "with {v} scent",
    "count": "in a {v}",
    "style": "in {v} style",
    "capacity": "with {v} capacity",
}
_OPENINGS = (
    "i am looking for {a} {p}",
    "i need {a} {p}",
    "i want to buy {a} {p}",
    "find me {a} {p}",
    "i'm searching for {a} {p}",
    "get me {a} {p}",
)


def split_of(asin: str) -> str:
    """``"test"`` or ``"train"``, a stable function of the target's ASIN."""
    bucket = int(hashlib.sha1(asin.encode()).hexdigest()[:8], 16) / 16**8
    return "test" if bucket < TEST_FRACTION else "train"


def price_bound(price: float, rng: random.Random) -> tuple[float, str]:
    """The goal's price bound and its instruction clause, as the original draws them."""
    above = [bound for bound in PRICE_RANGE if bound > price][:4]
    if len(above) < 2:
        return NO_BOUND, ""
    _, upper = sorted(rng.sample(above, 2))
    return upper, f", and price lower than {upper:.2f} dollars"


def _article(phrase: str) -> str:
    return "an" if phrase[:1] in "aeiou" else "a"


def _instruction(
    product: dict[str, Any], attributes: Sequence[str], options: dict[str, str], rng: random.Random
) -> str:
    kind = product["query"]
    lead, rest = attributes[0], list(attributes[1:])
    phrase = f"{lead} {kind}"
    if rest:
        phrase += (
            " that is " + " and ".join(rest)
            if rng.random() < 0.5
            else " with " + " and ".join(rest)
        )
    option_text = [
        _OPTION_PHRASES.get(name, "with {n} {v}").format(v=value, n=name)
        for name, value in options.items()
    ]
    if option_text:
        phrase += " " + ", ".join(option_text)
    opening = rng.choice(_OPENINGS)
    return opening.format(a=_article(lead), p=phrase)


def make_goal(product: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One goal with ``product`` as its target (1 to 3 of its attributes, one value per option)."""
    count = rng.choice((1, 2, 2, 3, 3)) if len(product["Attributes"]) >= 3 else 1
    attributes = rng.sample(product["Attributes"], min(count, len(product["Attributes"])))
    options = {
        name: rng.choice(values) for name, values in sorted(product["options"].items()) if values
    }
    upper, price_text = price_bound(float(product["price"]), rng)
    return {
        "asin": product["asin"],
        "category": product["category"],
        "query": product["query"],
        "name": product["name"],
        "product_category": product["product_category"],
        "instruction_text": _instruction(product, attributes, options, rng) + price_text,
        "attributes": attributes,
        "price_upper": upper,
        "goal_options": options,
        "weight": 1.0,
    }
