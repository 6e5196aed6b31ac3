"""WebShop's reward on hand-built products, with expected values computed by hand in the comments."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from turngym.envs.webshop.nouns import noun_tagger, title_nouns
from turngym.envs.webshop.reward import best_options, normalize_color, type_reward, webshop_reward
from turngym.error import InvalidArgumentError

GOAL_TITLE = "Velora Gluten Free Dark Chocolate Bar"


def _product(**overrides):
    product = {
        "asin": "B000000001",
        "name": GOAL_TITLE,
        "Title": GOAL_TITLE,
        "BulletPoints": ["Rich cacao taste."],
        "Description": "A bar for every day.",
        "Attributes": ["gluten free", "dairy free", "non gmo"],
        "options": {"flavor": ["mint", "caramel"], "size": ["small", "large"]},
        "query": "dark chocolate bar",
        "product_category": "Grocery & Gourmet Food › Snacks & Sweets › Chocolate › Bars",
    }
    product.update(overrides)
    return product


def _goal(**overrides):
    goal = {
        "asin": "B000000001",
        "name": GOAL_TITLE,
        "query": "dark chocolate bar",
        "product_category": "Grocery & Gourmet Food › Snacks & Sweets › Chocolate › Bars",
        "attributes": ["gluten free", "dairy free", "non gmo"],
        "goal_options": {"flavor": "mint", "size": "large"},
        "price_upper": 30.0,
    }
    goal.update(overrides)
    return goal


def test_exact_purchase_scores_one() -> None:
    # 3 attributes + 2 options + price: (3 + 2 + 1) / (3 + 2 + 1) = 1.0, r_type 1.0.
    result = webshop_reward(_product(), _goal(), 20.0, {"flavor": "mint", "size": "large"})
    assert result.total == 1.0 and result.r_type == 1.0 and result.title_score == 1.0


def test_two_of_three_attributes() -> None:
    # "non gmo" is neither an attribute nor in the text: N_attr = 2.
    # (2 + 2 + 1) / (3 + 2 + 1) = 5/6.
    product = _product(Attributes=["gluten free", "dairy free"])
    result = webshop_reward(product, _goal(), 20.0, {"flavor": "mint", "size": "large"})
    assert result.n_attr == 2
    assert math.isclose(result.total, 5 / 6)


def test_attribute_found_in_text_counts() -> None:
    # "non gmo" is missing from Attributes but appears in a bullet: still N_attr = 3 -> 1.0.
    product = _product(
        Attributes=["gluten free", "dairy free"], BulletPoints=["Certified non gmo cacao."]
    )
    assert webshop_reward(product, _goal(), 20.0, {"flavor": "mint", "size": "large"}).total == 1.0


def test_fuzzy_attribute_match() -> None:
    # token_set_ratio("essential oil", "essential oils") = 96 > 85 counts; (1 + 0 + 1) / (1 + 0 + 1) = 1.
    product = _product(Attributes=["essential oil"])
    goal = _goal(attributes=["essential oils"], goal_options={})
    assert webshop_reward(product, goal, 20.0, {}).n_attr == 1


def test_wrong_option() -> None:
    # flavor caramel != mint (ratio 31): N_opt = 1 (size only). (3 + 1 + 1) / 6 = 5/6.
    result = webshop_reward(_product(), _goal(), 20.0, {"flavor": "caramel", "size": "large"})
    assert result.n_option == 1
    assert math.isclose(result.total, 5 / 6)


def test_size_is_fuzzy_like_every_option() -> None:
    # The original has no exact-match rule for sizes: token_set_ratio("x-large", "large") = 100
    # (after thefuzz's processing "x large" vs "large", "large" is a shared token), so it counts:
    # (3 + 2 + 1) / 6 = 1.0. The lenient variant needs an exact size: (3 + 1 + 1) / 6 = 5/6.
    product = _product(options={"flavor": ["mint"], "size": ["x-large"]})
    chosen = {"flavor": "mint", "size": "x-large"}
    assert webshop_reward(product, _goal(), 20.0, chosen).total == 1.0
    lenient = webshop_reward(product, _goal(), 20.0, chosen, lenient=True)
    assert lenient.n_option == 1 and math.isclose(lenient.total, 5 / 6)


def test_no_options_chosen() -> None:
    # Buying before choosing options: N_opt = 0. (3 + 0 + 1) / 6 = 2/3.
    assert math.isclose(webshop_reward(_product(), _goal(), 20.0, {}).total, 2 / 3)


def test_over_price() -> None:
    # 35 > 30: the price term is 0. (3 + 2 + 0) / 6 = 5/6.
    result = webshop_reward(_product(), _goal(), 35.0, {"flavor": "mint", "size": "large"})
    assert not result.price_ok
    assert math.isclose(result.total, 5 / 6)


def test_wrong_type() -> None:
    # A lamp: query and categories differ (only the root level matches: 1 < 2 levels) and no
    # noun is shared: goal nouns = {velora, gluten, chocolate, bar}, lamp nouns = {lumio, lamp,
    # shade} -> title_score 0 -> r_type 0 -> reward 0 even though everything else matches.
    lamp = _product(
        name="Lumio Table Lamp, Linen Shade",
        Title="Lumio Table Lamp, Linen Shade",
        query="table lamp",
        product_category="Grocery & Gourmet Food › Lighting › Lamps",
    )
    result = webshop_reward(lamp, _goal(), 20.0, {"flavor": "mint", "size": "large"})
    assert result.title_score == 0.0 and result.r_type == 0.0 and result.total == 0.0


def test_partial_type_match() -> None:
    # Other brand, other query, other category path; nouns of the goal title:
    # (velora, gluten, chocolate, bar) = 4; bought "Kornix Milk Chocolate Spread" shares only
    # "chocolate": title_score = 1/4 = 0.25 > 0.2 -> r_type stays 1.0.
    spread = {
        "name": "Kornix Milk Chocolate Spread",
        "query": "spread",
        "product_category": "x › y",
    }
    assert type_reward(spread, _goal())["r_type"] == 1.0
    # A long goal title, "Velora Gluten Chocolate Bar Box Gift Set Tin Case Kit Pouch", has 11
    # nouns; sharing only "chocolate" gives 1/11 = 0.09 < 0.1 -> r_type 0.1, even though the
    # query matches.
    long_goal = _goal(name="Velora Gluten Chocolate Bar Box Gift Set Tin Case Kit Pouch")
    assert len(title_nouns(long_goal["name"])) == 11
    other = {"name": "Kornix Chocolate", "query": "dark chocolate bar", "product_category": "x › y"}
    parts = type_reward(other, long_goal)
    assert (
        parts["query_match"]
        and math.isclose(parts["title_score"], 1 / 11)
        and parts["r_type"] == 0.1
    )
    # No query or category match, 2 of 11 nouns shared (chocolate, pouch) = 0.18: not > 0.2,
    # so r_type = 0.5 (and 0.18 >= 0.1 keeps it there).
    two = {"name": "Kornix Chocolate Pouch", "query": "spread", "product_category": "x › y"}
    assert type_reward(two, long_goal)["r_type"] == 0.5


def test_colour_normalisation_and_combined_partial() -> None:
    # The original's COLOR_SET in list order: "blue" precedes "navy", so "matte navy blue" and
    # "navy blue" both normalise to "blue" and match. Goal: 2 attributes (1 matched), 2 options
    # (colour matched, size "small" vs "large": ratio 40), over price: (1 + 1 + 0) / 5 = 0.4.
    assert normalize_color("matte navy blue") == normalize_color("navy blue") == "blue"
    product = _product(
        Attributes=["gluten free"],
        options={"color": ["matte navy blue"], "size": ["small", "large"]},
    )
    goal = _goal(
        attributes=["gluten free", "vegan formula"],
        goal_options={"color": "navy blue", "size": "large"},
    )
    result = webshop_reward(product, goal, 45.0, {"color": "matte navy blue", "size": "small"})
    assert (result.n_attr, result.n_option, result.price_ok) == (1, 1, False)
    assert math.isclose(result.total, 0.4)


def test_option_in_text_does_not_count() -> None:
    # A chosen value found in the product's text is no goal option: the goal asks for mint, the
    # bullets say caramel, caramel is bought: N_opt = 1 (size) -> (3 + 1 + 1) / 6. The lenient
    # variant counts it (the old turngym rule): 1.0.
    product = _product(BulletPoints=["Salted caramel filling."])
    chosen = {"flavor": "caramel", "size": "large"}
    assert math.isclose(webshop_reward(product, _goal(), 20.0, chosen).total, 5 / 6)
    assert webshop_reward(product, _goal(), 20.0, chosen, lenient=True).total == 1.0


def test_each_goal_option_counts_once() -> None:
    # Two chosen values both match the one goal option: N_opt = 1 = |O|, never more, so the raw
    # score cannot pass 1: (3 + 1 + 1) / (3 + 1 + 1) = 1.0.
    product = _product(options={"flavor": ["mint"], "style": ["mint"]})
    goal = _goal(goal_options=["mint"])
    result = webshop_reward(product, goal, 20.0, {"flavor": "mint", "style": "mint"})
    assert (result.n_option, result.raw) == (1, 1.0)


def test_best_options_prefers_exact_values() -> None:
    product = _product(options={"count": ["pack of 1", "pack of 12"]})
    assert best_options(product, _goal(goal_options={"count": "pack of 12"})) == {
        "count": "pack of 12"
    }


@pytest.mark.parametrize(
    ("title", "nouns"),
    [
        (
            "Velora Gluten Free Dark Chocolate Bar, 12 Count",
            ("velora", "gluten", "chocolate", "bar", "count"),
        ),
        ("Men's Slim Fit Denim Jeans - Machine Washable", ("denim", "jeans", "machine")),
    ],
)
def test_noun_tagger(title: str, nouns: tuple[str, ...]) -> None:
    assert title_nouns(title) == nouns


@pytest.mark.parametrize(
    "module_name", ["turngym.envs.webshop.reward", "turngym.envs.webshop.nouns"]
)
def test_doctests(module_name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module_name))
    assert result.attempted > 0 and result.failed == 0


def _spacy_pipeline(tmp_path: Path) -> Path:
    """A real spaCy pipeline, saved to disk, whose POS tags come from rules (no model download):
    "chocolate", "bar" and "spread" are NOUN, "kornix" is PROPN, every other token ADJ."""
    spacy = pytest.importorskip("spacy")
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("attribute_ruler")
    ruler.add([[{"IS_ASCII": True}], [{"IS_ASCII": False}]], {"POS": "ADJ"})
    ruler.add([[{"LOWER": {"IN": ["chocolate", "bar", "spread"]}}]], {"POS": "NOUN"})
    ruler.add([[{"LOWER": "kornix"}]], {"POS": "PROPN"})
    nlp.to_disk(tmp_path / "pipeline")
    return tmp_path / "pipeline"


def test_spacy_noun_tagger_changes_r_type(tmp_path: Path) -> None:
    tagger = noun_tagger(f"spacy:{_spacy_pipeline(tmp_path)}")
    assert tagger("Kornix Milk Chocolate Spread") == ("kornix", "chocolate", "spread")
    assert noun_tagger("builtin") is title_nouns
    fudge = _product(
        name="Kornix Velora Gluten Fudge",
        Title="Kornix Velora Gluten Fudge",
        query="spread",
        product_category="x › y",
    )
    chosen = {"flavor": "mint", "size": "large"}
    # Built-in tagger: goal nouns (velora, gluten, chocolate, bar), the fudge's (kornix, velora,
    # gluten, fudge): 2/4 = 0.5 > 0.2 -> r_type 1.0; all 3 attributes, 2 options, price: 1.0.
    builtin = webshop_reward(fudge, _goal(), 20.0, chosen)
    assert (builtin.title_score, builtin.r_type, builtin.total) == (0.5, 1.0, 1.0)
    # The pipeline: goal nouns (chocolate, bar), the fudge's (kornix): 0/2 -> r_type 0 -> 0.0.
    tagged = webshop_reward(fudge, _goal(), 20.0, chosen, tagger)
    assert (tagged.title_score, tagged.r_type, tagged.total) == (0.0, 0.0, 0.0)


def test_env_scores_with_the_chosen_tagger(tmp_path: Path) -> None:
    import gymnasium

    import turngym

    spec = f"spacy:{_spacy_pipeline(tmp_path)}"
    env = gymnasium.make("turngym/WebShop-Small-v0", noun_tagger=spec)
    policy = turngym.agents.expert("turngym/WebShop-Small-v0")
    trajectory = turngym.rollout(
        "turngym/WebShop-Small-v0",
        policy,
        num_episodes=1,
        env_kwargs={"noun_tagger": spec},
        progress=False,
    )[0]
    details = trajectory.turns[-1].info["reward_details"]
    goal = env.unwrapped.catalog.goal(trajectory.task_id)
    bought = env.unwrapped.catalog.product(goal["asin"])
    expected = type_reward(bought, goal, noun_tagger(spec))["title_score"]
    assert details["title_score"] == expected != type_reward(bought, goal)["title_score"]


@pytest.mark.parametrize("spec", ["spacy:", "nltk", "spacy:/no/such/pipeline"])
def test_bad_noun_tagger_says_what_works(spec: str) -> None:
    pytest.importorskip("spacy")
    with pytest.raises(InvalidArgumentError, match="builtin"):
        noun_tagger(spec)
