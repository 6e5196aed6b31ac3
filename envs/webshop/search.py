"""BM25 product search over titles, features, descriptions and option values (``bm25s``).

The original ranks with a Lucene BM25 index (pyserini) and shows the top 50 results, 10 a page;
this index does the same in-process. Each product's document is its title (twice, so a title hit
weighs more, as a title field boost would), bullet features, description and option values.
Tokens are lowercased ``\\w\\w+`` words without English stop words. The index is built once per
catalog and cached on disk; scoring and the exact top 50 use :mod:`turngym.ranking`. Retrieval
keeps an LRU cache of recent queries, since rollouts of one task repeat the same searches.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

from turngym.cache import cached_dir
from turngym.envs.webshop.catalog import Catalog
from turngym.error import missing_dependency
from turngym.ranking import BM25Scorer

__all__ = ["SearchEngine", "SEARCH_RETURN_N", "PRODUCT_WINDOW", "product_document"]

SEARCH_RETURN_N = 50
PRODUCT_WINDOW = 10
INDEX_VERSION = 2
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


def _bm25s() -> Any:
    try:
        import bm25s
    except ImportError as error:  # pragma: no cover - depends on the install
        raise missing_dependency("bm25s", "webshop") from error
    return bm25s


def product_document(product: dict[str, Any]) -> str:
    """The text the index holds for one product."""
    bullets = product.get("BulletPoints", [])
    bullets = bullets if isinstance(bullets, str) else " ".join(bullets)
    options = " ".join(value for values in product.get("options", {}).values() for value in values)
    title = product.get("Title", "")
    return f"{title} {title} {bullets} {product.get('Description', '')} {options}".lower()


class SearchEngine:
    """Query in, ranked ASINs out (at most :data:`SEARCH_RETURN_N`)."""

    def __init__(self, catalog: Catalog, cache_size: int = 4096) -> None:
        bm25s = _bm25s()
        self._asins = [catalog.asin_at(index) for index in range(len(catalog))]

        def build(folder: Path) -> None:
            corpus, listings = [], []
            for product in catalog.documents():
                corpus.append(product_document(product))
                listings.append(
                    [product["asin"], product.get("Title", ""), product.get("Price", "")]
                )
            (folder / "listings.json").write_text(json.dumps(listings))
            tokens = bm25s.tokenize(corpus, stopwords="en", show_progress=False)
            model = bm25s.BM25()
            model.index(tokens, show_progress=False)
            model.save(str(folder), show_progress=False)

        folder = cached_dir("webshop", f"index-v{INDEX_VERSION}-{catalog.name}", build)
        self._model = bm25s.BM25.load(str(folder), load_corpus=False, show_progress=False)
        # Title and price of every product: a results page needs no full product.
        self._listings = {
            asin: (title, price)
            for asin, title, price in json.loads((folder / "listings.json").read_text())
        }
        self._stopwords = frozenset(bm25s.stopwords.STOPWORDS_EN)
        self._scorer = BM25Scorer(self._model)
        self._vocab: dict[str, int] = self._scorer.vocab
        self._cache: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._cache_size = cache_size

    def listing(self, asin: str) -> tuple[str, str]:
        """The title and price tag a results page shows for ``asin``."""
        return self._listings.get(asin, ("", ""))

    def tokens(self, query: str) -> list[str]:
        """The query's index terms (unknown words and stop words dropped)."""
        words = _TOKEN.findall(query.lower())
        return [w for w in words if w not in self._stopwords and w in self._vocab]

    def search(self, query: str, k: int = SEARCH_RETURN_N) -> tuple[str, ...]:
        """The ASINs of the top ``k`` products for ``query`` (fewer when few products match)."""
        key = f"{k}\x00{query}"
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        vocab, asins = self._vocab, self._asins
        ids = [vocab[term] for term in self.tokens(query[:10_000])]
        # Ties break by catalog order so rankings are reproducible.
        result = tuple(asins[i] for i in self._scorer.top(ids, k))
        self._cache[key] = result
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return result
