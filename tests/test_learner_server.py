"""The learner trains on rollouts served by a fake vLLM and a fake SGLang server that sample from
the tiny model and return its real logprobs: the PPO ratio is taken against those recorded
logprobs, and SGLang's disk weight sync keeps the server on the learner's weights."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402
from test_learner import config, episode_grpo  # noqa: E402

from helpers.openai_server import ChatServer  # noqa: E402
from helpers.tiny_models import corridor_model  # noqa: E402
from turngym.agents.hf import HFPolicy  # noqa: E402
from turngym.agents.learner import Learner  # noqa: E402
from turngym.agents.openai_compat import OpenAIPolicy  # noqa: E402
from turngym.agents.weight_sync import SGLangDiskSync  # noqa: E402
from turngym.error import PolicyError  # noqa: E402
from turngym.policy import Conversation  # noqa: E402


class ModelServer:
    """The tiny model behind a chat server: samples, returns its own logprobs and prompt ids,
    and reloads its weights on SGLang's ``POST /update_weights_from_disk``.

    ``logprob_shift`` adds a constant to every reported logprob (a server that lies)."""

    def __init__(self, mode: str, logprob_shift: float = 0.0) -> None:
        self.policy = HFPolicy.from_pretrained(
            corridor_model(), device="cpu", max_new_tokens=4, seed=0
        )
        self.shift = logprob_shift
        route = Route("/update_weights_from_disk", self._reload, methods=["POST"])
        self.server = ChatServer(mode=mode, latency=0.0, generate=self._generate, routes=[route])

    def _generate(self, messages):
        action = self.policy.act([Conversation(messages=messages)])[0]
        values = [value + self.shift for value in action.logprobs]
        return action.text, action.token_ids, values, action.prompt_token_ids

    async def _reload(self, request: Request):
        from transformers import AutoModelForCausalLM

        path = (await request.json())["model_path"]
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        self.policy.model = model
        return JSONResponse({"success": True, "message": "Succeeded to update model weights."})

    def __enter__(self) -> ModelServer:
        self.server.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.__exit__(*exc_info)


def _learner(tmp_path, url: str, **kwargs) -> Learner:
    learner_config = config(tmp_path, **kwargs.pop("config", {}))
    policy = OpenAIPolicy.from_learner_config(
        learner_config, base_url=url, model="tiny", max_concurrency=1
    )
    return Learner(learner_config, credit_fn=episode_grpo, policy=policy, **kwargs)


@pytest.mark.parametrize("mode", ["vllm", "sglang"])
def test_learner_step_on_server_rollouts_uses_the_recorded_logprobs(tmp_path, mode):
    with ModelServer(mode) as served:
        learner = _learner(tmp_path, served.server.url)
        before = [p.detach().clone() for p in learner.model.parameters()]
        metrics = learner.step()
        bodies = [r["body"] for r in served.server.requests]
    assert len(bodies) >= 8 and all(b["logprobs"] is True for b in bodies)
    # the server's logprobs are the tiny model's: the ratio starts at 1 on every token
    assert metrics["recorded_logprob_gap"] < 1e-4
    assert math.isfinite(metrics["loss"]) and metrics["action_tokens"] > 0
    assert any(
        not torch.equal(a, b.detach())
        for a, b in zip(before, learner.model.parameters(), strict=True)
    )


def test_ratio_is_taken_against_what_the_server_reported(tmp_path):
    # a server that reports every logprob 1 nat too high: the ratio exp(logp - logp_old) is e^-1
    with ModelServer("sglang", logprob_shift=1.0) as served:
        metrics = _learner(tmp_path, served.server.url).step()
    assert metrics["recorded_logprob_gap"] == pytest.approx(1.0, abs=1e-4)
    with ModelServer("sglang", logprob_shift=1.0) as served:
        recomputed = _learner(
            tmp_path / "b", served.server.url, config={"old_logprobs": "recomputed"}
        ).step()
    assert "recorded_logprob_gap" not in recomputed and recomputed["clip_frac"] == 0.0


def test_sglang_disk_sync_keeps_the_server_on_the_learners_weights(tmp_path):
    gaps = {}
    for synced in (True, False):
        with ModelServer("sglang") as served:
            sync = SGLangDiskSync(served.server.url, tmp_path / f"weights-{synced}")
            learner = _learner(
                tmp_path / str(synced),
                served.server.url,
                config={"steps": 2},
                weight_sync=sync if synced else None,
            )
            first = learner.step()
            second = learner.step()
            if synced:
                assert sync.syncs == 2 and first["weight_sync_seconds"] >= 0
                served_params = dict(served.policy.model.named_parameters())
                for name, parameter in learner.model.named_parameters():
                    assert torch.equal(parameter.detach(), served_params[name].detach()), name
            gaps[synced] = second["recorded_logprob_gap"]
    # a stale server's logprobs drift from the updated learner's; a synced one's do not
    assert gaps[True] < 1e-4 < gaps[False]


def test_missing_prompt_ids_are_named(tmp_path):
    with ModelServer("sglang") as served:
        learner = _learner(tmp_path, served.server.url)
        learner.rollout_policy.extra_body["return_prompt_token_ids"] = False
        with pytest.warns(RuntimeWarning, match="no prompt token ids"):
            with pytest.raises(PolicyError, match="no prompt token ids.*return_prompt_token_ids"):
                learner.step()


def test_missing_recorded_logprobs_are_named(tmp_path):
    with ModelServer("sglang") as served:
        learner = _learner(tmp_path, served.server.url)
        learner.rollout_policy.extra_body["logprobs"] = False  # ids without logprobs
        with pytest.warns(RuntimeWarning, match="no logprobs"):
            with pytest.raises(PolicyError, match="no recorded logprobs.*old_logprobs"):
                learner.step()
