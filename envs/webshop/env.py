"""WebShop: find and buy the product an instruction asks for, in a self-contained web shop.

A port of WebShop (Yao et al., 2022) that runs offline in seconds: a generated catalog (or the
original's data files), BM25 search, WebShop's text-mode pages and actions, and the original
reward (see :mod:`.reward`).

=================  ================================================================================
Tasks              one task per target product of the catalog (task id = the product index for a
                   generated catalog, the goal index for real data). The instruction names 1-3 of
                   the target's attributes, one value per option, and a price bound, e.g. "i need a
                   gluten free dark chocolate bar in mint flavor, in a 12 count, and price lower
                   than 30.00 dollars". Other products may satisfy it. Train and test splits share
                   no target product (~20 % test). Catalog: ``num_products`` generated products
                   (five WebShop categories, 60 product types; ``catalog_seed``), or the original
                   files with ``data_dir=`` and ``goals="human"|"synthetic"|"both"`` (the
                   original's goals, see :mod:`.realdata`).
Actions            ``search[keywords]`` on the search page; ``click[x]`` where x is a button
                   (``back to search``, ``next >``, ``< prev``, ``description``, ``features``,
                   ``reviews``, ``buy now``), a product ASIN on a results page, or an option value
                   on an item page. Case-insensitive; anything else is invalid (feedback, state
                   unchanged). ``info["admissible_actions"]`` lists the clicks of the page and, on the
                   search page, ``search[<the instruction>]`` (any other non-empty search is valid).
Observation        WebShop's text mode: ``WebShop [SEP] Instruction: [SEP] <instruction> [SEP]`` then
                   the page, items joined by ``[SEP]`` (``observation_mode="text_rich"``: tagged
                   lines as the original's text_rich mode). An invalid action's observation is
                   ``Invalid action: <why> [SEP]`` followed by the unchanged page.
Outcome            WebShop's reward on ``buy now``, the original ``get_reward`` (:mod:`.reward`):
                   r_type * (N_attr + N_opt + 1[price <= P]) / (|A| + |O| + 1); success = 1.0
                   (``reward_variant="lenient"``: a non-original option rule, off by default). 0.0 if the turn limit cuts the
                   episode (15 turns). Parts in ``info["reward_details"]`` on the last step.
Dense reward       ``progress``: potential-based shaping 0.5 * (Phi(s') - Phi(s)), Phi = 1/3 when a
                   satisfying product is on the results page, 2/3 on a satisfying product's page
                   (or its sub-pages), + 1/3 * share of goal options the chosen values hit; Phi = 0 after
                   the purchase, so shaping sums to 0 over a finished episode and to at most 0.5 over
                   a truncated one (never above the sparse optimum 1.0). ``format``: -0.05 for an
                   invalid action.
state_key          the canonical page: (page type, query, results page, item, chosen options)
progress           Phi (ground truth from the satisfying set); the outcome after the purchase
privileged         ``target_asin``, ``price_upper``, ``goal`` (the goal as JSON: attributes,
                   options, title), ``target_options`` (JSON: the target's option values that
                   literally equal the goal's, else ones the reward counts; see
                   :func:`.reward.best_options`)
=================  ================================================================================

A product *satisfies* a task when buying it with the right options scores 1.0; it is checked
when a page shows it (memoised per task), so resets cost nothing on large catalogs.

Memory model: a worker holds its catalog and search index, loaded once, and the per-task memo
(bounded by the task set): ``WebShop-Small-v0``, 100,000 random episodes on a kept pool (4 envs,
2 workers): 57.1 -> 58.8 MiB per worker after a 10,000-episode warm-up, 0.02 MiB per 1,000
episodes (``benchmarks/soak.py``).
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import numpy as np

from turngym.core import Outcome, Start, TurnEnv
from turngym.envs.webshop.catalog import Catalog, GeneratedCatalog
from turngym.envs.webshop.nouns import NounTagger, title_nouns
from turngym.envs.webshop.nouns import noun_tagger as noun_tagger_for
from turngym.envs.webshop.reward import best_options, option_matches, webshop_reward
from turngym.envs.webshop.search import SearchEngine
from turngym.envs.webshop.shop import OBSERVATION_MODES, SEP, Shop, render_text
from turngym.envs.webshop.tasks import GOAL_SOURCES
from turngym.error import InvalidArgumentError

__all__ = [
    "WebShopEnv",
    "load_shop",
    "satisfying_options",
    "FORMAT_PENALTY",
    "SHAPING_SCALE",
    "GOAL_SOURCES",
    "REWARD_VARIANTS",
]

FORMAT_PENALTY = -0.05
SHAPING_SCALE = 0.5
DEFAULT_NUM_PRODUCTS = 10_000
REWARD_VARIANTS = ("original", "lenient")


@functools.lru_cache(maxsize=4)
def load_shop(
    num_products: int | None = DEFAULT_NUM_PRODUCTS,
    catalog_seed: int = 0,
    data_dir: str | None = None,
    goals: str | None = None,
) -> tuple[Catalog, SearchEngine]:
    """The catalog and its search engine, shared by every env of one process with the same data."""
    if data_dir is not None:
        from turngym.envs.webshop.realdata import load_webshop_data

        catalog: Catalog = load_webshop_data(data_dir, num_products=num_products, goals=goals)
    else:
        catalog = GeneratedCatalog(
            DEFAULT_NUM_PRODUCTS if num_products is None else num_products, catalog_seed
        )
    return catalog, SearchEngine(catalog)


def satisfying_options(
    product: dict[str, Any],
    goal: dict[str, Any],
    nouns: NounTagger = title_nouns,
    lenient: bool = False,
) -> frozenset[tuple[str, str]] | None:
    """If buying ``product`` can score 1.0 for ``goal``: the (option, value) pairs that hit a goal
    option (see :func:`.reward.option_matches`); else None."""
    chosen = best_options(product, goal, lenient=lenient)
    reward = webshop_reward(product, goal, float(product["price"]), chosen, nouns, lenient=lenient)
    if reward.raw < 1.0:
        return None
    return frozenset(
        (name, value)
        for name, values in product.get("options", {}).items()
        for value in values
        if option_matches(product, goal.get("goal_options", {}), {name: value}, lenient=lenient)
    )


class WebShopEnv(TurnEnv):
    """The web shop (see the module doc for actions, observations, rewards and tasks).

    Args:
        num_products: size of the generated catalog (50 to 2,000,000; None: 10,000), or how many
            products to read from ``data_dir`` (None: all).
        catalog_seed: seed of the generated catalog.
        data_dir: a folder with the original WebShop files; replaces the generated catalog.
        observation_mode: ``"text"`` or ``"text_rich"``.
        noun_tagger: how the reward finds the nouns of titles for ``r_type``: ``"builtin"`` (a
            lexicon tagger, no model) or ``"spacy:<model>"`` (an installed spaCy pipeline such as
            the original's ``en_core_web_lg``, or a saved pipeline's path).
        goals: with ``data_dir``, which goals are tasks: ``"human"`` (the benchmark's, from
            ``items_human_ins.json``), ``"synthetic"`` (from ``items_ins_v2*.json``, one per
            option combination) or ``"both"``; None: human when that file is present, else
            synthetic. Only with ``data_dir``.
        reward_variant: ``"original"`` (default: the original's ``get_reward``) or
            ``"lenient"`` (see :mod:`.reward`).
        reward_mode, split, max_turns, render_mode: see :class:`turngym.core.TurnEnv`.
    """

    expert_policy = "turngym.envs.webshop.expert:WebShopExpert"
    default_max_turns = 15

    _shop: Shop  # the session's state machine (shared with the browser view)
    _goal: dict[str, Any]  # the current task's goal
    _satisfying: dict[str, frozenset[tuple[str, str]] | None]  # asin -> satisfying_options, memo
    _outcome: float | None  # the purchase's reward once bought
    _secret: dict[str, Any]  # the current task's privileged info

    def __init__(
        self,
        *,
        num_products: int | None = None,
        catalog_seed: int = 0,
        data_dir: str | os.PathLike | None = None,
        observation_mode: str = "text",
        noun_tagger: str = "builtin",
        goals: str | None = None,
        reward_variant: str = "original",
        reward_mode: str = "dense",
        split: str = "train",
        max_turns: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(
            reward_mode=reward_mode, split=split, max_turns=max_turns, render_mode=render_mode
        )
        if observation_mode not in OBSERVATION_MODES:
            raise InvalidArgumentError(
                f"observation_mode={observation_mode!r} is not valid; use one of {list(OBSERVATION_MODES)}."
            )
        if reward_variant not in REWARD_VARIANTS:
            raise InvalidArgumentError(
                f"reward_variant={reward_variant!r} is not valid; use one of {list(REWARD_VARIANTS)}."
            )
        if goals is not None and goals not in GOAL_SOURCES:
            raise InvalidArgumentError(
                f"goals={goals!r} is not valid; use one of {list(GOAL_SOURCES)} (or None: human "
                "goals when items_human_ins.json is present, else synthetic)."
            )
        if goals is not None and data_dir is None:
            raise InvalidArgumentError(
                f"goals={goals!r} chooses among the original data's goals; pass data_dir= (the "
                "folder with WebShop's files) too, or drop goals= for the generated catalog "
                "(one goal per product)."
            )
        if data_dir is None and num_products is None:
            num_products = DEFAULT_NUM_PRODUCTS
        self.lenient = reward_variant == "lenient"
        self.observation_mode = observation_mode
        catalog, engine = load_shop(
            num_products,
            catalog_seed,
            None if data_dir is None else os.fspath(data_dir),
            goals,
        )
        self.catalog, self.engine = catalog, engine
        self.noun_tagger = noun_tagger
        self._shop = Shop(catalog, engine, nouns=noun_tagger_for(noun_tagger), lenient=self.lenient)
        self._goal, self._satisfying, self._outcome, self._secret = {}, {}, None, {}
        self._satisfying_cache: dict[str, dict[str, frozenset[tuple[str, str]] | None]] = {}

    # ------------------------------------------------------------------ hooks
    def _task_ids(self, split: str) -> list[str]:
        cached = getattr(self, "_ids", None)
        if cached is None:
            cached = self._ids = {name: self.catalog.task_ids(name) for name in ("train", "test")}
        return cached[split]

    def _start(self, task_id: str, rng: np.random.Generator) -> Start:
        self._goal = self.catalog.goal(task_id)
        if task_id not in self._satisfying_cache and len(self._satisfying_cache) > 1024:
            self._satisfying_cache.clear()
        self._satisfying = self._satisfying_cache.setdefault(task_id, {})
        self._outcome = None
        self._secret = self._make_privileged()
        self._shop.start(self._goal)
        instructions = (
            "You are shopping in WebShop. Find and buy the product this instruction asks for:\n"
            f"{self._goal['instruction_text']}\n"
            "Each turn, answer with exactly one action: search[keywords] on the search page, or "
            "click[x] where x is a button, a product id on a results page, or an option value on a "
            "product page (choose the options before clicking 'buy now'). Buying ends the episode."
        )
        return Start(observation=self._observation(), instructions=instructions)

    def _act(self, action: str) -> Outcome:
        before = self._potential()
        result = self._shop.step(action)
        if not result.valid:
            shown = action if len(action) <= 80 else action[:80] + "..."
            observation = f"Invalid action {shown!r}: {result.feedback}{SEP}{self._observation()}"
            return Outcome(
                observation, {"progress": 0.0, "format": FORMAT_PENALTY}, valid_action=False
            )
        if result.purchase is not None:
            purchase = result.purchase
            self._outcome = purchase.total
            details = purchase.as_dict() | {
                "asin": self._shop.asin,
                "options": dict(self._shop.options),
            }
            observation = (
                f"{self._observation()}{SEP}Purchased{SEP}{self._shop.asin}{SEP}"
                f"Your score (min 0.0, max 1.0){SEP}{purchase.total:.4f}"
            )
            return Outcome(
                observation,
                {"progress": -before * SHAPING_SCALE, "format": 0.0},
                terminated=True,
                outcome=purchase.total,
                success=purchase.total >= 1.0,
                info={"reward_details": details},
            )
        after = self._potential()
        return Outcome(
            self._observation(), {"progress": (after - before) * SHAPING_SCALE, "format": 0.0}
        )

    def _observation(self) -> str:
        return render_text(self._shop, self.observation_mode)

    def _potential(self) -> float:
        """Phi of the current page (see the module doc); 0 once bought."""
        shop = self._shop
        if shop.page == "done":
            return 0.0
        if shop.page == "results":
            return (
                1 / 3
                if any(self._good_options(asin) is not None for asin in shop.shown_results())
                else 0.0
            )
        good = None if shop.asin is None else self._good_options(shop.asin)
        if good is None:
            return 0.0
        goal_options = self._goal.get("goal_options") or {}
        product = self.catalog.product(shop.asin) or {}
        right = option_matches(product, goal_options, shop.options, lenient=self.lenient)
        return 2 / 3 + min(1.0, right / max(1, len(goal_options))) / 3

    def _good_options(self, asin: str) -> frozenset[tuple[str, str]] | None:
        """``satisfying_options`` of a product for the current goal, memoised per task."""
        if asin not in self._satisfying:
            product = self.catalog.product(asin)
            self._satisfying[asin] = (
                None
                if product is None
                else satisfying_options(product, self._goal, self._shop.nouns, self.lenient)
            )
        return self._satisfying[asin]

    def _state(self) -> Any:
        return list(self._shop.state())

    def _progress(self) -> float:
        return self._outcome if self._outcome is not None else self._potential()

    def _admissible_actions(self) -> list[str]:
        return self._shop.admissible_actions()

    def _privileged(self) -> dict[str, Any]:
        return dict(self._secret)

    def _make_privileged(self) -> dict[str, Any]:
        goal = self._goal
        target = self.catalog.product(goal["asin"])
        # JSON strings: goal text (titles, attribute lists) legitimately shows up on pages.
        return {
            "target_asin": goal["asin"],
            "price_upper": float(goal.get("price_upper", 0.0)),
            "goal": json.dumps(
                {
                    k: goal.get(k)
                    for k in ("name", "query", "attributes", "goal_options", "price_upper")
                }
            ),
            "target_options": json.dumps(
                best_options(target, goal, lenient=self.lenient) if target else {}
            ),
        }

    @property
    def purchase_reward(self) -> float | None:
        """The outcome of this episode's purchase, None before ``buy now``."""
        return self._outcome

    @property
    def shop(self) -> Shop:
        """The session's state machine (the browser view renders it)."""
        return self._shop

    def example_action(self) -> str:
        """A valid action on the current page."""
        actions = self._shop.admissible_actions()
        return actions[0] if actions else "click[back to search]"
