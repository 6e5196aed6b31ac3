"""WebShop's reward equals the original ``get_reward`` (princeton-nlp/WebShop ``goal.py``) on real
WebShop strings, one test per case class; and the real-data loader's goals and errors.

The products are assembled from the real pieces in ``../shared/data/realdata/webshop_tests``
(see its SOURCE.md; the module skips when that folder is absent): a real human goal's target title, query and category, a real attribute list of
``items_ins_v2_1000.json``, a real product page's bullets and description. Each expected number is
derived by hand in the comments; all of them were also produced by the original ``get_reward``
(same noun tagger on both sides) during development.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

from helpers.realdata import real_folder
from turngym.envs.webshop.realdata import DOWNLOADS, load_webshop_data
from turngym.envs.webshop.reward import (
    best_options,
    normalize_color,
    token_set_ratio,
    webshop_reward,
)
from turngym.error import InvalidArgumentError

REAL = real_folder("webshop_tests")
FIXTURE = Path(__file__).parent / "fixtures" / "webshop"
GOALS = {e["goal"]["asin"]: e for e in json.loads((REAL / "human_goals_agentgym.json").read_text())}
ATTRIBUTES = json.loads((REAL / "items_ins_v2_subset.json").read_text())
SHOE = json.loads((REAL / "product_B09P87V3LZ.json").read_text())


def _target(asin: str, attributes_of: str) -> dict[str, Any]:
    """The target of a real human goal, with the attribute list of a real items_ins_v2 entry."""
    goal = GOALS[asin]["goal"]
    return {
        "asin": asin,
        "name": goal["name"],
        "Title": goal["name"],
        "query": goal["query"],
        "product_category": goal["product_category"],
        "Attributes": ATTRIBUTES[attributes_of]["attributes"],
        "BulletPoints": [],
        "Description": "",
    }


LOAFERS = _target("B096W49HCJ", "B09N9T673Q")  # goal: pink, size 8, "teen girls", < $50
LOAFER_GOAL = GOALS["B096W49HCJ"]["goal"]
SOFA = _target("B097MRL84T", "B09KQQNRRM")  # goal: grey, "wood frame", "living room", < $490
SOFA_GOAL = GOALS["B097MRL84T"]["goal"]
# The loafers' goal title has 11 nouns, 9 distinct: the original divides the 9 shared distinct
# nouns by 11 (title_score 0.818 > 0.2, r_type 1.0).


def _total(product: dict[str, Any], goal: dict[str, Any], price: float, chosen: dict) -> float:
    result = webshop_reward(product, goal, price, chosen)
    assert result.raw == result.total  # the original's rule never leaves [0, 1]
    return result.total


def test_exact_purchase() -> None:
    # "teen girls" is in the attribute list (ratio 100): N_attr 1; pink = pink, 8 = 8: N_opt 2;
    # 17.92 <= 50: (1 + 2 + 1) / (1 + 2 + 1) = 1.0.
    assert _total(LOAFERS, LOAFER_GOAL, 17.92, {"color": "pink", "size": "8"}) == 1.0
    # The human's real choice, "z2-pink": normalize_color -> "pink" (the first COLOR_SET name in
    # it), so it counts too: 1.0 (the original's number for this trajectory).
    bought = GOALS["B096W49HCJ"]["bought"]
    assert bought["options"]["color"] == "z2-pink" and normalize_color("z2-pink") == "pink"
    assert _total(LOAFERS, LOAFER_GOAL, bought["price"], bought["options"]) == 1.0


def test_wrong_option() -> None:
    # black vs pink: ratio 0 -> N_opt 1 (size): (1 + 1 + 1) / 4 = 0.75.
    assert _total(LOAFERS, LOAFER_GOAL, 17.92, {"color": "black", "size": "8"}) == 0.75
    # No option chosen at all: (1 + 0 + 1) / 4 = 0.5.
    assert _total(LOAFERS, LOAFER_GOAL, 17.92, {}) == 0.5


def test_x_small_matches_small() -> None:
    # thefuzz processes "x-small" to "x small"; "small" is a shared token: token_set_ratio 100 >
    # 85, so buying "small" for "x-small" counts: (1 + 2 + 1) / 4 = 1.0 (the lenient variant's
    # exact size rule gave 0.75).
    goal = dict(LOAFER_GOAL, goal_options=["pink", "x-small"])
    assert token_set_ratio("small", "x-small") == 100
    chosen = {"color": "pink", "size": "small"}
    assert _total(LOAFERS, goal, 17.92, chosen) == 1.0
    assert webshop_reward(LOAFERS, goal, 17.92, chosen, lenient=True).total == 0.75


def test_colours_in_the_originals_list_order() -> None:
    # Both goal attributes are in the sofa's list: N_attr 2; price ok.
    # "light grey" -> "grey" ("grey" precedes "light" in COLOR_SET): (2 + 1 + 1) / 4 = 1.0.
    assert _total(SOFA, SOFA_GOAL, 129.99, {"color": "light grey"}) == 1.0
    # "dark grey" -> "dark" ("dark" precedes "grey"): no match: (2 + 0 + 1) / 4 = 0.75.
    assert normalize_color("dark grey") == "dark"
    assert _total(SOFA, SOFA_GOAL, 129.99, {"color": "dark grey"}) == 0.75
    # The case: goal "gray-1" -> "gray", bought "antique graywash" -> "ash" ("ash" comes
    # first): ratio of "ash" and "gray" is 0: 0.75 (turngym's earlier rule, longest colour name
    # first, made both "gray" and paid 1.0).
    goal = dict(SOFA_GOAL, goal_options=["gray-1"])
    assert normalize_color("antique graywash") == "ash"
    assert _total(SOFA, goal, 129.99, {"color": "antique graywash"}) == 0.75


def test_wrong_product() -> None:
    # The strap goal, bought: the earbuds of another real goal. Queries differ, categories share
    # one level ("Electronics"), and no noun of the strap's title (dykeiss, sport, silicone, band,
    # apple, watch, ...) is among the earbuds' (otium, bluetooth, headphones, ...): title_score 0,
    # r_type 0 -> 0.0 whatever else matches.
    phones = _target("B07KYL4W5P", "B09KQNH5C6")
    result = webshop_reward(phones, GOALS["B092J891H7"]["goal"], 4.89, {"color": "teal"})
    assert (result.title_score, result.r_type, result.total) == (0.0, 0.0, 0.0)
    assert result.n_option == 1  # teal = teal: the option alone earns nothing


def test_attribute_only_in_text() -> None:
    # The real shoe page: no attribute list (the loader's DUMMY_ATTR). "non slip" is in a bullet
    # ("Non Slip Running Shoes"), "arch support" in the description; "rubber sole" is nowhere
    # (the bullets say "RUBBER material"): N_attr 2. black, 8: N_opt 2. $100 <= $110:
    # (2 + 2 + 1) / (3 + 2 + 1) = 5/6.
    product = {
        "asin": SHOE["asin"],
        "name": SHOE["Title"],
        "Title": SHOE["Title"],
        "query": "athletic shoes",
        "product_category": "Clothing, Shoes & Jewelry › Women › Shoes",
        "Attributes": ["DUMMY_ATTR"],
        "BulletPoints": SHOE["BulletPoints"],
        "Description": SHOE["Description"],
        "options": SHOE["options"],
    }
    goal = {
        "asin": SHOE["asin"],
        "name": SHOE["Title"],
        "query": "athletic shoes",
        "product_category": product["product_category"],
        "attributes": ["non slip", "arch support", "rubber sole"],
        "goal_options": ["black", "8"],
        "price_upper": 110.0,
    }
    result = webshop_reward(product, goal, 100.0, {"color": "black", "size": "8"})
    assert (result.n_attr, result.n_option) == (2, 2)
    assert math.isclose(result.total, 5 / 6)
    # The text mentions "white"; buying black for a white goal does not count (N_opt 1 of 2).
    white = dict(goal, goal_options=["white", "8"])
    assert webshop_reward(product, white, 100.0, {"color": "black", "size": "8"}).n_option == 1
    # Synthetic goals (a dict) compare the values: size "8.5" shares the token "8" with "8"
    # (ratio 100) and counts; see the reward module's divergence 1.
    synthetic = dict(goal, goal_options={"color": "black", "size": "8"})
    assert (
        webshop_reward(product, synthetic, 100.0, {"color": "black", "size": "8.5"}).n_option == 2
    )


def test_over_price() -> None:
    # 55 > 50: (1 + 2 + 0) / 4 = 0.75.
    assert _total(LOAFERS, LOAFER_GOAL, 55.0, {"color": "pink", "size": "8"}) == 0.75


def test_expert_options_are_the_literal_goal_values() -> None:
    # The product lists the graywash first; the goal asks for gray-1, which it also has.
    product = dict(SOFA, options={"color": ["antique graywash", "gray-1", "grey"]})
    assert best_options(product, dict(SOFA_GOAL, goal_options=["gray-1"])) == {"color": "gray-1"}
    # No literal value: the first value the original counts ("light grey" -> "grey").
    product = dict(SOFA, options={"color": ["antique graywash", "light grey"]})
    assert best_options(product, SOFA_GOAL) == {"color": "light grey"}
    # Nothing that counts: nothing is chosen (the graywash would not score).
    product = dict(SOFA, options={"color": ["antique graywash"]})
    assert best_options(product, dict(SOFA_GOAL, goal_options=["gray-1"])) == {}
    # A synthetic goal's named option lands in its own group.
    product = {"options": {"size": ["8", "8.5"], "width": ["8"]}}
    assert best_options(product, {"goal_options": {"size": "8.5"}}) == {"size": "8.5"}


# ------------------------------------------------------------------ the real-data loader


def _copy(tmp_path: Path, *names: str) -> Path:
    for name in names:
        shutil.copy(FIXTURE / name, tmp_path / name)
    return tmp_path


def test_goal_sources(tmp_path: Path) -> None:
    human = load_webshop_data(FIXTURE, goals="human")
    synthetic = load_webshop_data(FIXTURE, goals="synthetic")
    both = load_webshop_data(FIXTURE, goals="both")

    def count(catalog):
        return len(catalog.task_ids("train") + catalog.task_ids("test"))

    assert count(both) == count(human) + count(synthetic)
    first = both.goal("000000")
    assert first["source"] == "human" and isinstance(first["goal_options"], list)
    goals = [synthetic.goal(i) for i in synthetic.task_ids("train") + synthetic.task_ids("test")]
    # Rarity weights: mean over a goal's attributes of 1 / (goals with that attribute).
    counts: dict[str, int] = {}
    for goal in goals:
        for attribute in goal["attributes"]:
            counts[attribute] = counts.get(attribute, 0) + 1
    goal = goals[0]
    expected = sum(1 / counts[a] for a in goal["attributes"]) / len(goal["attributes"])
    assert math.isclose(goal["weight"], expected) and goal["weight"] < 1
    # One goal per option combination: the combinations of one product are all there, in order.
    same = [g for g in goals if g["asin"] == goal["asin"]]
    product = synthetic.product(goal["asin"])
    n = 1
    for values in product["options"].values():
        n *= len(values)
    assert len(same) == n and len({json.dumps(g["goal_options"]) for g in same}) == n
    if product["options"]:
        name = sorted(product["options"])[0]
        assert f"with {name}: " in goal["instruction_text"]


def test_missing_files_name_the_file_and_the_download(tmp_path: Path) -> None:
    _copy(tmp_path, "items_ins_v2_1000.json")
    with pytest.raises(InvalidArgumentError) as error:
        load_webshop_data(tmp_path)
    assert "items_shuffle" in str(error.value) and DOWNLOADS["items_shuffle_1000.json"] in str(
        error.value
    )
    _copy(tmp_path, "items_shuffle_1000.json")
    with pytest.raises(InvalidArgumentError) as error:
        load_webshop_data(tmp_path, goals="human")
    message = str(error.value)
    assert "items_human_ins.json" in message and DOWNLOADS["items_human_ins.json"] in message
    # Without the human file the default is the synthetic goals.
    assert load_webshop_data(tmp_path).goal("000000")["source"] == "synthetic"


def test_no_matching_human_goals_says_why(tmp_path: Path) -> None:
    _copy(tmp_path, "items_shuffle_1000.json", "items_ins_v2_1000.json")
    (tmp_path / "items_human_ins.json").write_text(json.dumps({"B000000000": []}))
    with pytest.raises(InvalidArgumentError, match="goals='synthetic'"):
        load_webshop_data(tmp_path)


def test_env_goal_and_variant_arguments() -> None:
    from turngym.envs.webshop.env import WebShopEnv

    with pytest.raises(InvalidArgumentError, match="'human', 'synthetic', 'both'"):
        WebShopEnv(data_dir=FIXTURE, goals="humans")
    with pytest.raises(InvalidArgumentError, match="data_dir"):
        WebShopEnv(num_products=50, goals="human")
    with pytest.raises(InvalidArgumentError, match="'original', 'lenient'"):
        WebShopEnv(num_products=50, reward_variant="strict")
    env = WebShopEnv(data_dir=FIXTURE, goals="synthetic", split="test")
    _, info = env.reset(seed=0)
    assert json.loads(info["privileged"]["goal"])["goal_options"] is not None


def test_token_set_ratio_is_thefuzz() -> None:
    # Every attribute and option pair these fixtures hold, plus strings that exercise thefuzz's
    # processing (non-ASCII, punctuation, empty, a (name, value) tuple), against thefuzz itself.
    fuzz = pytest.importorskip("thefuzz.fuzz")
    attributes = {a for entry in ATTRIBUTES.values() for a in entry.get("attributes", [])}
    attributes |= {a for e in GOALS.values() for a in e["goal"]["attributes"]}
    options = {v for e in GOALS.values() for v in e["goal"]["goal_options"]}
    options |= {v for e in GOALS.values() for v in (e["bought"] or {}).get("options", {}).values()}
    options |= {v for values in SHOE["options"].values() for v in values}
    options |= {"x-small", "xx-small", "small", "café crème", "3t280", "", "38 | 40 | 41 mm"}
    pairs = [(a, b) for a in sorted(attributes) for b in sorted(attributes)]
    pairs += [(a, b) for a in sorted(options) for b in sorted(options)]
    pairs.append((("color", "black"), "black"))
    assert len(pairs) > 1_900
    assert [token_set_ratio(a, b) for a, b in pairs] == [
        fuzz.token_set_ratio(a, b) for a, b in pairs
    ]
