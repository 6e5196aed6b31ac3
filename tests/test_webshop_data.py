"""The loader for the original WebShop data files, on a small fixture in exactly their schema."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium

import turngym
from turngym.envs.webshop.realdata import load_webshop_data
from turngym.testing import check_env

FIXTURE = Path(__file__).parent / "fixtures" / "webshop"


def test_loader_normalises_like_the_original() -> None:
    raw = json.loads((FIXTURE / "items_shuffle_1000.json").read_text())
    catalog = load_webshop_data(FIXTURE)
    assert len(catalog) == len({item["asin"] for item in raw if item["asin"] != "nan"}) == 40
    first = catalog.product(raw[0]["asin"])
    assert first["Title"] == raw[0]["name"] and first["Description"] == raw[0]["full_description"]
    assert first["query"] == raw[0]["query"].lower().strip()
    # A price range keeps both ends in the tag and a seeded price between them.
    assert (
        " to $" in first["Price"] and first["pricing"][0] <= first["price"] <= first["pricing"][1]
    )
    assert load_webshop_data(FIXTURE).product(raw[0]["asin"])["price"] == first["price"]
    slashed = next(
        p
        for p in (catalog.product(i["asin"]) for i in raw[:40])
        if "black | white" in p["options"].get("color", [])
    )
    assert slashed["options"]["color"][0] == "black | white"
    no_price = next(catalog.product(i["asin"]) for i in raw[:40] if not i["pricing"])
    assert no_price["price"] == 100.0
    reviewed = json.loads((FIXTURE / "reviews.json").read_text())[0]
    assert (
        catalog.product(reviewed["asin"])["Reviews"][0]["score"] == reviewed["reviews"][0]["stars"]
    )


def test_human_and_synthetic_goals() -> None:
    human = json.loads((FIXTURE / "items_human_ins.json").read_text())
    catalog = load_webshop_data(FIXTURE)
    ids = catalog.task_ids("train") + catalog.task_ids("test")
    assert len(ids) == sum(len(v) for v in human.values()) and catalog.task_ids("test")
    goal = catalog.goal(ids[0])
    assert isinstance(goal["goal_options"], list) and goal["attributes"]
    assert goal["instruction_text"].endswith("dollars") or goal["price_upper"] == 1_000_000.0
    synthetic = load_webshop_data(FIXTURE, human_goals=False)
    # One synthetic goal per option combination of each product with an instruction (the
    # original's get_synthetic_goals), counted here from the raw files.
    raw = {p["asin"]: p for p in json.loads((FIXTURE / "items_shuffle_1000.json").read_text())}
    ins = json.loads((FIXTURE / "items_ins_v2_1000.json").read_text())
    expected = 0
    for asin in (synthetic.asin_at(i) for i in range(len(synthetic))):
        if ins.get(asin, {}).get("instruction") and ins[asin].get("instruction_attributes"):
            combos = 1
            for values in (raw[asin].get("customization_options") or {}).values():
                combos *= len(values) if values else 1
            expected += combos
    assert len(synthetic.task_ids("train") + synthetic.task_ids("test")) == expected > 40
    assert isinstance(synthetic.goal("000000")["goal_options"], dict)


def test_env_runs_on_the_original_files() -> None:
    make = lambda: gymnasium.make("turngym/WebShop-v0", data_dir=str(FIXTURE))  # noqa: E731
    check_env(make)
    env = make().unwrapped
    assert len(env.catalog) == 40
    trajectories = turngym.rollout(
        "turngym/WebShop-v0",
        turngym.agents.expert("turngym/WebShop-v0"),
        num_episodes=20,
        env_kwargs={"data_dir": str(FIXTURE)},
        progress=False,
    )
    # Some human goals ask for options the product lacks (as in the real data): most, not all, score 1.
    assert sum(t.outcome == 1.0 for t in trajectories) >= 15
