"""OpenAIPolicy against a local server in vLLM's response shapes (tests/helpers/openai_server.py):
retries, timeouts, concurrency, sampling parameters, logprobs/token ids, usage, async act."""

from __future__ import annotations

import time
import warnings

import pytest

import turngym
from helpers.openai_server import ChatServer
from turngym.agents.openai_compat import OpenAIPolicy, parse_choice
from turngym.error import PolicyError
from turngym.policy import Conversation, GeneratedAction


@pytest.fixture
def server():
    with ChatServer() as server:
        yield server


def _conversation(side: str) -> Conversation:
    return Conversation(
        messages=[
            {"role": "system", "content": f"The exit is to the {side}."},
            {"role": "user", "content": "corridor"},
        ]
    )


def _texts(actions):
    return [a.text for a in actions]


def test_rollout_through_server_solves_corridor(server, monkeypatch):
    monkeypatch.setenv("TEST_TURNGYM_KEY", "sk-test")
    policy = OpenAIPolicy(
        "tiny", base_url=server.url, api_key_env="TEST_TURNGYM_KEY", max_concurrency=3
    )
    trajectories = turngym.rollout(
        "turngym/Corridor-v0", policy, num_episodes=6, num_envs=1, progress=False
    )
    assert all(t.success for t in trajectories)
    assert server.requests[0]["auth"] == "Bearer sk-test"
    assert server.requests[0]["body"]["model"] == "tiny"
    # usage is recorded per turn; no logprobs were asked, so none are recorded
    turn = trajectories[0].turns[0]
    assert turn.info["usage"]["completion_tokens"] == len("go east")
    assert turn.info["usage"]["total_tokens"] == sum(
        turn.info["usage"][k] for k in ("prompt_tokens", "completion_tokens")
    )
    assert turn.logprobs is None and turn.token_ids is None
    assert "logprobs" not in server.requests[0]["body"]


def test_500_and_timeout_are_retried(server):
    server.failures = ["500", "slow"]
    policy = OpenAIPolicy(
        "tiny", base_url=server.url, timeout=0.5, max_retries=3, backoff=0.01, max_concurrency=1
    )
    assert _texts(policy.act([_conversation("east")])) == ["go east"]
    assert len(server.requests) == 3  # 500, timeout, success


def test_retries_exhausted_raise_policy_error(server):
    server.failures = ["500"] * 5
    policy = OpenAIPolicy("tiny", base_url=server.url, max_retries=2, backoff=0.01)
    with pytest.raises(PolicyError, match="failed 3 times"):
        policy.act([_conversation("west")])


def test_server_down_fails_fast_with_clear_error():
    policy = OpenAIPolicy(
        "tiny", base_url="http://127.0.0.1:9/v1", timeout=1.0, max_retries=2, backoff=0.01
    )
    started = time.perf_counter()
    with pytest.raises(PolicyError, match="is the server running"):
        policy.act([_conversation("east")])
    assert time.perf_counter() - started < 10


def test_concurrency_limit_and_order(server):
    policy = OpenAIPolicy("tiny", base_url=server.url, max_concurrency=2)
    sides = ["east", "west"] * 4
    assert _texts(policy.act([_conversation(side) for side in sides])) == [
        f"go {side}" for side in sides
    ]
    assert server.max_in_flight == 2


def test_async_act_respects_concurrency_and_order(server):
    import asyncio

    policy = OpenAIPolicy("tiny", base_url=server.url, max_concurrency=3)
    sides = ["west", "east", "east", "west", "east", "west", "west"]
    actions = asyncio.run(policy.act_async([_conversation(side) for side in sides]))
    assert _texts(actions) == [f"go {side}" for side in sides]
    assert server.max_in_flight == 3


def test_empty_and_huge_replies_reach_the_env_as_they_are(server):
    server.failures = ["empty", "huge"]
    policy = OpenAIPolicy("tiny", base_url=server.url, max_concurrency=1)
    trajectory = turngym.rollout("turngym/Corridor-v0", policy, num_episodes=1, progress=False)[0]
    assert trajectory.turns[0].action == "" and len(trajectory.turns[1].action) == 400_000
    assert not trajectory.turns[0].valid_action and not trajectory.turns[1].valid_action
    assert trajectory.success  # the episode went on and the later valid replies solved it


def test_sampling_parameters_reach_the_body(server):
    policy = OpenAIPolicy(
        "tiny",
        base_url=server.url,
        temperature=0.7,
        top_p=0.9,
        max_tokens=12,
        stop=["\n"],
        seed=100,
        extra_body={"top_k": 5, "temperature": 0.6},
    )
    policy.act([_conversation("east"), _conversation("west")])
    policy.act([_conversation("east")])
    bodies = [request["body"] for request in server.requests]
    assert [b["seed"] for b in sorted(bodies, key=lambda b: b["seed"])] == [100, 101, 102]
    for body in bodies:
        assert body["top_p"] == 0.9 and body["max_tokens"] == 12 and body["stop"] == ["\n"]
        assert body["top_k"] == 5 and body["temperature"] == 0.6  # extra_body wins


def test_vllm_logprobs_and_token_ids_are_parsed(server):
    policy = OpenAIPolicy("tiny", base_url=server.url, logprobs=True)
    (action,) = policy.act([_conversation("east")])
    body = server.requests[0]["body"]
    assert body["logprobs"] is True and body["return_tokens_as_token_ids"] is True
    expected_ids = [ord(c) % 50 + 1 for c in "go east"]
    assert action.text == "go east"
    assert action.token_ids == expected_ids
    assert action.logprobs == [-0.25 * (j + 1) for j in range(len(expected_ids))]
    assert action.prompt_token_ids == [
        ord(c) % 50 + 1 for c in "The exit is to the east." + "corridor"
    ]
    assert action.usage == {"prompt_tokens": 32, "completion_tokens": 7, "total_tokens": 39}


def test_token_ids_from_token_id_strings_alone():
    # vLLM without return_token_ids (before 0.10.2): ids only in the "token_id:N" strings.
    data = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "go"},
                "logprobs": {
                    "content": [
                        {
                            "token": "token_id:17",
                            "logprob": -0.5,
                            "bytes": [103],
                            "top_logprobs": [],
                        },
                        {
                            "token": "token_id:4",
                            "logprob": -1.5,
                            "bytes": [111],
                            "top_logprobs": [],
                        },
                    ]
                },
            }
        ]
    }
    action = parse_choice(data)
    assert action.token_ids == [17, 4] and action.logprobs == [-0.5, -1.5]
    assert action.prompt_token_ids is None and action.usage is None
    # plain token strings: logprobs kept, no ids made up
    data["choices"][0]["logprobs"]["content"][0]["token"] = "g"
    assert parse_choice(data).token_ids is None


def test_server_ignoring_logprobs_warns_once_and_fabricates_nothing():
    with ChatServer(mode="ignore") as server:
        policy = OpenAIPolicy("tiny", base_url=server.url, logprobs=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            actions = policy.act([_conversation("east"), _conversation("west")])
            actions += policy.act([_conversation("east")])
        messages = [str(w.message) for w in caught if "logprobs" in str(w.message)]
        assert len(messages) == 1 and "plain text" in messages[0]
        assert all(a.logprobs is None and a.token_ids is None for a in actions)
        assert _texts(actions) == ["go east", "go west", "go east"]


def test_server_rejecting_token_fields_falls_back_to_plain_requests():
    with ChatServer(mode="reject") as server:
        policy = OpenAIPolicy("tiny", base_url=server.url, logprobs=True, max_concurrency=1)
        with pytest.warns(RuntimeWarning, match="rejected the request field"):
            actions = policy.act([_conversation("east"), _conversation("west")])
        assert _texts(actions) == ["go east", "go west"]
        assert all(a.logprobs is None for a in actions)
        # the rejected request, then plain ones only
        assert "logprobs" in server.requests[0]["body"]
        assert all("logprobs" not in r["body"] for r in server.requests[1:])
        assert len(server.requests) == 3


def test_async_rollout_matches_lockstep_through_http(server):
    policy = OpenAIPolicy("tiny", base_url=server.url, logprobs=True, max_concurrency=4)
    kwargs = dict(num_episodes=8, group_size=2, num_envs=4, workers=0, progress=False)
    lockstep = turngym.rollout("turngym/Corridor-v0", policy, **kwargs)
    asynchronous = turngym.rollout("turngym/Corridor-v0", policy, mode="async", **kwargs)
    assert [t.to_dict() for t in lockstep] == [t.to_dict() for t in asynchronous]
    assert all(turn.token_ids and turn.logprobs for t in lockstep for turn in t.turns)


def test_bad_arguments():
    with pytest.raises(turngym.error.InvalidArgumentError, match="temperature"):
        OpenAIPolicy("tiny", temperature=-1)
    with pytest.raises(turngym.error.InvalidArgumentError, match="max_concurrency"):
        OpenAIPolicy("tiny", max_concurrency=0)
    assert isinstance(parse_choice({"choices": [{"message": {"content": None}}]}), GeneratedAction)


def test_sampling_parameters_from_a_learner_config(server):
    from turngym.agents.learner_config import LearnerConfig

    config = LearnerConfig(
        model="served-model", temperature=0.8, top_p=0.95, top_k=20, max_new_tokens=16, seed=3
    )
    policy = OpenAIPolicy.from_learner_config(config, base_url=server.url)
    (action,) = policy.act([_conversation("west")])
    body = server.requests[0]["body"]
    assert body["model"] == "served-model" and body["temperature"] == 0.8
    assert body["top_p"] == 0.95 and body["top_k"] == 20 and body["max_tokens"] == 16
    assert body["seed"] == 3 and body["logprobs"] is True and "min_p" not in body
    assert action.token_ids and action.logprobs
    # every sampling field the learner scores under reaches the server, penalties included
    config = LearnerConfig(
        model="served-model", repetition_penalty=1.3, frequency_penalty=0.5, presence_penalty=-0.2
    )
    OpenAIPolicy.from_learner_config(config, base_url=server.url).act([_conversation("west")])
    body = server.requests[1]["body"]
    assert body["repetition_penalty"] == 1.3 and body["frequency_penalty"] == 0.5
    assert body["presence_penalty"] == -0.2 and "top_k" not in body and "min_p" not in body
