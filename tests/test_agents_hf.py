"""HFPolicy on a tiny offline model: batched sampling, token ids and log-probs, rollouts."""

from __future__ import annotations

import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

import turngym  # noqa: E402
from helpers.tiny_models import CORRIDOR_KWARGS, corridor_model, untrained_model  # noqa: E402
from turngym.agents.hf import HFPolicy  # noqa: E402
from turngym.agents.logprobs import completion_logprobs  # noqa: E402
from turngym.policy import Conversation  # noqa: E402


@pytest.fixture(scope="module")
def policy() -> HFPolicy:
    return HFPolicy.from_pretrained(corridor_model(), max_new_tokens=6, seed=0, device="cpu")


def test_import_agents_is_light():
    code = "import sys, turngym, turngym.agents; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"], (
        "import turngym.agents must not import torch/transformers"
    )


def test_act_returns_generated_actions_matching_teacher_forcing(policy):
    batch = [
        Conversation(
            messages=[
                {"role": "system", "content": "You are in a corridor. The exit is to the east."},
                {"role": "user", "content": "You are in a corridor, 0 steps from the start."},
            ]
        ),
        Conversation(
            messages=[{"role": "user", "content": "hi"}]
        ),  # shorter: exercises left padding
    ]
    actions = policy.act(batch)
    assert len(actions) == 2
    for action in actions:
        assert isinstance(action, turngym.GeneratedAction)
        assert 1 <= len(action.token_ids) <= 6 and len(action.logprobs) == len(action.token_ids)
        assert all(lp <= 0 for lp in action.logprobs)
        assert action.text == policy.tokenizer.decode(action.token_ids, skip_special_tokens=True)
    logprobs, mask = completion_logprobs(
        policy.model,
        [a.prompt_token_ids for a in actions],
        [a.token_ids for a in actions],
        pad_id=policy.tokenizer.pad_token_id,
    )
    for row, action in enumerate(actions):
        recomputed = logprobs[row, logprobs.shape[1] - len(action.token_ids) :]
        assert torch.allclose(recomputed, torch.tensor(action.logprobs), atol=1e-4)
        assert int(mask[row].sum()) == len(action.token_ids)


def test_greedy_is_deterministic_and_seeded_sampling_reproducible():
    path = corridor_model()
    batch = [Conversation(messages=[{"role": "user", "content": "You are in a corridor."}])] * 3
    greedy = HFPolicy.from_pretrained(path, temperature=0, max_new_tokens=4, device="cpu")
    assert len({a.text for a in greedy.act(batch)}) == 1
    first = HFPolicy.from_pretrained(path, max_new_tokens=4, seed=7, device="cpu").act(batch)
    second = HFPolicy.from_pretrained(path, max_new_tokens=4, seed=7, device="cpu").act(batch)
    assert [a.token_ids for a in first] == [a.token_ids for a in second]


def test_rollout_records_tokens_and_warm_model_acts_validly(policy):
    trajectories = turngym.rollout(
        "turngym/Corridor-v0",
        policy,
        num_episodes=8,
        group_size=4,
        env_kwargs=CORRIDOR_KWARGS,
        progress=False,
    )
    turns = [turn for t in trajectories for turn in t.turns]
    assert all(turn.token_ids and turn.prompt_token_ids and turn.logprobs for turn in turns)
    assert sum(turn.valid_action for turn in turns) / len(turns) > 0.7


def test_untrained_model_garbage_goes_to_env_as_is():
    policy = HFPolicy.from_pretrained(untrained_model(), max_new_tokens=8, seed=0, device="cpu")
    trajectories = turngym.rollout(
        "turngym/Corridor-v0", policy, num_episodes=4, env_kwargs=CORRIDOR_KWARGS, progress=False
    )
    turns = [turn for t in trajectories for turn in t.turns]
    assert any(not turn.valid_action for turn in turns)
    assert all(turn.reward == pytest.approx(-0.1) for turn in turns if not turn.valid_action)


def test_bad_arguments_raise():
    from turngym.error import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="top_p"):
        HFPolicy.from_pretrained(corridor_model(), top_p=0.0, device="cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_generation():
    policy = HFPolicy.from_pretrained(corridor_model(), max_new_tokens=4, seed=0)
    assert policy.device.type == "cuda"
    action = policy.act([Conversation(messages=[{"role": "user", "content": "hi"}])])[0]
    assert action.token_ids
