"""Rollouts served in vLLM's response shapes (token ids + logprobs) train the learner: the turns
carry the server's prompt and action token ids, and one learner step on them changes the model."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import turngym  # noqa: E402
from helpers.openai_server import ChatServer  # noqa: E402
from helpers.tiny_models import CORRIDOR_KWARGS, corridor_model  # noqa: E402
from turngym.agents.openai_compat import OpenAIPolicy  # noqa: E402


def test_learner_trains_on_vllm_shaped_rollouts(tmp_path, monkeypatch):
    from test_learner import config, episode_grpo
    from transformers import AutoTokenizer

    from turngym.agents.learner import Learner

    tokenizer = AutoTokenizer.from_pretrained(str(corridor_model()))
    # answers vary within each group so that group-relative advantages are not all zero
    replies = ["go east", "go west", "wait", "go east", "go west"]
    with ChatServer(tokenizer=tokenizer, replies=replies, latency=0.0) as server:
        policy = OpenAIPolicy("tiny", base_url=server.url, logprobs=True, max_concurrency=1)
        trajectories = turngym.rollout(
            "turngym/Corridor-v0", policy, num_episodes=8, group_size=4, num_envs=4,
            workers=0, env_kwargs=CORRIDOR_KWARGS, progress=False,
        )  # fmt: skip
    end = tokenizer.convert_tokens_to_ids("<|end|>")
    for turn in (turn for t in trajectories for turn in t.turns):
        assert turn.token_ids[-1] == end and len(turn.logprobs) == len(turn.token_ids)
        assert tokenizer.decode(turn.token_ids[:-1]) == turn.action
        assert turn.prompt_token_ids and turn.info["usage"]["completion_tokens"] == len(
            turn.token_ids
        )
    assert len({t.total_reward for t in trajectories}) > 1

    learner = Learner(config(tmp_path), credit_fn=episode_grpo)
    monkeypatch.setattr(learner, "rollout", lambda *args, **kwargs: trajectories)
    before = [p.detach().clone() for p in learner.model.parameters()]
    metrics = learner.step()
    assert math.isfinite(metrics["loss"])
    assert any(
        not torch.equal(a, b.detach())
        for a, b in zip(before, learner.model.parameters(), strict=True)
    )
