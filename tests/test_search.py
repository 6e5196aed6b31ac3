"""SearchQA env: strict parsing, bad input, rewards, state keys, privileged info, registration."""

from __future__ import annotations

import gymnasium
import pytest

import turngym
from turngym.envs.search.answer import exact_match, f1_score, normalize_answer, parse_action
from turngym.envs.search.env import FORMAT_PENALTY, NO_SEARCH_PENALTY, SearchQAEnv
from turngym.error import InvalidArgumentError
from turngym.testing import EnvConformanceMixin


def small_env(**kwargs) -> SearchQAEnv:
    return SearchQAEnv(num_passages=1_000, questions_per_hop=40, **kwargs)


def first_task(env: SearchQAEnv, prefix: str) -> str:
    return next(t for t in env.task_ids if t.startswith(prefix))


@pytest.mark.parametrize(
    "text, kind, body",
    [
        ("<search>Velmora</search>", "search", "Velmora"),
        ("  <answer> 1843 </answer>\n", "answer", "1843"),
        (
            "<think>first the author\nthen the city</think>\n<search>The Zeldom Harbor</search>",
            "search",
            "The Zeldom Harbor",
        ),
    ],
)
def test_parse_accepts_exactly_one_action(text: str, kind: str, body: str) -> None:
    action = parse_action(text)
    assert (action.kind, action.body, action.error) == (kind, body, None)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("Sure! I will now do: <search>x</search>. I hope this helps", "outside"),
        ("<search>x</search> thanks", "outside"),
        ("<search>x", "unbalanced"),
        ("<search>a</search><search>b</search>", "more than one"),
        ("<search><answer>a</answer></search>", "nested"),
        ("<search>   </search>", "empty search"),
        ("<answer></answer>", "empty answer"),
        ("<search>" + "x" * 100_000 + "</search>", "limit"),
        ("", "empty action"),
        ("search for the capital", "no <search>"),
        ("<think>a</think><think>b</think><answer>c</answer>", "nested"),
    ],
)
def test_parse_rejects_everything_else(text: str, reason: str) -> None:
    action = parse_action(text)
    assert action.kind is None and reason in action.error


def test_squad_normalisation_and_scores() -> None:
    assert normalize_answer("The  Zeldom-Harbor, an Atlas!") == "zeldomharbor atlas"
    assert exact_match("the zeldom harbor", ["Zeldom Harbor"]) == 1.0
    assert exact_match("Zeldom", ["Zeldom Harbor"]) == 0.0
    assert f1_score("Zeldom", ["Zeldom Harbor"]) == pytest.approx(2 / 3)
    assert f1_score("x", ["Zeldom Harbor", "x"]) == 1.0
    assert f1_score("", ["Velmora"]) == 0.0
    assert f1_score("the", ["a"]) == 1.0  # both normalise to the empty answer (SQuAD)


def test_bad_input_gets_feedback_penalty_and_keeps_state() -> None:
    env = small_env()
    _, info = env.reset(options={"task": first_task(env, "h2-")})
    key = info["state_key"]
    for action in (
        "<search>unbalanced",
        "<search></search>",
        "<search>" + "q" * 100_000 + "</search>",
        "I think <answer>x</answer>",
        "<answer>a</answer><answer>b</answer>",
    ):
        obs, reward, terminated, truncated, info = env.step(action)
        assert not info["valid_action"] and not terminated
        assert reward == FORMAT_PENALTY and info["reward_components"]["format"] == FORMAT_PENALTY
        assert "Invalid action" in obs and len(obs) < 1_000, obs[:200]
        assert info["state_key"] == key
    assert not truncated and info["turn"] == 5


def test_answer_without_search_is_penalised_and_scored() -> None:
    env = small_env()
    _, info = env.reset(options={"task": first_task(env, "h1-")})
    gold = info["privileged"]["golden_answers"][0]
    obs, reward, terminated, _, info = env.step(f"<answer>{gold}</answer>")
    assert terminated and info["valid_action"] and info["success"]
    assert info["reward_components"] == {
        "format": 0.0,
        "retrieval": 0.0,
        "no_search": NO_SEARCH_PENALTY,
        "outcome": 1.0,
    }
    assert reward == pytest.approx(1.0 + NO_SEARCH_PENALTY)
    assert "without searching" in obs and info["exact_match"] == 1.0


def test_dense_retrieval_reward_progress_and_state_key() -> None:
    env = small_env(top_k=1)
    _, info = env.reset(options={"task": first_task(env, "h2-")})
    supporting = info["privileged"]["supporting_ids"]
    plan = info["privileged"]["plan"]
    start = plan["branches"][0]["start"]
    obs, reward, _, _, info = env.step(f"<search>{start}</search>")
    assert obs.startswith("<information>") and obs.rstrip().endswith("</information>")
    assert f"id: {supporting[0]}" in obs, (
        "searching an entity's exact name returns its article first"
    )
    assert info["reward_components"]["retrieval"] == pytest.approx(0.2 / len(supporting))
    assert info["progress"] == pytest.approx(1 / len(supporting))
    key = info["state_key"]
    # The same passage again: no new reward, no new state.
    _, reward, _, _, info = env.step(f"<search>{start.lower()}!</search>")
    assert (
        reward == 0.0
        and info["state_key"] == key
        and info["progress"] == pytest.approx(1 / len(supporting))
    )
    _, _, _, _, info = env.step("<search>qqqqzzzz</search>")
    assert info["valid_action"] and info["num_results"] == 0 and info["state_key"] == key


def test_state_key_is_the_retrieved_set_not_the_text() -> None:
    env = small_env(top_k=1)
    task = first_task(env, "h1-")
    _, info = env.reset(options={"task": task})
    start = info["privileged"]["plan"]["branches"][0]["start"]
    _, _, _, _, a = env.step(f"<search>{start}</search>")
    env.reset(options={"task": task})
    _, _, _, _, b = env.step(f"<think>hmm</think><search>  {start.upper()} </search>")
    assert a["state_key"] == b["state_key"]


def test_sparse_mode_pays_only_the_outcome_f1() -> None:
    env = small_env(reward_mode="sparse")
    _, info = env.reset(options={"task": first_task(env, "h1-")})
    _, reward, _, _, info = env.step("<search>nothing</search>")
    assert reward == 0.0 and info["reward_components"] == {}
    gold = info["privileged"]["golden_answers"][0]
    _, reward, _, _, info = env.step(f"<answer>{gold} extra words</answer>")
    assert info["reward_components"] == {
        "outcome": pytest.approx(f1_score(gold + " extra words", [gold]))
    }
    assert 0 < reward < 1 and info["success"] is False


def test_em_outcome_metric_and_truncation() -> None:
    env = small_env(outcome_metric="em", max_turns=2)
    _, info = env.reset(options={"task": first_task(env, "h1-")})
    env.step("<search>a</search>")
    _, _, terminated, truncated, info = env.step("<search>b</search>")
    assert truncated and not terminated and info["outcome"] == 0.0 and info["success"] is False


def test_privileged_never_in_what_the_policy_sees() -> None:
    env = small_env()
    for task in env.task_ids[:40]:
        obs, info = env.reset(options={"task": task})
        secret = info["privileged"]
        assert set(secret) == {"golden_answers", "supporting_ids", "hops", "plan"}
        visible = obs + info["instructions"]
        assert all(pid not in visible for pid in secret["supporting_ids"])
        if info["question_type"] == "bridge":
            assert all(answer not in visible for answer in secret["golden_answers"])


def test_splits_are_disjoint_and_hops_filter() -> None:
    train, test = small_env(), small_env(split="test")
    assert train.task_ids and test.task_ids and not set(train.task_ids) & set(test.task_ids)
    three = small_env(hops=3)
    assert three.task_ids and all(t.startswith("h3-") for t in three.task_ids)
    assert len(train.task_ids) == 4 * 32 and len(test.task_ids) == 4 * 8


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"hops": 5}, "hops"),
        ({"top_k": 0}, "top_k"),
        ({"retriever": "tfidf"}, "bm25"),
        ({"retriever": "dense"}, "embedding_fn"),
        ({"outcome_metric": "acc"}, "em"),
        ({"corpus_path": "x.jsonl"}, "questions_path"),
        ({"num_passages": 10}, "num_passages"),
        ({"topk": 3}, "top_k"),
    ],
)
def test_wrong_arguments_say_what_is_valid(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        SearchQAEnv(**kwargs)


def test_registered_ids_and_expert() -> None:
    ids = [i for i in turngym.list_envs() if i.startswith("turngym/SearchQA")]
    assert sorted(ids) == sorted(
        ["turngym/SearchQA-v0"] + [f"turngym/SearchQA-{h}hop-v0" for h in (1, 2, 3, 4)]
    )
    env = gymnasium.make("turngym/SearchQA-2hop-v0")
    assert all(t.startswith("h2-") for t in env.unwrapped.task_ids)
    assert turngym.agents.expert("turngym/SearchQA-v0").privileged is True


class TestSmallWorldConformance(EnvConformanceMixin):
    def make_env(self):
        return gymnasium.make(
            "turngym/SearchQA-v0", num_passages=1_000, questions_per_hop=40, top_k=5
        )


def test_answer_module_doctests() -> None:
    import doctest

    import turngym.envs.search.answer as answer

    assert doctest.testmod(answer).failed == 0
