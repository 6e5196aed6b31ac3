"""Orchestra: an orchestrator delegates subtasks to specialist workers (a PettingZoo ParallelEnv).

A team task is ``num_subtasks`` tasks of turngym's single-agent envs (the *member* families,
e.g. a WebShop purchase and a SearchQA question). Each worker is a specialist: it holds one
member env of its family and can only work on that family's subtasks. The orchestrator sees the
task board and routes subtasks to idle workers of the right family; busy workers act in their
member envs, all in the same step, so spreading subtasks over workers finishes sooner.

=================  ================================================================================
Agents             ``orchestrator`` and ``<family>_<i>`` workers (``workers={"shop": 2}`` makes
                   ``shop_0``, ``shop_1``).
Tasks              ``num_subtasks`` member tasks drawn with the seed (every family appears when
                   ``num_subtasks`` allows), or ``reset(options={"tasks": [(family, task_id),
                   ...]})``. Member tasks come from the ``split`` of each member env.
Orchestrator       ``delegate[<worker>, <subtask number>]`` (several in one action are allowed),
actions            ``wait``, ``finish`` (end now; unfinished subtasks score 0). A delegation to an
                   unknown, busy or wrong-family worker, or of a subtask not pending, is invalid:
                   the whole action is rejected with feedback saying why.
Worker actions     the member env's own actions while it has a subtask; an idle worker's action is
                   ignored (any text, e.g. ``wait``).
Observations       orchestrator: the board (each subtask's family, description (the member's first
                   observation), status, worker and outcome), each worker's status and the reports
                   of workers that finished in the last step. Worker: its member env's observation;
                   a new subtask arrives with ``info["new_subtask"] = True`` and the member's
                   ``info["instructions"]``.
Outcome            the team's: the mean outcome of the subtasks (0 for an unfinished one), paid to
                   every agent as the ``outcome`` component on the last step; success = every
                   subtask succeeded. The episode ends when all subtasks are done, on ``finish``,
                   or at the team turn limit (truncation).
Dense reward       orchestrator: ``subtask`` = outcome / num_subtasks when a subtask finishes (sums to
                   the team outcome), ``format`` = -0.05 for an invalid action. Worker: its member's
                   dense components, the member's outcome renamed ``subtask_outcome``.
state_key          orchestrator: the board (subtask statuses, outcomes, assignments); worker: its
                   family and its member env's state key (or idle)
progress           orchestrator: mean over subtasks of the outcome (done), the member's progress
                   (running) or 0 (pending); worker: its member's progress (0 when idle)
privileged         worker: its member env's privileged info; orchestrator: nothing
Extra info         worker: ``busy`` (False: idle, its action is ignored), ``new_subtask``.
                   orchestrator: ``decision`` (wait, finish, delegate or invalid), ``delegated``
                   (``[worker, subtask number]`` pairs accepted this turn), ``returned``
                   (``[worker, subtask number, outcome, success]`` of subtasks finished this turn),
                   ``all_done``, and ``aggregation`` (compose mode, on finish). Unknown ``reset``
                   options are ignored with a warning (PettingZoo's API test sends some).
Orchestration      ``orchestration={"routing": w, "parallelism": w, "stop": w, "aggregation": w}``
rewards            adds the orchestrator's orchestration reward families as named components
                   (equations in :mod:`.rewards`); off (all 0) unless given.
Stop decision      ``auto_finish=False``: the episode does not end when every subtask is done; the
                   orchestrator must ``finish`` (its ``stop`` reward judges when).
Compose mode       ``compose=True`` (implies ``auto_finish=False``; members must put
                   ``golden_answers`` in ``privileged``, as SearchQA does): the orchestrator ends
                   with ``finish[<answer 1>; <answer 2>; ...]`` composing its workers' answers
                   (``info["answer"]`` of their last step, quoted in their reports); admissible
                   actions offer the composition of the answers reported so far.
=================  ================================================================================

``parallel_env(env_id_or_None, **kwargs)`` and ``aec_env(...)`` (:mod:`.presets`) build it;
:func:`turngym.envs.orchestra.rollout` plays teams of policies and records one trajectory per
agent per episode for credit assignment.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium.utils import seeding

from turngym.core import REWARD_MODES, SPLITS, TextSpace, action_text
from turngym.envs.orchestra.board import (
    DESCRIPTION_CHARS,
    ORCHESTRATOR,
    Subtask,
    idle_text,
    member_specs,
    one_line,
    orchestrator_instructions,
    render_board,
    worker_instructions,
)
from turngym.envs.orchestra.rewards import check_weights
from turngym.envs.orchestra.turns import FORMAT_PENALTY, TurnsMixin
from turngym.error import InvalidArgumentError, ResetNeeded, missing_dependency

try:
    from pettingzoo import ParallelEnv
except ImportError:  # pragma: no cover - depends on the install
    ParallelEnv = object  # type: ignore[assignment,misc]

__all__ = ["OrchestraEnv", "FORMAT_PENALTY"]


def _requires_pettingzoo() -> None:
    if ParallelEnv is object:  # pragma: no cover - depends on the install
        raise missing_dependency("pettingzoo", "multiagent")


class OrchestraEnv(TurnsMixin, ParallelEnv):  # type: ignore[misc,valid-type]
    """The orchestration env (see the module doc).

    Args:
        members: family name -> a registered turngym env id, or ``(env id, make kwargs)``.
        workers: family name -> how many workers of that family.
        num_subtasks: subtasks per team task.
        reward_mode: ``"dense"`` or ``"sparse"`` (team outcome only), for every agent; member
            envs run in the same mode.
        split: ``"train"`` or ``"test"``: the member task split.
        max_turns: the team turn limit (one turn = one step of all agents).
        render_mode: ``None``, ``"ansi"`` (``render()`` returns the board) or ``"human"``.
        auto_finish: end the episode when every subtask is done (False: only ``finish`` ends
            it before the turn limit; default True, or False in compose mode).
        compose: the orchestrator ends with ``finish[<answers>]``, scored by ``aggregation``.
        orchestration: orchestration reward family -> weight (:mod:`.rewards`); default none.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": "turngym_orchestra_v0",
        "render_modes": ["ansi", "human"],
        "is_parallelizable": True,
    }

    def __init__(
        self,
        *,
        members: Mapping[str, str | tuple[str, Mapping[str, Any]]],
        workers: Mapping[str, int],
        num_subtasks: int = 4,
        reward_mode: str = "dense",
        split: str = "train",
        max_turns: int = 30,
        render_mode: str | None = None,
        auto_finish: bool | None = None,
        compose: bool = False,
        orchestration: Mapping[str, float] | None = None,
    ) -> None:
        _requires_pettingzoo()
        if reward_mode not in REWARD_MODES:
            raise InvalidArgumentError(
                f"reward_mode={reward_mode!r} is not valid; use one of {list(REWARD_MODES)}."
            )
        if split not in SPLITS:
            raise InvalidArgumentError(f"split={split!r} is not valid; use one of {list(SPLITS)}.")
        if not isinstance(max_turns, int) or max_turns < 1:
            raise InvalidArgumentError(f"max_turns={max_turns!r} must be a positive int.")
        if not isinstance(num_subtasks, int) or num_subtasks < 1:
            raise InvalidArgumentError(f"num_subtasks={num_subtasks!r} must be a positive int.")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise InvalidArgumentError(
                f"render_mode={render_mode!r} is not valid; use None or one of "
                f"{self.metadata['render_modes']}."
            )
        self._families = member_specs(members)
        unknown = sorted(set(workers) - set(self._families))
        if unknown or not workers:
            raise InvalidArgumentError(
                f"workers={dict(workers)!r} must map member families {sorted(self._families)} to "
                f"worker counts (unknown: {unknown})."
            )
        if any(not isinstance(n, int) or n < 0 for n in workers.values()) or not any(
            workers.values()
        ):
            raise InvalidArgumentError(
                f"workers={dict(workers)!r}: counts must be non-negative ints, at least one > 0."
            )
        if compose and auto_finish:
            raise InvalidArgumentError(
                "compose=True needs auto_finish=False: the orchestrator ends the task with its "
                "composed answer (finish[...])."
            )
        # What replaying a trace needs to rebuild this env (JSON-safe where the members are).
        self.init_kwargs = {
            "members": {f: [spec[0], spec[1]] for f, spec in self._families.items()},
            "workers": dict(workers),
            "num_subtasks": num_subtasks,
            "reward_mode": reward_mode,
            "split": split,
            "max_turns": max_turns,
            "auto_finish": auto_finish,
            "compose": compose,
            "orchestration": dict(orchestration or {}),
        }
        self.compose = bool(compose)
        self.auto_finish = (not self.compose) if auto_finish is None else bool(auto_finish)
        self.orchestration = check_weights(orchestration)
        self.reward_mode, self.split, self.max_turns = reward_mode, split, max_turns
        self.render_mode, self.num_subtasks = render_mode, num_subtasks
        self.worker_family = {
            f"{family}_{i}": family for family, count in workers.items() for i in range(count)
        }
        # Families no worker can do are never drawn (they could only score 0).
        self.families = sorted({family for family in self.worker_family.values()})
        self.possible_agents = [ORCHESTRATOR, *self.worker_family]
        self.agents: list[str] = []
        self._spaces = {agent: TextSpace() for agent in self.possible_agents}
        self._members = {agent: self._make_member(f) for agent, f in self.worker_family.items()}
        self._previews = {family: self._make_member(family) for family in self.families}
        self._subtasks: list[Subtask] = []
        self._busy: dict[str, int | None] = {}
        self._member_info: dict[str, dict[str, Any]] = {}
        self._turn = 0
        self._events: list[str] = []
        self._board = ""
        self._all_done = False  # every subtask was done when the orchestrator last looked
        self._turn_info: dict[str, Any] = {}  # this turn's decision, delegations and returns
        self.np_random, _ = seeding.np_random()

    # ------------------------------------------------------------------ PettingZoo API
    def observation_space(self, agent: str) -> TextSpace:
        return self._spaces[self._check_agent(agent)]

    def action_space(self, agent: str) -> TextSpace:
        return self._spaces[self._check_agent(agent)]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
        """Draws a team task (or takes ``options["tasks"]``) and starts every agent."""
        if seed is not None:
            self.np_random, _ = seeding.np_random(seed)
        options = dict(options or {})
        chosen = options.pop("tasks", None)
        if options:
            # PettingZoo's own API test resets with unknown options, so they are not an error.
            warnings.warn(
                f"OrchestraEnv.reset ignores unknown options {sorted(options)}; the only option "
                "is 'tasks', a list of (family, task_id) pairs.",
                stacklevel=2,
            )
        pairs = self._draw_tasks() if chosen is None else self._check_tasks(chosen)
        self._subtasks = []
        for family, task_id in pairs:
            sub_seed = int(self.np_random.integers(2**31))
            observation, info = self._previews[family].reset(
                seed=sub_seed, options={"task": task_id}
            )
            description = one_line(observation)[:DESCRIPTION_CHARS]
            golds = list(info.get("privileged", {}).get("golden_answers", []))
            if self.compose and not golds:
                raise InvalidArgumentError(
                    f"compose=True needs member envs whose privileged info holds "
                    f"'golden_answers'; {self.member_id(family)} gave none."
                )
            self._subtasks.append(Subtask(family, task_id, sub_seed, description, golds=golds))
        self.agents = list(self.possible_agents)
        self._busy = {agent: None for agent in self.worker_family}
        self._member_info = {}
        self._turn, self._events, self._all_done = 0, [], False
        self._turn_info = {"decision": None, "delegated": [], "returned": []}
        observations = {ORCHESTRATOR: self._render_board()}
        infos = {ORCHESTRATOR: self._orchestrator_info(True, {}, None, None)}
        infos[ORCHESTRATOR]["instructions"] = orchestrator_instructions(
            self.max_turns, self.auto_finish, self.compose
        )
        for agent in self.worker_family:
            observations[agent] = idle_text(agent)
            infos[agent] = self._worker_info(agent, True, {}, None, None)
            infos[agent]["instructions"] = worker_instructions(agent, self.worker_family[agent])
        return observations, infos

    def step(self, actions: Mapping[str, str]) -> tuple[dict, dict, dict, dict, dict]:
        """One team turn: busy workers act in their member envs, then the orchestrator's action
        applies. A live agent missing from ``actions`` acts with the empty string."""
        if not self.agents:
            raise ResetNeeded(
                "OrchestraEnv.step() called "
                + ("before reset()" if not self._subtasks else "after the episode ended")
                + "; call env.reset() to start an episode."
            )
        if not isinstance(actions, Mapping):
            raise InvalidArgumentError(
                f"OrchestraEnv.step takes a dict agent -> action text, got "
                f"{type(actions).__name__}; e.g. {{'orchestrator': 'wait'}}."
            )
        extra = sorted(set(actions) - set(self.agents))
        if extra:
            raise InvalidArgumentError(
                f"actions for {extra}, which are not live agents; live agents are {self.agents}."
            )
        self._turn += 1
        self._events = []
        self._turn_info = {"decision": None, "delegated": [], "returned": []}
        components: dict[str, dict[str, float]] = {agent: {} for agent in self.agents}
        observations: dict[str, str] = {}
        valid: dict[str, bool] = {}
        for agent in self.worker_family:
            observations[agent], valid[agent] = self._worker_step(
                agent, action_text(actions.get(agent, "")), components
            )
        valid[ORCHESTRATOR], feedback, finish = self._orchestrator_step(
            action_text(actions.get(ORCHESTRATOR, "")), observations
        )
        if not valid[ORCHESTRATOR] and self.reward_mode == "dense":
            components[ORCHESTRATOR]["format"] = FORMAT_PENALTY
        all_done = all(s.status == "done" for s in self._subtasks)
        terminated = finish or (self.auto_finish and all_done)
        truncated = not terminated and self._turn >= self.max_turns
        outcome = success = None
        if terminated or truncated:
            outcome = float(
                np.mean([s.outcome if s.status == "done" else 0.0 for s in self._subtasks])
            )
            success = all(s.status == "done" and s.success for s in self._subtasks)
            for agent in self.agents:
                components[agent]["outcome"] = outcome
        # Sparse mode pays no orchestration reward, but info["aggregation"] is still set.
        dense = self.reward_mode == "dense"
        self._orchestration_components(components[ORCHESTRATOR] if dense else {}, finish, outcome)
        self._all_done = all_done
        board = self._render_board()
        observations[ORCHESTRATOR] = f"{feedback}\n\n{board}" if feedback else board
        infos = {
            ORCHESTRATOR: self._orchestrator_info(
                valid[ORCHESTRATOR], components[ORCHESTRATOR], outcome, success
            )
        }
        for agent in self.worker_family:
            infos[agent] = self._worker_info(
                agent, valid[agent], components[agent], outcome, success
            )
            if self._member_info.get(agent, {}).get("new_subtask"):
                infos[agent]["new_subtask"] = True
                infos[agent]["instructions"] = self._member_info[agent]["instructions"]
                self._member_info[agent]["new_subtask"] = False
        rewards = {agent: float(sum(components[agent].values())) for agent in self.agents}
        terminations = {agent: terminated for agent in self.agents}
        truncations = {agent: truncated for agent in self.agents}
        if terminated or truncated:
            self.agents = []
        self._board = board
        if self.render_mode == "human":
            print(board)
        return observations, rewards, terminations, truncations, infos

    def render(self) -> str | None:
        """The board (``"ansi"``), or prints it (``"human"``)."""
        if self.render_mode == "ansi":
            return self._board or self._render_board()
        if self.render_mode == "human":
            print(self._board or self._render_board())
        return None

    def close(self) -> None:
        for member in (*self._members.values(), *self._previews.values()):
            member.close()

    # ------------------------------------------------------------------ task board
    @property
    def subtasks(self) -> list[tuple[str, str]]:
        """``(family, task_id)`` of the current team task's subtasks, in board order."""
        return [(s.family, s.task_id) for s in self._subtasks]

    def member_id(self, family: str) -> str:
        """The turngym env id of ``family``'s member env."""
        return self._families[self._check_family(family)][0]

    def subtask_of(self, agent: str) -> int | None:
        """The subtask number (1-based) ``agent`` works on, None when idle."""
        index = self._busy.get(self._check_agent(agent))
        return None if index is None else index + 1

    def task_ids(self, family: str) -> list[str]:
        """The task ids of ``family``'s member env in this env's split."""
        return list(self._previews[self._check_family(family)].task_ids)

    def _draw_tasks(self) -> list[tuple[str, str]]:
        rng = self.np_random
        families = [self.families[i % len(self.families)] for i in range(self.num_subtasks)]
        families = [families[i] for i in rng.permutation(len(families))]
        pairs, used = [], set()
        for family in families:
            ids = self.task_ids(family)
            for _ in range(100):  # distinct tasks per team task where the split allows
                task = str(ids[int(rng.integers(len(ids)))])
                if (family, task) not in used:
                    break
            used.add((family, task))
            pairs.append((family, task))
        return pairs

    def _check_tasks(self, chosen: Any) -> list[tuple[str, str]]:
        if isinstance(chosen, (str, bytes)) or not isinstance(chosen, Sequence) or not chosen:
            raise InvalidArgumentError(
                f"options['tasks']={chosen!r} must be a non-empty list of (family, task_id) pairs, "
                f"families from {self.families}."
            )
        pairs = []
        for item in chosen:
            if not isinstance(item, Sequence) or isinstance(item, str) or len(item) != 2:
                raise InvalidArgumentError(
                    f"options['tasks'] item {item!r} is not a (family, task_id) pair."
                )
            family, task = self._check_family(str(item[0])), str(item[1])
            preview = self._previews[family]
            if task not in set(preview.task_ids) and task not in set(
                preview._task_ids("test" if self.split == "train" else "train")
            ):
                raise InvalidArgumentError(
                    f"unknown task {task!r} of family {family!r}; see env.task_ids({family!r})."
                )
            pairs.append((family, task))
        return pairs

    def _render_board(self) -> str:
        return render_board(
            self._turn, self.max_turns, self._subtasks, self.worker_family, self._busy, self._events
        )

    # ------------------------------------------------------------------ helpers
    def _make_member(self, family: str) -> Any:
        from turngym.registration import make

        env_id, kwargs = self._families[family]
        return make(env_id, reward_mode=self.reward_mode, split=self.split, **kwargs).unwrapped

    def _check_agent(self, agent: str) -> str:
        if agent not in self._spaces:
            raise InvalidArgumentError(
                f"unknown agent {agent!r}; the agents are {self.possible_agents}."
            )
        return agent

    def _check_family(self, family: str) -> str:
        if family not in self._previews:
            raise InvalidArgumentError(
                f"unknown family {family!r}; this team's families are {self.families}."
            )
        return family
