"""What the learner computes for credit methods that need the policy model itself.

- IGPO: :func:`gold_answer_probabilities`, the teacher-forced probability of the gold answer after
  every turn, ``p_t = exp(mean log pi(gold | context after turn t))``, ``[n_traj, max_turns + 1]``.
- SPA: :func:`turn_features`, the policy LM's last hidden state at the end of each turn's action,
  ``[n_traj, max_turns, hidden]``, the input of SPA's progress estimator.

Both score many sequences in batched forward passes (``micro_batch_size`` rows at a time).
"""

from __future__ import annotations

from typing import Any

import torch

from turngym.agents.hf import render_prompt
from turngym.agents.learner_io import gold_answer
from turngym.agents.logprobs import completion_logprobs, last_hidden_states
from turngym.trajectory import Trajectory

__all__ = ["gold_answer_probabilities", "turn_features"]


def _context_messages(trajectory: Trajectory, upto: int) -> list[dict[str, str]]:
    """The chat after the first ``upto`` turns (their actions and the observations that followed)."""
    messages = (
        [{"role": "system", "content": trajectory.instructions}] if trajectory.instructions else []
    )
    messages.append({"role": "user", "content": trajectory.initial_observation})
    for index in range(upto):
        messages.append({"role": "assistant", "content": trajectory.turns[index].action})
        if index + 1 < len(trajectory.turns):
            messages.append({"role": "user", "content": trajectory.turns[index + 1].observation})
    return messages


@torch.no_grad()
def gold_answer_probabilities(
    model: Any,
    tokenizer: Any,
    trajectories: list[Trajectory],
    *,
    template: str = "{answer}",
    max_prompt_tokens: int | None = None,
    micro_batch_size: int = 16,
) -> torch.Tensor:
    """IGPO's ``p_t = exp(mean log pi(gold answer | context after turn t))`` for t = 0..T.

    Column 0 is the context before the first action; column ``t`` the context after turn ``t``.
    Returns ``[n_traj, max_turns + 1]``, 0 past each trajectory's end and for trajectories with
    no gold answer in ``privileged``. Contexts are scored in batched forward passes.
    """
    width = max((len(t.turns) for t in trajectories), default=0) + 1
    probabilities = torch.zeros(len(trajectories), width)
    end = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
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
            prompt = render_prompt(tokenizer, _context_messages(trajectory, t), max_prompt_tokens)
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
