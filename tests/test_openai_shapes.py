"""OpenAIPolicy reads token ids, prompt ids and logprobs in vLLM's and SGLang's response shapes,
drops only the request field a server rejects, and names the piece a server did not return."""

from __future__ import annotations

import warnings

import pytest

from helpers.openai_server import ChatServer
from turngym.agents.openai_compat import TOKEN_FIELDS, OpenAIPolicy
from turngym.agents.openai_shapes import missing_pieces, parse_choice, rejected_fields
from turngym.policy import Conversation


def _conversation(side: str = "east") -> Conversation:
    return Conversation(
        messages=[
            {"role": "system", "content": f"The exit is to the {side}."},
            {"role": "user", "content": "corridor"},
        ]
    )


def _prompt_ids(server: ChatServer) -> list[int]:
    return server._prompt(_conversation().messages)


@pytest.mark.parametrize("mode", ["vllm", "sglang"])
def test_every_piece_is_read_in_each_servers_shape(mode):
    with ChatServer(mode=mode, latency=0.0) as server:
        policy = OpenAIPolicy("tiny", base_url=server.url, logprobs=True, max_concurrency=1)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # nothing is missing: no warning
            actions = policy.act([_conversation("east"), _conversation("west")])
        body = server.requests[0]["body"]
    assert all(body[field] is True for field in TOKEN_FIELDS)
    for action, text in zip(actions, ["go east", "go west"], strict=True):
        assert action.text == text
        assert action.token_ids == [ord(c) % 50 + 1 for c in text]
        assert action.logprobs == [-0.25 * (j + 1) for j in range(len(text))]
        assert action.prompt_token_ids and missing_pieces(action) == []
    assert actions[0].prompt_token_ids == _prompt_ids(server)


def test_sglang_prompt_ids_come_from_the_choice_not_the_top_level():
    data = {
        "choices": [
            {
                "message": {"content": "go"},
                "logprobs": {"content": [{"token": "g", "logprob": -0.5}]},
                "token_ids": [7],
                "prompt_token_ids": [1, 2, 3],
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    action = parse_choice(data)
    assert (action.prompt_token_ids, action.token_ids, action.logprobs) == ([1, 2, 3], [7], [-0.5])


@pytest.mark.parametrize(
    "entries",
    [
        [[-0.5, 7, "g"], [-1.5, 8, "o"]],
        [{"logprob": -0.5, "token_id": 7}, {"logprob": -1.5, "id": 8}],
    ],
)
def test_sglang_meta_info_gives_token_ids_and_logprobs(entries):
    data = {
        "choices": [{"message": {"content": "go"}, "meta_info": {"output_token_logprobs": entries}}]
    }
    action = parse_choice(data)
    assert action.token_ids == [7, 8] and action.logprobs == [-0.5, -1.5]
    assert action.prompt_token_ids is None
    assert ["prompt token ids" in piece for piece in missing_pieces(action)] == [True]


def test_meta_info_through_the_server_when_the_user_asks_for_it():
    with ChatServer(mode="sglang", latency=0.0) as server:
        policy = OpenAIPolicy(
            "tiny",
            base_url=server.url,
            logprobs=True,
            extra_body={"return_meta_info": True, "return_token_ids": False},
        )
        action = policy.act([_conversation()])[0]
    assert action.token_ids == [ord(c) % 50 + 1 for c in "go east"]
    assert action.prompt_token_ids == _prompt_ids(server)


def test_a_400_naming_one_field_drops_only_that_field():
    # a vLLM-like server that does not know SGLang's return_prompt_token_ids
    with ChatServer(mode="vllm", latency=0.0, reject=("return_prompt_token_ids",)) as server:
        policy = OpenAIPolicy("tiny", base_url=server.url, logprobs=True, max_concurrency=1)
        with pytest.warns(
            RuntimeWarning, match=r"rejected the request field\(s\) \['return_prompt"
        ):
            actions = policy.act([_conversation("east"), _conversation("west")])
        bodies = [r["body"] for r in server.requests]
    assert len(bodies) == 3 and "return_prompt_token_ids" in bodies[0]
    for body in bodies[1:]:
        assert "return_prompt_token_ids" not in body
        assert body["logprobs"] is body["return_token_ids"] is True
    assert all(a.logprobs and a.token_ids and a.prompt_token_ids for a in actions)  # 2/2, not 0/2


def test_field_names_match_whole_words_only():
    sent = set(TOKEN_FIELDS)
    assert rejected_fields("top_logprobs must be set with logprobs", sent) == ["logprobs"]
    assert rejected_fields("top_logprobs must be <= 20", sent) == []
    assert rejected_fields("unknown: return_prompt_token_ids", sent) == ["return_prompt_token_ids"]


def test_an_old_sglang_without_prompt_ids_is_named_in_the_warning():
    # an SGLang release that ignores return_prompt_token_ids: ids and logprobs, no prompt ids
    with ChatServer(mode="sglang", latency=0.0) as server:
        policy = OpenAIPolicy(
            "tiny",
            base_url=server.url,
            logprobs=True,
            extra_body={"return_prompt_token_ids": False},
        )
        with pytest.warns(RuntimeWarning, match="no prompt token ids") as caught:
            action = policy.act([_conversation()])[0]
    assert action.token_ids and action.logprobs and action.prompt_token_ids is None
    message = " ".join(str(w.message) for w in caught)
    assert (
        "no action token ids" not in message
        and "no logprobs" not in message
        and "return_prompt_token_ids" in message
    )
