"""The learner and `turngym bench` keep one EnvPool per run (workers' PIDs unchanged across
iterations and policies); `turngym bench --policy-kwargs` reaches the OpenAI request body."""

from __future__ import annotations

import json

import pytest

import turngym
from helpers.openai_server import ChatServer
from turngym.agents.bench import run_bench
from turngym.cli import main


def _spy_rollouts(monkeypatch) -> list[list[int]]:
    """Records the worker pids of the pool every turngym.rollout call ran on."""
    seen: list[list[int]] = []
    real = turngym.rollout

    def spy(*args, **kwargs):
        assert kwargs.get("pool") is not None, "the caller did not pass its kept pool"
        seen.append(kwargs["pool"].pids)
        return real(*args, **kwargs)

    monkeypatch.setattr(turngym, "rollout", spy)
    return seen


def test_bench_runs_every_policy_of_an_env_on_one_pool(monkeypatch, tmp_path):
    seen = _spy_rollouts(monkeypatch)
    report = run_bench(["turngym/Corridor-v0"], ["random", "expert"], 4, num_envs=2, progress=False)
    assert len(report["results"]) == 2 and not report["skipped"]
    assert len(seen) == 2 and seen[0] == seen[1] and len(set(seen[0])) == 2


def test_learner_keeps_its_workers_across_iterations(monkeypatch, tmp_path):
    pytest.importorskip("torch")
    from test_learner import config, episode_grpo

    from turngym.agents.learner import Learner

    seen = _spy_rollouts(monkeypatch)
    learner = Learner(config(tmp_path, num_envs=2, steps=2), credit_fn=episode_grpo)
    learner.train()
    assert len(seen) == 2 and seen[0] == seen[1] and len(set(seen[0])) == 2
    assert learner.env_pool().pids != seen[0]  # train() closed the pool; a new one starts


def test_cli_policy_kwargs_reach_the_request_body(tmp_path):
    kwargs = {"temperature": 0.3, "seed": 7, "max_tokens": 9, "extra_body": {"top_k": 3}}
    with ChatServer() as server:
        code = main(
            [
                "bench", "--env", "turngym/Corridor-v0", "--policy", "openai:tiny",
                "--base-url", server.url, "--episodes", "1", "--no-progress",
                "--out", str(tmp_path), "--policy-kwargs", json.dumps(kwargs),
                "--num-envs", "2", "--workers", "0", "--mode", "async",
            ]
        )  # fmt: skip
    assert code == 0
    bodies = [request["body"] for request in server.requests]
    assert bodies and all(b["temperature"] == 0.3 and b["top_k"] == 3 for b in bodies)
    assert [b["seed"] for b in bodies] == list(range(7, 7 + len(bodies)))
    assert all(b["max_tokens"] == 9 for b in bodies)


def test_cli_rejects_bad_policy_kwargs(tmp_path, capsys):
    argv = ["bench", "--env", "turngym/Corridor-v0", "--episodes", "1", "--out", str(tmp_path)]
    assert main([*argv, "--policy", "openai:tiny", "--policy-kwargs", "{oops"]) == 2
    assert "--policy-kwargs is not JSON" in capsys.readouterr().err
    report = run_bench(
        ["turngym/Corridor-v0"], ["openai:tiny"], 1, progress=False,
        policy_kwargs={"temprature": 0.3},
    )  # fmt: skip
    assert "temprature" in report["skipped"][0]["reason"]


def test_hf_policy_kwargs_reach_the_policy():
    pytest.importorskip("torch")
    from helpers.tiny_models import corridor_model
    from turngym.agents.bench import make_policy

    policy = make_policy(
        f"hf:{corridor_model()}", "turngym/Corridor-v0", policy_kwargs={"temperature": 0.25}
    )
    assert policy.sampling.temperature == 0.25


def test_learner_env_workers_zero_keeps_every_env_in_process(tmp_path):
    pytest.importorskip("torch")
    import os

    from test_learner import config

    from turngym.agents.learner import Learner

    learner = Learner(config(tmp_path, num_envs=4, env_workers=0))
    try:
        assert learner.env_pool().pids == [os.getpid()] and learner.env_pool().num_envs == 4
        assert len(learner.rollout()) == 8
    finally:
        learner.close()
    with pytest.raises(ValueError, match="env_workers"):
        config(tmp_path, env_workers=-1)
