"""The shop's state machine and its pages: one implementation shared by the env and the browser view.

A :class:`Shop` holds one session: the page shown, the search keywords, the results page number,
the open product and the options chosen. :meth:`Shop.step` applies ``search[...]`` / ``click[...]``
exactly as WebShop's simulated server does; :meth:`Shop.elements` describes the current page as
a list of :class:`Element` (text, buttons, product links, option values) that
:func:`render_text` turns into WebShop's text observation and ``server.py`` into HTML.

Transitions (as in the original ``SimServer.receive``):

========================  =====================================================================
page                      clickables
========================  =====================================================================
search                    (``search[keywords]``: the only page with a search bar)
results                   ``back to search``, ``< prev`` (page > 1), ``next >`` (more results),
                          the ASIN of each product on the page
item                      ``back to search``, ``< prev`` (to the results), option values,
                          ``description``, ``features``, ``reviews``, ``buy now``
description / features /  ``back to search``, ``< prev`` (to the item)
reviews
done                      nothing (the episode is over)
========================  =====================================================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from turngym.envs.webshop.catalog import Catalog
from turngym.envs.webshop.nouns import NounTagger, title_nouns
from turngym.envs.webshop.reward import RewardBreakdown, webshop_reward
from turngym.envs.webshop.search import PRODUCT_WINDOW, SearchEngine

__all__ = [
    "Shop",
    "Element",
    "StepResult",
    "render_text",
    "parse_action",
    "PAGES",
    "OBSERVATION_MODES",
]

PAGES = ("search", "results", "item", "description", "features", "reviews", "done")
OBSERVATION_MODES = ("text", "text_rich")
BACK_TO_SEARCH, NEXT_PAGE, PREV_PAGE, BUY_NOW = "back to search", "next >", "< prev", "buy now"
SUB_PAGES = ("description", "features", "reviews")
SEP = " [SEP] "
MAX_QUERY_CHARS = 1_000
_ACTION = re.compile(r"\s*(search|click)\s*\[(.*)\]\s*", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Element:
    """One piece of a page: plain text, or something to click (``target`` is the click argument)."""

    kind: str  # "text", "button", "product" (a result's ASIN link) or "option" (an option value)
    text: str
    target: str | None = None  # lowercased click[...] argument, None for text
    selected: bool = False  # an option value currently chosen
    group: str | None = None  # the option name of an option value


@dataclass
class StepResult:
    """What one action did."""

    valid: bool
    feedback: str = ""  # why an action was rejected (empty when valid)
    purchase: RewardBreakdown | None = None  # set when ``buy now`` ended the session


def parse_action(action: str) -> tuple[str, str] | None:
    """``("search"|"click", argument)`` of a well-formed action, else None."""
    match = _ACTION.fullmatch(action)
    return None if match is None else (match.group(1).lower(), match.group(2))


@dataclass
class Shop:
    """One shopping session over ``catalog``, searched with ``engine``."""

    catalog: Catalog
    engine: SearchEngine
    goal: dict[str, Any] = field(default_factory=dict)  # the task; its instruction is on every page
    page: str = "search"  # one of PAGES
    keywords: str = ""  # the last search
    page_number: int = 1  # results page (1-based)
    asin: str | None = None  # the product open on item/sub pages
    options: dict[str, str] = field(default_factory=dict)  # option name -> chosen value
    results: tuple[str, ...] = ()  # ranked ASINs of the last search
    nouns: NounTagger = title_nouns  # tags titles for the reward's r_type
    lenient: bool = False  # the reward's non-original lenient option rule (see .reward)
    _page_key: tuple[Any, ...] | None = field(default=None, init=False, repr=False, compare=False)
    _page: tuple[Element, ...] = field(default=(), init=False, repr=False, compare=False)

    def start(self, goal: dict[str, Any]) -> None:
        """Begins a session for ``goal`` on the search page."""
        self.goal = goal
        self._go_search_page()

    @property
    def instruction(self) -> str:
        """The task instruction shown on every page."""
        return str(self.goal.get("instruction_text", ""))

    def state(self) -> tuple[Any, ...]:
        """The canonical page: page type, query, page number, item, chosen options."""
        keywords = self.keywords if self.page != "search" else ""
        return (
            self.page,
            keywords,
            self.page_number if self.page != "search" else 0,
            self.asin,
            tuple(sorted(self.options.items())),
        )

    def shown_results(self) -> tuple[str, ...]:
        """ASINs on the current results page."""
        start = (self.page_number - 1) * PRODUCT_WINDOW
        return self.results[start : start + PRODUCT_WINDOW]

    # ------------------------------------------------------------------ transitions
    def _go_search_page(self) -> None:
        self.page, self.keywords, self.page_number, self.asin, self.options, self.results = (
            "search",
            "",
            1,
            None,
            {},
            (),
        )

    def clickables(self) -> dict[str, Element]:
        """Lowercased click arguments of the current page -> their element."""
        return {
            element.target: element for element in self.elements() if element.target is not None
        }

    def step(self, action: str) -> StepResult:
        """Applies one action; an invalid one changes nothing and says why."""
        if self.page == "done":
            return StepResult(False, "The purchase is complete; nothing more can be done.")
        parsed = parse_action(action)
        if parsed is None:
            return StepResult(
                False, "Actions look like search[keywords] or click[button], one per turn."
            )
        verb, argument = parsed
        if verb == "search":
            if self.page != "search":
                return StepResult(
                    False, "There is no search bar on this page; click[back to search] first."
                )
            keywords = " ".join(argument.split())[:MAX_QUERY_CHARS]
            if not keywords:
                return StepResult(
                    False, "search[...] needs keywords, e.g. search[dark chocolate bar]."
                )
            self.keywords, self.page_number, self.asin, self.options = keywords.lower(), 1, None, {}
            self.results = self.engine.search(self.keywords)
            self.page = "results"
            return StepResult(True)
        target = " ".join(argument.split()).lower()
        element = self.clickables().get(target)
        if element is None:
            return StepResult(
                False, "There is no such button on this page; click one of the listed buttons."
            )
        return self._click(element)

    def _click(self, element: Element) -> StepResult:
        target = element.target
        if target == BACK_TO_SEARCH:
            self._go_search_page()
        elif target == NEXT_PAGE:
            self.page_number += 1
        elif target == PREV_PAGE:
            if self.page == "results":
                self.page_number -= 1
            elif self.page == "item":
                self.page, self.asin, self.options = "results", None, {}
            else:
                self.page = "item"
        elif element.kind == "product":
            self.page, self.asin, self.options = "item", element.text, {}
        elif element.kind == "option":
            self.options[str(element.group)] = element.text
        elif target in SUB_PAGES:
            self.page = target
        elif target == BUY_NOW:
            product = self.catalog.product(str(self.asin))
            assert product is not None
            purchase = webshop_reward(
                product,
                self.goal,
                float(product["price"]),
                self.options,
                self.nouns,
                lenient=self.lenient,
            )
            self.page = "done"
            return StepResult(True, purchase=purchase)
        return StepResult(True)

    # ------------------------------------------------------------------ pages
    def elements(self) -> list[Element]:
        """The current page, top to bottom, without the instruction header.

        Memoised on the page's state: a step renders the page and lists its clickables, and
        both read the same elements.
        """
        key = (
            self.page,
            self.page_number,
            self.asin,
            tuple(self.options.items()),
            self.results,
            self.engine,
            self.catalog,
        )
        if self._page_key != key:
            self._page_key, self._page = key, tuple(self._build_elements())
        return list(self._page)

    def _build_elements(self) -> list[Element]:
        back = Element("button", "Back to Search", BACK_TO_SEARCH)
        prev = Element("button", "< Prev", PREV_PAGE)
        if self.page == "search":
            return [Element("button", "Search")]
        if self.page == "results":
            total = len(self.results)
            page = [back, Element("text", f"Page {self.page_number} (Total results: {total})")]
            if self.page_number > 1:
                page.append(prev)
            if self.page_number * PRODUCT_WINDOW < total:
                page.append(Element("button", "Next >", NEXT_PAGE))
            for asin in self.shown_results():
                title, price = self.engine.listing(asin)
                page += [
                    Element("product", asin, asin.lower()),
                    Element("text", title),
                    Element("text", price),
                ]
            return page
        if self.page == "done":
            return [Element("text", "Thank you for shopping with us!")]
        product = self.catalog.product(str(self.asin)) or {}
        page = [back, prev]
        if self.page == "item":
            seen: set[str] = set()
            for name, values in product.get("options", {}).items():
                page.append(Element("text", name))
                for value in values:
                    key = " ".join(value.split()).lower()
                    page.append(
                        Element(
                            "option",
                            value,
                            None if key in seen else key,
                            selected=self.options.get(name) == value,
                            group=name,
                        )
                    )
                    seen.add(key)
            page += [
                Element("text", str(product.get("Title", ""))),
                Element("text", f"Price: {product.get('Price', '')}"),
                Element("text", f"Rating: {product.get('Rating', 'N.A.')}"),
            ]
            page += [Element("button", name.capitalize(), name) for name in SUB_PAGES]
            page.append(Element("button", "Buy Now", BUY_NOW))
        elif self.page == "description":
            page.append(Element("text", str(product.get("Description", ""))))
        elif self.page == "features":
            bullets = product.get("BulletPoints", [])
            page += [
                Element("text", str(b))
                for b in ([bullets] if isinstance(bullets, str) else bullets)
            ]
        elif self.page == "reviews":
            for review in product.get("Reviews", []):
                page += [
                    Element("text", str(review.get("title", ""))),
                    Element("text", str(review.get("score", ""))),
                    Element("text", str(review.get("body", ""))),
                ]
        return page

    def admissible_actions(self) -> list[str]:
        """Every valid action now; on the search page, the instruction as the search."""
        if self.page == "search":
            return [f"search[{self.instruction}]"] if self.instruction else []
        return [f"click[{target}]" for target in self.clickables()]


def render_text(shop: Shop, mode: str = "text") -> str:
    """The page as WebShop's ``text`` ([SEP]-joined) or ``text_rich`` (tagged lines) observation."""
    header = ["WebShop", "Instruction:", shop.instruction]
    if mode == "text":
        return SEP.join(header + [element.text for element in shop.elements()])
    lines = list(header)
    for element in shop.elements():
        if element.kind == "text":
            lines.append(element.text)
        elif element.selected:
            lines.append(f"  [clicked button] {element.text} [clicked button_]")
        else:
            lines.append(f"[button] {element.text} [button_]")
    clicked = [value for _, value in sorted(shop.options.items())]
    prefix = (
        "".join(f"You have clicked {value}.\n" for value in clicked) if shop.page == "item" else ""
    )
    return prefix + "\n".join(lines)
