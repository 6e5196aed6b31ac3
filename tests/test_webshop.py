"""WebShop env: conformance, expert and random policies, pages and actions, bad input, shaping."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import turngym
from turngym.envs.webshop.catalog import GeneratedCatalog, generate_products
from turngym.envs.webshop.env import WebShopEnv
from turngym.envs.webshop.vocab import CATEGORIES
from turngym.error import InvalidArgumentError
from turngym.testing import check_env

SMALL = "turngym/WebShop-Small-v0"  # 1,000 products, cached after the first build


@pytest.fixture(scope="module")
def env() -> WebShopEnv:
    return gymnasium.make(SMALL).unwrapped


def _start(env: WebShopEnv, task: str | None = None, seed: int = 0) -> tuple[str, dict]:
    return env.reset(seed=seed, options={"task": task} if task else None)


def test_conformance_small() -> None:
    check_env(gymnasium.make(SMALL), episodes=3)


def test_conformance_text_rich_sparse() -> None:
    check_env(lambda: gymnasium.make(SMALL, observation_mode="text_rich", reward_mode="sparse"))


def test_expert_on_200_test_tasks(env: WebShopEnv) -> None:
    policy = turngym.agents.expert(SMALL)
    test_env = gymnasium.make(SMALL, split="test")
    tasks = test_env.unwrapped.task_ids
    assert len(tasks) >= 200
    trajectories = turngym.rollout(
        SMALL, policy, num_episodes=200, env_kwargs={"split": "test"}, progress=False
    )
    assert len({t.task_id for t in trajectories}) > 100
    success = np.mean([t.outcome == 1.0 for t in trajectories])
    print(f"\nWebShop expert: reward-1.0 purchases on 200 test episodes = {success:.1%}")
    assert success >= 0.95


def test_random_policy_mean_reward() -> None:
    trajectories = turngym.rollout(
        SMALL,
        turngym.agents.RandomPolicy(seed=0),
        num_episodes=100,
        env_kwargs={"split": "test"},
        progress=False,
    )
    mean = float(np.mean([t.outcome for t in trajectories]))
    success = float(np.mean([t.success for t in trajectories]))
    print(
        f"\nWebShop random policy: mean reward {mean:.3f}, success {success:.1%} over 100 test episodes"
    )
    assert 0.0 < mean < 0.6 and success < 0.2


def test_pages_and_navigation(env: WebShopEnv) -> None:
    obs, info = _start(env, seed=5)
    assert obs.startswith("WebShop [SEP] Instruction: [SEP] ") and obs.endswith("[SEP] Search")
    assert info["admissible_actions"] == [f"search[{env.shop.instruction}]"]
    obs, _, _, _, info = env.step("search[free]")
    assert "Page 1 (Total results: 50)" in obs and "click[next >]" in info["admissible_actions"]
    assert "click[< prev]" not in info["admissible_actions"]
    first_page_key = info["state_key"]
    first = env.shop.shown_results()
    assert len(first) == 10 and all(
        f"click[{a.lower()}]" in info["admissible_actions"] for a in first
    )
    obs, _, _, _, info = env.step("click[Next >]")  # clicks are case-insensitive
    assert "Page 2 (Total results: 50)" in obs and env.shop.shown_results() != first
    obs, _, _, _, info = env.step("click[< prev]")
    assert info["state_key"] == first_page_key
    asin = first[0]
    obs, _, _, _, info = env.step(f"click[{asin.lower()}]")
    product = env.catalog.product(asin)
    assert product["Title"] in obs and f"Price: {product['Price']}" in obs and "Buy Now" in obs
    for name, values in product["options"].items():
        assert f"[SEP] {name} [SEP] {values[0]}" in obs
    for page, text in (
        ("description", product["Description"]),
        ("features", product["BulletPoints"][0]),
    ):
        obs, _, _, _, info = env.step(f"click[{page}]")
        assert text in obs and set(info["admissible_actions"]) == {
            "click[back to search]",
            "click[< prev]",
        }
        env.step("click[< prev]")
    obs, _, _, _, info = env.step("click[< prev]")  # item -> results, same page and query
    assert info["state_key"] == first_page_key
    obs, _, _, _, info = env.step("click[back to search]")
    assert obs.endswith("[SEP] Search")


def test_options_state_key_and_buy(env: WebShopEnv) -> None:
    _start(env, seed=6)
    env.step("search[bluetooth speaker]")
    asin = next(
        a for a in env.shop.shown_results() if env.catalog.product(a)["options"].get("color")
    )
    *_, info = env.step(f"click[{asin}]")
    before = info["state_key"]
    colors = env.catalog.product(asin)["options"]["color"]
    *_, info = env.step(f"click[{colors[0]}]")
    assert env.shop.options == {"color": colors[0]} and info["state_key"] != before
    *_, info = env.step(f"click[{colors[-1]}]")  # choosing again replaces the value
    assert env.shop.options == {"color": colors[-1]}
    obs, reward, terminated, truncated, info = env.step("click[buy now]")
    assert terminated and not truncated and 0.0 <= info["outcome"] <= 1.0
    assert info["reward_details"]["options"] == {"color": colors[-1]}
    assert "Your score (min 0.0, max 1.0)" in obs


def test_page_follows_every_state_change(env: WebShopEnv) -> None:
    """The memoised page is rebuilt after any change, also when the state is set directly."""
    from turngym.envs.webshop.shop import render_text

    _start(env, seed=6)
    env.step("search[bluetooth speaker]")
    shop = env.shop
    first = render_text(shop)
    assert shop.shown_results()[0] in first
    shop.results = shop.results[::-1]  # set from outside, not through step()
    assert render_text(shop) != first and shop.results[0] in render_text(shop)
    asin = next(a for a in shop.shown_results() if env.catalog.product(a)["options"].get("color"))
    env.step(f"click[{asin}]")
    color = env.catalog.product(asin)["options"]["color"][0]
    plain = render_text(shop, "text_rich")
    shop.options["color"] = color  # mutated in place
    chosen = render_text(shop, "text_rich")
    assert chosen != plain and f"[clicked button] {color} [clicked button_]" in chosen
    shop.page = "description"
    assert render_text(shop).endswith(str(env.catalog.product(asin)["Description"]))
    assert env.step("click[< prev]")[-1]["valid_action"] and shop.page == "item"


def test_bad_input_gets_feedback_and_the_episode_goes_on(env: WebShopEnv) -> None:
    _, info = _start(env, seed=7)
    key = info["state_key"]
    for action in (
        "click[buy now]",
        "click[nonexistent]",
        "search[]",
        "search[   ]",
        "buy it",
        "x" * 100_000,
    ):
        obs, reward, terminated, truncated, info = env.step(action)
        assert not info["valid_action"] and obs.startswith("Invalid action") and len(obs) < 2_000
        assert not terminated and info["state_key"] == key and reward == pytest.approx(-0.05)
    # Queries of any length or charset are valid searches.
    obs, _, _, _, info = env.step("search[" + "巧克力 🍫 ñ " * 5_000 + "]")
    assert info["valid_action"] and "Total results: 0" in obs
    *_, info = env.step("search[again]")
    assert not info["valid_action"], "no search bar on a results page"
    env.step("click[back to search]")
    *_, info = env.step("search[" + "dark chocolate " * 6_000 + "]")  # 90 KB
    assert info["valid_action"] and env.shop.results
    env.step("click[back to search]")
    *_, info = env.step("search[" + "dark chocolate " * 7_000 + "]")  # cut at 100 KB: no "]"
    assert not info["valid_action"]


def test_buy_before_options_and_turn_limit() -> None:
    env = WebShopEnv(num_products=1_000, max_turns=4)
    _, info = env.reset(seed=8)
    env.step(info["admissible_actions"][0])
    asin = env.shop.shown_results()[0]
    env.step(f"click[{asin}]")
    *_, terminated, truncated, info = env.step("click[buy now]")
    assert terminated and info["reward_details"]["n_option"] <= len(
        env.catalog.product(asin)["options"]
    )
    env.reset(seed=8)
    for _ in range(3):
        *_, terminated, truncated, info = env.step("click[nothing]")
        assert not (terminated or truncated)
    *_, terminated, truncated, info = env.step("click[nothing]")
    assert truncated and info["outcome"] == 0.0


def test_dense_shaping_is_potential_based(env: WebShopEnv) -> None:
    policy = turngym.agents.expert(SMALL)
    for trajectory in turngym.rollout(SMALL, policy, num_episodes=20, seed=3, progress=False):
        progress = sum(turn.reward_components.get("progress", 0.0) for turn in trajectory.turns)
        assert progress == pytest.approx(0.0, abs=1e-9), (
            "shaping telescopes to 0 over a bought episode"
        )
        assert trajectory.total_reward <= 1.0 + 1e-9
        assert max(t.info["progress"] for t in trajectory.turns[:-1]) > 0.3, (
            "the expert's pages show progress"
        )
    for trajectory in turngym.rollout(
        SMALL, turngym.agents.RandomPolicy(1), num_episodes=20, progress=False
    ):
        assert trajectory.total_reward <= 1.0 + 1e-9


def test_catalog_generator() -> None:
    a, b = generate_products(120, seed=1), generate_products(120, seed=1)
    assert a == b and a != generate_products(120, seed=2)
    assert {p["category"] for p in a} == set(CATEGORIES)
    assert len({p["asin"] for p in a}) == 120
    catalog = GeneratedCatalog(5_000, seed=1)
    assert all(catalog.index_of(catalog.asin_at(i)) == i for i in range(0, 5_000, 37))
    assert catalog.index_of("B0ZZZZZZZZ") is None and catalog.index_of("nonsense") is None
    product = catalog.product(catalog.asin_at(42))
    assert product["options"] and product["BulletPoints"] and product["Price"].startswith("$")
    train, test = catalog.task_ids("train"), catalog.task_ids("test")
    assert not set(train) & set(test) and 0.15 < len(test) / 5_000 < 0.25
    targets = {catalog.goal(t)["asin"] for t in test[:50]} & {
        catalog.goal(t)["asin"] for t in train[:500]
    }
    assert not targets
    goal = catalog.goal(test[0])
    assert goal == GeneratedCatalog(5_000, seed=1).goal(test[0]), "price bounds are seeded"
    assert goal["instruction_text"].endswith(f"price lower than {goal['price_upper']:.2f} dollars")


def test_search_ranks_the_target_for_its_title(env: WebShopEnv) -> None:
    hits = 0
    for task in env.task_ids[:50]:
        goal = env.catalog.goal(task)
        hits += goal["asin"] in env.engine.search(goal["name"])[:10]
    assert hits >= 45


def test_wrong_arguments_list_what_is_valid() -> None:
    with pytest.raises(InvalidArgumentError, match="observation_mode"):
        WebShopEnv(num_products=1_000, observation_mode="html")
    with pytest.raises(InvalidArgumentError, match="num_products"):
        WebShopEnv(num_products=3)
    with pytest.raises(InvalidArgumentError, match="items_shuffle"):
        WebShopEnv(data_dir="/nonexistent-webshop-data")
