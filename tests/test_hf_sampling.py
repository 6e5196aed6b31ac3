"""HFPolicy's sampling distribution: one explicit SamplingConfig, logprobs the learner reproduces.

The sampling processors are checked against transformers' own logits processors; the recorded
log-probs of sampled tokens against the learner's teacher-forced forward (float32, 1e-4), with a
model whose *saved* generation config sets a repetition penalty.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from helpers.tiny_models import corridor_model, untrained_model  # noqa: E402
from turngym.agents.hf import HFPolicy  # noqa: E402
from turngym.agents.logprobs import completion_logprobs  # noqa: E402
from turngym.agents.sampling import (  # noqa: E402
    SamplingConfig,
    UnsupportedGenerationConfig,
    context_presence,
    process_logits,
    teacher_forced_counts,
    teacher_forced_presence,
)
from turngym.policy import Conversation  # noqa: E402

SYSTEM = "You are in a corridor. The exit is to the east or the west; walk to it."


def conversations(count: int) -> list[Conversation]:
    """Prompts of different lengths (left padding) with repeated tokens (repetition penalty)."""
    out = []
    for i in range(count):
        messages = [{"role": "system", "content": SYSTEM}]
        messages.append(
            {"role": "user", "content": f"You are in a corridor, {i} steps from the start."}
        )
        for _ in range(i % 3):
            messages += [
                {"role": "assistant", "content": "go east"},
                {"role": "user", "content": "You walk east. You are in a corridor."},
            ]
        out.append(Conversation(messages=messages, admissible_actions=["go east", "go west"]))
    return out


def recorded_vs_training(
    policy: HFPolicy, actions, sampling: SamplingConfig | None
) -> torch.Tensor:
    """|recorded - teacher-forced| log-prob of every sampled token."""
    with torch.no_grad():
        logprobs, mask = completion_logprobs(
            policy.model,
            [a.prompt_token_ids for a in actions],
            [a.token_ids for a in actions],
            pad_id=policy.tokenizer.pad_token_id,
            sampling=sampling,
        )
    diffs = []
    for row, action in enumerate(actions):
        assert int(mask[row].sum()) == len(action.token_ids)
        training = logprobs[row, logprobs.shape[1] - len(action.token_ids) :]
        diffs.append((training - torch.tensor(action.logprobs)).abs())
    return torch.cat(diffs)


@pytest.fixture(scope="module")
def penalised_model(tmp_path_factory) -> Path:
    """The Corridor tiny model saved with a generation config that sets a repetition penalty."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tmp_path_factory.mktemp("penalised")
    model = AutoModelForCausalLM.from_pretrained(corridor_model())
    model.generation_config.do_sample = True
    model.generation_config.repetition_penalty = 1.3
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(corridor_model()).save_pretrained(path)
    return path


def test_saved_generation_config_is_not_applied_silently(penalised_model):
    with pytest.warns(UserWarning, match="repetition_penalty"):
        policy = HFPolicy.from_pretrained(penalised_model, max_new_tokens=8, seed=0, device="cpu")
    assert policy.sampling == SamplingConfig()
    actions = policy.act(conversations(12))
    # The recorded log-probs are those of plain softmax sampling: the saved penalty did not leak.
    assert float(recorded_vs_training(policy, actions, policy.sampling).max()) < 1e-4
    # The model's own generation config is untouched after generate.
    assert policy.model.generation_config.repetition_penalty == 1.3


def test_recorded_logprobs_equal_training_logprobs_with_a_repetition_penalty(penalised_model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # adopting the saved config explicitly warns about nothing
        policy = HFPolicy.from_pretrained(
            penalised_model, sampling="model", max_new_tokens=8, seed=0, device="cpu"
        )
    assert policy.sampling == SamplingConfig(repetition_penalty=1.3)
    actions = policy.act(conversations(12))
    assert sum(len(a.token_ids) for a in actions) >= 24
    assert float(recorded_vs_training(policy, actions, policy.sampling).max()) < 1e-4
    # The check can fail: the same tokens scored without the penalty are far off.
    assert float(recorded_vs_training(policy, actions, None).max()) > 1e-2


@pytest.mark.parametrize(
    "sampling",
    [
        SamplingConfig(temperature=0.7, top_p=0.9, top_k=20, min_p=0.05, repetition_penalty=1.3),
        SamplingConfig(temperature=1.3, top_k=3),
        SamplingConfig(temperature=0, repetition_penalty=1.2),
        SamplingConfig(temperature=0.9, frequency_penalty=0.8, presence_penalty=0.5, top_p=0.95),
    ],
    ids=["all", "topk", "greedy", "frequency-presence"],
)
def test_truncated_and_tempered_sampling_is_reproduced(sampling):
    # The untrained model writes long repetitive garbage: the penalties bite on every token.
    policy = HFPolicy.from_pretrained(
        untrained_model(), sampling=sampling, max_new_tokens=8, seed=1, device="cpu"
    )
    actions = policy.act(conversations(8))
    assert sum(len(a.token_ids) for a in actions) > 40
    assert float(recorded_vs_training(policy, actions, sampling).max()) < 1e-4
    if sampling.counts_generated or sampling.repetition_penalty != 1:
        plain = SamplingConfig(temperature=sampling.temperature or 1.0)
        assert float(recorded_vs_training(policy, actions, plain).max()) > 1e-2


def test_frequency_and_presence_penalties_by_hand():
    # Completion [3, 3, 1] after a prompt: position 0 saw nothing generated, position 1 saw one
    # 3, position 2 saw two 3s. Row 1 has a 2-token completion (its first column is prompt).
    targets = torch.tensor([[3, 3, 1], [9, 2, 2]])
    mask = torch.tensor([[True, True, True], [False, True, True]])
    counts = teacher_forced_counts(targets, mask, vocab=10)
    assert counts[0, 0].sum() == 0 and counts[0, 1, 3] == 1 and counts[0, 2, 3] == 2
    assert counts[1, 1].sum() == 0 and counts[1, 2, 2] == 1 and counts[1, 2, 9] == 0
    config = SamplingConfig(frequency_penalty=0.5, presence_penalty=0.25)
    logits = torch.zeros(10)
    scores = process_logits(logits, config, counts=counts[0, 2])
    # Token 3, generated twice: 0 - 0.5 * 2 - 0.25 = -1.25; others untouched.
    assert scores[3] == pytest.approx(-1.25) and scores[0] == 0 and scores[1] == 0


def test_unreproducible_generation_settings_are_refused():
    from transformers import GenerationConfig

    with pytest.raises(UnsupportedGenerationConfig, match="no_repeat_ngram_size=3"):
        SamplingConfig.from_generation_config(
            GenerationConfig(do_sample=True, no_repeat_ngram_size=3)
        )
    with pytest.raises(UnsupportedGenerationConfig, match="num_beams"):
        SamplingConfig.from_generation_config(GenerationConfig(num_beams=4))
    adopted = SamplingConfig.from_generation_config(
        GenerationConfig(do_sample=True, temperature=0.7, top_p=0.8, top_k=20)
    )
    assert adopted == SamplingConfig(temperature=0.7, top_p=0.8, top_k=20)
    assert SamplingConfig.from_generation_config(GenerationConfig()).greedy
    with pytest.raises(ValueError, match="top_p"):
        SamplingConfig(top_p=0)
    with pytest.raises(ValueError, match="sampling= or the shortcut"):
        HFPolicy.from_pretrained(
            corridor_model(), sampling=SamplingConfig(), temperature=0.5, device="cpu"
        )


def test_process_logits_matches_transformers_processors():
    from transformers.generation.logits_process import (
        MinPLogitsWarper,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 64, generator=generator) * 3
    context = torch.randint(64, (6, 9), generator=generator)
    expected = logits.clone()
    for processor in (
        RepetitionPenaltyLogitsProcessor(1.4),
        TemperatureLogitsWarper(0.8),
        TopKLogitsWarper(20),
        TopPLogitsWarper(0.85),
        MinPLogitsWarper(0.02),
    ):
        expected = processor(context, expected)
    config = SamplingConfig(
        temperature=0.8, top_k=20, top_p=0.85, min_p=0.02, repetition_penalty=1.4
    )
    presence = context_presence(context, torch.ones_like(context, dtype=torch.bool), 64)
    ours = process_logits(logits, config, penalized=presence)
    assert torch.equal(torch.isinf(ours), torch.isinf(expected))
    assert 0 < int(torch.isinf(ours).sum()) < ours.numel()  # the cuts did cut, not everything
    finite = ~torch.isinf(ours)
    assert torch.allclose(ours[finite], expected[finite], atol=1e-6)


def test_scored_tokens_stay_in_the_support():
    logits = torch.tensor([[4.0, 3.0, -2.0, -3.0]])
    config = SamplingConfig(top_k=2)
    assert torch.isinf(process_logits(logits, config)[0, 3])
    kept = process_logits(logits, config, keep=torch.tensor([3]))
    # Token 3 fell out of the top-2 but is the one scored: it keeps a finite log-prob.
    assert torch.isfinite(kept[0, 3]) and torch.isinf(kept[0, 2])


def test_teacher_forced_presence_is_the_context_of_each_token():
    # Row 0: pad, pad, prompt [5, 6], completion [6, 7]; row 1: prompt [1, 2, 3], completion [5].
    input_ids = torch.tensor([[0, 5, 6, 6, 7], [1, 2, 3, 9, 5]])
    attention_mask = torch.tensor([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1]])
    presence = teacher_forced_presence(input_ids, attention_mask, width=2, vocab=10)

    def tokens(row, column):
        return presence[row, column].nonzero().flatten().tolist()

    assert tokens(0, 0) == [5, 6]  # before the first completion token (column 3)
    assert tokens(0, 1) == [5, 6]  # column 4: 5, 6, 6 — the pad (0) never counts
    assert tokens(1, 0) == [1, 2, 3]
    assert tokens(1, 1) == [1, 2, 3, 9]


def test_bf16_model_gets_float32_log_softmax():
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(corridor_model(), dtype=torch.bfloat16)
    prompts, completions = [[3, 4, 5, 6]], [[7, 8, 9]]
    logprobs, _ = completion_logprobs(model, prompts, completions, pad_id=0, temperature=0.7)
    assert logprobs.dtype == torch.float32
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[3, 4, 5, 6, 7, 8, 9]])).logits[0, 3:6]
    assert logits.dtype == torch.bfloat16
    targets = torch.tensor([7, 8, 9])
    fp32 = torch.log_softmax(logits.float() / 0.7, -1)[torch.arange(3), targets]
    bf16 = torch.log_softmax(logits / 0.7, -1)[torch.arange(3), targets].float()
    assert torch.allclose(logprobs[0], fp32, atol=1e-6)
    assert not torch.allclose(fp32, bf16, atol=1e-4)  # bf16 arithmetic would have been off


def test_batches_are_split_padded_and_kept_in_order():
    path = corridor_model()
    batch = conversations(7)
    one = HFPolicy.from_pretrained(path, temperature=0, max_new_tokens=6, max_batch=1, device="cpu")
    many = HFPolicy.from_pretrained(
        path, temperature=0, max_new_tokens=6, max_batch=3, device="cpu"
    )
    calls = []
    generate = many.model.generate
    many.model.generate = lambda **kw: calls.append(kw["input_ids"].shape[0]) or generate(**kw)
    first, second = one.act(batch), many.act(batch)
    assert calls == [3, 3, 1]
    for conversation, a, b in zip(batch, first, second, strict=True):
        assert a.prompt_token_ids == b.prompt_token_ids == many.prompt_ids(conversation)
        assert a.token_ids == b.token_ids  # greedy: the batch padding changes nothing
        assert torch.allclose(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-4)


def test_logprobs_can_be_skipped_and_seeding_leaves_the_global_rng_alone():
    path = corridor_model()
    policy = HFPolicy.from_pretrained(
        path, max_new_tokens=4, seed=3, return_logprobs=False, device="cpu"
    )
    state = torch.get_rng_state()
    actions = policy.act(conversations(3))
    assert torch.equal(state, torch.get_rng_state())
    assert all(a.logprobs is None and a.token_ids for a in actions)
    again = HFPolicy.from_pretrained(path, max_new_tokens=4, seed=3, device="cpu").act(
        conversations(3)
    )
    assert [a.token_ids for a in actions] == [a.token_ids for a in again]


def test_missing_model_folder_says_no_such_directory(tmp_path):
    from turngym.error import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="no such directory"):
        HFPolicy.from_pretrained(tmp_path / "missing", device="cpu")


@pytest.mark.slow
def test_speed_benchmark_runs_and_prints_its_rows(tmp_path):
    import re
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "hf_policy_speed.py"
    result = subprocess.run(
        [sys.executable, str(script), "--quick", "--device", "cpu"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    number = r"[0-9][0-9.,]*(?:e[+-]?[0-9]+)?"
    assert re.search(rf"max_batch=16\s+\d+\s+{number}\s+{number}x", result.stdout)
    assert re.search(rf"gathered on device\s+{number}\s+-\s+{number}", result.stdout)
    assert re.search(rf"host peak ratio baseline/now: {number}x", result.stdout)
    assert re.search(rf"penalty adopted\s+\d+\s+{number}\s+{number}", result.stdout)


def test_learner_config_names_every_sampling_field():
    """LearnerConfig stays torch-free, so it lists SamplingConfig's fields by hand: kept equal."""
    from dataclasses import fields

    from turngym.agents.learner_config import SAMPLING_FIELDS, LearnerConfig

    assert SAMPLING_FIELDS == tuple(f.name for f in fields(SamplingConfig))
    defaults = LearnerConfig(model="org/model")
    assert SamplingConfig(**{name: getattr(defaults, name) for name in SAMPLING_FIELDS}) == (
        SamplingConfig()
    )


def test_the_learner_samples_and_scores_under_its_config(tmp_path):
    from turngym.agents.learner import Learner
    from turngym.agents.learner_config import LearnerConfig
    from turngym.agents.prompts import PromptTemplate

    config = LearnerConfig(
        model=str(corridor_model()),
        env_kwargs={"lengths": (1, 2), "max_turns": 4},
        output_dir=str(tmp_path),
        groups_per_step=2,
        group_size=2,
        max_new_tokens=4,
        temperature=0.8,
        top_k=20,
        repetition_penalty=1.3,
        frequency_penalty=0.2,
        history_length=2,
        max_prompt_tokens=200,
        prompt_template={"action_separator": " | "},
        generation_batch_size=3,
        device="cpu",
    )
    learner = Learner(config)
    policy = learner.policy
    assert policy.sampling == SamplingConfig(
        temperature=0.8, top_k=20, repetition_penalty=1.3, frequency_penalty=0.2
    )
    assert policy.template == PromptTemplate(
        action_separator=" | ", history_length=2, max_prompt_tokens=200
    )
    assert policy.max_batch == 3
    turns = [turn for trajectory in learner.rollout() for turn in trajectory.turns]
    prompts = [turn.prompt_token_ids for turn in turns]
    actions = [turn.token_ids for turn in turns]
    with torch.no_grad():  # the learner's own training forward: the first epoch's ratio is 1
        logp, _ = learner._chunk_logprobs(learner.model, prompts, actions, list(range(len(turns))))
    for row, turn in enumerate(turns):
        training = logp[row, logp.shape[1] - len(turn.token_ids) :]
        assert torch.allclose(training, torch.tensor(turn.logprobs), atol=1e-4)


@pytest.mark.parametrize(
    "field, value",
    [("top_k", -1), ("min_p", 1.0), ("repetition_penalty", 0.0), ("presence_penalty", 3.0)],
)
def test_learner_config_rejects_bad_sampling_fields(field, value):
    from turngym.agents.learner_config import LearnerConfig

    with pytest.raises(ValueError, match=f"LearnerConfig.{field}={value!r} is invalid"):
        LearnerConfig(model="m", **{field: value})
    with pytest.raises(ValueError, match="unknown PromptTemplate field"):
        LearnerConfig(model="m", prompt_template={"sytem": "x"})
