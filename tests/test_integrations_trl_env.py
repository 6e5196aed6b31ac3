"""TRL's recommended path: ``GRPOTrainer(environment_factory=...)`` over turngym envs.

The classes follow TRL 1.16's contract (public methods are tools, ``reset(**row)``,
``get_reward()``); the tools are checked with the schema function TRL uses, driven as TRL calls
them (``tool(**arguments)``), and TRL's own trainer runs 2 steps on CPU for a tool env (WebShop)
and a free-text env (Corridor).
"""

from __future__ import annotations

import inspect
import math

import pytest

pytest.importorskip("trl", reason="needs the [trl] extra (pip install 'turngym[trl]')")
torch = pytest.importorskip("torch")

from turngym.error import InvalidArgumentError  # noqa: E402
from turngym.integrations.trl import environment_factory, make_dataset  # noqa: E402

CORRIDOR = "turngym/Corridor-v0"
CORRIDOR_KWARGS = {"lengths": (2,), "max_turns": 3}


def _tools(cls) -> list[str]:
    """The tool names TRL extracts: public functions of the class but reset and get_reward."""
    return sorted(
        name
        for name, _ in inspect.getmembers(cls, predicate=inspect.isfunction)
        if name not in ("reset", "get_reward") and not name.startswith("_")
    )


@pytest.mark.parametrize(
    ("env_id", "tools"),
    [
        ("turngym/SWE-v0", ["bash", "create", "edit", "submit", "view"]),
        ("turngym/WebShop-Small-v0", ["click", "search"]),
        (CORRIDOR, ["act"]),
        ("turngym/TextWorld-Easy-v1", ["act"]),
        ("turngym/SearchQA-v0", ["act"]),
    ],
)
def test_every_family_exposes_its_real_tools_with_schemas(env_id, tools):
    from transformers.utils import get_json_schema

    cls = environment_factory(env_id)
    assert _tools(cls) == tools
    for name in tools:  # TRL renders each tool with this function: it must not raise
        schema = get_json_schema(getattr(cls, name))["function"]
        assert schema["name"] == name and schema["description"]
        for parameter in schema["parameters"]["properties"].values():
            assert parameter["description"] and parameter["type"] in ("string", "integer")


def test_every_registered_id_has_a_class():
    import turngym

    for env_id in turngym.list_envs():
        assert _tools(environment_factory(env_id))
    with pytest.raises(InvalidArgumentError, match="unknown env id"):
        environment_factory("turngym/Nope-v0")


def test_reset_reads_the_dataset_row_and_reward_is_the_outcome():
    rows = make_dataset(CORRIDOR, num_tasks=4, style="environment_factory")
    assert rows[0]["prompt"] == [{"role": "user", "content": ""}] and rows[2]["seed"] == 2
    env = environment_factory(CORRIDOR, CORRIDOR_KWARGS)()
    for row in rows:
        text = env.reset(**row)
        side = "east" if "exit is to the east" in text else "west"
        assert env.get_reward() == 0.0  # not finished: nothing earned
        last = [env.act(f"go {side}") for _ in range(2)][-1]
        assert "episode over: task ended" in last and env.get_reward() == 1.0
    # the same seed gives the same task (reset is the row's, not a fresh draw)
    assert env.reset(**rows[1]) == env.reset(**rows[1])


def test_turn_limit_ends_the_episode_and_later_calls_raise():
    env = environment_factory(CORRIDOR, CORRIDOR_KWARGS)()
    env.reset(seed=0)
    outputs = [env.act("wait") for _ in range(3)]
    assert "turn limit reached" in outputs[-1] and env.turns == 3 and env.get_reward() == 0.0
    with pytest.raises(ValueError, match="episode is over"):
        env.act("go east")  # TRL returns this error text to the model as the tool result


def test_webshop_tools_step_the_env_like_its_text_actions():
    import gymnasium

    env = environment_factory("turngym/WebShop-Small-v0")()
    text = env.reset(seed=3)
    assert "Call the search and click tools" in text
    plain = gymnasium.make("turngym/WebShop-Small-v0")
    plain.reset(seed=3)
    assert env.search("shirt") == plain.step("search[shirt]")[0]
    assert env.click("next >") == plain.step("click[next >]")[0]
    assert env.turns == 2


def test_swe_tools_write_the_envs_json_calls():
    from turngym.integrations.trl_env import SWEEnvironment

    sent = []
    env = object.__new__(environment_factory("turngym/SWE-v0"))
    env._step = sent.append  # the env itself needs a sandbox; the calls are what matters
    SWEEnvironment.view(env, "a.py", start=3)
    SWEEnvironment.edit(env, "a.py", old="x", new="y")
    SWEEnvironment.submit(env)
    from turngym.envs.swe.actions import parse_action

    calls = [parse_action(text) for text in sent]
    assert [c[0].tool for c in calls] == ["view", "edit", "submit"]
    assert calls[0][0].args == {"path": "a.py", "start": 3} and not any(c[1] for c in calls)


def _tiny():
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.chat_template_utils import qwen2_5_chat_template

    from turngym.agents.tiny import tiny_model_dir

    path = tiny_model_dir(
        env_ids=[CORRIDOR], env_kwargs=CORRIDOR_KWARGS, episodes=16, warmup_steps=40
    )
    tokenizer = AutoTokenizer.from_pretrained(path)
    # TRL parses tool calls only for chat templates it knows; the tiny BPE tokenizer spells
    # Qwen2.5's markers as ordinary bytes, which is all the template needs.
    tokenizer.chat_template = qwen2_5_chat_template
    return AutoModelForCausalLM.from_pretrained(path), tokenizer


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env_id", "env_kwargs"),
    [("turngym/WebShop-Small-v0", {}), (CORRIDOR, CORRIDOR_KWARGS)],
    ids=["tool-env", "free-text-env"],
)
def test_trls_own_grpo_trainer_runs_two_steps(env_id, env_kwargs, tmp_path):
    from trl import GRPOConfig, GRPOTrainer

    seen: list[dict] = []
    rewards: list[float] = []

    class Recorded(environment_factory(env_id, env_kwargs)):
        def reset(self, **row):
            seen.append(row)
            return super().reset(**row)

        def get_reward(self):
            rewards.append(super().get_reward())
            return rewards[-1]

    model, tokenizer = _tiny()
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        num_generations=2,
        max_completion_length=16,
        max_tool_calling_iterations=3,
        max_steps=2,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
    )
    trainer = GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        args=args,
        train_dataset=make_dataset(env_id, num_tasks=4, style="environment_factory"),
        environment_factory=Recorded,
    )
    assert sorted(t.__name__ for t in trainer.tools) == _tools(Recorded)
    result = trainer.train()
    assert trainer.state.global_step == 2 and math.isfinite(result.training_loss)
    assert len(seen) == 4 and all(isinstance(row["seed"], int) for row in seen)
    assert len(rewards) == 4 and all(0.0 <= r <= 1.0 for r in rewards)
    logged = [h for h in trainer.state.log_history if "rewards/Recorded/mean" in h]
    assert len(logged) == 2  # the env's reward is TRL's reward column
