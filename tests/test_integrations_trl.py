"""turngym inside TRL: ``GRPOTrainer`` trains a tiny model on a turngym env with turn-level credit."""

from __future__ import annotations

import pytest

pytest.importorskip("trl", reason="needs the [trl] extra (pip install 'turngym[trl]')")

import torch  # noqa: E402

import turngym.credit as credit  # noqa: E402
from turngym.agents.tiny import tiny_model_dir  # noqa: E402

ENV = "turngym/Corridor-v0"
ENV_KWARGS = {"lengths": (2,), "max_turns": 5}


@pytest.fixture(scope="module")
def model_dir():
    # Half-expert warm-up: some episodes reach the exit, so outcomes differ within a group.
    return str(
        tiny_model_dir(
            env_ids=[ENV], env_kwargs=ENV_KWARGS, episodes=16, warmup_steps=40, expert_fraction=0.5
        )
    )


def _trainer(model_dir, tmp_path, method="gigpo", steps=2):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig

    from turngym.integrations.trl import TurngymGRPOTrainer, make_dataset

    config = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=6,
        max_steps=steps,
        learning_rate=5e-3,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        seed=0,
        temperature=1.0,
        beta=0.0,
        bf16=False,
    )
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    trainer = TurngymGRPOTrainer(
        model=model,
        processing_class=tokenizer,
        args=config,
        train_dataset=make_dataset(ENV, num_tasks=6, seed=0),
        env_id=ENV,
        env_kwargs=ENV_KWARGS,
        credit_method=method,
    )
    seen = []
    compute_loss = trainer._compute_loss

    def record(model, inputs):
        seen.append(
            {k: (v.detach().clone() if torch.is_tensor(v) else v) for k, v in inputs.items()}
        )
        return compute_loss(model, inputs)

    trainer._compute_loss = record
    generate = trainer._generate_and_score_completions
    batches = []

    def keep(inputs):
        output = generate(inputs)
        batches.append(([dict(x) for x in inputs], output))
        return output

    trainer._generate_and_score_completions = keep
    return trainer, seen, batches


def _by_hand(per_turn, counts_and_masks):
    """Turn k's advantage on each token of the k-th run of env_mask 1s, written out."""
    out = []
    for i, mask in enumerate(counts_and_masks):
        row, turn, inside = [], -1, False
        for m in mask:
            if m and not inside:
                turn += 1
            inside = bool(m)
            row.append(float(per_turn[i, turn]) if m else 0.0)
        out.append(row)
    return torch.tensor(out)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["gigpo", "salt"])
def test_grpo_trainer_trains_two_steps_with_turn_credit(model_dir, tmp_path, method):
    trainer, seen, batches = _trainer(model_dir, tmp_path, method)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    result = trainer.train()
    assert torch.isfinite(torch.tensor(result.training_loss))
    changed = [n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])]
    assert changed, "no weight moved in 2 GRPO steps"
    assert len(batches) == 2 and seen

    from turngym.integrations.trl import episodes_to_trajectories

    outcomes = [x["turngym_outcome"] for inputs, _ in batches for x in inputs]
    assert len(set(outcomes)) > 1, "no outcome variance: the test would not exercise credit"
    for inputs, output in batches:
        episodes = [x["turngym_episode"] for x in inputs]
        assert any(len(e["turns"]) > 1 for e in episodes), "multi-turn episodes expected"
        trajectories = episodes_to_trajectories(episodes, [x["turngym_outcome"] for x in inputs])
        per_turn = getattr(credit, method)(credit.TurnBatch.from_trajectories(trajectories))
        mask = (output["tool_mask"] * output["completion_mask"]).tolist()
        torch.testing.assert_close(
            output["advantages"].cpu(), _by_hand(per_turn, mask), rtol=0, atol=1e-6
        )
        # env tokens: 0 in the mask TRL's loss uses, and no advantage
        assert 0 in output["tool_mask"].flatten().tolist()
        assert (output["advantages"][output["tool_mask"] == 0] == 0).all()
        # the completion's action tokens are the sampled ones: decoding them gives the actions
        tokenizer = trainer.processing_class
        for row, episode in enumerate(episodes):
            ids = output["completion_ids"][row][
                output["tool_mask"][row].bool() & output["completion_mask"][row].bool()
            ].tolist()
            expected = sum(t["tokens"] for t in episode["turns"])
            assert len(ids) == expected
        del tokenizer
    # groups: the 4 generations of one prompt share a group id
    groups = [x["turngym_episode"]["group"] for x in batches[0][0]]
    assert groups[:4] == [groups[0]] * 4 and groups[4] != groups[0]


@pytest.mark.slow
def test_env_tokens_get_no_gradient(model_dir, tmp_path):
    trainer, seen, _ = _trainer(model_dir, tmp_path, steps=1)
    trainer.train()
    inputs = dict(seen[0])
    env = (inputs["tool_mask"] == 0) & (inputs["completion_mask"] == 1)
    assert env.any()
    loss = trainer._compute_loss(trainer.model, inputs)
    poisoned = dict(inputs)
    poisoned["advantages"] = inputs["advantages"].masked_fill(env, 1e6)
    assert torch.equal(trainer._compute_loss(trainer.model, poisoned), loss)
    acted = (inputs["tool_mask"] == 1) & (inputs["completion_mask"] == 1)
    poisoned["advantages"] = inputs["advantages"].masked_fill(acted, 1e6)
    assert not torch.equal(trainer._compute_loss(trainer.model, poisoned), loss)


def test_prompt_without_seed_and_bad_version_are_clear():
    from turngym.integrations.common import IntegrationVersionError, check_version
    from turngym.integrations.trl import _seed_of, seed_prompt

    assert _seed_of(seed_prompt(ENV, 12), 0) == 12
    assert _seed_of([{"role": "user", "content": seed_prompt(ENV, 3)}], 0) == 3
    with pytest.raises(ValueError, match="prompt 5 carries no task seed"):
        _seed_of("play the game", 5)
    with pytest.raises(IntegrationVersionError, match=r"trl 0\.19\.0.*>=1\.16,<1\.17"):
        check_version("trl", "1.16", "1.17", extra="trl", found="0.19.0")


def test_completion_that_cannot_be_split_names_the_row():
    from turngym.integrations.common import TurnSplitError, spread_over_runs

    mask = torch.tensor([[1, 1, 0, 1], [0, 0, 0, 0]])
    with pytest.raises(TurnSplitError, match="row 1"):
        spread_over_runs(torch.ones(2, 2), mask)
    with pytest.raises(TurnSplitError, match="row 0: its mask has 2 runs .* 3 turns"):
        spread_over_runs(
            torch.ones(2, 3), torch.tensor([[1, 0, 1, 0], [1, 1, 1, 1]]), expected_turns=[3, 1]
        )


def test_unknown_credit_method_is_a_clear_error():
    from turngym.integrations.trl import TurngymGRPOTrainer

    for bad in ("nope", "TurnBatch"):
        with pytest.raises(ValueError, match="unknown credit_method"):
            TurngymGRPOTrainer(credit_method=bad)


@pytest.mark.slow
def test_logs_say_what_turngym_optimises(model_dir, tmp_path):
    trainer, _, batches = _trainer(model_dir, tmp_path, steps=1)
    trainer.train()
    logged = next(h for h in trainer.state.log_history if "turngym/success_rate" in h)
    inputs, _ = batches[0]
    batch, per_turn = trainer.turn_advantages(inputs)
    values = per_turn[batch.mask]
    assert logged["turngym/turn_advantage_abs_mean"] == pytest.approx(float(values.abs().mean()))
    assert logged["turngym/turn_advantage_max"] == pytest.approx(float(values.max()))
    successes = [bool(x["turngym_success"]) for x in inputs]
    assert logged["turngym/success_rate"] == pytest.approx(sum(successes) / len(successes))
    assert 0.0 <= logged["turngym/zero_advantage_group_frac"] <= 1.0
    assert logged["turngym/episodes_over_context"] == 0.0


def test_zero_advantage_groups_are_counted():
    from turngym.integrations.trl_metrics import turn_metrics

    class Batch:  # two groups of two episodes; group 0 learns nothing
        mask = torch.tensor([[1, 1], [1, 0], [1, 1], [1, 0]], dtype=torch.bool)
        group_ids = torch.tensor([0, 0, 1, 1])

    per_turn = torch.tensor([[0.0, 0.0], [0.0, 9.0], [0.5, -0.5], [1.0, 0.0]])  # 9.0: padding
    inputs = [
        {"turngym_success": s, "turngym_outcome": float(s), "turngym_episode": {}}
        for s in (False, False, True, False)
    ]
    metrics = turn_metrics(inputs, Batch, per_turn)
    assert metrics["turngym/zero_advantage_group_frac"] == 0.5
    assert metrics["turngym/turn_advantage_max"] == 1.0  # padding is not a turn
    assert metrics["turngym/success_rate"] == 0.25 and metrics["turngym/outcome_mean"] == 0.25


@pytest.mark.slow
def test_an_episode_past_the_models_context_warns(model_dir, tmp_path):
    trainer, _, batches = _trainer(model_dir, tmp_path, steps=1)
    trainer.model.config.max_position_embeddings = 40  # every Corridor episode is longer
    with pytest.warns(RuntimeWarning, match="exceed the model's context of 40 positions"):
        trainer.train()
    logged = next(h for h in trainer.state.log_history if "turngym/episodes_over_context" in h)
    assert logged["turngym/episodes_over_context"] > 0
