"""``LearnerConfig``: every knob of :class:`turngym.agents.learner.Learner`, validated.

Load one from a JSON, YAML or TOML file with :meth:`LearnerConfig.from_file` (what
``turngym train --config FILE`` does); unknown keys and bad values raise a ``ValueError`` that
names the field.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["CREDIT_METHODS", "LearnerConfig"]

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
    #: Seed of rollouts, sampling and data order; iteration ``k`` rolls out seeds from
    #: ``seed + k * groups_per_step``.
    seed: int = 0
    #: Sampling temperature of rollouts (also divides the logits when log-probs are recomputed).
    temperature: float = 1.0
    #: Nucleus sampling mass of rollouts.
    top_p: float = 1.0
    #: Longest action in tokens.
    max_new_tokens: int = 32
    #: Keep at most this many prompt tokens (the most recent); None keeps all.
    max_prompt_tokens: int | None = None
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
    #: Passes over each rollout batch.
    ppo_epochs: int = 1
    #: Turn sequences per forward/backward pass.
    micro_batch_size: int = 16
    #: Micro-batches accumulated per optimizer step; None accumulates the whole rollout batch
    #: (one optimizer step per epoch).
    gradient_accumulation_steps: int | None = None
    #: Gradient norm clip; 0 disables clipping.
    max_grad_norm: float = 1.0
    #: Train in bfloat16; None means "on CUDA only".
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
        for name in (
            "steps",
            "groups_per_step",
            "group_size",
            "num_envs",
            "max_new_tokens",
            "ppo_epochs",
            "micro_batch_size",
            "lora_r",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                fail(name, "must be a positive int")
        for name in ("max_prompt_tokens", "gradient_accumulation_steps"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                fail(name, "must be a positive int or None")
        if self.save_every < 0:
            fail("save_every", "must be >= 0 (0 saves only at the end)")
        if not self.learning_rate > 0:
            fail("learning_rate", "must be > 0")
        if self.temperature < 0:
            fail("temperature", "must be >= 0 (0 is greedy)")
        if not 0 < self.top_p <= 1:
            fail("top_p", "must be in (0, 1]")
        if not 0 < self.clip_eps < 1:
            fail("clip_eps", "must be in (0, 1), e.g. 0.2")
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
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"config file {path} does not exist")
        text = path.read_text(encoding="utf-8")
        suffix = path.suffix.lower()
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            raise ValueError(f"config file {path}: use a .json, .yaml, .yml or .toml file")
        if isinstance(data, dict) and set(data) == {"learner"}:
            data = data["learner"]
        if not isinstance(data, dict):
            raise ValueError(f"config file {path} must hold a mapping of LearnerConfig fields")
        return cls.from_dict(data)
