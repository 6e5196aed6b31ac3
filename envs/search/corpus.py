"""Corpora on disk: the generated world or a user's JSONL corpus, indexed once and cached.

Both kinds are built into a :func:`turngym.cache.cached_dir` folder (passage store, BM25 index,
and for the world its questions), published atomically, so instances and processes share one
build safely. In a process, an opened corpus is memoised.

Real-data formats (Search-R1 / FlashRAG):

* corpus JSONL, one passage a line: ``{"id", "title", "text"}`` or ``{"id", "contents"}`` where
  ``contents`` is ``"title\\ntext"`` (FlashRAG's wiki dumps quote the title: ``"\\"Title\\"\\ntext"``);
  ``.jsonl.gz`` is read too;
* questions JSONL: ``{"id"?, "question", "golden_answers": [...]}`` or ``"answer": str | [...]``;
  optional ``"supporting_ids"`` (passage ids; also read from ``metadata``) and ``"split"``.
"""

from __future__ import annotations

import functools
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from turngym.cache import cached_dir, file_digest
from turngym.envs.search.questions import generate_questions
from turngym.envs.search.retriever import BM25Retriever, PassageStore
from turngym.envs.search.world import generate_world
from turngym.error import InvalidArgumentError

__all__ = ["Corpus", "world_corpus", "jsonl_corpus", "read_corpus_jsonl", "read_questions_jsonl"]

#: Bump when generation or index format changes, so stale caches are not reused.
FORMAT_VERSION = 1


@dataclass
class Corpus:
    """An opened corpus: its passage store, BM25 index and (for the world) its questions."""

    key: str
    folder: Path
    store: PassageStore
    bm25: BM25Retriever
    questions: list[dict[str, Any]]


def _open(key: str, folder: Path) -> Corpus:
    questions_file = folder / "questions.jsonl"
    questions = read_questions_jsonl(questions_file) if questions_file.exists() else []
    return Corpus(key, folder, PassageStore(folder), BM25Retriever(folder / "bm25"), questions)


@functools.lru_cache(maxsize=8)
def world_corpus(num_passages: int, seed: int = 0, questions_per_hop: int = 500) -> Corpus:
    """The generated world of ``num_passages`` passages, with ``questions_per_hop`` questions per hop."""
    key = f"world-v{FORMAT_VERSION}-n{num_passages}-s{seed}-q{questions_per_hop}"

    def build(tmp: Path) -> None:
        world = generate_world(num_passages, seed)
        PassageStore.write(tmp, world.passages())
        (tmp / "bm25").mkdir()
        BM25Retriever.build(tmp / "bm25", PassageStore(tmp).documents())
        with open(tmp / "questions.jsonl", "w") as handle:
            for row in generate_questions(world, questions_per_hop, seed):
                handle.write(json.dumps(row) + "\n")

    return _open(key, cached_dir("search", key, build))


def jsonl_corpus(path: str) -> Corpus:
    """A corpus JSONL file (see the module docstring), indexed once per file content."""
    source = Path(path).expanduser()
    if not source.is_file():
        raise InvalidArgumentError(
            f"corpus_path={path!r} is not a file; give a corpus JSONL(.gz) path."
        )
    stat = source.stat()
    return _jsonl_corpus(str(source), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _jsonl_corpus(path: str, size: int, mtime_ns: int) -> Corpus:
    """Memoised per (path, size, mtime), so an edited file is re-read and re-indexed."""
    source = Path(path)
    key = f"jsonl-v{FORMAT_VERSION}-{file_digest(source)[:20]}"

    def build(tmp: Path) -> None:
        if PassageStore.write(tmp, read_corpus_jsonl(source)) == 0:
            raise InvalidArgumentError(f"corpus {path!r} holds no passages.")
        (tmp / "bm25").mkdir()
        BM25Retriever.build(tmp / "bm25", PassageStore(tmp).documents())

    return _open(key, cached_dir("search", key, build))


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise InvalidArgumentError(
                    f"{path}:{number} is not valid JSON ({error}); one JSON object a line."
                ) from error
            if not isinstance(row, dict):
                raise InvalidArgumentError(
                    f"{path}:{number} is a {type(row).__name__}; each line must be a JSON object."
                )
            yield number, row


def read_corpus_jsonl(path: str | Path) -> Iterator[tuple[str, str, str]]:
    """Yields ``(id, title, text)`` from a Search-R1/FlashRAG corpus JSONL file."""
    path = Path(path)
    for number, row in _lines(path):
        passage_id = str(row.get("id", number - 1))
        if "contents" in row:
            title, _, text = str(row["contents"]).partition("\n")
            title = title.strip().strip('"')
            if not text:  # contents without a title line
                title, text = str(row.get("title", "")), title
        elif "text" in row:
            title, text = str(row.get("title", "")), str(row["text"])
        else:
            raise InvalidArgumentError(
                f"{path}:{number} has neither 'text' nor 'contents' (keys: {sorted(row)}); corpus lines "
                'must be {"id", "title", "text"} or {"id", "contents": "title\\ntext"}.'
            )
        yield passage_id, title, text


def read_questions_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Reads a questions JSONL file into rows ``{"id", "question", "golden_answers", ...}``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InvalidArgumentError(
            f"questions_path={str(path)!r} is not a file; give a questions JSONL path."
        )
    rows, seen = [], set()
    for number, row in _lines(path):
        answers = row.get("golden_answers", row.get("answer", row.get("answers")))
        if "question" not in row or answers in (None, "", []):
            raise InvalidArgumentError(
                f"{path}:{number} needs 'question' and 'golden_answers' (list) or 'answer'; got keys {sorted(row)}."
            )
        answers = [answers] if isinstance(answers, (str, int, float)) else list(answers)
        metadata = row.get("metadata") if isinstance(row.get("metadata"), dict) else {}
        question_id = str(row.get("id", f"q{number - 1}"))
        if question_id in seen:
            raise InvalidArgumentError(
                f"{path}:{number} repeats the id {question_id!r}; question ids must be unique."
            )
        seen.add(question_id)
        rows.append(
            {
                **row,
                "id": question_id,
                "question": str(row["question"]),
                "golden_answers": [str(a) for a in answers],
                "supporting_ids": [
                    str(s) for s in row.get("supporting_ids", metadata.get("supporting_ids", []))
                ],
            }
        )
    if not rows:
        raise InvalidArgumentError(f"questions file {str(path)!r} holds no questions.")
    return rows
