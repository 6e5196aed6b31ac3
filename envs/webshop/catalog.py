"""The product catalog: a procedural generator, the in-memory :class:`Catalog`, and its disk cache.

Products use the field names of the original WebShop after its loader (``engine.load_products``)
ran, so the reward and the pages work unchanged on generated and on real data:

==================  ================================================================
``asin``            10-character id (``B0`` + 8 base-36 characters)
``name``/``Title``  the listing title: brand, attributes, type, pack size
``BulletPoints``    feature sentences (the "features" page)
``Description``     the "description" page
``Attributes``      short attribute phrases (``"gluten free"``) used by the reward
``options``         option name -> values (``{"flavor": ["mint", "caramel"]}``)
``Price``           the price tag shown (``"$12.99"``); ``pricing`` the numbers behind it
``Rating``          ``"4.3"`` or ``"N.A."``; ``Reviews`` a list of ``{score, title, body}``
``category``        WebShop top category (beauty, grocery, fashion, furniture, electronics)
``query``           the search the product was "scraped" under (shared per product type)
``product_category``  category levels joined by ``" › "``
==================  ================================================================
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator
from typing import Any

import numpy as np

from turngym.envs.webshop.vocab import (
    BRAND_PARTS,
    CATEGORIES,
    FEATURE_TEMPLATES,
    OPTION_VALUES,
    PRODUCT_TYPES,
    ProductType,
)
from turngym.error import InvalidArgumentError

__all__ = [
    "Catalog",
    "StaticCatalog",
    "GeneratedCatalog",
    "generate_products",
    "make_asin",
    "CATALOG_VERSION",
]

#: Bump when generation changes, so cached catalogs are rebuilt.
CATALOG_VERSION = 1
MIN_PRODUCTS, MAX_PRODUCTS = 50, 2_000_000
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ASIN_SPACE = 36**8
# The multiplier is coprime with 36**8, so index -> ASIN is a bijection with an inverse.
_INDEX_MULTIPLIER, _SEED_STRIDE = 2_654_435_761, 7_919_111
_INDEX_INVERSE = pow(_INDEX_MULTIPLIER, -1, _ASIN_SPACE)
#: Title endings per category ("" most often).
_TITLE_ENDINGS = {
    "beauty": ("", "", " - 2 Pack", " - 3 Pack", " - Travel Size"),
    "grocery": ("", "", " - 6 Count", " - 12 Count", " - Family Size", " - Pack of 4"),
    "fashion": ("", "", " - Gift for Men and Women", " - All Season"),
    "furniture": ("", "", " for Living Room", " for Bedroom", " - Easy Setup"),
    "electronics": ("", "", " - Latest Model", " - 2 Pack", " with Warranty"),
}
_REVIEW_LINES = (
    (5, "Exactly what I wanted", "Works great and arrived quickly. Would buy again."),
    (4, "Good value", "Does the job well; the quality is better than I expected for the price."),
    (3, "It is okay", "Not bad, not amazing. It matches the description."),
    (2, "Not for me", "It works but I expected more from the listing."),
    (5, "Highly recommend", "My family loves it. Great quality and fair price."),
)


class Catalog:
    """Products and tasks (goals) of a shop; subclasses say where they come from.

    Attributes:
        name: identifies the catalog in cache keys (the search index is cached under it).
    """

    name: str

    def __len__(self) -> int:
        raise NotImplementedError

    def asin_at(self, index: int) -> str:
        """The ASIN of the ``index``-th product (search index order)."""
        raise NotImplementedError

    def product(self, asin: str) -> dict[str, Any] | None:
        """The product with ``asin``, or None."""
        raise NotImplementedError

    def task_ids(self, split: str) -> list[str]:
        """Task ids of a split."""
        raise NotImplementedError

    def goal(self, task_id: str) -> dict[str, Any]:
        """The goal of a task (the original's goal dict, plus ``task_id`` and ``split``)."""
        raise NotImplementedError

    def documents(self) -> Iterator[dict[str, Any]]:
        """Every product, in index order (used once, to build the search index)."""
        for index in range(len(self)):
            product = self.product(self.asin_at(index))
            assert product is not None
            yield product


class StaticCatalog(Catalog):
    """A catalog held in memory: real WebShop data or a fixture."""

    def __init__(
        self, products: list[dict[str, Any]], goals: list[dict[str, Any]], name: str
    ) -> None:
        self.name = name
        self._products = products
        self._by_asin = {product["asin"]: product for product in products}
        self._goals = {goal["task_id"]: goal for goal in goals}
        self._splits: dict[str, list[str]] = {"train": [], "test": []}
        for goal in goals:
            self._splits[goal["split"]].append(goal["task_id"])

    def __len__(self) -> int:
        return len(self._products)

    def asin_at(self, index: int) -> str:
        return self._products[index]["asin"]

    def product(self, asin: str) -> dict[str, Any] | None:
        return self._by_asin.get(asin)

    def task_ids(self, split: str) -> list[str]:
        return list(self._splits[split])

    def goal(self, task_id: str) -> dict[str, Any]:
        return self._goals[task_id]


class GeneratedCatalog(Catalog):
    """A procedural catalog: product ``i`` is a pure function of ``(seed, i)``, made on first use.

    Nothing is generated up front: the product types of all products come from one vectorised
    draw, and a product (or its task) is generated from its own RNG when a page shows it and then
    kept in an LRU cache. Only the search index needs every product's text; it is built once and
    cached on disk.
    """

    def __init__(self, num_products: int, seed: int = 0, cache_size: int = 50_000) -> None:
        if not isinstance(num_products, int) or not MIN_PRODUCTS <= num_products <= MAX_PRODUCTS:
            raise InvalidArgumentError(
                f"num_products={num_products!r} must be an int in [{MIN_PRODUCTS}, {MAX_PRODUCTS}]."
            )
        if not isinstance(seed, int) or seed < 0:
            raise InvalidArgumentError(f"catalog_seed={seed!r} must be a non-negative int.")
        self.num_products, self.seed = num_products, seed
        self.name = f"generated-v{CATALOG_VERSION}-n{num_products}-s{seed}"
        draw = np.random.default_rng([CATALOG_VERSION, seed])
        # Round-robin over the first products keeps every type present even in small catalogs.
        self._types = draw.integers(len(PRODUCT_TYPES), size=num_products)
        self._types[: len(PRODUCT_TYPES)] = np.arange(min(len(PRODUCT_TYPES), num_products))
        self._brands = _brands(random.Random(f"webshop-brands-{seed}"))
        self._test = _test_mask(num_products, seed)
        self._product = functools.lru_cache(maxsize=cache_size)(self._make_product)
        self._goal = functools.lru_cache(maxsize=cache_size)(self._make_goal)

    def __len__(self) -> int:
        return self.num_products

    def asin_at(self, index: int) -> str:
        return make_asin(index, self.seed)

    def index_of(self, asin: str) -> int | None:
        """The product index of ``asin``, or None if no product of this catalog has it."""
        if len(asin) != 10 or not asin.startswith("B0"):
            return None
        code = 0
        for char in asin[2:]:
            digit = _BASE36.find(char)
            if digit < 0:
                return None
            code = code * 36 + digit
        index = ((code - self.seed * _SEED_STRIDE) * _INDEX_INVERSE) % _ASIN_SPACE
        return index if index < self.num_products else None

    def _make_product(self, index: int) -> dict[str, Any]:
        kind = PRODUCT_TYPES[int(self._types[index])]
        rng = random.Random(self.seed * _ASIN_SPACE + index)
        return _make_product(index, self.seed, kind, rng.choice(self._brands[kind.category]), rng)

    def product(self, asin: str) -> dict[str, Any] | None:
        index = self.index_of(asin)
        return None if index is None else self._product(index)

    def task_ids(self, split: str) -> list[str]:
        indexes = np.flatnonzero(self._test if split == "test" else ~self._test)
        return [f"{i:06d}" for i in indexes]

    def _make_goal(self, index: int) -> dict[str, Any]:
        from turngym.envs.webshop.tasks import make_goal

        goal = make_goal(self._product(index), random.Random(f"webshop-goal-{self.seed}-{index}"))
        goal["task_id"] = f"{index:06d}"
        goal["split"] = "test" if self._test[index] else "train"
        return goal

    def goal(self, task_id: str) -> dict[str, Any]:
        return self._goal(int(task_id))


def _test_mask(num_products: int, seed: int) -> np.ndarray:
    """Which targets are test tasks: a stable hash of (seed, index) below TEST_FRACTION."""
    from turngym.envs.webshop.tasks import TEST_FRACTION

    with np.errstate(over="ignore"):
        mixed = np.arange(num_products, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        mixed ^= np.uint64(seed * 0xBF58476D1CE4E5B9 % 2**64)
        mixed ^= mixed >> np.uint64(31)
        mixed *= np.uint64(0x94D049BB133111EB)
        mixed ^= mixed >> np.uint64(29)
    return (mixed >> np.uint64(11)).astype(np.float64) / 2.0**53 < TEST_FRACTION


def make_asin(index: int, seed: int) -> str:
    """A unique 10-character ASIN-like id for product ``index`` of the catalog seeded ``seed``."""
    code = (index * _INDEX_MULTIPLIER + seed * _SEED_STRIDE) % _ASIN_SPACE
    chars = []
    for _ in range(8):
        code, digit = divmod(code, 36)
        chars.append(_BASE36[digit])
    return "B0" + "".join(reversed(chars))


def _brands(rng: random.Random, per_category: int = 40) -> dict[str, list[str]]:
    brands: dict[str, list[str]] = {}
    for category in CATEGORIES:
        names: set[str] = set()
        while len(names) < per_category:
            parts = rng.sample(BRAND_PARTS, rng.choice((2, 2, 3)))
            names.add("".join(parts).capitalize())
        brands[category] = sorted(names)
    return brands


def _title_case(text: str) -> str:
    return " ".join(word[:1].upper() + word[1:] for word in text.split())


def _make_product(
    index: int, seed: int, kind: ProductType, brand: str, rng: random.Random
) -> dict[str, Any]:
    attributes = rng.sample(kind.attributes, rng.randint(3, min(5, len(kind.attributes))))
    options = {}
    for option in kind.options:
        pool = OPTION_VALUES[option]
        chosen = set(rng.sample(pool, rng.randint(2, min(6, len(pool)))))
        options[option] = [value for value in pool if value in chosen]
    low, high = kind.price
    price = round(max(0.99, int(rng.uniform(low, high)) + 0.99), 2)
    title = f"{brand} {_title_case(attributes[0])} {_title_case(kind.name)}"
    if rng.random() < 0.6:
        title += f", {_title_case(attributes[1])}"
    title += rng.choice(_TITLE_ENDINGS[kind.category])
    features = []
    for attribute in attributes:
        template = rng.choice(FEATURE_TEMPLATES)
        features.append(
            template.format(attr=attribute, attr_title=_title_case(attribute), type=kind.name)
        )
    description = (
        f"{brand} brings you a {kind.name} made for people who care about {attributes[0]} and "
        f"{attributes[-1]}. Each {kind.name} is designed and tested by our team. "
        + rng.choice(
            (
                "Order today and see the difference.",
                "A thoughtful gift for anyone.",
                "Satisfaction guaranteed.",
            )
        )
    )
    rated = rng.random() < 0.85
    reviews = [
        dict(zip(("score", "title", "body"), rng.choice(_REVIEW_LINES), strict=True))
        for _ in range(rng.randint(0, 3) if rated else 0)
    ]
    return {
        "asin": make_asin(index, seed),
        "name": title,
        "Title": title,
        "BulletPoints": features,
        "Description": description,
        "Attributes": attributes,
        "options": options,
        "price": price,
        "pricing": [price],
        "Price": f"${price:.2f}",
        "Rating": f"{rng.uniform(2.8, 5.0):.1f}" if rated else "N.A.",
        "Reviews": reviews,
        "category": kind.category,
        "query": kind.name,
        "product_category": " › ".join((CATEGORIES[kind.category], *kind.path)),
    }


def generate_products(num_products: int, seed: int = 0) -> list[dict[str, Any]]:
    """All products of the generated catalog ``(num_products, seed)``, as a list."""
    catalog = GeneratedCatalog(num_products, seed, cache_size=1)
    return list(catalog.documents())
