"""The learner's policy update: trajectories -> turn rows -> clipped policy-gradient steps.

:func:`turn_rows` turns credited trajectories into one row per acting turn (prompt ids, action
ids, the turn's advantage, its episode, and the logprobs the rollout policy recorded);
:func:`policy_update` runs ``ppo_epochs`` passes of clipped policy-gradient steps over those rows
(the equations are in :mod:`turngym.agents.learner`). With ``recorded`` logprobs the ratio is
``exp(logp - logp_recorded)``: rollouts from a vLLM/SGLang server are importance-weighted
against the server's own probabilities (which differ from the trainer's by numerics, and by
the update when the server's weights lag), as verl's and slime's rollout corrections do.

The recorded logprobs must be of the distribution the learner scores: the model's logits under
the config's sampling transforms (temperature, top-k/p, penalties). vLLM returns raw-model
logprobs by default (``--logprobs-mode raw_logprobs``): with ``temperature != 1`` or a
truncation, serve with ``--logprobs-mode processed_logprobs``. The ``recorded_logprob_gap``
metric (mean ``|logp - logp_recorded|`` over action tokens before the first update) shows a
mismatch: about 0 when the server runs the learner's weights and transforms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from turngym.agents.learner_loss import (
    clipped_surrogate,
    gather_rows,
    micro_batches,
    padding_fraction,
    row_weights,
)
from turngym.agents.logprobs import completion_logprobs
from turngym.error import PolicyError
from turngym.trajectory import Trajectory

__all__ = [
    "TurnRows",
    "advantage_stats",
    "chunk_logprobs",
    "policy_update",
    "recorded_logprobs",
    "turn_rows",
]


@dataclass
class TurnRows:
    """One row per acting turn of a batch of credited trajectories."""

    #: Prompt token ids of each row (what the policy saw).
    prompts: list[list[int]] = field(default_factory=list)
    #: Action token ids of each row (what the policy wrote).
    actions: list[list[int]] = field(default_factory=list)
    #: The turn's advantage, spread over every action token of the row.
    advantages: list[float] = field(default_factory=list)
    #: The episode (index into the trajectories) of each row: the loss aggregation's sequence.
    episodes: list[int] = field(default_factory=list)
    #: The rollout policy's logprob of each action token (None for rows that lack them).
    logprobs: list[list[float] | None] = field(default_factory=list)


def turn_rows(trajectories: list[Trajectory], advantages: torch.Tensor) -> TurnRows:
    """The rows of ``trajectories`` with their turn's advantage ``advantages[i, t]``.

    Raises:
        PolicyError: a turn lacks the prompt or action token ids the loss is computed on (the
            message names which, and the turn).
    """
    rows = TurnRows()
    for i, trajectory in enumerate(trajectories):
        for t, turn in enumerate(trajectory.turns):
            if turn.info.get("idle"):  # an orchestra agent that did not act (no tokens)
                continue
            where = f"turn {t} of episode {trajectory.traj_id or i}"
            if not turn.token_ids:
                raise PolicyError(
                    f"{where} has no action token ids: roll out with a policy that records them "
                    "(HFPolicy, or OpenAIPolicy(logprobs=True) against vLLM >= 0.10.2 or SGLang)"
                )
            if not turn.prompt_token_ids:
                raise PolicyError(
                    f"{where} has action token ids but no prompt token ids: the server did not "
                    "return them (SGLang: return_prompt_token_ids; vLLM >= 0.10.2: "
                    "return_token_ids, both sent by OpenAIPolicy(logprobs=True))"
                )
            recorded = turn.logprobs
            if recorded is not None and len(recorded) != len(turn.token_ids):
                raise PolicyError(
                    f"{where} has {len(turn.token_ids)} action token ids but "
                    f"{len(recorded)} logprobs; the rollout policy recorded them inconsistently"
                )
            rows.prompts.append(turn.prompt_token_ids)
            rows.actions.append(turn.token_ids)
            rows.advantages.append(float(advantages[i, t]))
            rows.episodes.append(i)
            rows.logprobs.append(list(recorded) if recorded is not None else None)
    return rows


def recorded_logprobs(rows: TurnRows) -> dict[int, torch.Tensor]:
    """The rows' recorded logprobs as ``logp_old`` (see the module docstring).

    Raises:
        PolicyError: a row has no recorded logprobs.
    """
    missing = sum(values is None for values in rows.logprobs)
    if missing:
        raise PolicyError(
            f"{missing} of {len(rows.logprobs)} turns have no recorded logprobs, which "
            "old_logprobs='recorded' needs: use OpenAIPolicy(logprobs=True) against a server "
            "that returns them, or LearnerConfig(old_logprobs='recomputed')"
        )
    return {i: torch.tensor(values, dtype=torch.float32) for i, values in enumerate(rows.logprobs)}


def advantage_stats(trajectories: list[Trajectory], advantages: torch.Tensor) -> dict[str, float]:
    """Mean, std, min and max of the advantages of real turns (padding left out)."""
    mask = torch.zeros(advantages.shape, dtype=torch.bool)
    for i, trajectory in enumerate(trajectories):
        mask[i, : len(trajectory.turns)] = True
    valid = advantages[mask]
    return {
        "adv_mean": float(valid.mean()) if valid.numel() else 0.0,
        "adv_std": float(valid.std()) if valid.numel() > 1 else 0.0,
        "adv_min": float(valid.min()) if valid.numel() else 0.0,
        "adv_max": float(valid.max()) if valid.numel() else 0.0,
    }


def chunk_logprobs(learner: Any, model: Any, prompts: list, actions: list, chunk: list[int]):
    """Log-probs (and mask) of the actions of rows ``chunk`` under ``model``, as the learner
    scores them (its autocast, pad id, sampling transforms and device)."""
    with learner.autocast():
        return completion_logprobs(
            model,
            [prompts[i] for i in chunk],
            [actions[i] for i in chunk],
            pad_id=learner.tokenizer.pad_token_id,
            sampling=learner.sampling,
            device=learner.device,
        )


@torch.no_grad()
def _frozen_logprobs(
    learner: Any, model: Any, prompts: list, actions: list, chunks: list, adapter_off: bool = False
) -> dict[int, torch.Tensor]:
    """Per-row log-probs without gradients (old policy, or the reference model)."""
    results = {}
    for chunk in chunks:
        if adapter_off:  # LoRA: the reference is the base model with the adapter disabled
            with learner.model.disable_adapter():
                logp, _ = chunk_logprobs(learner, learner.model, prompts, actions, chunk)
        else:
            logp, _ = chunk_logprobs(learner, model, prompts, actions, chunk)
        for row, i in enumerate(chunk):
            results[i] = logp[row, logp.shape[1] - len(actions[i]) :]
    return results


def policy_update(
    learner: Any,
    prompts: list,
    actions: list,
    advantages: list[float],
    episodes: list[int] | None = None,
    recorded: dict[int, torch.Tensor] | None = None,
) -> dict[str, float]:
    """``ppo_epochs`` passes of clipped policy-gradient steps over the turn rows.

    ``episodes[r]`` is the episode of row ``r`` (the *sequence* of the loss aggregation
    modes); None makes every row its own sequence. ``recorded[r]`` (one logprob per action
    token) is ``logp_old`` of row ``r``; None recomputes it with the current model.
    """
    episodes = list(range(len(prompts))) if episodes is None else episodes
    config, model = learner.config, learner.model
    lengths = [len(p) + len(a) for p, a in zip(prompts, actions, strict=True)]
    chunks = micro_batches(lengths, config.micro_batch_size, sort=config.sort_by_length)
    unsorted = micro_batches(lengths, config.micro_batch_size, sort=False)
    accumulation = config.gradient_accumulation_steps or len(chunks)
    updates_per_epoch = math.ceil(len(chunks) / accumulation)
    reuse_current = config.ppo_epochs == 1 and updates_per_epoch == 1 and recorded is None
    old = recorded
    if old is None and not reuse_current:
        old = _frozen_logprobs(learner, model, prompts, actions, chunks)
    reference = None
    if config.kl_coef > 0:
        reference = _frozen_logprobs(
            learner,
            learner.reference,
            prompts,
            actions,
            chunks,
            adapter_off=learner.reference is None,
        )
    eps_low, eps_high = config.clip_eps, config.clip_eps_high or config.clip_eps
    totals = {"loss": 0.0, "kl": 0.0, "clipped": 0.0, "tokens": 0, "gap": 0.0, "gap_tokens": 0}
    norms: list[float] = []
    trainable = [p for p in model.parameters() if p.requires_grad]
    generator = torch.Generator().manual_seed(config.seed + learner.iteration)
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
            learner.optimizer.zero_grad(set_to_none=True)
            step_loss = 0.0
            for chunk in group:
                logp, mask = chunk_logprobs(learner, model, prompts, actions, chunk)
                advantage = torch.tensor([advantages[i] for i in chunk], device=logp.device)
                logp_old = logp.detach() if old is None else gather_rows(old, chunk, logp)
                if recorded is not None and not norms:  # before the first update
                    totals["gap"] += float(((logp.detach() - logp_old).abs() * mask).sum())
                    totals["gap_tokens"] += int(mask.sum())
                ratio = torch.exp(logp - logp_old)
                per_token, clipped = clipped_surrogate(ratio, advantage[:, None], eps_low, eps_high)
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
            norm = torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm or math.inf)
            norms.append(float(norm))
            totals["loss"] += step_loss
            learner.optimizer.step()
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
        **(
            {"recorded_logprob_gap": totals["gap"] / max(1, totals["gap_tokens"])}
            if recorded is not None
            else {}
        ),
    }
