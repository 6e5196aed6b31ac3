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
       loss    = aggregate(pg_loss + kl_coef * kl)

   where ``aggregate`` is ``config.loss_agg_mode`` (verl's names; a sequence is an episode;
   default ``token-mean``, the mean over action tokens; see :mod:`turngym.agents.learner_loss`);

5. **update**: AdamW over micro-batches (rows sorted by length, then the micro-batch order
   shuffled) with gradient accumulation and gradient-norm clipping.

Mixed precision (``bf16``, default on CUDA): float32 master weights and AdamW state, bfloat16
autocast for every forward/backward and rollout (pure-bf16 weights round an ``lr = 1e-6`` step
away: 0.9 % of weights changed). 16 GB per billion trained parameters (4 weights, 4 gradients,
8 AdamW), +2 GB for the bf16 KL reference, + activations. The KL reference is always the
*initial* policy, also after a resume (:func:`~turngym.agents.learner_io.initial_model`);
checkpoints are atomic; metrics go to ``metrics.jsonl`` (``eval/*`` every ``eval_every``).
"""

from __future__ import annotations

import contextlib
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
from turngym.agents.learner_credit import gold_answer_probabilities, learner_advantages
from turngym.agents.learner_io import (
    MetricsLogger,
    find_checkpoint,
    initial_model,
    load_checkpoint,
    save_checkpoint,
)
from turngym.agents.learner_loss import (
    clipped_surrogate,
    gather_rows,
    micro_batches,
    padding_fraction,
    row_weights,
)
from turngym.agents.logprobs import completion_logprobs
from turngym.envs.orchestra.presets import ORCHESTRA_ENVS
from turngym.error import PolicyError
from turngym.pool import rollout_workers
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
        checkpoint = find_checkpoint(self.checkpoint_dir) if config.resume else None
        resuming = checkpoint is not None
        source = str(checkpoint / "model") if resuming and not config.lora else config.model
        # Trained weights stay float32 (master weights; bf16 is autocast compute). A frozen LoRA
        # base is never updated, so it may live in bf16.
        dtype = torch.bfloat16 if self.bf16 and config.lora else torch.float32
        self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(config.model)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        base = (
            model
            if model is not None and not resuming
            else AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
        )
        base = base.to(device=self.device, dtype=dtype)
        self.reference = None
        if config.kl_coef > 0 and not config.lora:
            self.reference = initial_model(self, base, given=model is not None, resuming=resuming)
        checkpointing = (
            config.gradient_checkpointing if config.gradient_checkpointing is not None else cuda
        )
        if checkpointing:
            base.gradient_checkpointing_enable()
            if config.lora:  # frozen embeddings: let gradients reach the checkpointed adapters
                base.enable_input_require_grads()
        if config.lora:
            from peft import LoraConfig, PeftModel, get_peft_model

            if resuming:
                base = PeftModel.from_pretrained(base, str(checkpoint / "model"), is_trainable=True)
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
            # Adapters are trained: float32 master weights even over a bf16 base.
            for parameter in base.parameters():
                if parameter.requires_grad:
                    parameter.data = parameter.data.float()
        self.model = base
        self.model.train()
        self.optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad],
            lr=config.learning_rate,
            betas=config.adam_betas,
            weight_decay=config.weight_decay,
        )
        # Sampling config, prompt template and generation batch all come from the config; the
        # training forward scores under the same ``self.policy.sampling``.
        self.policy = HFPolicy.for_learner(self.model, self.tokenizer, config, device=self.device)
        self.credit_fn = credit_fn
        self.progress_estimator: Any = None  # SPA's learned progress head (spa_estimator=True)
        self.progress_optimizer: Any = None
        self.iteration = 0
        self.history: list[dict[str, Any]] = []
        if resuming:
            self.iteration = load_checkpoint(checkpoint, self.optimizer)
        self.logger = MetricsLogger(
            self.output_dir, config, resume_iteration=self.iteration if resuming else None
        )

    def autocast(self) -> contextlib.AbstractContextManager:
        """bfloat16 autocast on the learner's device when mixed precision is on, else a no-op."""
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    # ------------------------------------------------------------------ credit
    def advantages(self, trajectories: list[Trajectory]) -> torch.Tensor:
        """Per-turn advantages ``[n_traj, max_turns]`` from the configured credit method."""
        if self.credit_fn is not None:
            return self.credit_fn(trajectories)
        return learner_advantages(self, trajectories)

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
        with self.autocast():  # generation runs under the same autocast as training
            if config.env_id in ORCHESTRA_ENVS:  # a team sharing the model: every agent's turns
                from turngym.envs import orchestra

                team = orchestra.rollout(config.env_id, self.policy, **arguments)
                return [
                    trajectory for episode in team for trajectory in episode.trajectories.values()
                ]
            return turngym.rollout(
                config.env_id,
                self.policy,
                progress=config.progress,
                pool=self.env_pool(),
                **arguments,
            )

    def env_pool(self) -> turngym.EnvPool:
        """The run's kept :class:`turngym.EnvPool` (``config.num_envs`` envs, worker processes
        when > 1), built on first use and closed by :meth:`close`: workers live across iterations."""
        pool = getattr(self, "_env_pool", None)
        if pool is None or pool.closed:
            n, workers = self.config.num_envs, self.config.env_workers
            pool = turngym.EnvPool(
                self.config.env_id,
                n,
                self.config.env_kwargs,
                workers=rollout_workers(n, workers),
            )
            self._env_pool = pool
        return pool

    def close(self) -> None:
        """Stops the env pool's workers (a later rollout starts a new pool)."""
        pool = getattr(self, "_env_pool", None)
        if pool is not None:
            pool.close()

    def step(self) -> dict[str, Any]:
        """One iteration: rollout, credit, policy update. Returns its metrics."""
        config, started = self.config, time.perf_counter()
        rolled = self.rollout()
        # An episode the rollout marked failed (its worker died twice) says nothing about the
        # policy: it may even have no turns. It is left out of credit and the update, and counted.
        trajectories = [t for t in rolled if t.turns and not t.metadata.get("failed")]
        if not trajectories:
            raise PolicyError(
                f"every one of the {len(rolled)} episodes failed in its env worker; see the "
                "workers' errors in the trajectories' metadata['failed']"
            )
        advantages = self.advantages(trajectories).detach().float().cpu()
        prompts, actions, token_advantages, episodes = [], [], [], []
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
                episodes.append(i)
        stats = self._update(prompts, actions, token_advantages, episodes)
        rewards = [t.total_reward for t in trajectories]
        valid = advantages[_turn_mask(trajectories, advantages.shape)]
        metrics = {
            "iteration": self.iteration + 1,
            "failed_episodes": len(rolled) - len(trajectories),
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
        if config.eval_every and (self.iteration + 1) % config.eval_every == 0:
            evaluation = self.evaluate(num_groups=config.eval_groups)
            metrics.update({f"eval/{name}": value for name, value in evaluation.items()})
        self.iteration += 1
        self.history.append(metrics)
        self.logger.log(metrics)
        if config.save_every and self.iteration % config.save_every == 0:
            self.save()
        return metrics

    def _update(
        self,
        prompts: list,
        actions: list,
        advantages: list[float],
        episodes: list[int] | None = None,
    ) -> dict[str, float]:
        """``ppo_epochs`` passes of clipped policy-gradient steps over the turn rows.

        ``episodes[r]`` is the episode of row ``r`` (the *sequence* of the loss aggregation
        modes); None makes every row its own sequence.
        """
        episodes = list(range(len(prompts))) if episodes is None else episodes
        config = self.config
        lengths = [len(p) + len(a) for p, a in zip(prompts, actions, strict=True)]
        chunks = micro_batches(lengths, config.micro_batch_size, sort=config.sort_by_length)
        unsorted = micro_batches(lengths, config.micro_batch_size, sort=False)
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
        totals = {"loss": 0.0, "kl": 0.0, "clipped": 0.0, "tokens": 0}
        norms: list[float] = []
        generator = torch.Generator().manual_seed(config.seed + self.iteration)
        for _ in range(config.ppo_epochs):
            order = torch.randperm(len(chunks), generator=generator).tolist()
            for first in range(0, len(order), accumulation):
                group = [chunks[k] for k in order[first : first + accumulation]]
                rows = [i for chunk in group for i in chunk]
                weights = dict(
                    zip(
                        rows,
                        row_weights(
                            [len(actions[i]) for i in rows],
                            config.loss_agg_mode,
                            config.max_new_tokens,
                            [episodes[i] for i in rows],
                        ),
                        strict=True,
                    )
                )
                self.optimizer.zero_grad(set_to_none=True)
                step_loss = 0.0
                for chunk in group:
                    logp, mask = self._chunk_logprobs(self.model, prompts, actions, chunk)
                    advantage = torch.tensor([advantages[i] for i in chunk], device=logp.device)
                    logp_old = logp.detach() if old is None else gather_rows(old, chunk, logp)
                    ratio = torch.exp(logp - logp_old)
                    per_token, clipped = clipped_surrogate(
                        ratio, advantage[:, None], eps_low, eps_high
                    )
                    if reference is not None:
                        delta = gather_rows(reference, chunk, logp) - logp
                        kl = delta.exp() - delta - 1
                        per_token = per_token + config.kl_coef * kl
                        totals["kl"] += float((kl.detach() * mask).sum())
                    row_weight = torch.tensor([weights[i] for i in chunk], device=logp.device)
                    loss = ((per_token * mask).sum(-1) * row_weight).sum()
                    loss.backward()
                    step_loss += float(loss.detach())
                    totals["clipped"] += float((clipped & mask).sum())
                    totals["tokens"] += int(mask.sum())
                # Pre-clip total norm of every optimizer step (inf max_norm: measure, no clip).
                norm = torch.nn.utils.clip_grad_norm_(
                    [p for p in self.model.parameters() if p.requires_grad],
                    config.max_grad_norm or math.inf,
                )
                norms.append(float(norm))
                totals["loss"] += step_loss
                self.optimizer.step()
        count = max(1, totals["tokens"])
        return {
            "loss": totals["loss"] / max(1, len(norms)),
            "kl": totals["kl"] / count,
            "clip_frac": totals["clipped"] / count,
            "grad_norm": float(np.mean(norms)) if norms else 0.0,
            "grad_norm_max": max(norms, default=0.0),
            "optimizer_steps": len(norms),
            "action_tokens": sum(map(len, actions)),
            "padding_fraction": padding_fraction(lengths, chunks),
            "padding_fraction_unsorted": padding_fraction(lengths, unsorted),
        }

    def _chunk_logprobs(self, model: Any, prompts: list, actions: list, chunk: list[int]):
        with self.autocast():
            return completion_logprobs(
                model,
                [prompts[i] for i in chunk],
                [actions[i] for i in chunk],
                pad_id=self.tokenizer.pad_token_id,
                sampling=self.policy.sampling,
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
        self.close()
        return self.history

    @torch.no_grad()
    def evaluate(
        self,
        num_groups: int = 8,
        seed: int = 10_000,
        task_class: Callable[[str], str] | None = None,
    ) -> dict[str, float]:
        """Mean reward, success and turns of the current policy on ``num_groups`` task groups.

        ``task_class`` maps a task id to its class (e.g. the exit side on Corridor); then the
        result also holds ``success/<class>`` for every class seen, so a policy that solves one
        class only (always walking east) cannot hide behind the mean.
        """
        trajectories = self.rollout(seed=seed, num_groups=num_groups)
        result = {
            "reward": float(np.mean([t.total_reward for t in trajectories])),
            "success": float(np.mean([bool(t.success) for t in trajectories])),
            "turns": float(np.mean([len(t.turns) for t in trajectories])),
        }
        if task_class is not None:
            classes: dict[str, list[bool]] = {}
            for trajectory in trajectories:
                classes.setdefault(task_class(trajectory.task_id), []).append(
                    bool(trajectory.success)
                )
            for name in sorted(classes):
                result[f"success/{name}"] = float(np.mean(classes[name]))
        return result

    def save(self, path: str | Path | None = None) -> Path:
        """Writes model (or LoRA adapter), tokenizer, optimizer, iteration and RNG states."""
        return save_checkpoint(Path(path) if path else self.checkpoint_dir, self)


def _turn_mask(trajectories: list[Trajectory], shape: torch.Size) -> torch.Tensor:
    mask = torch.zeros(shape, dtype=torch.bool)
    for i, trajectory in enumerate(trajectories):
        mask[i, : len(trajectory.turns)] = True
    return mask
