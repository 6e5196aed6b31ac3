"""SearchQA: answer multi-hop questions by querying a local search engine over several turns.

================  ================================================================================
Tasks             questions over the bundled fictional world (default 10k passages, seed 0): 1-4
                  hop bridge questions and 2-4 hop comparison questions, ``questions_per_hop``
                  per hop (the first 80 % of each hop train, the rest test; ids ``h{hops}-{n}``);
                  ``hops=`` selects hop counts. Or real data: ``corpus_path=`` (JSONL ``id``,
                  ``title``, ``text`` | ``contents``) with ``questions_path=`` (JSONL ``question``,
                  ``golden_answers`` | ``answer``; ``split`` field or both splits hold all)
Actions           exactly one ``<search>query</search>`` or ``<answer>text</answer>``, optionally
                  after one ``<think>...</think>``; nothing else (any other text, unbalanced or
                  nested tags, two actions, empty or > 1000-char bodies are invalid)
Observation       reset: ``Question: ...``; search: the top ``top_k`` passages as ``Doc i (id: ...,
                  title: ...) text`` lines inside ``<information>...</information>``; invalid:
                  what was wrong and the syntax, echoing at most 100 characters of the action
Outcome           answer F1 against the gold answers (SQuAD normalisation; ``outcome_metric="em"``
                  for exact match); success = exact match; ``info["exact_match"]``,
                  ``info["f1"]`` on the answer step; 0.0 when the turn limit cuts the episode
Dense reward      ``retrieval``: ``retrieval_reward`` x (newly retrieved supporting passages /
                  supporting passages); ``format``: -0.1 for an invalid action; ``no_search``: -0.1
                  for answering before any search
state_key         the sorted ids of every passage retrieved so far, and whether answered (not text)
progress          fraction of the supporting passages retrieved so far (real data without
                  supporting ids: 0, then the answer's F1)
privileged        ``golden_answers``, ``supporting_ids``, ``hops`` and the question's ``plan``
                  (start entities and relation names, for the expert)
================  ================================================================================

Memory model: a worker holds its corpus and BM25 index, built once (cached on disk): SearchQA-v0,
100,000 random episodes on a kept pool (4 envs, 2 workers): 57.3 -> 57.4 MiB per worker after a
10,000-episode warm-up, 0.00 MiB per 1,000 episodes (``benchmarks/soak.py``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from turngym.cache import cached_dir
from turngym.core import Outcome, Start, TurnEnv
from turngym.envs.search.answer import MAX_QUERY_CHARS, exact_match, f1_score, parse_action
from turngym.envs.search.corpus import Corpus, jsonl_corpus, read_questions_jsonl, world_corpus
from turngym.envs.search.questions import HOPS
from turngym.envs.search.retriever import DenseRetriever, EmbeddingFn
from turngym.error import InvalidArgumentError

__all__ = ["SearchQAEnv", "FORMAT_PENALTY", "NO_SEARCH_PENALTY"]

FORMAT_PENALTY = -0.1
NO_SEARCH_PENALTY = -0.1
#: Characters of a passage shown per result (real corpora can hold long passages).
MAX_PASSAGE_CHARS = 1_500
_ECHO_CHARS = 100
_DENSE: dict[tuple[str, Any], DenseRetriever] = {}
_SYNTAX = (
    "Reply with exactly one action: <search>query</search> or <answer>short answer</answer>, "
    "optionally preceded by <think>your reasoning</think>, and nothing else."
)


class SearchQAEnv(TurnEnv):
    """Multi-hop QA with a search tool (see the module docstring for the full specification).

    Args:
        hops: hop count(s) of the generated questions to serve (1-4).
        num_passages: size of the generated world (1,000 .. 10,000,000 passages).
        world_seed: seed of the world and its questions.
        questions_per_hop: questions generated per hop count (80 % train, 20 % test).
        corpus_path: a corpus JSONL(.gz) to search instead of the world (needs ``questions_path``).
        questions_path: a questions JSONL (over ``corpus_path``, or over the world's passages).
        top_k: passages returned per search.
        retriever: ``"bm25"`` (bm25s) or ``"dense"`` (cosine over ``embedding_fn`` vectors).
        embedding_fn: ``(list[str]) -> np.ndarray [n, dim]``, e.g. an e5/bge encoder.
        embedding_key: a name for ``embedding_fn``; when given, passage embeddings are cached on
            disk under it (otherwise they are computed once per process).
        outcome_metric: ``"f1"`` or ``"em"``: the outcome reward.
        retrieval_reward: total dense reward for retrieving all supporting passages.
        reward_mode, split, max_turns, render_mode: see :class:`turngym.core.TurnEnv`.
    """

    expert_policy = "turngym.envs.search.expert:SearchExpert"
    default_max_turns = 10

    _question: dict[str, Any]  # the current question row (gold answers, supporting ids, plan)
    _retrieved: set[str]  # ids of every passage shown this episode
    _searches: int  # valid searches made this episode
    _answered: bool  # the agent answered (the episode is over)
    _answer_f1: float  # F1 of the answer given (0 before)

    def __init__(
        self,
        *,
        hops: int | tuple[int, ...] = HOPS,
        num_passages: int = 10_000,
        world_seed: int = 0,
        questions_per_hop: int = 500,
        corpus_path: str | None = None,
        questions_path: str | None = None,
        top_k: int = 3,
        retriever: str = "bm25",
        embedding_fn: EmbeddingFn | None = None,
        embedding_key: str | None = None,
        outcome_metric: str = "f1",
        retrieval_reward: float = 0.2,
        reward_mode: str = "dense",
        split: str = "train",
        max_turns: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(
            reward_mode=reward_mode, split=split, max_turns=max_turns, render_mode=render_mode
        )
        self.hops = (hops,) if isinstance(hops, int) else tuple(int(h) for h in hops)
        if not self.hops or not set(self.hops) <= set(HOPS):
            raise InvalidArgumentError(
                f"hops={hops!r} is not valid; use hop counts from {list(HOPS)}."
            )
        if not isinstance(top_k, int) or not 1 <= top_k <= 50:
            raise InvalidArgumentError(f"top_k={top_k!r} must be an int in 1..50.")
        if outcome_metric not in ("f1", "em"):
            raise InvalidArgumentError(
                f"outcome_metric={outcome_metric!r} is not valid; use 'f1' or 'em'."
            )
        if retriever not in ("bm25", "dense"):
            raise InvalidArgumentError(
                f"retriever={retriever!r} is not valid; use 'bm25' or 'dense' (with embedding_fn=)."
            )
        if retriever == "dense" and embedding_fn is None:
            raise InvalidArgumentError(
                "retriever='dense' needs embedding_fn=<callable (list[str]) -> np.ndarray [n, dim]>."
            )
        if corpus_path is not None and questions_path is None:
            raise InvalidArgumentError(
                "corpus_path= needs questions_path= (a questions JSONL over that corpus)."
            )
        self.top_k, self.outcome_metric, self.retrieval_reward = (
            top_k,
            outcome_metric,
            float(retrieval_reward),
        )
        if corpus_path is None:
            if not isinstance(num_passages, int) or not 1_000 <= num_passages <= 10_000_000:
                raise InvalidArgumentError(
                    f"num_passages={num_passages!r} must be an int in 1,000..10,000,000."
                )
            self.corpus: Corpus = world_corpus(
                num_passages, int(world_seed), int(questions_per_hop)
            )
        else:
            self.corpus = jsonl_corpus(str(Path(corpus_path).expanduser().resolve()))
        rows = (
            self.corpus.questions
            if questions_path is None
            else read_questions_jsonl(questions_path)
        )
        rows = [r for r in rows if r.get("hops", self.hops[0]) in self.hops]
        self._questions = {row["id"]: row for row in rows}
        self._splits = self._split_ids(rows, generated=questions_path is None)
        self._retriever = (
            self.corpus.bm25 if retriever == "bm25" else self._dense(embedding_fn, embedding_key)
        )
        self._question, self._retrieved, self._searches, self._answered, self._answer_f1 = (
            {},
            set(),
            0,
            False,
            0.0,
        )

    @staticmethod
    def _split_ids(rows: list[dict[str, Any]], generated: bool) -> dict[str, list[str]]:
        if any("split" in row for row in rows):
            return {
                s: [r["id"] for r in rows if r.get("split", "train") == s]
                for s in ("train", "test")
            }
        if not generated:
            ids = [r["id"] for r in rows]
            return {"train": ids, "test": ids}
        # Generated ids are h{hops}-{n}; the last 20 % of each hop's questions are the test split.
        per_hop: dict[int, int] = {}
        for row in rows:
            per_hop[row["hops"]] = per_hop.get(row["hops"], 0) + 1
        test = {r["id"] for r in rows if int(r["id"].split("-")[1]) >= 0.8 * per_hop[r["hops"]]}
        return {
            "train": [r["id"] for r in rows if r["id"] not in test],
            "test": [r["id"] for r in rows if r["id"] in test],
        }

    def _dense(self, embed: EmbeddingFn, key: str | None) -> DenseRetriever:
        memo = (self.corpus.key, key if key is not None else id(embed))
        if memo not in _DENSE:
            if key is None:
                _DENSE[memo] = DenseRetriever(embed, self.corpus.store.documents())
            else:

                def build(tmp: Path) -> None:
                    np.save(
                        tmp / "embeddings.npy",
                        DenseRetriever(embed, self.corpus.store.documents()).embeddings,
                    )

                folder = cached_dir("search", f"{self.corpus.key}-dense-{key}", build)
                _DENSE[memo] = DenseRetriever(embed, embeddings=np.load(folder / "embeddings.npy"))
        return _DENSE[memo]

    # ------------------------------------------------------------------ TurnEnv hooks
    def _task_ids(self, split: str) -> list[str]:
        return self._splits[split]

    def _start(self, task_id: str, rng: np.random.Generator) -> Start:
        self._question = self._questions[task_id]
        self._retrieved, self._searches, self._answered, self._answer_f1 = set(), 0, False, 0.0
        question = self._question["question"]
        instructions = (
            f"Answer the question by searching a corpus of {len(self.corpus.store):,} encyclopedia passages. "
            f"{_SYNTAX}\n- <search>query</search> returns the top {self.top_k} passages inside "
            "<information>...</information>.\n- <answer>text</answer> ends the episode: give only the short "
            "answer (a name, place, date or year); it is scored by F1 against the gold answer.\n"
            "The facts are not common knowledge: search before you answer, and search again for each "
            f"entity the passages lead you to.\nQuestion: {question}"
        )
        info = {
            "question": question,
            "hops": self._question.get("hops"),
            "question_type": self._question.get("type"),
        }
        return Start(observation=f"Question: {question}", instructions=instructions, info=info)

    def _act(self, action: str) -> Outcome:
        parsed = parse_action(action)
        components = {"format": 0.0, "retrieval": 0.0, "no_search": 0.0}
        if parsed.error is not None:
            echo = action[:_ECHO_CHARS] + ("..." if len(action) > _ECHO_CHARS else "")
            components["format"] = FORMAT_PENALTY
            return Outcome(
                f"Invalid action ({parsed.error}). {_SYNTAX} You wrote: {echo!r}",
                components,
                valid_action=False,
            )
        if parsed.kind == "search":
            return self._search(parsed.body, components)
        return self._answer(parsed.body, components)

    def _search(self, query: str, components: dict[str, float]) -> Outcome:
        self._searches += 1
        results = self._retriever.search(query, self.top_k)
        store, supporting = self.corpus.store, self._question.get("supporting_ids", [])
        lines, new = [], set()
        for rank, (index, _) in enumerate(results, 1):
            passage_id, text = store.id(index), store.text(index)
            if len(text) > MAX_PASSAGE_CHARS:
                text = text[:MAX_PASSAGE_CHARS] + " ..."
            lines.append(f"Doc {rank} (id: {passage_id}, title: {store.title(index)}) {text}")
            new.add(passage_id)
        if supporting:
            gained = (set(supporting) & new) - self._retrieved
            components["retrieval"] = self.retrieval_reward * len(gained) / len(set(supporting))
        self._retrieved |= new
        body = "\n".join(lines) if lines else "No passage matches this query; try other words."
        return Outcome(
            f"<information>\n{body}\n</information>", components, info={"num_results": len(lines)}
        )

    def _answer(self, answer: str, components: dict[str, float]) -> Outcome:
        gold = self._question["golden_answers"]
        em, f1 = exact_match(answer, gold), f1_score(answer, gold)
        self._answered, self._answer_f1 = True, f1
        note = ""
        if self._searches == 0:
            components["no_search"] = NO_SEARCH_PENALTY
            note = " You answered without searching; the facts are only in the corpus."
        outcome = f1 if self.outcome_metric == "f1" else em
        shown = answer[:_ECHO_CHARS]
        return Outcome(
            f"You answered {shown!r}. Exact match: {em:.0f}, F1: {f1:.2f}.{note} The episode is over.",
            components,
            terminated=True,
            outcome=outcome,
            success=em == 1.0,
            info={"exact_match": em, "f1": f1, "answer": shown},
        )

    def _state(self) -> dict[str, Any]:
        return {"retrieved": sorted(self._retrieved), "answered": self._answered}

    def _progress(self) -> float:
        supporting = set(self._question.get("supporting_ids", []))
        if not supporting:
            return self._answer_f1
        return len(supporting & self._retrieved) / len(supporting)

    def _privileged(self) -> dict[str, Any]:
        if not self._question:
            return {}
        return {
            "golden_answers": list(self._question["golden_answers"]),
            "supporting_ids": list(self._question.get("supporting_ids", [])),
            "hops": self._question.get("hops"),
            "plan": copy.deepcopy(self._question.get("plan")),
        }

    def example_action(self) -> str:
        """A valid action for the current task (used by the conformance check)."""
        question = self._question.get("question", "history") if self._question else "history"
        return f"<search>{question[: MAX_QUERY_CHARS // 2]}</search>"
