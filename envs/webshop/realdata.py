"""Loads the original WebShop data files into a :class:`~.catalog.StaticCatalog`.

Pass the folder holding them as ``data_dir`` (``gymnasium.make("turngym/WebShop-v0",
data_dir="~/webshop/data")``). Files, as WebShop's ``setup.sh`` downloads them:

=========================  ======================================================================
``items_shuffle*.json``    required: a JSON list of scraped products with ``asin, name,
                           full_description, small_description, pricing ("$12.99" or a range),
                           images, customization_options ({name: [{value, image}]} or null),
                           category, query, product_category``
``items_ins_v2*.json``     required: ``{asin: {attributes, instruction, instruction_attributes}}``
``items_human_ins.json``   for human goals: ``{asin: [{instruction, instruction_attributes,
                           instruction_options, ...}]}``
``reviews.json``           optional: ``[{asin, reviews: [{title, stars, review}], average_rating}]``
=========================  ======================================================================

A missing file raises an error naming it and the upstream command that downloads it.

Products are normalised as the original's ``load_products`` does (titles, bullets, prices,
lowercased option values with ``/`` -> `` | ``, ``DUMMY_ATTR`` for products without attributes,
duplicates and malformed ASINs dropped). A price range takes a price drawn from a per-ASIN seeded
RNG (the original draws it unseeded).

Goals (``goals=``), as the original's ``get_human_goals`` / ``get_synthetic_goals`` make them:

* ``"human"``: one goal per entry of ``items_human_ins.json`` with attributes (entries without are
  skipped, as in the original); text = the instruction with trailing dots stripped + the price
  clause; options = the entry's ``instruction_options``; weight 1.
* ``"synthetic"``: for each product with an ``instruction`` in ``items_ins_v2``, one goal per
  combination of its option values (option names sorted, values in the product's order, as
  ``itertools.product``); text = ``instruction`` + `` with color: x, and size: y`` + the price
  clause; options = ``{name: value}``; weight = mean over the goal's attributes of
  ``1 / (number of synthetic goals having that attribute)`` (the original's rarity weight).
  Where the original asserts on a product with an instruction but no instruction attributes,
  such a product is skipped here.
* ``"both"``: the human goals, then the synthetic ones; each goal says its ``source``.
* None: human when ``items_human_ins.json`` is present, else synthetic.

Where this differs from the original, for reproducibility: each goal's price bound is drawn from
its own seeded RNG (the original draws from the global unseeded ``random``; one bound per product
is shared by all of that product's synthetic goals in both); the env draws tasks uniformly from a
split, where the original's web app samples goals by ``weight`` (the weight is kept in each goal
for users who sample that way); splits are by a stable hash of the target ASIN (no target in both
splits), not by the original's goal index ranges after its seeded shuffle.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

from turngym.envs.webshop.catalog import StaticCatalog
from turngym.envs.webshop.tasks import GOAL_SOURCES, price_bound, split_of
from turngym.error import InvalidArgumentError

__all__ = [
    "load_webshop_data",
    "normalize_products",
    "find_data_files",
    "make_human_goals",
    "make_synthetic_goals",
    "DOWNLOADS",
]

#: How WebShop's setup.sh downloads each file (run in the data folder).
DOWNLOADS = {
    "items_shuffle_1000.json": "gdown https://drive.google.com/uc?id=1EgHdxQ_YxqIQlvvq5iKlCrkEKR6-j0Ib",
    "items_ins_v2_1000.json": "gdown https://drive.google.com/uc?id=1IduG0xl544V_A_jv3tHXC0kyFi7PnyBu",
    "items_shuffle.json": "gdown https://drive.google.com/uc?id=1A2whVgOO0euk5O13n2iYDM0bQRkkRduB",
    "items_ins_v2.json": "gdown https://drive.google.com/uc?id=1s2j6NgHljiZzQNL3veZaAiyW_qDEgBNi",
    "items_human_ins.json": "gdown https://drive.google.com/uc?id=14Kb5SPBk_jfdLZ_CDBNitW98QLDlKR5O",
}
_SETUP = (
    "(WebShop's `./setup.sh -d small` downloads the 1000-product files, `-d all` the full ones)"
)


def _download_hint(*names: str) -> str:
    return "; ".join(f"{name}: `{DOWNLOADS[name]}`" for name in names)


def find_data_files(data_dir: str | Path) -> dict[str, Path | None]:
    """The data files of ``data_dir`` (``items_shuffle``, ``items_ins``, ``human``, ``reviews``)."""
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise InvalidArgumentError(
            f"data_dir={str(data_dir)!r} is not a folder; pass the folder holding WebShop's "
            f"items_shuffle*.json and items_ins_v2*.json {_SETUP}."
        )

    def pick(pattern: str, preferred: str) -> Path | None:
        if (folder / preferred).is_file():
            return folder / preferred
        found = sorted(folder.glob(pattern))
        return found[0] if found else None

    files = {
        "items_shuffle": pick("items_shuffle*.json", "items_shuffle.json"),
        "items_ins": pick("items_ins_v2*.json", "items_ins_v2.json"),
        "human": pick("items_human_ins*.json", "items_human_ins.json"),
        "reviews": pick("reviews*.json", "reviews.json"),
    }
    wanted = {"items_shuffle": "items_shuffle", "items_ins": "items_ins_v2"}
    missing = [wanted[key] for key in wanted if files[key] is None]
    if missing:
        hints = _download_hint(*(f"{stem}_1000.json" for stem in missing))
        raise InvalidArgumentError(
            f"{folder} has no {' and no '.join(f'{stem}*.json' for stem in missing)}; download "
            f"it into that folder as the original does {_SETUP}: {hints} (or the full files: "
            f"{_download_hint(*(f'{stem}.json' for stem in missing))})."
        )
    return files


def _price(pricing: Any, asin: str) -> tuple[list[float], str, float]:
    if not pricing:
        return [100.0], "$100.0", 100.0
    numbers = [float(re.sub(r"[^\d.]", "", part) or 0) for part in str(pricing).split("$")[1:]][
        :2
    ] or [100.0]
    if len(numbers) == 1:
        return numbers, f"${numbers[0]}", numbers[0]
    rng = random.Random(f"webshop-price-{asin}")
    return numbers, f"${numbers[0]} to ${numbers[1]}", rng.uniform(numbers[0], numbers[1])


def normalize_products(
    raw: list[dict[str, Any]], attributes: dict[str, Any], reviews: dict[str, Any]
) -> list[dict[str, Any]]:
    """Raw scraped products -> products with the fields the shop and the reward read."""
    products, seen = [], set()
    for item in raw:
        asin = str(item.get("asin", ""))
        if not asin or asin == "nan" or len(asin) > 10 or asin in seen:
            continue
        seen.add(asin)
        bullets = item.get("small_description") or []
        options: dict[str, list[str]] = {}
        for name, contents in (item.get("customization_options") or {}).items():
            if contents:
                options[name.lower()] = [
                    str(c["value"]).strip().replace("/", " | ").lower() for c in contents
                ]
        pricing, tag, price = _price(item.get("pricing"), asin)
        review_entry = reviews.get(asin, {})
        product_reviews = [
            {
                "score": r.get("score", r.get("stars", "")),
                "title": r.get("title", ""),
                "body": r.get("body", r.get("review", "")),
            }
            for r in review_entry.get("reviews", [])
        ]
        products.append(
            {
                "asin": asin,
                "name": item.get("name", ""),
                "Title": item.get("name", ""),
                "BulletPoints": bullets if isinstance(bullets, list) else [bullets],
                "Description": item.get("full_description") or "",
                "Attributes": list(attributes.get(asin, {}).get("attributes") or ["DUMMY_ATTR"]),
                "options": options,
                "pricing": pricing,
                "Price": tag,
                "price": price,
                "Rating": review_entry.get("average_rating", "N.A."),
                "Reviews": product_reviews,
                "category": item.get("category", ""),
                "query": str(item.get("query", "")).lower().strip(),
                "product_category": item.get("product_category", ""),
            }
        )
    return products


def _goal(
    product: dict[str, Any], text: str, attributes: list[str], options: Any, key: str, source: str
) -> dict[str, Any]:
    upper, price_text = price_bound(float(product["price"]), random.Random(f"webshop-bound-{key}"))
    return {
        "asin": product["asin"],
        "category": product["category"],
        "query": product["query"],
        "name": product["name"],
        "product_category": product["product_category"],
        "instruction_text": text + price_text,
        "attributes": list(attributes),
        "price_upper": upper,
        "goal_options": options,
        "weight": 1.0,
        "source": source,
    }


def make_human_goals(products: list[dict[str, Any]], human: dict[str, Any]) -> list[dict[str, Any]]:
    """The original's human goals for ``products`` (see the module doc)."""
    goals = []
    for product in products:
        asin = product["asin"]
        for number, entry in enumerate(human.get(asin) or []):
            if not entry.get("instruction_attributes"):
                continue
            goals.append(
                _goal(
                    product,
                    str(entry.get("instruction", "")).strip("."),
                    entry["instruction_attributes"],
                    list(entry.get("instruction_options") or []),
                    f"{asin}-{number}",
                    "human",
                )
            )
    return goals


def make_synthetic_goals(
    products: list[dict[str, Any]], attributes: dict[str, Any]
) -> list[dict[str, Any]]:
    """The original's synthetic goals: one per option combination, rarity-weighted (module doc)."""
    goals = []
    for product in products:
        info = attributes.get(product["asin"]) or {}
        if info.get("instruction") is None or not info.get("instruction_attributes"):
            continue
        names = sorted(product["options"])
        for combination in itertools.product(*(product["options"][name] for name in names)):
            options = dict(zip(names, combination, strict=True))
            option_text = ", and ".join(f"{k}: {v}" for k, v in options.items())
            text = f"{info['instruction']}{' with ' + option_text if option_text else ''}"
            goal = _goal(
                product, text, info["instruction_attributes"], options, product["asin"], "synthetic"
            )
            goals.append(goal)
    counts = Counter(attribute for goal in goals for attribute in goal["attributes"])
    for goal in goals:
        goal["weight"] = sum(1.0 / counts[a] for a in goal["attributes"]) / len(goal["attributes"])
    return goals


def _read(path: Path | None, default: Any) -> Any:
    if path is None:
        return default
    with open(path) as handle:
        return json.load(handle)


def load_webshop_data(
    data_dir: str | Path,
    num_products: int | None = None,
    human_goals: bool | None = None,
    goals: str | None = None,
) -> StaticCatalog:
    """The catalog and goals of WebShop's files in ``data_dir`` (see the module doc).

    ``goals``: ``"human"``, ``"synthetic"``, ``"both"`` or None (human when
    ``items_human_ins.json`` is present); ``human_goals`` (a bool) is the older spelling.
    """
    if goals is None and human_goals is not None:
        goals = "human" if human_goals else "synthetic"
    if goals is not None and goals not in GOAL_SOURCES:
        raise InvalidArgumentError(
            f"goals={goals!r} is not valid; use 'human', 'synthetic', 'both' or None."
        )
    files = find_data_files(data_dir)
    source = goals or ("human" if files["human"] is not None else "synthetic")
    if source in ("human", "both") and files["human"] is None:
        raise InvalidArgumentError(
            f"goals={source!r} needs items_human_ins.json in {Path(data_dir).expanduser()}; "
            f"download it there as WebShop's setup.sh does: {_download_hint('items_human_ins.json')}"
            " (or pass goals='synthetic')."
        )
    raw = _read(files["items_shuffle"], [])
    if num_products is not None:
        raw = raw[:num_products]  # the files come shuffled, as the original assumes
    attributes = _read(files["items_ins"], {})
    reviews = {entry["asin"]: entry for entry in _read(files["reviews"], [])}
    products = normalize_products(raw, attributes, reviews)
    made: list[dict[str, Any]] = []
    if source in ("human", "both"):
        human = _read(files["human"], {})
        made += make_human_goals(products, human)
        if not made and source == "human":
            raise InvalidArgumentError(
                f"no human goals: none of the {len(human)} ASINs of {files['human'].name} with "
                f"instruction attributes is among the {len(products)} products read from "
                f"{files['items_shuffle'].name} (num_products={num_products}); pass a larger "
                "num_products (None reads all), the matching items_shuffle file, or goals='synthetic'."
            )
    if source in ("synthetic", "both"):
        made += make_synthetic_goals(products, attributes)
    if not made:
        raise InvalidArgumentError(
            f"no synthetic goals: none of the {len(products)} products read from "
            f"{files['items_shuffle'].name} has an 'instruction' with 'instruction_attributes' in "
            f"{files['items_ins'].name}; use the items_ins_v2 file that matches the products "
            f"({_download_hint('items_ins_v2_1000.json')}) or goals='human'."
        )
    for index, goal in enumerate(made):
        goal["task_id"], goal["split"] = f"{index:06d}", split_of(goal["asin"])
    digest = hashlib.sha1()
    for name in sorted(files):
        path = files[name]
        if path is not None:
            digest.update(f"{path.name}:{path.stat().st_size}:{path.stat().st_mtime_ns}".encode())
    name = f"data-{digest.hexdigest()[:12]}-n{num_products}-{source}"
    return StaticCatalog(products, made, name)
