"""What the learner computes for credit methods that need the policy model itself.

- IGPO: :func:`gold_answer_probabilities`, the teacher-forced probability of the gold answer after
  every turn, ``p_t = exp(mean log pi(gold | context after turn t))``, ``[n_traj, max_turns + 1]``.
- SPA: :func:`turn_features`, the policy LM's last hidden state at the end of each turn's action,
  ``[n_traj, max_turns, hidden]``, the input of SPA's progress estimator.

Both score many sequences in batched forward passes (``micro_batch_size`` rows at a time).
:func:`learner_advantages` runs the learner's configured credit method with them.
"""

from __future__ import annotations

from typing import Any

import torch

from turngym.agents.learner_checks import BASE_DEFAULTS
from turngym.agents.learner_io import gold_answer
from turngym.agents.logprobs import completion_logprobs, last_hidden_states
from turngym.agents.prompts import PromptTemplate, context_prompt_ids
from turngym.trajectory import Trajectory

__all__ = ["gold_answer_probabilities", "learner_advantages", "turn_features"]


@torch.no_grad()
def gold_answer_probabilities(
    model: Any,
    tokenizer: Any,
    trajectories: list[Trajectory],
    *,
    template: str = "{answer}",
    max_prompt_tokens: int | None = None,
    micro_batch_size: int = 16,
    prompt_template: PromptTemplate | None = None,
) -> torch.Tensor:
    """IGPO's ``p_t = exp(mean log pi(gold answer | context after turn t))`` for t = 0..T.

    Column 0 is the context before the first action; column ``t`` the context after turn ``t``
    (the prompt the policy answered at turn ``t`` when recorded; the one after the last turn is
    rendered with ``prompt_template``, the policy's, so it is written like the rollout prompts).
    Returns ``[n_traj, max_turns + 1]``, 0 past each trajectory's end and for trajectories with
    no gold answer in ``privileged``. Contexts are scored in batched forward passes.
    """
    width = max((len(t.turns) for t in trajectories), default=0) + 1
    probabilities = torch.zeros(len(trajectories), width)
    end = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    prompt_template = prompt_template or PromptTemplate(max_prompt_tokens=max_prompt_tokens)
    rows: list[tuple[int, int, list[int], list[int]]] = []
    for i, trajectory in enumerate(trajectories):
        answer = gold_answer(trajectory.privileged)
        if answer is None:
            continue
        answer_ids = (
            list(tokenizer(template.format(answer=answer), add_special_tokens=False)["input_ids"])
            + end
        )
        for t in range(len(trajectory.turns) + 1):
            prompt = context_prompt_ids(tokenizer, trajectory, t, prompt_template)
            rows.append((i, t, prompt, answer_ids))
    was_training = model.training
    model.eval()
    for start in range(0, len(rows), micro_batch_size):
        chunk = rows[start : start + micro_batch_size]
        logprobs, mask = completion_logprobs(
            model, [r[2] for r in chunk], [r[3] for r in chunk], pad_id=tokenizer.pad_token_id
        )
        mean = (logprobs.sum(-1) / mask.sum(-1)).exp().float().cpu()
        for (i, t, _, _), value in zip(chunk, mean.tolist(), strict=True):
            probabilities[i, t] = value
    model.train(was_training)
    return probabilities


@torch.no_grad()
def turn_features(
    model: Any,
    tokenizer: Any,
    trajectories: list[Trajectory],
    micro_batch_size: int = 16,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``[n_traj, max_turns, hidden]``: the last hidden state after each turn's action (0 on padding).

    Every turn needs the ``prompt_token_ids``/``token_ids`` an :class:`HFPolicy` records.
    """
    rows = [(i, t, turn) for i, tr in enumerate(trajectories) for t, turn in enumerate(tr.turns)]
    width = max((len(t.turns) for t in trajectories), default=0)
    features: torch.Tensor | None = None
    for start in range(0, len(rows), micro_batch_size):
        chunk = rows[start : start + micro_batch_size]
        hidden = last_hidden_states(
            model,
            [turn.prompt_token_ids for _, _, turn in chunk],
            [turn.token_ids for _, _, turn in chunk],
            pad_id=tokenizer.pad_token_id,
            device=device,
        ).cpu()
        if features is None:
            features = torch.zeros(len(trajectories), width, hidden.shape[-1])
        for (i, t, _), vector in zip(chunk, hidden, strict=True):
            features[i, t] = vector
    return features if features is not None else torch.zeros(len(trajectories), width, 1)


def learner_advantages(learner: Any, trajectories: list[Trajectory]) -> torch.Tensor:
    """Per-turn advantages ``[n_traj, max_turns]`` of ``learner.config.credit`` on ``trajectories``.

    ``gated`` transforms rewards and hands them to its ``base`` estimator (default grpo); ``igpo``
    gets the gold-answer probabilities and ``spa`` (with ``spa_estimator``) the learned progress
    estimator, both computed with the learner's model under its autocast.
    """
    import turngym.credit as credit

    config = learner.config
    batch = credit.TurnBatch.from_trajectories(trajectories)
    kwargs = dict(config.credit_kwargs)
    name = config.credit
    if name == "gated":
        base = getattr(credit, kwargs.pop("base", BASE_DEFAULTS["gated"]))
        base_kwargs = kwargs.pop("base_kwargs", {})
        return base(batch, rewards=credit.gated(batch, **kwargs), **base_kwargs)
    if name == "igpo" and "gold_probs" not in kwargs:
        with learner.autocast():
            kwargs["gold_probs"] = gold_answer_probabilities(
                learner.model,
                learner.tokenizer,
                trajectories,
                template=config.igpo_answer_template,
                micro_batch_size=config.micro_batch_size,
                prompt_template=learner.policy.template,
            ).to(batch.device)
    if name == "spa" and config.spa_estimator and "contributions" not in kwargs:
        kwargs["features"], kwargs["estimator"] = _fit_progress_estimator(
            learner, trajectories, batch
        )
    return getattr(credit, name)(batch, **kwargs)


def _fit_progress_estimator(learner: Any, trajectories: list[Trajectory], batch: Any) -> tuple:
    """SPA: per-turn features from the policy LM, then a few estimator steps on this batch.

    The estimator and its optimizer live on the learner (``progress_estimator``), so they keep
    learning across iterations.
    """
    from turngym.credit.spa import ProgressEstimator, progress_train_step

    with learner.autocast():
        features = turn_features(
            learner.model,
            learner.tokenizer,
            trajectories,
            learner.config.micro_batch_size,
            learner.device,
        )
    if learner.progress_estimator is None:
        learner.progress_estimator = ProgressEstimator(features.shape[-1])
        learner.progress_optimizer = torch.optim.Adam(
            learner.progress_estimator.parameters(), lr=1e-2
        )
    for _ in range(learner.config.spa_estimator_steps):
        progress_train_step(learner.progress_estimator, learner.progress_optimizer, features, batch)
    return features, learner.progress_estimator
