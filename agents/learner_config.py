"""``LearnerConfig``: every knob of :class:`turngym.agents.learner.Learner`, validated.

Load one from a JSON, YAML or TOML file with :meth:`LearnerConfig.from_file` (what
``turngym train --config FILE`` does); unknown keys and bad values raise a ``ValueError`` that
names the field.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from turngym.agents.learner_checks import BASE_DEFAULTS, check_credit_kwargs, check_model_source

__all__ = [
    "CREDIT_METHODS",
    "GROUP_CREDIT_METHODS",
    "LOSS_AGG_MODES",
    "OLD_LOGPROBS",
    "LearnerConfig",
    "SAMPLING_FIELDS",
    "check_credit_kwargs",
    "check_model_source",
]

#: The credit methods of ``turngym.credit`` the learner can call by name.
CREDIT_METHODS = (
    "grpo",
    "rloo",
    "reinforce",
    "returns",
    "gae",
    "gigpo",
    "salt",
    "igpo",
    "spa",
    "gated",
)

#: The fields that make the rollout policy's ``turngym.agents.sampling.SamplingConfig``.
SAMPLING_FIELDS = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repetition_penalty",
    "frequency_penalty",
    "presence_penalty",
)

#: Credit methods that compare the episodes of a task group (they need ``group_size >= 2``).
GROUP_CREDIT_METHODS = ("grpo", "rloo", "gigpo", "salt", "igpo")

#: How per-token losses become one scalar, named as verl names them (``actor.loss_agg_mode``).
#: A *sequence* is one episode's action tokens, all its turns together (the agent's whole
#: "response" to a task, as a response is in single-turn RL). With ``S`` episodes among the rows
#: of an optimizer step, ``n_e`` action tokens of episode ``e`` there and ``l_et`` the loss of
#: its ``t``-th action token:
#:
#: - ``token-mean``: ``sum_et l_et / sum_e n_e`` (DAPO; verl's default);
#: - ``seq-mean-token-sum``: ``sum_et l_et / S``;
#: - ``seq-mean-token-mean``: ``sum_e (sum_t l_et / n_e) / S`` (the original GRPO: every
#:   episode weighs the same whatever its length);
#: - ``seq-mean-token-sum-norm``: ``sum_et l_et / (S * max_new_tokens)`` (Dr. GRPO: a constant
#:   normaliser; verl divides by the padded response width).
#: Where the PPO ratio's ``logp_old`` comes from (see ``LearnerConfig.old_logprobs``).
OLD_LOGPROBS = ("auto", "recorded", "recomputed")

LOSS_AGG_MODES = (
    "token-mean",
    "seq-mean-token-sum",
    "seq-mean-token-mean",
    "seq-mean-token-sum-norm",
)


@dataclass
class LearnerConfig:
    """Configuration of the GRPO/PPO-style learner (see ``turngym.agents.learner``)."""

    #: Folder or hub name of the causal LM (and its tokenizer) to train.
    model: str
    #: Registered env id to train on, or an orchestra preset (``turngym/Orchestra-v0``): then every
    #: agent of the team is played by the model and trained on its own trajectories.
    env_id: str = "turngym/Corridor-v0"
    #: Keyword arguments for ``turngym.make`` (e.g. ``{"lengths": [1, 2], "max_turns": 4}``), or
    #: for the orchestra preset (e.g. ``{"max_turns": 8}``).
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    #: Credit method of ``turngym.credit`` by name (one of ``CREDIT_METHODS``).
    credit: str = "grpo"
    #: Hyperparameters passed to the credit method (e.g. ``{"gamma": 0.95}`` for gigpo). For
    #: ``gated`` (a reward transform) the keys ``base`` (an estimator name, default ``"grpo"``)
    #: and ``base_kwargs`` choose the estimator that turns the gated rewards into advantages.
    credit_kwargs: dict[str, Any] = field(default_factory=dict)
    #: Where checkpoints (``checkpoint/``) and metrics (``metrics.jsonl``) go.
    output_dir: str = "runs/turngym-learner"
    #: Training iterations; each is one rollout batch followed by its policy update(s).
    steps: int = 100
    #: Task groups per iteration (distinct reset seeds).
    groups_per_step: int = 4
    #: Episodes per task group (G of GRPO); at least 2 for group-relative credit.
    group_size: int = 4
    #: Envs stepped in parallel during rollouts (worker processes when > 1).
    num_envs: int = 1
    #: Worker processes hosting the ``num_envs`` envs, kept for the whole run (an EnvPool); None:
    #: one per env when ``num_envs > 1``; 0: every env in the learner's process (no start-up, the
    #: generation batch still spans all ``num_envs`` live episodes).
    env_workers: int | None = None
    #: Seed of rollouts, sampling and data order; iteration ``k`` rolls out seeds from
    #: ``seed + k * groups_per_step``.
    seed: int = 0
    #: Sampling temperature of rollouts (also divides the logits when log-probs are recomputed).
    temperature: float = 1.0
    #: Nucleus sampling mass of rollouts.
    top_p: float = 1.0
    #: Top-k cut of rollouts (0: none). With ``top_p``/``min_p``/``repetition_penalty`` it makes
    #: the policy's ``SamplingConfig``, which the training forward reproduces exactly (the
    #: model's saved generation config is never applied; see ``turngym.agents.logprobs``).
    top_k: int = 0
    #: Min-p cut of rollouts (0: none).
    min_p: float = 0.0
    #: Repetition penalty of rollouts (1: none), reproduced token by token in training.
    repetition_penalty: float = 1.0
    #: OpenAI-style frequency and presence penalties of rollouts over the action's own tokens
    #: (0: none), reproduced in training like the repetition penalty.
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    #: Longest action in tokens.
    max_new_tokens: int = 32
    #: Longest prompt in tokens; longer prompts keep the system message and the task (first
    #: user message) and drop the oldest turns, marked in the prompt. None keeps all.
    max_prompt_tokens: int | None = None
    #: Keep only the last k turns (action + observation) in prompts, as verl-agent's
    #: ``history_length``; None keeps all.
    history_length: int | None = None
    #: ``turngym.agents.prompts.PromptTemplate`` fields (``system``, ``observation``, ``actions``,
    #: ``action_separator``, ``omitted``): how prompts are written, for rollout and training.
    prompt_template: dict[str, str] = field(default_factory=dict)
    #: Most conversations per ``generate`` call (the live episodes are split into such batches).
    generation_batch_size: int = 16
    #: AdamW learning rate.
    learning_rate: float = 1e-6
    #: AdamW weight decay.
    weight_decay: float = 0.0
    #: AdamW betas.
    adam_betas: tuple[float, float] = (0.9, 0.999)
    #: PPO clip range: the ratio is clipped to ``[1 - clip_eps, 1 + clip_eps_high]``.
    clip_eps: float = 0.2
    #: Upper clip range (DAPO's clip-higher); None uses ``clip_eps``.
    clip_eps_high: float | None = None
    #: Weight of the k3 KL estimator to the frozen reference model; 0 skips the reference.
    kl_coef: float = 0.0
    #: How per-token losses are aggregated, one of ``LOSS_AGG_MODES`` (verl's names; a sequence
    #: is an episode). The default ``token-mean`` weighs every action token alike: within a step
    #: it points the same way as the policy gradient of the episode return summed over all
    #: action tokens (its normaliser is one number per step), and unlike ``seq-mean-token-mean``
    #: it does not give the tokens of short episodes more weight (Dr. GRPO's length bias). Its
    #: price: episodes with more turns carry more tokens, so when failures are longer the
    #: token-weighted mean advantage is negative (probability pushed off sampled tokens);
    #: ``seq-mean-token-mean`` weighs episodes equally instead (on Corridor it kept grpo and salt
    #: from the late collapse token-mean showed on 1 of 3 seeds: benchmarks/results/
    #: credit_learning/NOTES.md). ``seq-mean-token-sum-norm`` shrinks steps by ``tokens per
    #: episode / max_new_tokens`` and needs its own learning rate.
    loss_agg_mode: str = "token-mean"
    #: Passes over each rollout batch.
    ppo_epochs: int = 1
    #: Turn sequences per forward/backward pass.
    micro_batch_size: int = 16
    #: Sort turn sequences by length before cutting micro-batches (less padding); the order
    #: of the micro-batches is still shuffled.
    sort_by_length: bool = True
    #: Micro-batches accumulated per optimizer step; None accumulates the whole rollout batch
    #: (one optimizer step per epoch).
    gradient_accumulation_steps: int | None = None
    #: Gradient norm clip; 0 disables clipping.
    max_grad_norm: float = 1.0
    #: Mixed precision: fp32 master weights and AdamW state, forward/backward under bfloat16
    #: autocast (the frozen KL reference is held in bfloat16). None means "on CUDA only";
    #: True on CPU runs the same path with CPU autocast (tests). Memory per billion trained
    #: parameters: 4 GB weights + 4 GB gradients + 8 GB AdamW = 16 GB (+2 GB for a reference).
    bf16: bool | None = None
    #: Gradient checkpointing; None means "on CUDA only".
    gradient_checkpointing: bool | None = None
    #: Train LoRA adapters (``peft``) instead of every weight.
    lora: bool = False
    #: LoRA rank.
    lora_r: int = 8
    #: LoRA alpha (scale = alpha / r).
    lora_alpha: int = 16
    #: LoRA dropout.
    lora_dropout: float = 0.0
    #: Module names LoRA adapts; None means every linear layer.
    lora_target_modules: list[str] | None = None
    #: IGPO: the assistant text scored as the gold answer; ``{answer}`` is replaced by the gold
    #: answer read from ``trajectory.privileged``.
    igpo_answer_template: str = "{answer}"
    #: SPA: learn the progress estimator (a linear head over the policy LM's last hidden state
    #: at the end of each turn) instead of using the env's progress deltas.
    spa_estimator: bool = False
    #: SPA: Adam steps of the progress estimator per iteration (on that iteration's batch).
    spa_estimator_steps: int = 50
    #: Save a checkpoint every N iterations (0: only at the end of ``train``).
    save_every: int = 0
    #: Evaluate every N iterations on ``eval_groups`` held-out task groups (0: never); the
    #: results go to ``metrics.jsonl`` as ``eval/reward``, ``eval/success``, ``eval/turns``.
    eval_every: int = 0
    #: Task groups of each evaluation (``group_size`` episodes each, seeds from 10,000).
    eval_groups: int = 8
    #: ``logp_old`` of the PPO ratio ``exp(logp - logp_old)``: ``"recorded"`` uses the logprobs
    #: the rollout policy recorded with each action token (a vLLM/SGLang server's, so the ratio
    #: also corrects for the server's numerics and any weights it has not synced yet);
    #: ``"recomputed"`` scores the rollout tokens with the learner's model before the update;
    #: ``"auto"``: recorded when the learner was given a rollout ``policy``, else recomputed.
    old_logprobs: str = "auto"
    #: Resume from ``output_dir/checkpoint`` when it exists.
    resume: bool = True
    #: Also log metrics to TensorBoard (needs ``tensorboard``).
    tensorboard: bool = False
    #: Also log metrics to Weights & Biases under this project (needs ``wandb``); None disables.
    wandb_project: str | None = None
    #: ``"cuda"``, ``"cpu"`` or None (CUDA when present).
    device: str | None = None
    #: Show rollout progress bars.
    progress: bool = False

    def __post_init__(self) -> None:
        def fail(name: str, rule: str) -> None:
            raise ValueError(f"LearnerConfig.{name}={getattr(self, name)!r} is invalid: {rule}")

        if not isinstance(self.model, str) or not self.model:
            fail("model", "give the folder or hub name of a causal LM")
        if self.credit not in CREDIT_METHODS:
            fail("credit", f"use one of {', '.join(CREDIT_METHODS)}")
        if self.loss_agg_mode not in LOSS_AGG_MODES:
            fail("loss_agg_mode", f"use one of {', '.join(LOSS_AGG_MODES)}")
        for name in (
            "steps",
            "groups_per_step",
            "group_size",
            "num_envs",
            "max_new_tokens",
            "ppo_epochs",
            "micro_batch_size",
            "lora_r",
            "eval_groups",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                fail(name, "must be a positive int")
        for name in ("max_prompt_tokens", "gradient_accumulation_steps", "history_length"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                fail(name, "must be a positive int or None")
        if self.env_workers is not None and (
            not isinstance(self.env_workers, int)
            or isinstance(self.env_workers, bool)
            or self.env_workers < 0
        ):
            fail("env_workers", "must be an int >= 0 (0: in-process) or None")
        if self.save_every < 0:
            fail("save_every", "must be >= 0 (0 saves only at the end)")
        if not isinstance(self.eval_every, int) or self.eval_every < 0:
            fail("eval_every", "must be an int >= 0 (0 never evaluates)")
        if self.old_logprobs not in OLD_LOGPROBS:
            fail("old_logprobs", f"use one of {', '.join(OLD_LOGPROBS)}")
        if not self.learning_rate > 0:
            fail("learning_rate", "must be > 0, e.g. 1e-6 for a 1B model")
        if not self.temperature > 0:
            fail(
                "temperature",
                "must be > 0: greedy rollouts (0) repeat the same episode in every group, so "
                "every group-relative advantage is 0 and nothing is learned; use e.g. 1.0",
            )
        if self.group_size < 2 and self._group_based():
            fail(
                "group_size",
                f"must be >= 2 for credit={self.credit!r}, which compares the episodes of a "
                "task group; raise it (e.g. 4) or use reinforce/returns/gae",
            )
        from turngym.agents.sampling import SamplingConfig

        try:  # the rollout policy's sampling distribution, checked by its own rules
            SamplingConfig(**{name: getattr(self, name) for name in SAMPLING_FIELDS})
        except ValueError as error:
            raise ValueError(str(error).replace("SamplingConfig.", "LearnerConfig.")) from None
        if not isinstance(self.generation_batch_size, int) or self.generation_batch_size < 1:
            fail("generation_batch_size", "must be a positive int, e.g. 16")
        if not isinstance(self.prompt_template, dict):
            fail("prompt_template", "must be a mapping of PromptTemplate fields")
        from turngym.agents.prompts import PromptTemplate

        try:
            PromptTemplate.from_dict(self.prompt_template)
        except ValueError as error:
            raise ValueError(f"LearnerConfig.prompt_template is invalid: {error}") from None
        if {"history_length", "max_prompt_tokens"} & set(self.prompt_template):
            fail("prompt_template", "set history_length and max_prompt_tokens as config fields")
        if not 0 < self.clip_eps < 1:
            fail("clip_eps", "must be in the range (0, 1), e.g. 0.2")
        if self.clip_eps_high is not None and not self.clip_eps_high > 0:
            fail("clip_eps_high", "must be > 0 or None")
        for name in ("kl_coef", "weight_decay", "max_grad_norm", "lora_dropout"):
            if getattr(self, name) < 0:
                fail(name, "must be >= 0")
        if len(self.adam_betas) != 2 or not all(0 <= b < 1 for b in self.adam_betas):
            fail("adam_betas", "must be two numbers in [0, 1)")
        self.adam_betas = tuple(float(b) for b in self.adam_betas)
        if self.device not in (None, "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            fail("device", "use 'cuda', 'cuda:N', 'cpu' or None")
        if "{answer}" not in self.igpo_answer_template:
            fail("igpo_answer_template", "must contain '{answer}'")
        if not isinstance(self.env_kwargs, dict):
            fail("env_kwargs", "must be a mapping of turngym.make keyword arguments")
        if not isinstance(self.credit_kwargs, dict):
            fail("credit_kwargs", "must be a mapping of the credit method's hyperparameters")
        check_credit_kwargs(self.credit, self.credit_kwargs)
        check_model_source(self.model)

    def _group_based(self) -> bool:
        """Whether the credit method (or its base estimator) needs >= 2 episodes per group."""
        if self.credit in GROUP_CREDIT_METHODS:
            return True
        kwargs = self.credit_kwargs if isinstance(self.credit_kwargs, dict) else {}
        if self.credit not in BASE_DEFAULTS:
            return False
        return kwargs.get("base", BASE_DEFAULTS[self.credit]) in GROUP_CREDIT_METHODS

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (the inverse of ``LearnerConfig(**d)``)."""
        data = asdict(self)
        data["adam_betas"] = list(self.adam_betas)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LearnerConfig:
        """Builds a config from a mapping; unknown keys raise a ValueError that lists valid ones."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(
                f"unknown LearnerConfig field(s) {unknown}; valid fields: {', '.join(names)}"
            )
        if "model" not in data:
            raise ValueError(
                "LearnerConfig.model is required: the folder or hub name of a causal LM"
            )
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> LearnerConfig:
        """Reads a ``.json``, ``.yaml``/``.yml`` or ``.toml`` file (a top-level ``learner`` table
        is accepted too)."""
        from turngym.agents.train_config import read_config_file

        data = read_config_file(path)  # InvalidArgumentError (a ValueError) of one line
        return cls.from_dict(data)
