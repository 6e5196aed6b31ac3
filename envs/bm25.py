"""Exact BM25 top-k over a ``bm25s`` index, faster than scoring every document.

Both search families (WebShop's product search, SearchQA's passage retriever) rank with a
``bm25s`` index: per term, the BM25 weight of every document holding it (a CSC matrix). Scoring
a query the plain way adds every posting of every query term into a dense score array and then
selects the top ``k``. Frequent terms (a product type, "size") have postings in a large part of
the collection but small weights, so most of that work cannot change the top ``k``.

:class:`BM25TopK` skips it without changing a result (MaxScore, Turtle & Flood 1995):

1. The *rare* query terms' postings give the candidate set ``C`` (documents holding one).
2. Every candidate's full score is computed, adding the terms' weights in query order, exactly
   as ``bm25s`` adds them, so the scores are bit-identical to ``BM25.get_scores``. Weights of
   frequent terms come from dense per-term rows kept in memory (``dense_budget_mb``).
3. A document outside ``C`` holds only frequent terms, so its score is at most the sum of their
   largest weights. When that bound is below the ``k``-th best candidate score, the top ``k`` lies
   in ``C``; otherwise (rare) the query is scored the plain way.

Ties are broken by the lower document index on both paths (:func:`top_k`), so rankings are
reproducible whatever the path or the partition order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["BM25TopK", "top_k"]

#: A term is "frequent" (dense row) when at least this fraction of documents holds it.
FREQUENT_FRACTION = 0.05


def top_k(scores: np.ndarray, k: int, index: np.ndarray | None = None) -> list[tuple[int, float]]:
    """The ``k`` best ``(document, score)`` pairs with positive score, ties by lower document.

    ``index`` names the document of each score (default: its position).

    >>> top_k(np.array([0.5, 2.0, 0.0, 1.0, 2.0]), 3)
    [(1, 2.0), (4, 2.0), (3, 1.0)]
    """
    documents = np.arange(len(scores)) if index is None else np.asarray(index)
    k = min(k, len(scores))
    if k <= 0:
        return []
    if k < len(scores):
        threshold = np.partition(scores, len(scores) - k)[len(scores) - k]
        # Every document tied with the k-th score competes, so ties never depend on the partition.
        keep = scores >= threshold if threshold > 0 else scores > 0
        scores, documents = scores[keep], documents[keep]
    order = np.lexsort((documents, -scores))[:k]
    return [(int(documents[i]), float(scores[i])) for i in order if scores[i] > 0]


class BM25TopK:
    """Exact top-k retrieval over a loaded ``bm25s.BM25`` model (see the module docstring).

    Args:
        model: a ``bm25s.BM25`` with its index loaded.
        dense_budget_mb: memory for the dense rows of frequent terms (float32, one row of
            ``num_docs`` per term, most frequent first); 0 disables the pruning.
    """

    def __init__(self, model: Any, dense_budget_mb: float = 64.0) -> None:
        if dense_budget_mb < 0:
            raise ValueError(f"dense_budget_mb={dense_budget_mb} must be >= 0 (0 disables pruning)")
        self.model = model
        scores = model.scores
        self._data = np.asarray(scores["data"], dtype=np.float32)
        self._indices = np.asarray(scores["indices"])
        self._indptr = np.asarray(scores["indptr"])
        self.num_docs = int(scores["num_docs"])
        frequency = np.diff(self._indptr)
        self._upper = np.zeros(len(frequency), dtype=np.float32)
        held = np.flatnonzero(frequency)
        if len(held):
            self._upper[held] = np.maximum.reduceat(self._data, self._indptr[:-1][held])
        rows = int(dense_budget_mb * 2**20 // max(1, 4 * self.num_docs))
        frequent = np.flatnonzero(frequency >= max(1, FREQUENT_FRACTION * self.num_docs))
        frequent = frequent[np.argsort(-frequency[frequent], kind="stable")][:rows]
        self._row = np.full(len(frequency), -1, dtype=np.int64)
        self._dense = np.zeros((len(frequent), self.num_docs), dtype=np.float32)
        for row, term in enumerate(frequent):
            start, end = self._indptr[term], self._indptr[term + 1]
            self._dense[row, self._indices[start:end]] = self._data[start:end]
            self._row[term] = row
        #: How many queries took each path (the pruned one should be by far the most common).
        self.paths = {"pruned": 0, "full": 0}
        self._scratch = np.zeros(self.num_docs, dtype=np.float32)
        self._mark = np.zeros(self.num_docs, dtype=bool)

    def scores(self, term_ids: list[int]) -> np.ndarray:
        """Every document's score (``bm25s``'s own ``get_scores_from_ids``)."""
        return self.model.get_scores_from_ids(list(term_ids))

    def top(self, term_ids: list[int], k: int) -> list[tuple[int, float]]:
        """The ``k`` best ``(document, score)`` pairs, exactly as :func:`top_k` over :meth:`scores`."""
        if not term_ids or k <= 0:
            return []
        pruned = self._pruned(term_ids, k)
        if pruned is not None:
            self.paths["pruned"] += 1
            return pruned
        self.paths["full"] += 1
        return top_k(self.scores(term_ids), k)

    def _pruned(self, term_ids: list[int], k: int) -> list[tuple[int, float]] | None:
        rare = [t for t in term_ids if self._row[t] < 0]
        if not rare or len(self._dense) == 0:
            return None
        indptr, indices, data = self._indptr, self._indices, self._data
        for term in rare:
            self._mark[indices[indptr[term] : indptr[term + 1]]] = True
        candidates = np.flatnonzero(self._mark)
        self._mark[candidates] = False
        if len(candidates) < k:
            return None
        scores = np.zeros(len(candidates), dtype=np.float32)
        bound = np.float32(0.0)
        for term in term_ids:  # query order, as bm25s adds them: bit-identical sums
            row = self._row[term]
            if row >= 0:
                scores += self._dense[row, candidates]
                bound += self._upper[term]
            else:
                postings = indices[indptr[term] : indptr[term + 1]]
                self._scratch[postings] = data[indptr[term] : indptr[term + 1]]
                scores += self._scratch[candidates]
                self._scratch[postings] = 0.0
        kth = np.partition(scores, len(scores) - k)[len(scores) - k]
        # Outside the candidates a score is at most `bound` (a small margin covers rounding).
        if not bound * np.float32(1.0001) < kth:
            return None
        return top_k(scores, k, candidates)
