"""turngym inside verl: its own ``compute_advantage``, patched, gives ``turngym.credit``'s numbers.

verl 0.9.1 pins ``transformers<=5.10`` (the main test env has a newer one), so these tests run in a
separate venv that ``tests/run.sh`` builds (``.venv-verl``): in the main env,
``test_verl_tests_in_their_own_venv`` runs this file there and fails if any of it fails.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from helpers.verl_venv import HAS_VERL, ROOT, needs_verl, run_in_verl_venv


@pytest.mark.skipif(HAS_VERL, reason="verl is installed here: the tests below run directly")
def test_verl_tests_in_their_own_venv():
    result = run_in_verl_venv(__file__)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    # Everything ran there except this delegating test itself (skipped where verl is installed).
    assert re.match(r"(1[0-9]|[2-9][0-9]) passed, 1 skipped", summary), summary


# --------------------------------------------------------------------------- helpers
def _episodes():
    import turngym
    from turngym.agents import RandomPolicy

    return turngym.rollout(
        "turngym/Corridor-v0",
        RandomPolicy(seed=3),
        num_episodes=12,
        group_size=4,
        seed=5,
        progress=False,
    )


def _verl_batch(trajectories, *, with_turn_data=True):
    """A DataProto laid out as verl's agent loop worker lays it out: one row per episode, the
    response is action tokens (mask 1) and env tokens (mask 0) in turn order, right-padded, the
    outcome on the last response token (rm_scores -> token_level_rewards)."""
    import numpy as np
    import torch
    from verl import DataProto

    rng = np.random.default_rng(0)
    rows, counts = [], []
    for trajectory in trajectories:
        mask, per_turn = [], []
        for _ in trajectory.turns:
            k, m = int(rng.integers(1, 4)), int(rng.integers(1, 5))
            mask += [1] * k + [0] * m
            per_turn.append(k)
        rows.append(mask)
        counts.append(per_turn)
    width = max(map(len, rows)) + 2
    response_mask = torch.zeros(len(rows), width, dtype=torch.long)
    rewards = torch.zeros(len(rows), width)
    for i, mask in enumerate(rows):
        response_mask[i, : len(mask)] = torch.tensor(mask)
        rewards[i, len(mask) - 1] = float(trajectories[i].outcome)
    non_tensor = {"uid": np.array([t.group_id for t in trajectories], dtype=object)}
    if with_turn_data:

        def column(values):
            array = np.empty(len(values), dtype=object)
            array[:] = values
            return array

        non_tensor.update(
            turngym_turn_rewards=column([[u.reward for u in t.turns] for t in trajectories]),
            turngym_state_keys=column([t.state_keys() for t in trajectories]),
            turngym_actions=column([[u.action for u in t.turns] for t in trajectories]),
            turngym_valid=column([[u.valid_action for u in t.turns] for t in trajectories]),
            turngym_outcome=column([float(t.outcome) for t in trajectories]),
        )
    data = DataProto.from_dict(
        tensors={
            "responses": torch.randint(5, 50, (len(rows), width)),
            "response_mask": response_mask,
            "token_level_rewards": rewards,
        },
        non_tensors=non_tensor,
    )
    return data, counts


def _expected_tokens(per_turn, counts, response_mask):
    """Turn t's advantage on each of its action tokens, written out by hand."""
    import torch

    expected = torch.zeros(response_mask.shape)
    for i, row in enumerate(counts):
        position, turn = 0, 0
        mask = response_mask[i].tolist()
        while turn < len(row):
            while mask[position] == 0:
                position += 1
            for _ in range(row[turn]):
                expected[i, position] = per_turn[i, turn]
                position += 1
            turn += 1
    return expected


@pytest.fixture
def verl_patched():
    import turngym.integrations.verl as tv

    tv.install()
    yield tv
    tv.uninstall()


# --------------------------------------------------------------------------- estimators
@needs_verl
@pytest.mark.parametrize("method", ["gigpo", "salt", "grpo", "rloo"])
def test_patched_compute_advantage_equals_turngym_credit(verl_patched, method):
    import torch
    from verl.trainer.ppo import ray_trainer

    import turngym.credit as credit

    trajectories = _episodes()
    assert len({t.state_keys()[0] for t in trajectories}) < len(trajectories)  # shared states
    data, counts = _verl_batch(trajectories)
    # verl's own function, reached the way its trainer reaches it (module global).
    out = ray_trainer.compute_advantage(data, adv_estimator=f"turngym_{method}")
    per_turn = getattr(credit, method)(credit.TurnBatch.from_trajectories(trajectories))
    expected = _expected_tokens(per_turn, counts, data.batch["response_mask"])
    torch.testing.assert_close(out.batch["advantages"], expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(out.batch["returns"], expected, rtol=0, atol=1e-6)
    assert (out.batch["advantages"][data.batch["response_mask"] == 0] == 0).all()
    if method in ("gigpo", "salt"):  # turn-level: differs from the sequence-level GRPO numbers
        grpo = credit.grpo(credit.TurnBatch.from_trajectories(trajectories))
        assert not torch.allclose(per_turn, grpo)


@needs_verl
def test_unpatched_verl_collapses_turn_credit_to_grpo():
    """Documents verl 0.9.1's behaviour: ``compute_advantage`` gives a registered estimator no
    ``non_tensor_batch`` (only 'gdpo' gets it). turngym's estimators then refuse (rather than
    silently computing GRPO), and what verl does pass, one score per sequence and the uid, only
    determines GRPO: GiGPO on that information equals verl's own GRPO numbers."""
    import torch
    from verl.trainer.ppo import core_algos, ray_trainer

    import turngym.integrations.verl as tv

    tv.uninstall()
    tv.register_estimators()
    trajectories = _episodes()
    data, _ = _verl_batch(trajectories)
    seen = {}

    def spy(**kwargs):
        seen.update(kwargs)
        return core_algos.compute_grpo_outcome_advantage(
            kwargs["token_level_rewards"], kwargs["response_mask"], kwargs["index"]
        )

    core_algos.ADV_ESTIMATOR_REGISTRY.pop("turngym_test_spy", None)
    core_algos.register_adv_est("turngym_test_spy")(spy)
    ray_trainer.compute_advantage(data, adv_estimator="turngym_test_spy")
    assert "non_tensor_batch" not in seen and set(seen) >= {"token_level_rewards", "index"}

    with pytest.raises(tv.MissingTurnDataError, match="install"):
        ray_trainer.compute_advantage(data, adv_estimator="turngym_gigpo")

    # The collapse in numbers: per-turn data stripped to what unpatched verl passes.
    tv.install()
    try:
        bare, _ = _verl_batch(trajectories)
        bare.non_tensor_batch = {
            "uid": bare.non_tensor_batch["uid"],
            "turngym_turn_rewards": data.non_tensor_batch["turngym_turn_rewards"],
        }
        gigpo = ray_trainer.compute_advantage(bare, adv_estimator="turngym_gigpo").batch[
            "advantages"
        ]
        grpo, _ = core_algos.compute_grpo_outcome_advantage(
            data.batch["token_level_rewards"],
            data.batch["response_mask"],
            data.non_tensor_batch["uid"],
        )
        torch.testing.assert_close(gigpo, grpo, rtol=0, atol=1e-5)
    finally:
        tv.uninstall()


@needs_verl
def test_rows_that_cannot_be_split_into_turns_name_the_row(verl_patched):
    from verl.trainer.ppo import ray_trainer

    from turngym.integrations.common import TurnSplitError

    trajectories = _episodes()[:4]
    data, _ = _verl_batch(trajectories)
    data.batch["response_mask"][2] = 0
    with pytest.raises(TurnSplitError, match="row 2"):
        ray_trainer.compute_advantage(data, adv_estimator="turngym_gigpo")
    data, _ = _verl_batch(trajectories)
    data.non_tensor_batch["turngym_turn_rewards"][1] = [0.0] * (len(trajectories[1].turns) + 1)
    with pytest.raises(ValueError, match="row 1"):
        ray_trainer.compute_advantage(data, adv_estimator="turngym_salt")


@needs_verl
def test_gate_option_applies_gra_before_the_estimator(verl_patched):
    import torch
    from verl.trainer.ppo import ray_trainer

    import turngym.credit as credit

    trajectories = _episodes()
    data, counts = _verl_batch(trajectories)
    verl_patched.configure("turngym_gigpo", gate={"threshold": 1.0}, step_weight=0.5)
    try:
        out = ray_trainer.compute_advantage(data, adv_estimator="turngym_gigpo")
    finally:
        verl_patched.configure("turngym_gigpo")
    batch = credit.TurnBatch.from_trajectories(trajectories)
    per_turn = credit.gigpo(batch, rewards=credit.gated(batch, threshold=1.0), step_weight=0.5)
    expected = _expected_tokens(per_turn, counts, data.batch["response_mask"])
    torch.testing.assert_close(out.batch["advantages"], expected, rtol=0, atol=1e-6)


@needs_verl
def test_version_mismatch_names_both_versions():
    from turngym.integrations.common import IntegrationVersionError, check_version

    with pytest.raises(IntegrationVersionError, match=r"verl 0\.8\.0.*>=0\.9\.1,<0\.10"):
        check_version("verl", "0.9.1", "0.10", extra="verl", found="0.8.0")
    assert check_version("verl", "0.9.1", "0.10", extra="verl") == "0.9.1"


# --------------------------------------------------------------------------- agent loop
class _ScriptedServer:
    """Stands in for verl's LLM server manager: answers each turn with the token ids of a
    scripted action (what vLLM would return), with made-up log-probabilities."""

    def __init__(self, tokenizer, actions):
        self.tokenizer, self.actions, self.calls = tokenizer, list(actions), []

    async def generate(self, *, request_id, prompt_ids, sampling_params, **_):
        from verl.workers.rollout.replica import TokenOutput

        self.calls.append(list(prompt_ids))
        text = self.actions[len(self.calls) - 1]
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"] + [
            self.tokenizer.eos_token_id
        ]
        return TokenOutput(token_ids=ids, log_probs=[-0.5] * len(ids))


@needs_verl
def test_agent_loop_fills_masks_and_extra_fields(tmp_path):
    import gymnasium
    import torch
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap, _agent_loop_registry

    from turngym.agents.tiny import tiny_model_dir
    from turngym.integrations.common import mask_runs
    from turngym.integrations.verl import agent_loop

    assert "turngym_agent" in _agent_loop_registry
    tokenizer = AutoTokenizer.from_pretrained(
        tiny_model_dir(env_ids=["turngym/Corridor-v0"], episodes=8, warmup_steps=0)
    )
    env = gymnasium.make("turngym/Corridor-v0")
    _, info = env.reset(seed=7)
    actions = [info["admissible_actions"][0], "dance wildly", info["admissible_actions"][-1]] * 20
    config = OmegaConf.create(
        {
            "actor_rollout_ref": {"rollout": {"prompt_length": 512, "response_length": 4096}},
            "data": {},
        }
    )
    server = _ScriptedServer(tokenizer, actions)
    row = agent_loop.task_rows("turngym/Corridor-v0", num_tasks=1, seed=7)[0]

    async def play():  # verl builds agent loops inside its running event loop
        loop = agent_loop.TurngymAgentLoop(
            trainer_config=DictConfigWrap(config),
            server_manager=server,
            tokenizer=tokenizer,
            processor=None,
            dataset_cls=None,
            data_config=DictConfigWrap(config.data),
        )
        return await loop.run(
            {"temperature": 1.0}, raw_prompt=row["prompt"], extra_info=row["extra_info"]
        )

    output = asyncio.run(play())

    # The same actions in-process give the same per-turn data.
    env.reset(seed=7)
    rewards, keys, valid, key = [], [], [], info["state_key"]
    for action in actions:
        *_, reward, terminated, truncated, step_info = (None, *env.step(action))[1:]
        rewards.append(reward)
        keys.append(key)
        valid.append(step_info["valid_action"])
        key = step_info["state_key"]
        if terminated or truncated:
            break
    extra = output.extra_fields
    assert extra["turngym_turn_rewards"] == rewards
    assert extra["turngym_state_keys"] == keys
    assert extra["turngym_valid"] == valid and False in valid
    assert extra["turngym_actions"] == actions[: len(rewards)]
    assert output.reward_score == extra["turngym_outcome"]
    # One run of 1s per turn, exactly the sampled tokens; env tokens 0; logprobs aligned.
    runs = mask_runs(torch.tensor([output.response_mask]))[0]
    assert len(runs) == len(rewards) == len(server.calls)
    for (start, end), action in zip(runs, actions, strict=False):
        ids = tokenizer(action, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        assert output.response_ids[start:end] == ids
        assert output.response_logprobs[start:end] == [-0.5] * len(ids)
    assert output.response_mask[-1] == 1 and 0 in output.response_mask
    assert "privileged" not in str(extra)
    # Each generation saw the previous one's tokens verbatim (no re-tokenisation).
    for before, after in zip(server.calls, server.calls[1:], strict=False):
        assert after[: len(before)] == before


@needs_verl
def test_agent_loop_stops_at_the_response_budget():
    import asyncio as _asyncio

    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap

    from turngym.agents.tiny import tiny_model_dir
    from turngym.integrations.verl import agent_loop

    tokenizer = AutoTokenizer.from_pretrained(
        tiny_model_dir(env_ids=["turngym/Corridor-v0"], episodes=8, warmup_steps=0)
    )
    config = OmegaConf.create(
        {
            "actor_rollout_ref": {"rollout": {"prompt_length": 512, "response_length": 40}},
            "data": {},
        }
    )
    row = agent_loop.task_rows("turngym/Corridor-v0", num_tasks=1)[0]

    async def play():
        loop = agent_loop.TurngymAgentLoop(
            trainer_config=DictConfigWrap(config),
            server_manager=_ScriptedServer(tokenizer, ["wait"] * 99),
            tokenizer=tokenizer,
            processor=None,
            dataset_cls=None,
            data_config=DictConfigWrap(config.data),
        )
        return await loop.run({}, extra_info=row["extra_info"])

    output = _asyncio.run(play())
    assert len(output.response_mask) <= 40
    import torch

    from turngym.integrations.common import mask_runs

    assert len(mask_runs(torch.tensor([output.response_mask]))[0]) == len(
        output.extra_fields["turngym_turn_rewards"]
    )


@needs_verl
def test_example_config_composes_with_verls_own_config():
    """docs/verl_turngym_ppo.yaml composes over verl's ppo_trainer and names our parts."""
    import importlib

    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "docs"), version_base=None):
        config = compose(config_name="verl_turngym_ppo")
    assert config.algorithm.adv_estimator == "turngym_gigpo"
    assert config.trainer.use_v1 is False
    assert config.actor_rollout_ref.rollout.agent.default_agent_loop == "turngym_agent"
    hook = config.ray_kwargs.ray_init.runtime_env.worker_process_setup_hook
    module, _, name = hook.rpartition(".")
    assert callable(getattr(importlib.import_module(module), name))
    assert config.actor_rollout_ref.actor.ppo_mini_batch_size > 0  # verl's defaults merged in


@needs_verl
@pytest.mark.parametrize(
    "overrides",
    [[], ["actor_rollout_ref.actor.use_kl_loss=true"], ["trainer.n_gpus_per_node=8"]],
    ids=["as-shipped", "with-reference", "8-gpus"],
)
def test_example_config_passes_verls_own_validation(overrides):
    """What ``python -m verl.trainer.main_ppo --config-path docs --config-name verl_turngym_ppo``
    does before Ray starts: hydra composes the file over verl's config, ``auto_set_device``, then
    ``validate_config`` with main_ppo's own reference/critic decisions (bd15375 failed here on
    the actor's and the rollout's micro-batch sizes)."""
    from hydra import compose, initialize_config_dir
    from verl.trainer import main_ppo

    with initialize_config_dir(config_dir=str(ROOT / "docs"), version_base=None):
        config = compose(
            config_name="verl_turngym_ppo",
            overrides=["actor_rollout_ref.model.path=Qwen/Qwen2.5-1.5B-Instruct", *overrides],
        )
    main_ppo.auto_set_device(config)
    main_ppo.validate_config(
        config=config,
        use_reference_policy=main_ppo.need_reference_policy(config),
        use_critic=main_ppo.need_critic(config),
    )
    assert main_ppo.need_reference_policy(config) is bool(overrides and "kl" in overrides[0])
    assert config.trainer.use_v1 is False  # the trainer path the estimators are fed on


@needs_verl
def test_igpo_estimator_reads_gold_probs_from_extra_fields(verl_patched):
    import numpy as np
    import torch
    from verl.trainer.ppo import ray_trainer

    import turngym.credit as credit

    trajectories = _episodes()
    data, counts = _verl_batch(trajectories)
    rng = np.random.default_rng(1)
    probs = [list(rng.uniform(0.05, 0.9, len(t.turns) + 1)) for t in trajectories]
    with pytest.raises(verl_patched.MissingTurnDataError, match="turngym_gold_probs"):
        ray_trainer.compute_advantage(data, adv_estimator="turngym_igpo")
    column = np.empty(len(probs), dtype=object)
    column[:] = probs
    data.non_tensor_batch["turngym_gold_probs"] = column
    out = ray_trainer.compute_advantage(data, adv_estimator="turngym_igpo")
    batch = credit.TurnBatch.from_trajectories(trajectories)
    gold = torch.zeros(len(probs), batch.max_turns + 1)
    for i, p in enumerate(probs):
        gold[i, : len(p)] = torch.tensor(p)
    per_turn = credit.igpo(batch, gold_probs=gold)
    expected = _expected_tokens(per_turn, counts, data.batch["response_mask"])
    torch.testing.assert_close(out.batch["advantages"], expected, rtol=0, atol=1e-5)


def _stub_worker(config, tokenizer):
    """verl's AgentLoopWorker without its Ray/server start-up: only what its post-processing
    (padding, masks, DataProto assembly) reads."""
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker

    worker = AgentLoopWorker.__new__(AgentLoopWorker)
    worker.config, worker.rollout_config = config, config.actor_rollout_ref.rollout
    worker.tokenizer, worker.processor, worker.mm_processor_kwargs = tokenizer, None, {}
    worker.reward_loop_worker_handles, worker.distillation_enabled = None, False
    return worker


@needs_verl
@pytest.mark.parametrize("method", ["gigpo", "salt"])
def test_agent_loop_batch_through_verls_postprocess_and_compute_advantage(verl_patched, method):
    """End to end on CPU: turngym_agent episodes -> verl's own per-sample post-processing and
    batch assembly -> verl's compute_advantage (patched) == turngym.credit on the same episodes
    replayed in-process."""
    import gymnasium
    import numpy as np
    import torch
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.experimental.agent_loop.agent_loop import DictConfigWrap
    from verl.trainer.ppo import ray_trainer

    import turngym.credit as credit
    from turngym import Trajectory, Turn
    from turngym.agents.tiny import tiny_model_dir
    from turngym.integrations.verl import agent_loop

    tokenizer = AutoTokenizer.from_pretrained(
        tiny_model_dir(env_ids=["turngym/Corridor-v0"], episodes=8, warmup_steps=0)
    )
    config = OmegaConf.create(
        {
            "actor_rollout_ref": {"rollout": {"prompt_length": 512, "response_length": 1024}},
            "data": {},
        }
    )
    worker = _stub_worker(config, tokenizer)
    rows = agent_loop.task_rows("turngym/Corridor-v0", num_tasks=2, seed=3)
    scripts, uids = [], []
    for r in range(len(rows)):
        for g in range(4):
            rng = np.random.default_rng(10 * r + g)
            scripts.append(
                [["go east", "go west", "wait"][int(rng.integers(3))] for _ in range(40)]
            )
            uids.append(f"uid{r}")

    async def play():
        outputs = []
        for k, actions in enumerate(scripts):
            row = rows[k // 4]
            loop = agent_loop.TurngymAgentLoop(
                trainer_config=DictConfigWrap(config),
                server_manager=_ScriptedServer(tokenizer, actions),
                tokenizer=tokenizer,
                processor=None,
                dataset_cls=None,
                data_config=DictConfigWrap(config.data),
            )
            output = await loop.run({}, raw_prompt=row["prompt"], extra_info=row["extra_info"])
            outputs.append(
                await worker._agent_loop_postprocess(
                    output, False, raw_prompt=row["prompt"], extra_info=row["extra_info"]
                )
            )
        return outputs

    data = worker._postprocess(asyncio.run(play()), input_non_tensor_batch=None, validate=False)
    data.non_tensor_batch["uid"] = np.array(uids, dtype=object)  # as the trainer adds it
    data.batch["token_level_rewards"] = data.batch["rm_scores"]
    out = ray_trainer.compute_advantage(data, adv_estimator=f"turngym_{method}")

    trajectories = []
    for k, actions in enumerate(scripts):
        env = gymnasium.make("turngym/Corridor-v0")
        _, info = env.reset(seed=3 + k // 4)
        turns = []
        for action in actions:
            key = info["state_key"]
            _, reward, terminated, truncated, info = env.step(action)
            turns.append(Turn(action=action, reward=reward, state_key=key, info=info))
            if terminated or truncated:
                break
        trajectories.append(Trajectory(turns=turns, group_id=uids[k], outcome=info["outcome"]))
    per_turn = getattr(credit, method)(credit.TurnBatch.from_trajectories(trajectories))
    mask = data.batch["response_mask"]
    expected = torch.zeros(mask.shape)
    for i in range(mask.shape[0]):
        turn, inside = -1, False
        for j, m in enumerate(mask[i].tolist()):
            turn += int(bool(m) and not inside)
            inside = bool(m)
            if m:
                expected[i, j] = per_turn[i, turn]
    assert len({len(t.turns) for t in trajectories}) > 1
    torch.testing.assert_close(out.batch["advantages"], expected, rtol=0, atol=1e-6)
