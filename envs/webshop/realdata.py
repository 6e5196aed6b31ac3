"""Loads the original WebShop data files into a :class:`~.catalog.StaticCatalog`.

Pass the folder holding them as ``data_dir`` (``gymnasium.make("turngym/WebShop-v0",
data_dir="~/webshop/data")``). Files, as WebShop's ``setup.sh`` downloads them:

=========================  ======================================================================
``items_shuffle*.json``    required: a JSON list of scraped products with ``asin, name,
                           full_description, small_description, pricing ("$12.99" or a range),
                           images, customization_options ({name: [{value, image}]} or null),
                           category, query, product_category``
``items_ins_v2*.json``     required: ``{asin: {attributes, instruction, instruction_attributes}}``
``items_human_ins.json``   optional: ``{asin: [{instruction, instruction_attributes,
                           instruction_options, ...}]}``; when present the tasks are these human
                           goals (the benchmark's default), else the synthetic ``instruction`` of
                           ``items_ins_v2``
``reviews.json``           optional: ``[{asin, reviews: [{title, stars, review}], average_rating}]``
=========================  ======================================================================

Products are normalised as the original's ``load_products`` does (titles, bullets, prices,
lowercased option values with ``/`` -> `` | ``, ``DUMMY_ATTR`` for products without attributes,
duplicates and malformed ASINs dropped). Differences, both for reproducibility: a price range
takes a price drawn from a per-ASIN seeded RNG (the original draws unseeded), and a synthetic goal
takes one option combination drawn from the goal's seeded RNG instead of one goal per combination.
Splits: by a stable hash of the target ASIN (no target in both splits).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path
from typing import Any

from turngym.envs.webshop.catalog import StaticCatalog
from turngym.envs.webshop.tasks import price_bound, split_of
from turngym.error import InvalidArgumentError

__all__ = ["load_webshop_data", "normalize_products", "find_data_files"]


def find_data_files(data_dir: str | Path) -> dict[str, Path | None]:
    """The data files of ``data_dir`` (``items_shuffle``, ``items_ins``, ``human``, ``reviews``)."""
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise InvalidArgumentError(
            f"data_dir={str(data_dir)!r} is not a folder; pass the folder holding WebShop's items_shuffle*.json."
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
    missing = [name for name in ("items_shuffle", "items_ins") if files[name] is None]
    if missing:
        raise InvalidArgumentError(
            f"{folder} lacks {[f'{m}*.json' for m in missing]}; it needs WebShop's items_shuffle*.json "
            "and items_ins_v2*.json (and optionally items_human_ins.json, reviews.json), as the "
            "original's setup.sh downloads them."
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
    product: dict[str, Any], instruction: str, attributes: list[str], options: Any, key: str
) -> dict[str, Any]:
    upper, price_text = price_bound(float(product["price"]), random.Random(f"webshop-bound-{key}"))
    return {
        "asin": product["asin"],
        "category": product["category"],
        "query": product["query"],
        "name": product["name"],
        "product_category": product["product_category"],
        "instruction_text": instruction.strip().strip(".") + price_text,
        "attributes": list(attributes),
        "price_upper": upper,
        "goal_options": options,
        "weight": 1.0,
    }


def _read(path: Path | None, default: Any) -> Any:
    if path is None:
        return default
    with open(path) as handle:
        return json.load(handle)


def load_webshop_data(
    data_dir: str | Path, num_products: int | None = None, human_goals: bool | None = None
) -> StaticCatalog:
    """The catalog and goals of WebShop's files in ``data_dir`` (see the module doc)."""
    files = find_data_files(data_dir)
    raw = _read(files["items_shuffle"], [])
    if num_products is not None:
        raw = raw[:num_products]  # the files come shuffled, as the original assumes
    attributes = _read(files["items_ins"], {})
    review_list = _read(files["reviews"], [])
    reviews = {entry["asin"]: entry for entry in review_list}
    products = normalize_products(raw, attributes, reviews)
    use_human = files["human"] is not None if human_goals is None else human_goals
    human = _read(files["human"], {}) if use_human else {}
    goals: list[dict[str, Any]] = []
    for product in products:
        asin = product["asin"]
        if use_human:
            for number, entry in enumerate(human.get(asin, [])):
                if entry.get("instruction_attributes"):
                    goals.append(
                        _goal(
                            product,
                            entry["instruction"],
                            entry["instruction_attributes"],
                            list(entry.get("instruction_options") or []),
                            f"{asin}-{number}",
                        )
                    )
        else:
            info = attributes.get(asin, {})
            if info.get("instruction") and info.get("instruction_attributes"):
                rng = random.Random(f"webshop-options-{asin}")
                options = {
                    name: rng.choice(values)
                    for name, values in sorted(product["options"].items())
                    if values
                }
                option_text = ", and ".join(f"{k}: {v}" for k, v in options.items())
                text = info["instruction"].strip().strip(".") + (
                    f" with {option_text}" if option_text else ""
                )
                goals.append(_goal(product, text, info["instruction_attributes"], options, asin))
    if not goals:
        raise InvalidArgumentError(
            f"no goals in {data_dir}: no product has an instruction with attributes."
        )
    for index, goal in enumerate(goals):
        goal["task_id"], goal["split"] = f"{index:06d}", split_of(goal["asin"])
    digest = hashlib.sha1()
    for name in sorted(files):
        path = files[name]
        if path is not None:
            digest.update(f"{path.name}:{path.stat().st_size}:{path.stat().st_mtime_ns}".encode())
    name = f"data-{digest.hexdigest()[:12]}-n{num_products}-h{int(use_human)}"
    return StaticCatalog(products, goals, name)
