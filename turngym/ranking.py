"""Exact top-k selection and BM25 scoring over a ``bm25s`` index, shared by the search envs.

:func:`top_k` returns the ``k`` best positive scores' indexes, best first, ties to the lower
index, so rankings never depend on a sort's internals. It reads only part of the score vector:
viewed as a ``rows x columns`` grid, each column's maximum is one vectorised pass, and the
``k``-th largest column maximum ``L`` is a lower bound on the ``k``-th largest score (the ``k``
best columns hold ``k`` distinct scores ``>= L``). Every score that can make the top ``k`` is
``>= L`` and so lies in a column whose maximum is ``>= L``: only those columns are searched.
On 100k WebShop scores (k=50) it took 76 us against 1,077 us for ``argpartition`` followed by
the same tie-aware sort, with identical results.

:class:`BM25Scorer` sums a ``bm25s`` index's precomputed per-term scores (its CSC matrix) into
a vector padded to a multiple of :data:`GRID_ROWS`, which :func:`top_k` reshapes without a copy.
The scores equal ``bm25s.BM25.get_scores`` (a test checks); the scorer skips that method's
per-call conversions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["BM25Scorer", "GRID_ROWS", "top_k"]

GRID_ROWS = 128


def top_k(scores: np.ndarray, k: int, rows: int = GRID_ROWS) -> np.ndarray:
    """Indexes of the ``k`` largest positive ``scores``, best first, ties broken by lower index.

    Fewer than ``k`` come back when fewer scores are positive. ``scores`` is 1-D; a length that
    is not a multiple of ``rows`` is padded with zeros (a copy), which never rank.
    """
    scores = np.asarray(scores)
    if scores.ndim != 1:
        raise ValueError(f"top_k needs a 1-D score vector; got shape {scores.shape}.")
    if k <= 0 or len(scores) == 0:
        return np.zeros(0, dtype=np.int64)
    size = len(scores)
    if size % rows:
        scores = np.concatenate([scores, np.zeros(rows - size % rows, dtype=scores.dtype)])
    grid = scores.reshape(rows, -1)
    columns = grid.shape[1]
    if columns <= k:
        candidates = np.flatnonzero(scores > 0)
    else:
        maxima = grid.max(axis=0)
        bound = np.partition(maxima, columns - k)[columns - k]
        if bound > 0:
            keep = np.flatnonzero(maxima >= bound)
            block = grid[:, keep]
            row, col = np.nonzero(block >= bound)
        else:  # fewer than k columns hold a positive score: any positive one may rank
            keep = np.flatnonzero(maxima > 0)
            block = grid[:, keep]
            row, col = np.nonzero(block > 0)
        candidates = row * columns + keep[col]
    order = np.lexsort((candidates, -scores[candidates]))[:k]
    return candidates[order]


class BM25Scorer:
    """BM25 scores of every document of a ``bm25s`` model for a query's term ids.

    Args:
        model: a loaded ``bm25s.BM25`` (memory-mapped or not); its ``scores`` matrix is read,
            never copied.
    """

    def __init__(self, model: Any) -> None:
        matrix = model.scores
        self._data = matrix["data"]
        self._indices = matrix["indices"]
        self._starts = np.asarray(matrix["indptr"]).tolist()
        self.num_docs = int(matrix["num_docs"])
        self._padded = self.num_docs + (-self.num_docs) % GRID_ROWS
        self._dtype = self._data.dtype
        # bm25s also maps "" to an id past the last column; no query token can be "".
        terms = len(self._starts) - 1
        self.vocab: dict[str, int] = {t: i for t, i in model.vocab_dict.items() if i < terms}

    def scores(self, term_ids: Sequence[int]) -> np.ndarray:
        """Scores of all documents (zeros past ``num_docs``, up to a multiple of :data:`GRID_ROWS`).

        A repeated term counts once per occurrence, as in ``bm25s``.
        """
        out = np.zeros(self._padded, dtype=self._dtype)
        starts = self._starts
        for term in term_ids:
            start, end = starts[term], starts[term + 1]
            # Within one term's postings each document appears once, but ufunc.at is still the
            # fastest scatter-add numpy has here (fancy-index += builds temporaries).
            np.add.at(out, self._indices[start:end], self._data[start:end])
        return out

    def top(self, term_ids: Sequence[int], k: int) -> list[int]:
        """Indexes of the ``k`` best documents with a positive score, best first."""
        if not term_ids:
            return []
        return top_k(self.scores(term_ids), k).tolist()
