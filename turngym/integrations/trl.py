"""turngym inside TRL: multi-turn episodes for ``GRPOTrainer`` with turn-level credit.

Install with ``pip install 'turngym[trl]'`` (trl >=1.16,<1.17; ``rollout_func`` is experimental in
TRL and its contract may change, hence the narrow range).

- :func:`make_rollout_func` returns a ``rollout_func`` for ``GRPOTrainer``. TRL hands it the
  prompts of this process (each prompt ``num_generations`` times in a row); every prompt carries
  its task seed as ``[turngym seed=N]`` (:func:`make_dataset` writes such prompts). All prompts
  of one seed in a call form one turngym group. It plays every episode to the end in lock-step,
  generating each turn through TRL's own generation path (``trainer._generate_single_turn``:
  vLLM when ``use_vllm=True``, else the trained model itself; never a second copy). An episode is
  packed as one completion: the first observation is the prompt; then action tokens (as sampled,
  never re-encoded; ``env_mask`` 1), the next observation rendered by the chat template
  (``env_mask`` 0), the next action, and so on. Sampled log-probabilities come back when the
  backend reports them (vLLM); otherwise ``None`` and TRL computes its own.
- :func:`outcome_reward` is the reward function: the episode's outcome.
- :class:`TurngymGRPOTrainer` replaces GRPO's per-sequence advantage by per-token advantages
  from any :mod:`turngym.credit` method (GiGPO by default): turn ``k``'s advantage on the tokens of
  the ``k``-th run of ``env_mask`` 1s. TRL's ``_compute_loss`` accepts ``(B, T)`` advantages;
  env tokens are out of the loss through ``env_mask``.

**Logs.** TRL's own ``reward``, ``reward_std`` and ``frac_reward_zero_std`` describe the outcome
reward; TRL's loss, clip ratio and grad norm then act on turngym's per-token advantages.
:class:`TurngymGRPOTrainer` adds what turngym optimises, under names that say so:
``turngym/turn_advantage_{mean,std,min,max,abs_mean}`` (over real turns, from the configured
credit method), ``turngym/zero_advantage_group_frac`` (share of task groups whose every turn
advantage is 0: nothing is learned from them), ``turngym/success_rate``,
``turngym/outcome_mean`` and ``turngym/episodes_over_context`` (episodes whose prompt plus
completion exceed the model's ``max_position_embeddings``; the rollout also warns).

Limits: credit is computed over the completions of one process, so a group must not be split
across processes (keep ``per_device_train_batch_size * steps_per_generation`` a multiple of
``num_generations``; checked). ``max_completion_length`` bounds each action, not the episode;
``max_episode_tokens`` bounds the whole completion.
"""

from __future__ import annotations

import inspect
import re
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium
import torch

import turngym.credit as credit
from turngym import registration
from turngym.error import InvalidArgumentError
from turngym.integrations.common import check_version, spread_over_runs
from turngym.policy import Conversation
from turngym.trajectory import Trajectory, Turn

TRL_MIN, TRL_BELOW = "1.16", "1.17"
TRL_VERSION = check_version("trl", TRL_MIN, TRL_BELOW, extra="trl")

from trl import GRPOTrainer  # noqa: E402

from turngym.integrations.trl_env import TurngymEnvironment, environment_factory  # noqa: E402

__all__ = [
    "TRL_VERSION",
    "TurngymEnvironment",
    "TurngymGRPOTrainer",
    "environment_factory",
    "episodes_to_trajectories",
    "make_dataset",
    "make_rollout_func",
    "outcome_reward",
    "seed_prompt",
]

_SEED = re.compile(r"\[turngym seed=(-?\d+)\]")


def seed_prompt(env_id: str, seed: int) -> str:
    """The prompt text that carries a task seed to the rollout function."""
    return f"Play {env_id}. [turngym seed={seed}]"


def make_dataset(env_id: str, *, num_tasks: int, seed: int = 0, style: str = "rollout_func") -> Any:
    """A ``datasets.Dataset`` of ``num_tasks`` tasks, seeds ``seed .. seed + num_tasks - 1``.

    Every row has a ``seed`` column. ``style="rollout_func"`` (for :class:`TurngymGRPOTrainer`)
    also writes the seed into the prompt text (``[turngym seed=N]``, what a ``rollout_func``
    receives); ``style="environment_factory"`` gives a conversational prompt with one empty user
    message, which TRL fills with what the environment's ``reset(**row)`` returns.
    """
    from datasets import Dataset

    if num_tasks < 1:
        raise InvalidArgumentError(f"num_tasks must be >= 1, got {num_tasks}")
    seeds = list(range(seed, seed + num_tasks))
    if style == "rollout_func":
        prompts: list[Any] = [seed_prompt(env_id, s) for s in seeds]
    elif style == "environment_factory":
        prompts = [[{"role": "user", "content": ""}] for _ in seeds]
    else:
        raise InvalidArgumentError(f"style={style!r}: use 'rollout_func' or 'environment_factory'")
    return Dataset.from_dict({"prompt": prompts, "seed": seeds})


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):  # conversational
        return " ".join(str(m.get("content", "")) for m in prompt if isinstance(m, dict))
    return str(prompt)


def _seed_of(prompt: Any, row: int) -> int:
    match = _SEED.search(_prompt_text(prompt))
    if match is None:
        raise InvalidArgumentError(
            f"prompt {row} carries no task seed: put '[turngym seed=N]' in it (use "
            "turngym.integrations.trl.make_dataset or seed_prompt)."
        )
    return int(match.group(1))


class _Episode:
    def __init__(self, env: gymnasium.Env, seed: int, group: str) -> None:
        self.env, self.seed, self.group = env, seed, group
        observation, info = env.reset(seed=seed)
        self.messages = Conversation.start(info.get("instructions", ""), observation).messages
        self.state_key = info.get("state_key")
        self.prompt_ids: list[int] = []
        self.completion: list[int] = []
        self.env_mask: list[int] = []
        self.logprobs: list[float] = []
        self.turns: list[dict[str, Any]] = []
        self.outcome: float | None = None
        self.success: bool | None = None
        self.done = False


def _render(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> list[int]:
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=generation_prompt
    )
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


#: A finished exchange; what the template adds after it is an observation's turn.
_BEFORE = ({"role": "user", "content": "x"}, {"role": "assistant", "content": "y"})


def _observation_tokens(tokenizer: Any, observation: str, head: list[int]) -> list[int]:
    """The tokens the chat template puts between an assistant answer and the next one
    (``head``: ``_BEFORE`` rendered, the same for every observation of a tokenizer)."""
    full = _render(tokenizer, [*_BEFORE, {"role": "user", "content": observation}], True)
    if full[: len(head)] != head:
        raise InvalidArgumentError(
            "the tokenizer's chat template renders a conversation's prefix differently when a "
            "message is appended; turngym cannot splice observations into a completion with it."
        )
    return full[len(head) :]


def make_rollout_func(
    env_id: str,
    *,
    env_kwargs: dict[str, Any] | None = None,
    max_episode_tokens: int | None = None,
) -> Callable[[list[Any], Any], dict[str, Any]]:
    """A ``GRPOTrainer`` ``rollout_func`` playing ``env_id`` (see the module docstring).

    Args:
        env_id: the turngym env.
        env_kwargs: keyword arguments of ``gymnasium.make``.
        max_episode_tokens: stop an episode once its completion reaches this many tokens.
    """
    envs: list[gymnasium.Env] = []

    def rollout_func(prompts: list[Any], trainer: Any) -> dict[str, Any]:
        tokenizer = trainer.processing_class
        tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
        head = _render(tokenizer, list(_BEFORE), False)
        while len(envs) < len(prompts):
            envs.append(registration.make(env_id, **dict(env_kwargs or {})))
        seeds = [_seed_of(p, i) for i, p in enumerate(prompts)]
        episodes = [_Episode(envs[i], seed, f"{env_id}/seed{seed}") for i, seed in enumerate(seeds)]
        for episode in episodes:
            episode.prompt_ids = _render(tokenizer, episode.messages, True)
        live = list(episodes)
        while live:
            contexts = [e.prompt_ids + e.completion for e in live]
            completion_ids, logprobs = trainer._generate_single_turn(contexts, None, {}, 1)
            still = []
            for k, episode in enumerate(live):
                ids = list(completion_ids[k])
                action = tokenizer.decode(ids, skip_special_tokens=True)
                observation, reward, terminated, truncated, info = episode.env.step(action)
                episode.completion += ids
                episode.env_mask += [1] * len(ids)
                episode.logprobs += list(logprobs[k]) if logprobs is not None else [0.0] * len(ids)
                episode.turns.append(
                    {
                        "action": action,
                        "reward": float(reward),
                        "state_key": episode.state_key,
                        "valid_action": bool(info.get("valid_action", True)),
                        "reward_components": dict(info.get("reward_components") or {}),
                        "progress": float(info.get("progress") or 0.0),
                        "tokens": len(ids),
                    }
                )
                episode.state_key = info.get("state_key")
                over = (
                    max_episode_tokens is not None and len(episode.completion) >= max_episode_tokens
                )
                if terminated or truncated or over:
                    episode.outcome, episode.success = info.get("outcome"), info.get("success")
                    episode.done = True
                    continue
                env_ids = _observation_tokens(tokenizer, observation, head)
                episode.completion += env_ids
                episode.env_mask += [0] * len(env_ids)
                episode.logprobs += [0.0] * len(env_ids)
                still.append(episode)
            live = still
        returns = [sum(t["reward"] for t in e.turns) for e in episodes]
        context = getattr(getattr(trainer.model, "config", None), "max_position_embeddings", None)
        lengths = [len(e.prompt_ids) + len(e.completion) for e in episodes]
        over = [n for n in lengths if context and n > context]
        if over:
            warnings.warn(
                f"{len(over)} of {len(episodes)} episodes ({max(over)} tokens at most) exceed the "
                f"model's context of {context} positions; set max_episode_tokens, shorten the "
                "env's turn limit or use a model with a longer context",
                RuntimeWarning,
                stacklevel=2,
            )
        return {
            "prompt_ids": [e.prompt_ids for e in episodes],
            "completion_ids": [e.completion for e in episodes],
            "logprobs": [e.logprobs for e in episodes]
            if any(any(lp != 0.0 for lp in e.logprobs) for e in episodes)
            else None,
            "env_mask": [e.env_mask for e in episodes],
            "turngym_return": returns,
            "turngym_outcome": [
                float(e.outcome) if e.outcome is not None else r
                for e, r in zip(episodes, returns, strict=False)
            ],
            "turngym_success": [e.success for e in episodes],
            "turngym_episode": [
                {
                    "group": e.group,
                    "seed": e.seed,
                    "turns": e.turns,
                    "over_context": bool(context and n > context),
                }
                for e, n in zip(episodes, lengths, strict=True)
            ],
        }

    return rollout_func


def outcome_reward(
    completions: Sequence[Any], turngym_outcome: Sequence[float], **_: Any
) -> list[float]:
    """GRPO reward function: each completion's episode outcome (forwarded by the rollout)."""
    return [float(x) for x in turngym_outcome]


def episodes_to_trajectories(
    episodes: Sequence[dict[str, Any]], outcomes: Sequence[float]
) -> list[Trajectory]:
    """The rollout's per-completion ``turngym_episode`` records as turngym trajectories."""
    out = []
    for i, (episode, outcome) in enumerate(zip(episodes, outcomes, strict=False)):
        turns = [
            Turn(
                action=t["action"],
                reward=t["reward"],
                state_key=t["state_key"],
                reward_components=t["reward_components"],
                info={"valid_action": t["valid_action"], "progress": t["progress"]},
                token_ids=[0] * t["tokens"],
            )
            for t in episode["turns"]
        ]
        out.append(
            Trajectory(
                turns=turns,
                group_id=episode["group"],
                traj_id=f"completion{i}",
                seed=episode["seed"],
                outcome=float(outcome),
            )
        )
    return out


class TurngymGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` whose advantages are per-token ``turngym.credit`` advantages.

    Args:
        env_id: when given and ``rollout_func`` is not, plays this env with
            :func:`make_rollout_func`; ``reward_funcs`` defaults to :func:`outcome_reward`.
        credit_method: a ``turngym.credit`` name (``"gigpo"``, ``"salt"``, ``"grpo"``, ...) or a
            callable ``(TurnBatch, **kw) -> Tensor[n, T]``.
        credit_kwargs: its keyword arguments.
        env_kwargs: ``gymnasium.make`` keyword arguments.
        max_episode_tokens: end an episode once its completion reaches this many tokens.
        **kwargs: everything ``GRPOTrainer`` takes.
    """

    def __init__(
        self,
        *args: Any,
        env_id: str | None = None,
        credit_method: str | Callable[..., Any] = "gigpo",
        credit_kwargs: dict[str, Any] | None = None,
        env_kwargs: dict[str, Any] | None = None,
        max_episode_tokens: int | None = None,
        **kwargs: Any,
    ) -> None:
        if env_id is not None and kwargs.get("rollout_func") is None:
            kwargs["rollout_func"] = make_rollout_func(
                env_id, env_kwargs=env_kwargs, max_episode_tokens=max_episode_tokens
            )
        if len(args) < 2:  # GRPOTrainer(model, reward_funcs, ...)
            kwargs.setdefault("reward_funcs", outcome_reward)
        if isinstance(credit_method, str):
            if credit_method not in credit.__all__ or not inspect.isfunction(
                getattr(credit, credit_method)
            ):
                raise InvalidArgumentError(
                    f"unknown credit_method {credit_method!r}; use a turngym.credit method "
                    "(grpo, rloo, gigpo, salt, reinforce, ...) or a callable"
                )
            self.credit_function = getattr(credit, credit_method)
        else:
            self.credit_function = credit_method
        self.credit_kwargs = dict(credit_kwargs or {})
        super().__init__(*args, **kwargs)

    def turn_advantages(
        self, inputs: Sequence[dict[str, Any]]
    ) -> tuple[credit.TurnBatch, torch.Tensor]:
        """The per-turn advantages of this batch's episodes (``[n, max_turns]``)."""
        if any("turngym_episode" not in x for x in inputs):
            raise InvalidArgumentError(
                "TurngymGRPOTrainer needs the rollout's 'turngym_episode' records; use "
                "turngym.integrations.trl.make_rollout_func as rollout_func."
            )
        trajectories = episodes_to_trajectories(
            [x["turngym_episode"] for x in inputs], [x["turngym_outcome"] for x in inputs]
        )
        sizes: dict[str, int] = {}
        for t in trajectories:
            sizes[t.group_id] = sizes.get(t.group_id, 0) + 1
        generations = self.num_generations if self.model.training else self.num_generations_eval
        split = [g for g, n in sizes.items() if n % generations]
        if split:
            raise InvalidArgumentError(
                f"group {split[0]!r} has {sizes[split[0]]} completions in this process, not a "
                f"multiple of num_generations={generations}: turn credit needs whole groups; make "
                "per_device_train_batch_size * steps_per_generation a multiple of num_generations."
            )
        batch = credit.TurnBatch.from_trajectories(trajectories)
        return batch, self.credit_function(batch, **self.credit_kwargs)

    def log_turn_metrics(
        self, inputs: Sequence[dict[str, Any]], batch: credit.TurnBatch, per_turn: torch.Tensor
    ) -> dict[str, float]:
        """Adds turngym's own metrics of this batch to TRL's logs (see the module docstring)."""
        from turngym.integrations.trl_metrics import turn_metrics

        metrics = turn_metrics(inputs, batch, per_turn)
        mode = "train" if self.model.training else "eval"
        for name, value in metrics.items():
            self._metrics[mode][name].append(value)
        return metrics

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        batch, per_turn = self.turn_advantages(inputs)
        self.log_turn_metrics(inputs, batch, per_turn)
        mask = output.get("tool_mask")
        if mask is None:
            raise InvalidArgumentError("the rollout returned no env_mask; turn credit needs it")
        mask = mask * output["completion_mask"]
        output["advantages"] = spread_over_runs(
            per_turn,
            mask,
            expected_turns=[len(x["turngym_episode"]["turns"]) for x in inputs],
            what="TRL completion",
        ).to(output["completion_mask"].device)
        return output
