"""``Learner``: GRPO/PPO-style training of a transformers causal LM on a turngym env.

One iteration reads top to bottom in :meth:`Learner.step`:

1. **rollout**: ``groups_per_step`` task groups of ``group_size`` episodes through
   :func:`turngym.rollout` with the current policy (:class:`~turngym.agents.hf.HFPolicy`, or
   any policy recording token ids and logprobs, e.g. an OpenAIPolicy against vLLM/SGLang:
   then ``logp_old`` is the server's recorded logprob and ``weight_sync`` brings the server's
   weights up to date after each update; see :mod:`turngym.agents.learner_update`);
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
    load_checkpoint,
    save_checkpoint,
)
from turngym.agents.learner_model import load_learner_model
from turngym.agents.learner_update import (
    advantage_stats,
    chunk_logprobs,
    policy_update,
    recorded_logprobs,
    turn_rows,
)
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
        policy: the rollout policy, when not the learner's own :class:`HFPolicy` over its model:
            any policy that records prompt token ids, action token ids and logprobs, e.g.
            :class:`~turngym.agents.openai_compat.OpenAIPolicy` (``from_learner_config``, so it
            samples as the config says) against a vLLM or SGLang server of the same model. The
            PPO ratio is then taken against the recorded logprobs (``config.old_logprobs``).
        weight_sync: called as ``weight_sync(learner)`` after every update, before the next
            rollout, to bring the server's weights up to the learner's: e.g.
            :class:`~turngym.agents.weight_sync.SGLangDiskSync`, or a function that drives vLLM's
            weight-transfer API (NCCL/IPC, GPU only). Without it a server keeps its weights and
            the ratio against its recorded logprobs corrects the growing mismatch (clipped).
    """

    def __init__(
        self,
        config: LearnerConfig,
        *,
        credit_fn: CreditFn | None = None,
        model: Any = None,
        tokenizer: Any = None,
        policy: Any = None,
        weight_sync: Callable[[Learner], Any] | None = None,
    ) -> None:
        self.config = config
        self.device = torch.device(config.device) if config.device else default_device()
        self.bf16 = self.device.type == "cuda" if config.bf16 is None else config.bf16
        self.output_dir = Path(config.output_dir)
        self.checkpoint_dir = self.output_dir / "checkpoint"
        checkpoint = find_checkpoint(self.checkpoint_dir) if config.resume else None
        loaded = load_learner_model(self, checkpoint=checkpoint, model=model, tokenizer=tokenizer)
        self.tokenizer, self.model = loaded.tokenizer, loaded.model
        self.reference, self.optimizer = loaded.reference, loaded.optimizer
        # Sampling config, prompt template and generation batch all come from the config; the
        # training forward scores under the same ``self.policy.sampling``.
        self.policy = HFPolicy.for_learner(self.model, self.tokenizer, config, device=self.device)
        #: What rollouts sample from: ``policy`` when given, else :attr:`policy`.
        self.rollout_policy = policy if policy is not None else self.policy
        self.weight_sync = weight_sync
        self.use_recorded_logprobs = config.old_logprobs == "recorded" or (
            config.old_logprobs == "auto" and policy is not None
        )
        self.credit_fn = credit_fn
        self.progress_estimator: Any = None  # SPA's learned progress head (spa_estimator=True)
        self.progress_optimizer: Any = None
        self.iteration = 0
        self.history: list[dict[str, Any]] = []
        if checkpoint is not None:
            self.iteration = load_checkpoint(checkpoint, self.optimizer)
        self.logger = MetricsLogger(
            self.output_dir, config, resume_iteration=self.iteration if checkpoint else None
        )

    @property
    def sampling(self) -> Any:
        """The rollout policy's ``SamplingConfig``, which the training forward reproduces."""
        return self.policy.sampling

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

                team = orchestra.rollout(config.env_id, self.rollout_policy, **arguments)
                return [
                    trajectory for episode in team for trajectory in episode.trajectories.values()
                ]
            return turngym.rollout(
                config.env_id,
                self.rollout_policy,
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
        rows = turn_rows(trajectories, advantages)
        recorded = recorded_logprobs(rows) if self.use_recorded_logprobs else None
        stats = policy_update(
            self, rows.prompts, rows.actions, rows.advantages, rows.episodes, recorded
        )
        if self.weight_sync is not None:
            synced = time.perf_counter()
            self.weight_sync(self)
            stats["weight_sync_seconds"] = time.perf_counter() - synced
        rewards = [t.total_reward for t in trajectories]
        metrics = {
            "iteration": self.iteration + 1,
            "failed_episodes": len(rolled) - len(trajectories),
            "reward": float(np.mean(rewards)),
            "success": float(np.mean([bool(t.success) for t in trajectories])),
            "turns": float(np.mean([len(t.turns) for t in trajectories])),
            **advantage_stats(trajectories, advantages),
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
        """The policy update over turn rows (:func:`~turngym.agents.learner_update.policy_update`)."""
        return policy_update(self, prompts, actions, advantages, episodes)

    def _chunk_logprobs(self, model: Any, prompts: list, actions: list, chunk: list[int]):
        return chunk_logprobs(self, model, prompts, actions, chunk)

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
