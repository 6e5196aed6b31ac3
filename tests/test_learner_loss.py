"""Loss aggregation, clipping statistics, micro-batching and mixed precision of the learner.

Expected numbers are computed by hand in the comments; the learner-level tests use plain SGD
(lr 1) in place of AdamW so that a parameter's change *is* minus its gradient.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from helpers.tiny_models import CORRIDOR_KWARGS, corridor_model  # noqa: E402
from turngym.agents.learner import Learner  # noqa: E402
from turngym.agents.learner_config import LOSS_AGG_MODES, LearnerConfig  # noqa: E402
from turngym.agents.learner_loss import (  # noqa: E402
    aggregate_loss,
    clipped_surrogate,
    micro_batches,
    padding_fraction,
    row_weights,
)
from turngym.agents.logprobs import completion_logprobs  # noqa: E402


def config(tmp_path, name="run", **overrides) -> LearnerConfig:
    fields = dict(
        model=str(corridor_model()),
        env_kwargs=CORRIDOR_KWARGS,
        output_dir=str(tmp_path / name),
        steps=1,
        groups_per_step=2,
        group_size=4,
        max_new_tokens=4,
        learning_rate=1e-6,
        micro_batch_size=64,
        max_grad_norm=0.0,
        device="cpu",
        bf16=False,
    )
    fields.update(overrides)
    return LearnerConfig(**fields)


# Two rows: row 0 has 1 action token with loss 1; row 1 has 3 tokens with losses 2, 4, 6.
LOSS = torch.tensor([[1.0, 0.0, 0.0], [2.0, 4.0, 6.0]])
MASK = torch.tensor([[True, False, False], [True, True, True]])
EXPECTED = {
    "token-mean": 13 / 4,  # (1 + 2 + 4 + 6) / 4 tokens = 3.25
    "seq-mean-token-sum": 13 / 2,  # (1 + 12) / 2 rows = 6.5
    "seq-mean-token-mean": (1 / 1 + 12 / 3) / 2,  # (1 + 4) / 2 = 2.5
    "seq-mean-token-sum-norm": 13 / (2 * 4),  # 13 / (2 rows x max_new_tokens 4) = 1.625
}


@pytest.mark.parametrize("mode", LOSS_AGG_MODES)
def test_each_aggregation_mode_matches_the_hand_computed_number(mode):
    assert float(aggregate_loss(LOSS, MASK, mode, max_new_tokens=4)) == pytest.approx(
        EXPECTED[mode]
    )


# Three turns of two episodes: episode 0 = rows 0 and 1 (4 tokens, loss sum 13), episode 1 =
# row 2 (2 tokens with losses 3 and 5, sum 8).
LOSS3 = torch.tensor([[1.0, 0.0, 0.0], [2.0, 4.0, 6.0], [3.0, 5.0, 0.0]])
MASK3 = torch.tensor([[True, False, False], [True, True, True], [True, True, False]])
EXPECTED3 = {
    "token-mean": 21 / 6,  # 21 / 6 tokens = 3.5
    "seq-mean-token-sum": 21 / 2,  # (13 + 8) / 2 episodes = 10.5
    "seq-mean-token-mean": (13 / 4 + 8 / 2) / 2,  # (3.25 + 4) / 2 = 3.625
    "seq-mean-token-sum-norm": 21 / (2 * 4),  # 21 / (2 episodes x 4) = 2.625
}


@pytest.mark.parametrize("mode", LOSS_AGG_MODES)
def test_a_sequence_is_an_episode_of_several_turns(mode):
    value = aggregate_loss(LOSS3, MASK3, mode, max_new_tokens=4, sequences=[0, 0, 1])
    assert float(value) == pytest.approx(EXPECTED3[mode])


def test_aggregation_weights_rows_and_rejects_unknown_modes():
    # Row weights times each row's token sum: seq-mean-token-mean gives 1/(R n_r) = 1/2, 1/6.
    assert row_weights([1, 3], "seq-mean-token-mean", 4) == pytest.approx([0.5, 1 / 6])
    assert row_weights([], "token-mean", 4) == []
    with pytest.raises(ValueError, match="loss_agg_mode='mean'"):
        row_weights([1], "mean", 4)


def test_clip_fraction_counts_only_tokens_the_clip_decided():
    # ratio 1.5, A>0: clipped (gradient 0). ratio 1.5, A<0: the unclipped -A r is larger -> not.
    # ratio 0.5, A>0: not. ratio 0.5, A<0: clipped. ratio 1.0: not. True fraction 2/5 = 0.4;
    # counting every ratio outside [0.8, 1.2] (the old metric) would say 4/5 = 0.8.
    ratio = torch.tensor([1.5, 1.5, 0.5, 0.5, 1.0])
    advantage = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0])
    loss, clipped = clipped_surrogate(ratio, advantage, 0.2, 0.2)
    assert clipped.tolist() == [True, False, False, True, False]
    assert float(clipped.float().mean()) == pytest.approx(0.4)
    # loss = max(-A r, -A clip(r)): -1.2, 1.5, -0.5, 0.8, -1.0
    assert loss.tolist() == pytest.approx([-1.2, 1.5, -0.5, 0.8, -1.0])
    # Clip-higher: r = 1.25 with eps_high 0.28 is inside the range, so not clipped.
    _, clipped = clipped_surrogate(torch.tensor([1.25]), torch.tensor([1.0]), 0.2, 0.28)
    assert not bool(clipped.any())


def test_length_sorted_micro_batches_cut_padding():
    lengths = [10, 100, 12, 90, 11, 95]
    assert micro_batches(lengths, 2) == [[0, 4], [2, 3], [5, 1]]
    # Unsorted: pairs (10,100) (12,90) (11,95) pad to 200 + 180 + 190 = 570 for 318 tokens.
    assert padding_fraction(lengths, micro_batches(lengths, 2, sort=False)) == pytest.approx(
        1 - 318 / 570
    )
    # Sorted: (10,11) (12,90) (95,100) pad to 22 + 180 + 200 = 402.
    assert padding_fraction(lengths, micro_batches(lengths, 2)) == pytest.approx(1 - 318 / 402)


def _fixed_batch(tmp_path):
    """One rollout's rows (prompts, actions, advantages) from the fp32 learner."""
    learner = Learner(config(tmp_path, "source"), credit_fn=_unit_credit)
    trajectories = learner.rollout(seed=0)
    advantages = learner.advantages(trajectories)
    rows = [
        (turn.prompt_token_ids, turn.token_ids, float(advantages[i, t]), i)
        for i, trajectory in enumerate(trajectories)
        for t, turn in enumerate(trajectory.turns)
    ]
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows]


def _unit_credit(trajectories):
    """+1 for successful episodes, -1 otherwise, on every turn (a fixed, simple signal)."""
    advantages = torch.zeros(len(trajectories), max(len(t.turns) for t in trajectories))
    for i, trajectory in enumerate(trajectories):
        advantages[i, : len(trajectory.turns)] = 1.0 if trajectory.success else -1.0
    return advantages


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean"])
def test_accumulated_micro_batches_give_the_gradient_of_the_aggregated_loss(tmp_path, mode):
    prompts, actions, advantages, episodes = _fixed_batch(tmp_path)
    assert len(set(episodes)) < len(episodes), "some episode has several turns"
    # Expected: the gradient of aggregate_loss(-A * logp) over the whole batch at ratio 1.
    reference = Learner(config(tmp_path, "ref"), credit_fn=_unit_credit)
    logp, mask = completion_logprobs(
        reference.model, prompts, actions, pad_id=reference.tokenizer.pad_token_id
    )
    loss = aggregate_loss(-torch.tensor(advantages)[:, None] * logp, mask, mode, 4, episodes)
    loss.backward()
    expected = {n: -p.grad.clone() for n, p in reference.model.named_parameters()}
    # The learner, one micro-batch of 3 rows at a time, accumulated into one SGD step.
    learner = Learner(
        config(tmp_path, "micro", micro_batch_size=3, loss_agg_mode=mode), credit_fn=_unit_credit
    )
    learner.optimizer = torch.optim.SGD(learner.model.parameters(), lr=1.0)
    before = {n: p.detach().clone() for n, p in learner.model.named_parameters()}
    stats = learner._update(prompts, actions, advantages, episodes)
    assert stats["optimizer_steps"] == 1 and stats["clip_frac"] == 0.0
    for name, parameter in learner.model.named_parameters():
        torch.testing.assert_close(
            parameter.detach() - before[name], expected[name], atol=1e-6, rtol=1e-4
        )


def test_grad_norm_is_the_mean_over_every_optimizer_step(tmp_path, monkeypatch):
    prompts, actions, advantages, _ = _fixed_batch(tmp_path)
    learner = Learner(
        config(tmp_path, "norms", micro_batch_size=3, gradient_accumulation_steps=1, ppo_epochs=2),
        credit_fn=_unit_credit,
    )
    recorded = []
    original = torch.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm, *args, **kwargs):
        # Independent of the learner: the L2 norm of all gradients before clipping.
        parameters = list(parameters)
        norm = torch.sqrt(
            sum((p.grad.double() ** 2).sum() for p in parameters if p.grad is not None)
        )
        recorded.append(float(norm))
        return original(parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    stats = learner._update(prompts, actions, advantages)
    chunks = -(-len(prompts) // 3)
    assert stats["optimizer_steps"] == len(recorded) == 2 * chunks
    assert len(set(recorded)) > 1, "steps with equal norms could not tell mean from last"
    assert stats["grad_norm"] == pytest.approx(sum(recorded) / len(recorded), rel=1e-5)
    assert stats["grad_norm_max"] == pytest.approx(max(recorded), rel=1e-5)
    assert 0.0 <= stats["clip_frac"] <= 1.0


def _changes(learner, prompts, actions, advantages):
    before = {n: p.detach().clone() for n, p in learner.model.named_parameters()}
    learner._update(prompts, actions, advantages)
    return {n: (p.detach() - before[n]).float() for n, p in learner.model.named_parameters()}


def test_bf16_autocast_at_lr_1e6_changes_weights_like_fp32(tmp_path):
    """fp32 master weights + bf16 autocast compute (CPU autocast: the CUDA code path)."""
    prompts, actions, advantages, _ = _fixed_batch(tmp_path)
    fp32 = Learner(config(tmp_path, "fp32"), credit_fn=_unit_credit)
    bf16 = Learner(config(tmp_path, "bf16", bf16=True), credit_fn=_unit_credit)
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters()), "master weights"
    with bf16.autocast():  # the bf16 path really computes in bf16
        logp, _ = bf16._chunk_logprobs(bf16.model, prompts, actions, [0])
        hidden = bf16.model.model.embed_tokens(torch.tensor([[1]]))
        assert bf16.model.lm_head(hidden).dtype == torch.bfloat16
    delta_fp32 = _changes(fp32, prompts, actions, advantages)
    delta_bf16 = _changes(bf16, prompts, actions, advantages)
    changed_fp32 = sum(int((d != 0).sum()) for d in delta_fp32.values())
    changed_bf16 = sum(int((d != 0).sum()) for d in delta_bf16.values())
    total = sum(d.numel() for d in delta_fp32.values())
    assert changed_fp32 / total > 0.9
    assert changed_bf16 / total > 0.9 * changed_fp32 / total, (changed_bf16, changed_fp32)
    # Relative change of the whole weight vector: equal within a few percent, same direction.
    norm_fp32 = torch.sqrt(sum((d**2).sum() for d in delta_fp32.values()))
    norm_bf16 = torch.sqrt(sum((d**2).sum() for d in delta_bf16.values()))
    assert float(norm_bf16 / norm_fp32) == pytest.approx(1.0, abs=0.1)
    cosine = sum((delta_fp32[n] * delta_bf16[n]).sum() for n in delta_fp32) / (
        norm_fp32 * norm_bf16
    )
    assert float(cosine) > 0.8

    # What the old pure-bf16 default did: AdamW on bf16 weights loses most of these updates.
    pure = Learner(config(tmp_path, "pure"), credit_fn=_unit_credit)
    pure.model.to(torch.bfloat16)
    pure.optimizer = torch.optim.AdamW(pure.model.parameters(), lr=1e-6, weight_decay=0.0)
    delta_pure = _changes(pure, prompts, actions, advantages)
    changed_pure = sum(int((d != 0).sum()) for d in delta_pure.values())
    assert changed_pure / total < 0.5 * changed_bf16 / total
