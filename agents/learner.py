"""``Learner``: GRPO/PPO-style training of a transformers causal LM on a turngym env.

One iteration reads top to bottom in :meth:`Learner.step`:

1. **rollout**: ``groups_per_step`` task groups of ``group_size`` episodes through
   :func:`turngym.rollout` with the current policy (:class:`~turngym.agents.hf.HFPolicy`);
2. **credit**: ``advantages = turngym.credit.<credit>(TurnBatch.from_trajectories(trajs), **kw)``,
   ``[n_traj, max_turns]``; for IGPO the learner first computes the teacher-forced gold-answer
   probability after every turn, ``p_t = exp(mean log pi(gold | context after turn t))``;
3. **spread**: turn ``t``'s advantage ``A_t`` applies to every token of that turn's action;
4. **loss** on each turn sequence ``prompt + action`` (teacher forcing), per action token::

       ratio   = exp(logp - logp_old)
       pg_loss = -min(ratio * A, clip(ratio, 1 - eps, 1 + eps_high) * A)
       kl      = exp(logp_ref - logp) - (logp_ref - logp) - 1          (k3 estimator)
       loss    = mean over action tokens of (pg_loss + kl_coef * kl)

5. **update**: AdamW over micro-batches with gradient accumulation and gradient-norm clipping.

bf16 and gradient checkpointing switch on by default on CUDA; LoRA via ``peft`` is optional;
checkpoints hold model, optimizer, iteration and RNG states; metrics go to ``metrics.jsonl``
(and TensorBoard / W&B when asked).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import turngym
from turngym.agents.hf import HFPolicy, default_device
from turngym.agents.learner_config import LearnerConfig
from turngym.agents.learner_credit import gold_answer_probabilities, turn_features
from turngym.agents.learner_io import MetricsLogger, load_checkpoint, save_checkpoint
from turngym.agents.logprobs import completion_logprobs
from turngym.envs.orchestra.presets import ORCHESTRA_ENVS
from turngym.error import PolicyError
from turngym.trajectory import Trajectory

__all__ = ["Learner", "LearnerConfig", "gold_answer_probabilities"]

CreditFn = Callable[[list[Trajectory]], torch.Tensor]


class Learner:
    """Trains ``config.model`` on ``config.env_id`` with the credit method ``config.credit``.

    Args:
        config: the :class:`LearnerConfig`.
        credit_fn: optional override ``trajectories -> advantages [n_traj, max_turns]`` (for
            custom estimators); by default ``turngym.credit.<config.credit>`` is used.
        model, tokenizer: an already-loaded model/tokenizer instead of loading ``config.model``.
    """

    def __init__(
        self,
        config: LearnerConfig,
        *,
        credit_fn: CreditFn | None = None,
        model: Any = None,
        tokenizer: Any = None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.config = config
        self.device = torch.device(config.device) if config.device else default_device()
        cuda = self.device.type == "cuda"
        self.bf16 = cuda if config.bf16 is None else config.bf16
        self.output_dir = Path(config.output_dir)
        self.checkpoint_dir = self.output_dir / "checkpoint"
        resuming = config.resume and (self.checkpoint_dir / "state.json").is_file()
        source = (
            str(self.checkpoint_dir / "model") if resuming and not config.lora else config.model
        )
        dtype = torch.bfloat16 if self.bf16 else torch.float32
        self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(config.model)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        base = (
            model
            if model is not None and not resuming
            else AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
        )
        base = base.to(device=self.device, dtype=dtype)
        if config.gradient_checkpointing if config.gradient_checkpointing is not None else cuda:
            base.gradient_checkpointing_enable()
        self.reference = None
        if config.kl_coef > 0 and not config.lora:
            self.reference = copy.deepcopy(base).eval().requires_grad_(False)
        if config.lora:
            from peft import LoraConfig, PeftModel, get_peft_model

            if resuming:
                base = PeftModel.from_pretrained(
                    base, str(self.checkpoint_dir / "model"), is_trainable=True
                )
            else:
                base = get_peft_model(
                    base,
                    LoraConfig(
                        r=config.lora_r,
                        lora_alpha=config.lora_alpha,
                        lora_dropout=config.lora_dropout,
                        target_modules=config.lora_target_modules or "all-linear",
                        task_type="CAUSAL_LM",
                    ),
                )
        self.model = base
        self.model.train()
        self.optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=config.learning_rate,
            betas=config.adam_betas,
            weight_decay=config.weight_decay,
        )
        self.policy = HFPolicy(
            self.model,
            self.tokenizer,
            temperature=config.temperature,
            top_p=config.top_p,
            max_new_tokens=config.max_new_tokens,
            max_prompt_tokens=config.max_prompt_tokens,
            device=self.device,
        )
        self.credit_fn = credit_fn
        self.progress_estimator: Any = None  # SPA's learned progress head (spa_estimator=True)
        self.progress_optimizer: Any = None
        self.iteration = 0
        self.history: list[dict[str, Any]] = []
        if resuming:
            self.iteration = load_checkpoint(self.checkpoint_dir, self.optimizer)
        self.logger = MetricsLogger(self.output_dir, config)

    # ------------------------------------------------------------------ credit
    def advantages(self, trajectories: list[Trajectory]) -> torch.Tensor:
        """Per-turn advantages ``[n_traj, max_turns]`` from the configured credit method."""
        if self.credit_fn is not None:
            return self.credit_fn(trajectories)
        import turngym.credit as credit

        batch = credit.TurnBatch.from_trajectories(trajectories)
        kwargs = dict(self.config.credit_kwargs)
        name = self.config.credit
        if name == "gated":
            # G-RA transforms rewards; an advantage estimator (``base``, default grpo) follows.
            base = getattr(credit, kwargs.pop("base", "grpo"))
            base_kwargs = kwargs.pop("base_kwargs", {})
            return base(batch, rewards=credit.gated(batch, **kwargs), **base_kwargs)
        if name == "igpo" and "gold_probs" not in kwargs:
            kwargs["gold_probs"] = gold_answer_probabilities(
                self.model,
                self.tokenizer,
                trajectories,
                template=self.config.igpo_answer_template,
                max_prompt_tokens=self.config.max_prompt_tokens,
                micro_batch_size=self.config.micro_batch_size,
            ).to(batch.device)
        if name == "spa" and self.config.spa_estimator and "contributions" not in kwargs:
            kwargs["features"], kwargs["estimator"] = self._fit_progress_estimator(
                trajectories, batch
            )
        return getattr(credit, name)(batch, **kwargs)

    def _fit_progress_estimator(self, trajectories: list[Trajectory], batch: Any) -> tuple:
        """SPA: per-turn features from the policy LM, then a few estimator steps on this batch."""
        from turngym.credit.spa import ProgressEstimator, progress_train_step

        features = turn_features(
            self.model, self.tokenizer, trajectories, self.config.micro_batch_size, self.device
        )
        if self.progress_estimator is None:
            self.progress_estimator = ProgressEstimator(features.shape[-1])
            self.progress_optimizer = torch.optim.Adam(
                self.progress_estimator.parameters(), lr=1e-2
            )
        for _ in range(self.config.spa_estimator_steps):
            progress_train_step(self.progress_estimator, self.progress_optimizer, features, batch)
        return features, self.progress_estimator

    # ------------------------------------------------------------------ one iteration
    def rollout(self, seed: int | None = None, num_groups: int | None = None) -> list[Trajectory]:
        """Group rollouts with the current policy (``groups x group_size`` episodes)."""
        config = self.config
        seed = config.seed + self.iteration * config.groups_per_step if seed is None else seed
        groups = num_groups or config.groups_per_step
        torch.manual_seed(seed)
        arguments = {
            "num_episodes": groups * config.group_size,
            "seed": seed,
            "group_size": config.group_size,
            "num_envs": config.num_envs,
            "env_kwargs": config.env_kwargs,
        }
        if config.env_id in ORCHESTRA_ENVS:  # a team sharing the model: every agent's trajectory
            from turngym.envs import orchestra

            team = orchestra.rollout(config.env_id, self.policy, **arguments)
            return [trajectory for episode in team for trajectory in episode.trajectories.values()]
        return turngym.rollout(config.env_id, self.policy, progress=config.progress, **arguments)

    def step(self) -> dict[str, Any]:
        """One iteration: rollout, credit, policy update. Returns its metrics."""
        config, started = self.config, time.perf_counter()
        trajectories = self.rollout()
        advantages = self.advantages(trajectories).detach().float().cpu()
        prompts, actions, token_advantages = [], [], []
        for i, trajectory in enumerate(trajectories):
            for t, turn in enumerate(trajectory.turns):
                if turn.info.get("idle"):  # an orchestra agent that did not act (no tokens)
                    continue
                if not turn.token_ids or turn.prompt_token_ids is None:
                    raise PolicyError(
                        "a turn has no token ids: the learner trains on HFPolicy rollouts only"
                    )
                prompts.append(turn.prompt_token_ids)
                actions.append(turn.token_ids)
                token_advantages.append(float(advantages[i, t]))
        stats = self._update(prompts, actions, token_advantages)
        rewards = [t.total_reward for t in trajectories]
        valid = advantages[_turn_mask(trajectories, advantages.shape)]
        metrics = {
            "iteration": self.iteration + 1,
            "reward": float(np.mean(rewards)),
            "success": float(np.mean([bool(t.success) for t in trajectories])),
            "turns": float(np.mean([len(t.turns) for t in trajectories])),
            "adv_mean": float(valid.mean()) if valid.numel() else 0.0,
            "adv_std": float(valid.std()) if valid.numel() > 1 else 0.0,
            "adv_min": float(valid.min()) if valid.numel() else 0.0,
            "adv_max": float(valid.max()) if valid.numel() else 0.0,
            **stats,
            "seconds": time.perf_counter() - started,
        }
        self.iteration += 1
        self.history.append(metrics)
        self.logger.log(metrics)
        if config.save_every and self.iteration % config.save_every == 0:
            self.save()
        return metrics

    def _update(self, prompts: list, actions: list, advantages: list[float]) -> dict[str, float]:
        config = self.config
        rows = len(prompts)
        micro = config.micro_batch_size
        chunks = [list(range(s, min(rows, s + micro))) for s in range(0, rows, micro)]
        accumulation = config.gradient_accumulation_steps or len(chunks)
        updates_per_epoch = math.ceil(len(chunks) / accumulation)
        reuse_current = config.ppo_epochs == 1 and updates_per_epoch == 1
        old = None if reuse_current else self._logprobs(self.model, prompts, actions, chunks)
        reference = None
        if config.kl_coef > 0:
            reference = self._logprobs(
                self.reference, prompts, actions, chunks, adapter_off=self.reference is None
            )
        eps_low, eps_high = config.clip_eps, config.clip_eps_high or config.clip_eps
        totals = {"loss": 0.0, "kl": 0.0, "clip_frac": 0.0, "grad_norm": 0.0, "tokens": 0}
        generator = torch.Generator().manual_seed(config.seed + self.iteration)
        for _ in range(config.ppo_epochs):
            order = torch.randperm(len(chunks), generator=generator).tolist()
            for first in range(0, len(order), accumulation):
                group = [chunks[k] for k in order[first : first + accumulation]]
                tokens = sum(len(actions[i]) for chunk in group for i in chunk)
                self.optimizer.zero_grad(set_to_none=True)
                for chunk in group:
                    logp, mask = self._chunk_logprobs(self.model, prompts, actions, chunk)
                    advantage = torch.tensor([advantages[i] for i in chunk], device=logp.device)[
                        :, None
                    ]
                    logp_old = logp.detach() if old is None else _stack(old, chunk, logp)
                    ratio = torch.exp(logp - logp_old)
                    pg = -torch.min(
                        ratio * advantage, ratio.clamp(1 - eps_low, 1 + eps_high) * advantage
                    )
                    per_token = pg
                    if reference is not None:
                        delta = _stack(reference, chunk, logp) - logp
                        kl = delta.exp() - delta - 1
                        per_token = pg + config.kl_coef * kl
                        totals["kl"] += float((kl.detach() * mask).sum())
                    loss = (per_token * mask).sum() / tokens
                    loss.backward()
                    totals["loss"] += float(loss.detach()) * tokens
                    clipped = ((ratio - 1).abs() > eps_low) & mask
                    totals["clip_frac"] += float(clipped.sum())
                totals["tokens"] += tokens
                if config.max_grad_norm:
                    norm = torch.nn.utils.clip_grad_norm_(
                        self.model.parameters(), config.max_grad_norm
                    )
                    totals["grad_norm"] = float(norm)
                self.optimizer.step()
        count = max(1, totals["tokens"])
        return {
            "loss": totals["loss"] / count,
            "kl": totals["kl"] / count,
            "clip_frac": totals["clip_frac"] / count,
            "grad_norm": totals["grad_norm"],
            "action_tokens": sum(map(len, actions)),
        }

    def _chunk_logprobs(self, model: Any, prompts: list, actions: list, chunk: list[int]):
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return completion_logprobs(
                model,
                [prompts[i] for i in chunk],
                [actions[i] for i in chunk],
                pad_id=self.tokenizer.pad_token_id,
                temperature=self.config.temperature,
                device=self.device,
            )

    @torch.no_grad()
    def _logprobs(
        self, model: Any, prompts: list, actions: list, chunks: list, adapter_off: bool = False
    ):
        """Per-chunk log-probs without gradients (old policy, or the reference model)."""
        results = {}
        for chunk in chunks:
            if adapter_off:  # LoRA: the reference is the base model with the adapter disabled
                with self.model.disable_adapter():
                    logp, _ = self._chunk_logprobs(self.model, prompts, actions, chunk)
            else:
                logp, _ = self._chunk_logprobs(model, prompts, actions, chunk)
            for row, i in enumerate(chunk):
                results[i] = logp[row, logp.shape[1] - len(actions[i]) :]
        return results

    # ------------------------------------------------------------------ driver
    def train(self, steps: int | None = None) -> list[dict[str, Any]]:
        """Runs iterations until ``steps`` (default ``config.steps``) are done; saves at the end."""
        target = steps if steps is not None else self.config.steps
        while self.iteration < target:
            self.step()
        self.save()
        self.logger.close()
        return self.history

    @torch.no_grad()
    def evaluate(self, num_groups: int = 8, seed: int = 10_000) -> dict[str, float]:
        """Mean reward, success and turns of the current policy on ``num_groups`` task groups."""
        trajectories = self.rollout(seed=seed, num_groups=num_groups)
        return {
            "reward": float(np.mean([t.total_reward for t in trajectories])),
            "success": float(np.mean([bool(t.success) for t in trajectories])),
            "turns": float(np.mean([len(t.turns) for t in trajectories])),
        }

    def save(self, path: str | Path | None = None) -> Path:
        """Writes model (or LoRA adapter), tokenizer, optimizer, iteration and RNG states."""
        return save_checkpoint(Path(path) if path else self.checkpoint_dir, self)


def _stack(per_row: dict[int, torch.Tensor], chunk: list[int], like: torch.Tensor) -> torch.Tensor:
    """Right-aligns the stored per-row log-probs of ``chunk`` into a tensor shaped like ``like``."""
    out = torch.zeros_like(like)
    for row, i in enumerate(chunk):
        values = per_row[i]
        out[row, out.shape[1] - len(values) :] = values.to(out.device, out.dtype)
    return out


def _turn_mask(trajectories: list[Trajectory], shape: torch.Size) -> torch.Tensor:
    mask = torch.zeros(shape, dtype=torch.bool)
    for i, trajectory in enumerate(trajectories):
        mask[i, : len(trajectory.turns)] = True
    return mask
