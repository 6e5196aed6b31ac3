"""One lab run: a fresh policy trained on a fixed task set with one credit method and one seed.

Each iteration rolls out ``tasks x group_size`` episodes with ``turngym.rollout`` (the same reset
seeds every iteration: a fixed task set), computes the method's advantages on
``TurnBatch.from_trajectories`` and takes one policy-gradient update; only the advantage differs
between methods. The update is

    REINFORCE:  L = -sum_j w_j A_j log pi(a_j | s_j)
    PPO:        L = -sum_j w_j min(rho_j A_j, clip(rho_j, 1 - eps, 1 + eps) A_j),  ``epochs`` passes

over every turn ``j`` of the batch, with Adam (invariant to a rescaling of all advantages, so a
method's advantage scale is no hidden learning rate) and the aggregation weights ``w_j = 1 / N``
(``"turn"``: every turn counts the same, the LM learner's ``token-mean`` for one-token actions) or
``w_j = 1 / (n_episodes * length_i)`` (``"episode"``: every episode counts the same,
``seq-mean-token-mean``).

Seeds pair runs: seed ``s`` gives every method the same task set and the same sampler seed.
Before training, the first batch's anchor statistics say whether state-grouping credit has
anything to group: the share of turns whose (task group, state) anchor holds >= 2 turns, the share
in anchors with >= 2 distinct actions, and the share of task groups whose outcomes are unanimous
(outcome-relative credit is exactly 0 there).

Warm start (``warm_start > 0``, tabular only): the env's expert (``turngym.agents.expert``) plays
each task once and the logit of every (state, action) it took is raised by ``warm_start``, so a
long-horizon env starts with mixed groups instead of all failures (a behaviour-cloned table).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

import turngym
from turngym.credit import TurnBatch
from turngym.error import InvalidArgumentError

from .methods import AGGREGATIONS, LabMethod, resolve_method
from .policies import CellPolicy, TabularPolicy, make_policy

__all__ = ["LabConfig", "anchor_statistics", "policy_update", "run_one", "warm_start"]

UPDATES = ("reinforce", "ppo")


@dataclass
class LabConfig:
    """What one env's comparison trains on; every method and seed shares it."""

    #: Registered env id (its episodes must report ``admissible_actions``).
    env_id: str
    #: Keyword arguments for ``turngym.make`` (e.g. ``{"lengths": [6, 8], "max_turns": 24}``).
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    #: The name in reports (default: the env id).
    label: str = ""
    #: Training episodes per run.
    episodes: int = 1024
    #: Task groups per iteration (distinct reset seeds; the same ones every iteration).
    tasks: int = 4
    #: Episodes per task group.
    group_size: int = 8
    #: ``tabular`` or ``linear`` (see ``turngym.lab.policies``).
    policy: str = "tabular"
    #: ``reinforce`` (one step per batch) or ``ppo`` (clipped, ``epochs`` steps per batch).
    update: str = "reinforce"
    #: ``turn`` or ``episode`` (see the module docstring); a method's ``@`` suffix overrides it.
    aggregation: str = "turn"
    #: Adam's learning rate.
    lr: float = 0.1
    #: PPO passes per batch and clip range.
    epochs: int = 4
    clip: float = 0.2
    #: Logit added to the expert's (state, action) cells before training (0: a uniform start).
    warm_start: float = 0.0
    #: Episode counts at which success is reported.
    budgets: tuple[int, ...] = ()
    #: Offset of the task seeds (seed ``s`` trains on reset seeds from ``task_seed + 7919 s``).
    task_seed: int = 0

    def __post_init__(self) -> None:
        def fail(name: str, fix: str) -> None:
            raise InvalidArgumentError(f"LabConfig.{name}={getattr(self, name)!r}: {fix}.")

        self.label = self.label or self.env_id
        if self.tasks < 1:
            fail("tasks", "use at least 1 task group per iteration")
        if self.group_size < 1:
            fail("group_size", "use at least 1 episode per task group (2+ for group credit)")
        if self.episodes < self.tasks * self.group_size:
            fail("episodes", f"train on at least one batch ({self.tasks * self.group_size})")
        if self.update not in UPDATES:
            fail("update", f"use one of {', '.join(UPDATES)}")
        if self.aggregation not in AGGREGATIONS:
            fail("aggregation", f"use one of {', '.join(AGGREGATIONS)}")
        if not self.lr > 0:
            fail("lr", "use a positive learning rate")
        if self.warm_start and self.policy != "tabular":
            fail("warm_start", "the behaviour-cloned start needs policy='tabular'")
        self.budgets = tuple(int(b) for b in self.budgets) or tuple(
            b for b in (self.episodes // 4, self.episodes // 2, self.episodes) if b > 0
        )

    @property
    def batch_episodes(self) -> int:
        return self.tasks * self.group_size

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def anchor_statistics(batch: TurnBatch) -> dict[str, float]:
    """Shares of turns in anchors of >= 2 turns, with >= 2 distinct actions; unanimous groups."""
    mask = batch.mask
    num_states = int(batch.state_ids.max()) + 1
    anchor = (batch.group_ids[:, None] * num_states + batch.state_ids)[mask]
    anchors, inverse, sizes = torch.unique(anchor, return_inverse=True, return_counts=True)
    pairs = torch.unique(inverse * (int(batch.action_ids.max()) + 1) + batch.action_ids[mask])
    distinct = torch.bincount(pairs // (int(batch.action_ids.max()) + 1), minlength=len(anchors))
    outcome = batch.outcome.float()
    groups = int(batch.group_ids.max()) + 1
    low = torch.full((groups,), float("inf")).scatter_reduce(0, batch.group_ids, outcome, "amin")
    high = torch.full((groups,), -float("inf")).scatter_reduce(0, batch.group_ids, outcome, "amax")
    return {
        "turns_in_anchors_2plus": float((sizes[inverse] >= 2).float().mean()),
        "turns_in_anchors_2plus_actions": float((distinct[inverse] >= 2).float().mean()),
        "unanimous_groups": float((low == high).float().mean()),
    }


def warm_start(policy: CellPolicy, config: LabConfig, task_seed: int) -> int:
    """Raises the logits of the expert's (state, action) cells; returns the cells raised."""
    from turngym.agents import expert

    if not isinstance(policy, TabularPolicy):
        raise InvalidArgumentError("warm_start needs the tabular policy.")
    demos = turngym.rollout(
        config.env_id,
        expert(config.env_id),
        num_episodes=config.tasks,
        seed=task_seed,
        env_kwargs=config.env_kwargs,
        progress=False,
    )
    cells = {
        policy.cell(str(key), turn.action)
        for trajectory in demos
        for key, turn in zip(trajectory.state_keys(strict=False), trajectory.turns, strict=True)
        if key is not None
    }
    with torch.no_grad():
        policy.table[list(cells)] += config.warm_start
    return len(cells)


def policy_update(
    policy: CellPolicy,
    optimizer: torch.optim.Optimizer,
    trajectories: list[turngym.Trajectory],
    advantages: torch.Tensor,
    config: LabConfig,
    aggregation: str,
) -> float:
    """One REINFORCE step or ``epochs`` PPO steps on the batch; returns the last loss."""
    candidates, chosen, old, adv, weight = [], [], [], [], []
    for i, trajectory in enumerate(trajectories):
        length = len(trajectory.turns)
        for t, turn in enumerate(trajectory.turns):
            cells = turn.prompt_token_ids or []
            candidates.append(cells)
            chosen.append(cells.index(turn.token_ids[0]))
            old.append(turn.logprobs[0])
            adv.append(float(advantages[i, t]))
            weight.append(1.0 / length if aggregation == "episode" else 1.0)
    width = max(map(len, candidates))
    cells = torch.tensor([c + [0] * (width - len(c)) for c in candidates], dtype=torch.long)
    real = torch.tensor([[k < len(c) for k in range(width)] for c in candidates])
    chosen_t, old_t = torch.tensor(chosen), torch.tensor(old, dtype=torch.float64)
    adv_t = torch.tensor(adv, dtype=torch.float64)
    weight_t = torch.tensor(weight, dtype=torch.float64)
    weight_t = weight_t / (len(trajectories) if aggregation == "episode" else len(weight))
    loss = torch.zeros(())
    for _ in range(config.epochs if config.update == "ppo" else 1):
        logits = policy.logits(cells).masked_fill(~real, float("-inf"))
        logp = torch.log_softmax(logits, 1).gather(1, chosen_t[:, None]).squeeze(1)
        if config.update == "ppo":
            ratio = torch.exp(logp - old_t)
            clipped = ratio.clamp(1 - config.clip, 1 + config.clip)
            loss = -(weight_t * torch.minimum(ratio * adv_t, clipped * adv_t)).sum()
        else:
            loss = -(weight_t * adv_t * logp).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float(loss.detach())


def run_one(config: LabConfig, method: str | LabMethod, seed: int) -> dict[str, Any]:
    """Trains one policy; returns its curve (per iteration), anchor statistics and timings."""
    method = resolve_method(method) if isinstance(method, str) else method
    aggregation = method.aggregation or config.aggregation
    task_seed = config.task_seed + 7919 * seed
    policy = make_policy(config.policy, seed)
    warm_cells = warm_start(policy, config, task_seed) if config.warm_start else 0
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.lr)
    curve: dict[str, list[float]] = {"episodes": [], "success": [], "outcome": [], "turns": []}
    seconds = {"rollout": 0.0, "credit": 0.0, "update": 0.0}
    anchors: dict[str, float] = {}
    done = 0
    while done < config.episodes:
        start = time.perf_counter()
        trajectories = turngym.rollout(
            config.env_id,
            policy,
            num_episodes=config.batch_episodes,
            seed=task_seed,
            group_size=config.group_size,
            env_kwargs=config.env_kwargs,
            progress=False,
            # every episode of the batch live at once, in this process: one act() per turn
            num_envs=config.batch_episodes,
            workers=0,
        )
        seconds["rollout"] += time.perf_counter() - start
        start = time.perf_counter()
        batch = TurnBatch.from_trajectories(trajectories)
        advantages = method(batch)
        seconds["credit"] += time.perf_counter() - start
        if not anchors:
            anchors = anchor_statistics(batch)
        start = time.perf_counter()
        policy_update(policy, optimizer, trajectories, advantages, config, aggregation)
        seconds["update"] += time.perf_counter() - start
        done += len(trajectories)
        successes = [t.success for t in trajectories]
        curve["episodes"].append(done)
        curve["success"].append(
            sum(bool(s) for s in successes) / len(successes)
            if any(s is not None for s in successes)
            else float("nan")
        )
        curve["outcome"].append(
            sum(float(t.outcome or 0.0) for t in trajectories) / len(trajectories)
        )
        curve["turns"].append(sum(len(t.turns) for t in trajectories) / len(trajectories))
    return {
        "env": config.label,
        "method": method.spec,
        "seed": seed,
        "aggregation": aggregation,
        "curve": curve,
        "anchors": anchors,
        "seconds": seconds,
        "cells": policy.num_cells,
        "warm_cells": warm_cells,
    }
