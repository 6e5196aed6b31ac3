"""Passage store and retrievers: a real BM25 index (``bm25s``) and a dense hook for any embedder.

:class:`PassageStore` keeps ids, titles and texts in three flat UTF-8 files plus offset arrays, so
a 1M-passage corpus opens instantly (memory-mapped) and costs no Python objects until read.
:class:`BM25Retriever` indexes ``title + text`` with ``bm25s`` (English stopwords, no stemmer, so
results do not depend on optional packages) and scores a query with the index's own vocabulary.
:class:`DenseRetriever` wraps any ``embed(texts) -> np.ndarray`` function (e5, bge, a hashed
bag of words in tests) and ranks by cosine similarity. Both break score ties by passage order,
so results are identical across runs and processes.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from turngym import ranking
from turngym.error import InvalidArgumentError, missing_dependency

__all__ = [
    "PassageStore",
    "BM25Retriever",
    "DenseRetriever",
    "EmbeddingFn",
    "HashingEmbedder",
    "top_k",
]

EmbeddingFn = Callable[[list[str]], np.ndarray]
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_FIELDS = ("ids", "titles", "texts")


def top_k(scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The ``k`` best ``(index, score)`` pairs with positive score, ties broken by lower index."""
    return [(i, float(scores[i])) for i in ranking.top_k(scores, k).tolist()]


class PassageStore:
    """Read-only ids/titles/texts of a corpus, memory-mapped from a folder written by :meth:`write`."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._data = {
            f: np.memmap(self.folder / f"{f}.bin", dtype=np.uint8, mode="r")
            if (self.folder / f"{f}.bin").stat().st_size
            else np.zeros(0, np.uint8)
            for f in _FIELDS
        }
        self._offsets = {
            f: np.load(self.folder / f"{f}.offsets.npy", mmap_mode="r") for f in _FIELDS
        }
        self._index: dict[str, int] | None = None

    @staticmethod
    def write(folder: Path, passages: Iterable[tuple[str, str, str]]) -> int:
        """Streams ``(id, title, text)`` rows into ``folder``; returns how many were written."""
        folder = Path(folder)
        handles = {f: open(folder / f"{f}.bin", "wb") for f in _FIELDS}
        offsets: dict[str, list[int]] = {f: [0] for f in _FIELDS}
        try:
            for row in passages:
                for field, value in zip(_FIELDS, row, strict=True):
                    data = value.replace("\n", " ").encode("utf-8")
                    handles[field].write(data)
                    offsets[field].append(offsets[field][-1] + len(data))
        finally:
            for handle in handles.values():
                handle.close()
        for field in _FIELDS:
            np.save(folder / f"{field}.offsets.npy", np.asarray(offsets[field], dtype=np.int64))
        return len(offsets["ids"]) - 1

    def __len__(self) -> int:
        return len(self._offsets["ids"]) - 1

    def _get(self, field: str, index: int) -> str:
        start, end = self._offsets[field][index], self._offsets[field][index + 1]
        return bytes(self._data[field][start:end]).decode("utf-8")

    def id(self, index: int) -> str:
        return self._get("ids", index)

    def title(self, index: int) -> str:
        return self._get("titles", index)

    def text(self, index: int) -> str:
        return self._get("texts", index)

    def index_of(self, passage_id: str) -> int | None:
        """Position of ``passage_id`` (the id map is built on first use)."""
        if self._index is None:
            self._index = {self.id(i): i for i in range(len(self))}
        return self._index.get(passage_id)

    def documents(self) -> Iterable[str]:
        """``title + text`` of every passage, in order (what the retrievers index)."""
        for i in range(len(self)):
            yield f"{self.title(i)} {self.text(i)}"


class BM25Retriever:
    """BM25 over a :class:`PassageStore` with ``bm25s`` (index saved to / loaded from a folder)."""

    def __init__(self, folder: Path, *, mmap: bool = True) -> None:
        bm25s = _bm25s()
        self.model = bm25s.BM25.load(str(folder), mmap=mmap, load_corpus=False, show_progress=False)
        self._scorer = ranking.BM25Scorer(self.model)
        self._stopwords = frozenset(json.loads((Path(folder) / "stopwords.json").read_text()))

    @staticmethod
    def build(folder: Path, documents: Iterable[str], *, k1: float = 1.2, b: float = 0.75) -> None:
        """Tokenises ``documents`` and writes a BM25 index into ``folder``."""
        bm25s = _bm25s()
        from bm25s.stopwords import STOPWORDS_EN

        tokens = bm25s.tokenize(list(documents), stopwords=list(STOPWORDS_EN), show_progress=False)
        model = bm25s.BM25(k1=k1, b=b)
        model.index(tokens, show_progress=False)
        model.save(str(folder), show_progress=False)
        (Path(folder) / "stopwords.json").write_text(json.dumps(sorted(STOPWORDS_EN)))

    def tokens(self, query: str) -> list[str]:
        return [t for t in _TOKEN.findall(query.lower()) if t not in self._stopwords]

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """Top-``k`` ``(passage index, score)``; empty when no query word is in the corpus."""
        vocab = self._scorer.vocab
        ids = [vocab[t] for t in self.tokens(query) if t in vocab]
        if not ids:
            return []
        return top_k(self._scorer.scores(ids), k)


class DenseRetriever:
    """Cosine top-k over embeddings from any ``embed(list[str]) -> array [n, dim]`` function.

    Args:
        embed: the embedding function (e.g. a sentence-transformers model's ``encode``).
        documents: the passages to embed (``title + text``), or None with ``embeddings``.
        embeddings: precomputed passage embeddings ``[n, dim]`` (e.g. loaded from the cache).
        batch_size: passages per ``embed`` call while indexing.
    """

    def __init__(
        self,
        embed: EmbeddingFn,
        documents: Sequence[str] | Iterable[str] | None = None,
        *,
        embeddings: np.ndarray | None = None,
        batch_size: int = 256,
    ) -> None:
        if not callable(embed):
            raise InvalidArgumentError(
                f"embedding_fn must be callable (texts: list[str]) -> np.ndarray; got {type(embed).__name__}."
            )
        self.embed = embed
        if embeddings is None:
            if documents is None:
                raise InvalidArgumentError(
                    "DenseRetriever needs documents or precomputed embeddings."
                )
            embeddings = self.encode(documents, batch_size)
        self.embeddings = embeddings

    def encode(self, documents: Iterable[str], batch_size: int = 256) -> np.ndarray:
        """Embeds and L2-normalises ``documents`` in batches."""
        chunks, batch = [], []
        for document in documents:
            batch.append(document)
            if len(batch) == batch_size:
                chunks.append(self._embed(batch))
                batch = []
        if batch:
            chunks.append(self._embed(batch))
        if not chunks:
            raise InvalidArgumentError("DenseRetriever got an empty corpus.")
        return np.concatenate(chunks)

    def _embed(self, texts: list[str]) -> np.ndarray:
        vectors = np.asarray(self.embed(texts), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise InvalidArgumentError(
                f"embedding_fn returned shape {vectors.shape} for {len(texts)} texts; it must return "
                "a 2-D array with one row per text."
            )
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """Top-``k`` ``(passage index, cosine)`` with positive similarity."""
        # A [n, d] x [d, 1] product: numpy's matrix-vector path was 100x slower on some layouts.
        return top_k((self.embeddings @ self._embed([query]).T)[:, 0], k)


class HashingEmbedder:
    """A deterministic bag-of-words embedding (CRC32-hashed tokens, log counts): no model needed.

    A stand-in for e5/bge in tests and the speed baseline; any callable with this signature plugs
    into :class:`DenseRetriever` and ``SearchQAEnv(retriever="dense", embedding_fn=...)``.
    """

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    def __call__(self, texts: list[str]) -> np.ndarray:
        rows, cols = [], []
        for row, text in enumerate(texts):
            for token in _TOKEN.findall(text.lower()):
                rows.append(row)
                cols.append(zlib.crc32(token.encode()) % self.dim)
        counts = np.zeros((len(texts), self.dim), dtype=np.float32)
        np.add.at(counts, (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)), 1.0)
        return np.log1p(counts)


def _bm25s():
    try:
        import bm25s
    except ImportError as error:  # pragma: no cover - depends on the install
        raise missing_dependency("bm25s", "search") from error
    return bm25s
