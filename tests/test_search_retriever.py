"""Retrievers (BM25, dense hook), the on-disk cache, and the real-data JSONL loaders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from turngym.envs.search.corpus import (
    jsonl_corpus,
    read_corpus_jsonl,
    read_questions_jsonl,
    world_corpus,
)
from turngym.envs.search.env import SearchQAEnv
from turngym.envs.search.expert import SearchExpert, evaluate
from turngym.envs.search.retriever import DenseRetriever, HashingEmbedder, top_k
from turngym.error import InvalidArgumentError
from turngym.testing import check_env

FIXTURES = Path(__file__).parent / "fixtures" / "search"


def test_top_k_orders_by_score_then_index_and_drops_zeros() -> None:
    scores = np.array([0.5, 2.0, 0.5, 0.0, 2.0, 0.5])
    assert top_k(scores, 3) == [(1, 2.0), (4, 2.0), (0, 0.5)]
    assert top_k(np.array([0.0, 1.0, 0.0]), 3) == [(1, 1.0)]
    assert top_k(np.zeros(0), 3) == []


def test_bm25_finds_an_article_by_its_entity_name() -> None:
    corpus = world_corpus(1_000, 0, 40)
    store, hits = corpus.store, 0
    for index in range(0, 1_000, 10):
        results = corpus.bm25.search(store.title(index), 3)
        hits += index in [i for i, _ in results]
        assert [s for _, s in results] == sorted((s for _, s in results), reverse=True)
    assert hits >= 98, f"the article came up in the top 3 for {hits}/100 exact-name queries"
    assert corpus.bm25.search("the of and", 3) == [], "stopwords only: no result, no crash"
    assert corpus.bm25.search("zzzunknownzzz", 3) == []


def test_index_is_cached_and_shared(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TURNGYM_CACHE", str(tmp_path))
    world_corpus.cache_clear()
    try:
        first = world_corpus(1_000, 5, 10)
        files = sorted(p.name for p in first.folder.iterdir())
        assert {"bm25", "questions.jsonl", "texts.bin", "ids.offsets.npy"} <= set(files)
        world_corpus.cache_clear()
        mtime = (first.folder / "texts.bin").stat().st_mtime_ns
        second = world_corpus(1_000, 5, 10)
        assert (
            second.folder == first.folder
            and (second.folder / "texts.bin").stat().st_mtime_ns == mtime
        )
        assert second.store.text(7) == first.store.text(7) and second.questions == first.questions
    finally:
        world_corpus.cache_clear()


def test_dense_hook_with_a_deterministic_embedding(tmp_path, monkeypatch) -> None:
    embed = HashingEmbedder(128)
    docs = [
        "red apples grow in the orchard",
        "the harbor has three ships",
        "ships sail from the harbor at dawn",
    ]
    retriever = DenseRetriever(embed, docs, batch_size=2)
    assert retriever.embeddings.shape == (3, 128)
    assert np.allclose(np.linalg.norm(retriever.embeddings, axis=1), 1.0)
    assert {i for i, _ in retriever.search("harbor ships", 2)} == {1, 2}
    assert retriever.search("red apples in an orchard", 1)[0][0] == 0
    assert retriever.search("harbor ships", 2) == retriever.search("harbor ships", 2)
    with pytest.raises(InvalidArgumentError, match="one row per text"):
        DenseRetriever(lambda texts: np.zeros(3), docs)


def test_dense_env_passes_conformance_and_caches_embeddings(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TURNGYM_CACHE", str(tmp_path))
    world_corpus.cache_clear()
    calls = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return HashingEmbedder(256)(texts)

    try:

        def make():
            return SearchQAEnv(
                num_passages=1_000,
                questions_per_hop=10,
                retriever="dense",
                embedding_fn=embed,
                embedding_key="hash256",
            )

        check_env(make)
        assert sum(calls[:4]) == 1_000 and len(list(tmp_path.glob("search/*dense-hash256"))) == 1
        env = make()
        _, info = env.reset(options={"task": env.task_ids[0]})
        name = info["privileged"]["plan"]["branches"][0]["start"]
        obs, *_ = env.step(f"<search>{name}</search>")
        assert obs.count("Doc ") == 3 and f"title: {name})" in obs
    finally:
        world_corpus.cache_clear()


@pytest.mark.parametrize("name", ["corpus.jsonl", "corpus_contents.jsonl"])
def test_corpus_loader_reads_both_schemas(name: str) -> None:
    rows = list(read_corpus_jsonl(FIXTURES / name))
    assert len(rows) == 12
    assert rows[0] == (
        "1",
        "Orvane Telsid",
        "Orvane Telsid is a lighthouse keeper who was born in Brisk Harbour "
        "in 1822. He wrote the memoir Salt on the Lamp.",
    )


def test_question_loader_reads_golden_answers_and_answer() -> None:
    rows = read_questions_jsonl(FIXTURES / "questions.jsonl")
    assert [r["id"] for r in rows] == ["q1", "q2", "q3", "q4"]
    assert rows[1]["golden_answers"] == ["Idra Vensel", "Vensel"] and rows[0]["supporting_ids"] == [
        "3",
        "4",
    ]
    plain = read_questions_jsonl(FIXTURES / "questions_answer.jsonl")
    assert [r["golden_answers"] for r in plain] == [["printing"], ["1810"]] and plain[0][
        "id"
    ] == "q0"


def test_loaders_explain_bad_files(tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": 1, "body": "x"}) + "\n")
    with pytest.raises(InvalidArgumentError, match="neither 'text' nor 'contents'"):
        list(read_corpus_jsonl(bad))
    with pytest.raises(InvalidArgumentError, match="golden_answers"):
        read_questions_jsonl(bad)
    bad.write_text("{not json\n")
    with pytest.raises(InvalidArgumentError, match="not valid JSON"):
        read_questions_jsonl(bad)
    with pytest.raises(InvalidArgumentError, match="not a file"):
        jsonl_corpus(str(tmp_path / "missing.jsonl"))


@pytest.mark.parametrize("corpus", ["corpus.jsonl", "corpus_contents.jsonl"])
def test_env_on_real_data_fixtures(corpus: str) -> None:
    kwargs = {
        "corpus_path": str(FIXTURES / corpus),
        "questions_path": str(FIXTURES / "questions.jsonl"),
    }
    env = SearchQAEnv(**kwargs)
    assert env.task_ids == ["q1", "q2"] and SearchQAEnv(split="test", **kwargs).task_ids == [
        "q3",
        "q4",
    ]
    obs, info = env.reset(options={"task": "q1"})
    assert obs == "Question: In which town was the publisher of Salt on the Lamp founded?"
    obs, reward, *_, info = env.step("<search>Salt on the Lamp memoir</search>")
    assert (
        "(id: 3, title: Salt on the Lamp)" in obs
        and info["progress"] == 0.5
        and reward == pytest.approx(0.1)
    )
    obs, *_, info = env.step("<search>Merrow Press founded</search>")
    assert info["progress"] == 1.0
    *_, info = env.step("<answer>the town of Callowick</answer>")
    assert info["exact_match"] == 0.0 and info["f1"] == pytest.approx(0.5)
    assert evaluate(env, SearchExpert(), env.task_ids)["exact_match"] == 1.0
    check_env(lambda: SearchQAEnv(**kwargs))


def test_real_questions_without_supporting_ids_use_f1_progress() -> None:
    env = SearchQAEnv(
        corpus_path=str(FIXTURES / "corpus.jsonl"),
        questions_path=str(FIXTURES / "questions_answer.jsonl"),
    )
    assert (
        env.task_ids
        == ["q0", "q1"]
        == SearchQAEnv(
            corpus_path=str(FIXTURES / "corpus.jsonl"),
            questions_path=str(FIXTURES / "questions_answer.jsonl"),
            split="test",
        ).task_ids
    )
    env.reset(options={"task": "q1"})
    _, reward, _, _, info = env.step("<search>river mills rebuilt</search>")
    assert info["progress"] == 0.0 and info["reward_components"]["retrieval"] == 0.0
    _, _, _, _, info = env.step("<answer>1810</answer>")
    assert info["progress"] == 1.0 and info["success"]
