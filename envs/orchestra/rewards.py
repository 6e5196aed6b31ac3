"""Orchestration rewards: the orchestrator's reward families beyond the team outcome.

The orchestration-traces survey ("Reinforcement Learning for LLM-based Multi-Agent Systems
through Orchestration Traces") separates team rewards (the task's outcome, paid to everyone)
from *orchestration* rewards, which judge how the orchestrator ran the team. Each family below
is one named ``reward_components`` entry of the orchestrator, paid in ``reward_mode="dense"``
only, scaled by a weight (``OrchestraEnv(orchestration={"parallelism": 0.5, ...})``; a family
with weight 0 or absent is never paid). The team outcome (``outcome``), the subtask shares
(``subtask``) and the workers' own rewards stay separate components, so credit can target each
unit: team, individual or orchestration.

N is the number of subtasks, T the team turns of the episode, L_i the worker turns subtask i
ran (its member env's steps), and ``outcome`` the team outcome in [0, 1].

==============  ===============================================================================
family          equation (``w`` = the family's weight)
==============  ===============================================================================
``routing``     +w/N for each delegation accepted (the env only accepts a worker whose family
                fits); -w/N for each delegation naming a worker of the wrong family (the whole
                action is then rejected, as every invalid delegation is). Sums to at most w.
``parallelism`` on the last step: ``w * outcome * max(0, 1 - T / S)`` with
                ``S = sum_i (L_i + 1) (+ 1 without auto_finish)``, the team turns a team doing
                the subtasks one after another would need (a delegation turn and the worker's
                turns per subtask, and the finish turn). Running subtasks side by side makes T
                smaller than S; a serial team earns 0; a failing team earns nothing (the
                outcome gates it, so finishing fast is never enough).
``stop``        only when the orchestrator must end the episode itself (``auto_finish=False``):
                on ``finish``: +w when every subtask is done, else ``-w * unfinished / N``; on
                every turn after all subtasks are done that the orchestrator does not finish:
                ``-w * LATE_FRACTION`` (finishing late costs, finishing early costs more).
``aggregation`` only in compose mode (``compose=True``): the orchestrator ends with
                ``finish[<answer 1>; <answer 2>; ...]``, composing its workers' answers in
                subtask order; ``w * mean_i F1(part_i, gold_i)`` on that step, F1 the SQuAD token
                F1 against the best of subtask i's ``golden_answers`` (missing parts score 0).
==============  ===============================================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from turngym.answers import f1_score
from turngym.error import InvalidArgumentError

__all__ = [
    "FAMILIES",
    "LATE_FRACTION",
    "aggregation_score",
    "check_weights",
    "parallelism_reward",
    "serial_turns",
    "split_answer",
    "token_f1",
]

#: The orchestration reward families, in the order they are documented.
FAMILIES = ("routing", "parallelism", "stop", "aggregation")
#: The share of the stop weight lost for each turn the orchestrator waits once all is done.
LATE_FRACTION = 0.1


def check_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    """Validated family -> weight (absent families weigh 0)."""
    if weights is None:
        return {}
    if not isinstance(weights, Mapping):
        raise InvalidArgumentError(
            f"orchestration={weights!r} must map reward families {list(FAMILIES)} to weights."
        )
    unknown = sorted(set(weights) - set(FAMILIES))
    if unknown:
        raise InvalidArgumentError(
            f"unknown orchestration reward families {unknown}; the families are {list(FAMILIES)}."
        )
    checked = {}
    for family, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise InvalidArgumentError(
                f"orchestration[{family!r}]={weight!r} must be a non-negative number."
            )
        if weight:
            checked[family] = float(weight)
    return checked


def parallelism_reward(weight: float, outcome: float, team_turns: int, serial: int) -> float:
    """``weight * outcome * max(0, 1 - team_turns / serial)`` (0 when nothing ran).

    >>> parallelism_reward(1.0, 1.0, team_turns=4, serial=8)
    0.5
    >>> parallelism_reward(1.0, 1.0, team_turns=9, serial=8)
    0.0
    """
    if serial <= 0:
        return 0.0
    return weight * outcome * max(0.0, 1.0 - team_turns / serial)


def serial_turns(worker_turns: Sequence[int], auto_finish: bool = True) -> int:
    """S: team turns to do the subtasks one after another (a delegation turn plus the worker's
    turns per subtask, plus the orchestrator's finish turn when it must finish itself).

    >>> serial_turns([2, 3, 5])
    13
    >>> serial_turns([2, 3, 5], auto_finish=False)
    14
    """
    return sum(turns + 1 for turns in worker_turns) + (0 if auto_finish else 1)


#: SQuAD token F1 of a prediction against the best of its gold answers (SearchQA's scorer).
token_f1 = f1_score


def split_answer(answer: str, parts: int) -> list[str]:
    """The composed answer cut at ``;`` into ``parts`` pieces (missing pieces are empty)."""
    pieces = [piece.strip() for piece in answer.split(";", parts - 1)] if answer else []
    return pieces + [""] * (parts - len(pieces))


def aggregation_score(answer: str, golds: Sequence[Sequence[str]]) -> float:
    """Mean over subtasks of the token F1 of the answer's i-th part against subtask i's golds.

    >>> aggregation_score("Paris; 1912", [["Paris"], ["1912"]])
    1.0
    >>> aggregation_score("Paris", [["Paris"], ["1912"]])
    0.5
    """
    if not golds:
        return 0.0
    parts = split_answer(answer, len(golds))
    return sum(token_f1(part, gold) for part, gold in zip(parts, golds, strict=True)) / len(golds)
