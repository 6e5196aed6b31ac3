"""Exact top-k selection and the BM25 scorer shared by WebShop and SearchQA."""

from __future__ import annotations

import numpy as np
import pytest

from turngym.ranking import GRID_ROWS, BM25Scorer, top_k


def reference_top_k(scores: np.ndarray, k: int) -> list[int]:
    """A full sort: positive scores, best first, ties to the lower index."""
    positive = [i for i in range(len(scores)) if scores[i] > 0]
    return sorted(positive, key=lambda i: (-scores[i], i))[: max(k, 0)]


def test_top_k_by_hand() -> None:
    scores = np.array([0.5, 2.0, 0.5, 0.0, 2.0, 0.5, -1.0])
    assert top_k(scores, 3).tolist() == [1, 4, 0]
    assert top_k(scores, 10).tolist() == [1, 4, 0, 2, 5], "zeros and negatives never rank"
    assert top_k(scores, 0).tolist() == [] and top_k(np.zeros(0), 5).tolist() == []
    assert top_k(np.zeros(1_000), 5).tolist() == []


@pytest.mark.parametrize("size", [1, 127, 128, 129, 1_000, 6_401, 100_000])
@pytest.mark.parametrize("k", [1, 10, 50, 200])
def test_top_k_equals_a_full_sort(size: int, k: int) -> None:
    rng = np.random.default_rng(size * 1_000 + k)
    for dtype, draw in [
        (np.float32, lambda: rng.random(size).astype(np.float32)),
        # Few distinct values: many ties at the k-th score, which the grid bound must keep.
        (np.float64, lambda: rng.integers(0, 4, size).astype(np.float64)),
        # Sparse: fewer positive scores than k, in few grid columns.
        (np.float32, lambda: np.where(rng.random(size) < 0.002, rng.random(size), 0.0)),
        (np.float64, lambda: rng.normal(size=size)),
    ]:
        scores = np.asarray(draw(), dtype=dtype)
        assert top_k(scores, k).tolist() == reference_top_k(scores, k)


def test_top_k_rejects_a_matrix() -> None:
    with pytest.raises(ValueError, match="1-D"):
        top_k(np.ones((3, 3)), 2)


def test_bm25_scorer_equals_bm25s() -> None:
    bm25s = pytest.importorskip("bm25s")
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(60)]
    corpus = [" ".join(rng.choice(words, size=rng.integers(3, 30), p=None)) for _ in range(1_000)]
    model = bm25s.BM25()
    model.index(bm25s.tokenize(corpus, stopwords=None, show_progress=False), show_progress=False)
    scorer = BM25Scorer(model)
    assert scorer.num_docs == 1_000
    for _ in range(50):
        ids = rng.integers(0, len(scorer.vocab), size=rng.integers(1, 8)).tolist()
        ids += ids[:1]  # a repeated term counts twice in both
        ours = scorer.scores(ids)
        assert len(ours) % GRID_ROWS == 0 and not ours[1_000:].any()
        np.testing.assert_allclose(ours[:1_000], model.get_scores_from_ids(ids), rtol=1e-6)
        assert scorer.top(ids, 10) == reference_top_k(ours, 10)
    assert scorer.top([], 10) == []
