"""``TurngymAgentLoop``: a verl agent loop (``agent_name: turngym_agent``) that plays turngym envs.

Each dataset row names an env and a task seed in ``extra_info`` (:func:`make_dataset` writes such
rows). The loop resets the env, renders the system instructions and first observation with
verl's Continuous Token builder, then alternates: generate through verl's ``server_manager``
(vLLM/SGLang; the sampled token ids are kept, never re-encoded), step the env with the decoded
text, append the observation as a user message (masked 0). It stops when the episode ends or the
response budget (``rollout.response_length``) is spent.

``AgentLoopOutput.extra_fields`` gets one list entry per turn (the keys of
:data:`turngym.integrations.verl.EXTRA_FIELDS`): turn rewards, the state key each action acted
on, the action text, ``valid_action``, ``progress``, ``reward_components``; plus the outcome and
success. ``reward_score`` is the outcome (turngym envs put it in the last turn's reward), so
verl's own estimators still work on the same rollouts. ``privileged`` info never leaves the env.
A turn whose tokens were cut by the response budget is dropped from the per-turn lists so the
lists always match the runs of ``response_mask``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from typing import Any
from uuid import uuid4

import gymnasium
from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput, register

from turngym import registration
from turngym.error import InvalidArgumentError
from turngym.integrations.common import mask_runs
from turngym.policy import Conversation

__all__ = ["TurngymAgentLoop", "make_dataset", "task_rows"]

_ENVS: dict[str, list[gymnasium.Env]] = {}
_ENVS_LOCK = threading.Lock()


def _take_env(env_id: str, env_kwargs: dict[str, Any]) -> tuple[str, gymnasium.Env]:
    key = json.dumps([env_id, env_kwargs], sort_keys=True, default=str)
    with _ENVS_LOCK:
        free = _ENVS.setdefault(key, [])
        if free:
            return key, free.pop()
    return key, registration.make(env_id, **env_kwargs)


def _give_back(key: str, env: gymnasium.Env) -> None:
    with _ENVS_LOCK:
        _ENVS.setdefault(key, []).append(env)


def task_rows(
    env_id: str, *, num_tasks: int, seed: int = 0, env_kwargs: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """verl dataset rows, one per task seed ``seed .. seed + num_tasks - 1``."""
    if num_tasks < 1:
        raise InvalidArgumentError(f"num_tasks must be >= 1, got {num_tasks}")
    kwargs = json.dumps(env_kwargs or {}, sort_keys=True)
    return [
        {
            "data_source": env_id,
            "agent_name": "turngym_agent",
            # verl filters and logs the prompt; the loop builds its own from env.reset.
            "prompt": [{"role": "user", "content": f"{env_id} task seed {s}"}],
            "reward_model": {"style": "env", "ground_truth": ""},
            "extra_info": {"env_id": env_id, "seed": s, "env_kwargs": kwargs, "index": i},
        }
        for i, s in enumerate(range(seed, seed + num_tasks))
    ]


def make_dataset(
    path: str,
    env_id: str,
    *,
    num_tasks: int,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
) -> str:
    """Writes :func:`task_rows` as the Parquet file verl's ``data.train_files`` reads."""
    import pandas as pd

    pd.DataFrame(
        task_rows(env_id, num_tasks=num_tasks, seed=seed, env_kwargs=env_kwargs)
    ).to_parquet(path)
    return path


@register("turngym_agent")
class TurngymAgentLoop(AgentLoopBase):
    """Plays one turngym episode per dataset row (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.response_length = int(self.rollout_config.response_length)

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kwargs))

    async def run(self, sampling_params: dict[str, Any], **kwargs: Any) -> AgentLoopOutput:
        extra = dict(kwargs.get("extra_info") or {})
        if "env_id" not in extra:
            raise InvalidArgumentError(
                "a turngym_agent row needs extra_info['env_id'] (and 'seed'); build the dataset "
                "with turngym.integrations.verl.agent_loop.make_dataset"
            )
        env_kwargs = extra.get("env_kwargs") or {}
        if isinstance(env_kwargs, str):
            env_kwargs = json.loads(env_kwargs)
        key, env = _take_env(str(extra["env_id"]), dict(env_kwargs))
        try:
            return await self._play(env, int(extra.get("seed", 0)), sampling_params)
        finally:
            _give_back(key, env)

    async def _play(
        self, env: gymnasium.Env, seed: int, sampling_params: dict[str, Any]
    ) -> AgentLoopOutput:
        observation, info = await self._call(env.reset, seed=seed)
        messages = Conversation.start(info.get("instructions", ""), observation).messages
        tokens = await self.ct_build_initial_tokens(messages)
        mask: list[int] = []
        logprobs: list[float] = []
        record: dict[str, list[Any]] = {
            k: [] for k in ("rewards", "keys", "actions", "valid", "progress", "parts")
        }
        outcome, success, state_key = None, None, info.get("state_key")
        while True:
            output = await self.server_manager.generate(
                request_id=uuid4().hex, prompt_ids=tokens, sampling_params=sampling_params
            )
            merged, mask, new_logprobs = await self.ct_merge_assistant_token(
                tokens,
                output.token_ids,
                mask,
                logprobs if (logprobs or output.log_probs) else None,
                assistant_logprobs=output.log_probs or None,
            )
            logprobs = new_logprobs if new_logprobs is not None else logprobs
            tokens = merged.token_ids
            action = self.tokenizer.decode(output.token_ids, skip_special_tokens=True)
            observation, reward, terminated, truncated, info = await self._call(env.step, action)
            record["rewards"].append(float(reward))
            record["keys"].append(state_key)
            record["actions"].append(action)
            record["valid"].append(bool(info.get("valid_action", True)))
            record["progress"].append(float(info.get("progress") or 0.0))
            record["parts"].append(dict(info.get("reward_components") or {}))
            state_key = info.get("state_key")
            if terminated or truncated:
                outcome, success = info.get("outcome"), info.get("success")
                break
            if len(mask) >= self.response_length:
                break
            previous = list(messages)
            messages += [
                {"role": "assistant", "content": action},
                {"role": "user", "content": observation},
            ]
            merged, new_mask, new_logprobs = await self.ct_merge_context_msg(
                previous, messages, tokens, mask, logprobs or None
            )
            if len(new_mask) >= self.response_length:
                break
            tokens, mask = merged.token_ids, new_mask
            logprobs = new_logprobs if new_logprobs is not None else logprobs
        return self._output(tokens, mask, logprobs, record, outcome, success)

    def _output(
        self,
        tokens: Sequence[int],
        mask: list[int],
        logprobs: list[float] | None,
        record: dict[str, list[Any]],
        outcome: Any,
        success: Any,
    ) -> AgentLoopOutput:
        prompt_ids = list(tokens[: len(tokens) - len(mask)])
        response_ids = list(tokens[len(tokens) - len(mask) :])[: self.response_length]
        mask = mask[: self.response_length]
        import torch

        turns = len(mask_runs(torch.tensor([mask]), what="turngym_agent episode")[0])
        kept = {k: v[:turns] for k, v in record.items()}
        total = float(sum(record["rewards"]))
        score = float(outcome) if outcome is not None else total
        return AgentLoopOutput(
            prompt_ids=prompt_ids,
            response_ids=response_ids,
            response_mask=mask,
            response_logprobs=logprobs[: self.response_length] if logprobs else None,
            reward_score=score,
            num_turns=1 + 2 * len(record["rewards"]),
            metrics={},
            extra_fields={
                "turngym_turn_rewards": kept["rewards"],
                "turngym_state_keys": kept["keys"],
                "turngym_actions": kept["actions"],
                "turngym_valid": kept["valid"],
                "turngym_progress": kept["progress"],
                "turngym_reward_components": kept["parts"],
                "turngym_outcome": score,
                "turngym_success": success,
                "turn_scores": kept["rewards"],
                "tool_rewards": [],
            },
        )
