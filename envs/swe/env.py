"""SWE-v0: fix a real bug in a real repository inside a sandbox; the tests are the reward.

=================  ==============================================================================
Tasks              SWE-bench instances (:mod:`turngym.envs.swe.tasks`). Bundled: bugs injected with
                   ``ast`` into 4 real PyPI projects (toolz, parse, inflection, more-itertools),
                   each kept only if it breaks tests (``data/tasks.jsonl``, 80/20 train/test split)
External tasks     ``tasks_path=`` a JSON/JSONL/Parquet file of SWE-bench/SWE-Gym/SWE-smith
                   instances (:func:`.tasks.load_tasks`); images from ``image_map=``, the record's
                   ``image``/``image_name`` or SWE-bench's naming (:func:`.harness.image_for`);
                   repository at /testbed; docker backend; commands run as root; ``test_patch``
                   applied before grading; per-repository test commands and log parsers
                   (:mod:`.harness`); ``split="all"`` serves every task of the file,
                   ``task_ids=[...]`` an explicit list; ``grade_timeout=`` seconds (or a dict by
                   instance id or repository) overrides the record's and the repository's
                   grading timeout; each task's image is checked at its reset and a missing one
                   names the command that builds or pulls it (``turngym swe build``/``pull``)
Sandbox            ``backend="docker"`` (a container with no network and memory/pids/CPU limits,
                   holding only the buggy tree, sent with ``put_archive``; the agent is uid 1000
                   without capabilities; the next reset on the same project reuses it after
                   killing every agent process and wiping the workspace, /tmp and /dev/shm) or
                   ``"local"`` (an unprivileged bubblewrap jail per command, binding only what the
                   interpreter needs). ``"auto"`` (default): docker when an engine answers and
                   holds the images, else local when bubblewrap works and the project sources are
                   cached, else a DependencyNotInstalled error saying why each failed and to run
                   ``source docker/ci_setup.sh``
Actions            one JSON tool call per turn: bash / view / edit / create / submit
                   (:mod:`turngym.envs.swe.actions`); anything else is invalid, with feedback
Observation        the tool's result: command output (head and tail kept, middle elided) and
                   ``[exit code: N]`` or a timeout notice; file views with line numbers
Outcome            1.0 iff resolved: every FAIL_TO_PASS and PASS_TO_PASS test passes (SWE-bench);
                   graded on ``submit`` or at the turn limit *out of band*: the agent's diff, read
                   from outside its sandbox and cut to an allow-list, runs in a fresh grading
                   sandbox with the tests restored (:mod:`turngym.envs.swe.grading`);
                   ``info["grading"]`` names dropped files, suspicious patterns and disagreements
Dense reward       ``valid_call`` +0.01 / -0.1 (invalid or failed call); ``test_progress``
                   0.3 x change in the fraction of FAIL_TO_PASS tests passing and ``p2p_break``
                   -0.3 x change in the fraction of PASS_TO_PASS broken, both measured by the env
                   in a grading sandbox (never from the agent's own runs) after each ``bash`` call
                   that starts a test runner (:func:`.judging.runs_tests`) on a changed diff,
                   each such grade bounded by ``progress_timeout`` (default ``command_timeout``)
                   and all of an episode's by ``progress_budget`` (default 10 x that), reported
                   in ``info["grading_budget"]``; at the end:
                   ``submitted`` 0.1 (on submit), ``patch`` 0.1 (a non-empty *graded* diff),
                   ``f2p_partial`` 0.5 x fraction of FAIL_TO_PASS passing at grading
Cheats             ``info["grading"]``: ``tampered`` (canaries or the runner's tripwires: reward 0,
                   outcome and dense), ``flags``/``flag_details`` (AST analysis of the patch,
                   :mod:`.diff_analysis`); ``suspicious="zero"`` (default) pays nothing for a
                   high-severity flag, ``"flag"`` only reports it
G-RA               :data:`GATE_CHAIN` / :func:`gated`: submitted > non-empty patch > resolved, then
                   the immediate components (``turngym.wrappers.GateReward``)
state_key          hash of the workspace diff against the starting code
privileged         ``{"patch": gold patch}``
=================  ==============================================================================
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from turngym.core import Outcome, Start, TurnEnv
from turngym.envs.swe.actions import SYNTAX, ToolCall, parse_action
from turngym.envs.swe.grading import start_tree
from turngym.envs.swe.harness import contract_for, image_command
from turngym.envs.swe.judging import SUSPICIOUS_POLICIES, EpisodeJudge, said
from turngym.envs.swe.sandbox_base import WORKSPACE, Limits, Sandbox, SandboxError, StartTree
from turngym.envs.swe.tasks import Task, grade, load_tasks, missing_image_message, select_tasks
from turngym.error import DependencyNotInstalled, InvalidArgumentError
from turngym.wrappers import GateReward

__all__ = ["SWEEnv", "GATE_CHAIN", "gated", "BACKENDS"]

BACKENDS = ("auto", "docker", "local")
VALID, INVALID = 0.01, -0.1
PROGRESS_WEIGHT, BREAK_WEIGHT, PARTIAL_WEIGHT = 0.3, 0.3, 0.5
SUBMITTED, PATCH = 0.1, 0.1
#: G-RA priority chain: submitted > non-empty patch > resolved > every other component.
GATE_CHAIN = [("submitted", SUBMITTED), ("patch", PATCH), ("outcome", 1.0)]
END_WEIGHTS = {"submitted": SUBMITTED, "patch": PATCH, "f2p_partial": PARTIAL_WEIGHT}


def gated(env: gymnasium.Env) -> GateReward:
    """``env`` with G-RA over :data:`GATE_CHAIN` (immediate rewards count only in resolved episodes)."""
    return GateReward(env, chain=GATE_CHAIN)


class SWEEnv(TurnEnv):
    """Repository-level bug fixing with shell and edit tools in a sandbox (see the module docstring)."""

    expert_policy = "turngym.envs.swe.expert:SWEExpert"
    default_max_turns = 30

    _sandbox: Sandbox | None  # the live sandbox of the current episode
    _task: Task | None  # the current task
    _diff_hash: str  # hash of the workspace diff (the state)
    _observed: dict[str, str]  # latest status of each target test seen in the agent's pytest runs
    _final: tuple[float, bool] | None  # graded outcome when the turn limit ends the episode
    _start_tree: StartTree | None  # the current task's starting tree (bundled tasks)
    _judge: EpisodeJudge | None  # the current episode's grades, their budget and policy
    _measured: str  # the state (diff hash) whose progress was last measured

    def __init__(
        self,
        *,
        backend: str = "auto",
        tasks_path: str | None = None,
        image_map: Any = None,
        task_ids: list[str] | None = None,
        grade_timeout: Any = None,
        command_timeout: float = 30.0,
        max_output: int = 10_000,
        memory_mb: int = 1024,
        pids: int = 256,
        suspicious: str = "zero",
        progress_timeout: float | None = None,
        progress_budget: float | None = None,
        reward_mode: str = "dense",
        split: str = "train",
        max_turns: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(
            reward_mode=reward_mode,
            split="train" if split == "all" else split,  # "all": every task of the file
            max_turns=max_turns,
            render_mode=render_mode,
        )
        self.split = split
        if backend not in BACKENDS:
            raise InvalidArgumentError(
                f"backend={backend!r} is not valid; use one of {list(BACKENDS)}."
            )
        if not (0 < command_timeout <= 600) or max_output < 200 or memory_mb < 64 or pids < 16:
            raise InvalidArgumentError(
                "limits out of range: need 0 < command_timeout <= 600, max_output >= 200, memory_mb >= 64, pids >= 16"
            )
        if suspicious not in SUSPICIOUS_POLICIES:
            raise InvalidArgumentError(
                f"suspicious={suspicious!r} is not valid; use 'zero' (a high-severity flag pays "
                "nothing) or 'flag' (only report it)."
            )
        progress_timeout = float(command_timeout if progress_timeout is None else progress_timeout)
        progress_budget = float(
            10 * progress_timeout if progress_budget is None else progress_budget
        )
        if not (0 < progress_timeout <= 600) or progress_budget < 0:
            raise InvalidArgumentError(
                "grading budget out of range: need 0 < progress_timeout <= 600 s and progress_budget >= 0 s"
            )
        self.suspicious, self.progress_timeout, self.progress_budget = (
            suspicious,
            progress_timeout,
            progress_budget,
        )
        self.limits = Limits(
            command_timeout=float(command_timeout),
            max_output=int(max_output),
            memory_mb=int(memory_mb),
            pids=int(pids),
        )
        self.tasks_path = tasks_path
        loaded = load_tasks(tasks_path, image_map=image_map)
        self.tasks = {t.instance_id: t for t in select_tasks(loaded, task_ids, grade_timeout)}
        self.backend = self._pick_backend(backend)
        if backend != "auto":  # everything running and grading need must be here now, not at reset
            reason = self._problem(backend)
            if reason is not None:
                raise DependencyNotInstalled(
                    f"backend={backend!r} cannot run here: {reason}; `source docker/ci_setup.sh` "
                    "installs and builds what both backends need."
                )
        self._splits = {
            s: sorted(i for i, t in self.tasks.items() if t.split == s) for s in ("train", "test")
        }
        self._splits["all"] = list(self.tasks)
        self._sandbox, self._task, self._diff_hash, self._observed, self._final = (
            None,
            None,
            "",
            {},
            None,
        )
        self._start_tree, self._judge, self._measured = None, None, ""

    def _pick_backend(self, backend: str) -> str:
        """``auto``: docker when an engine answers and holds the tasks' images, else local, else an error."""
        if backend != "auto":
            return backend
        docker_reason = self._problem("docker")
        if docker_reason is None:
            return "docker"
        local_reason = self._problem("local")
        if local_reason is None:
            return "local"
        raise DependencyNotInstalled(
            "SWE-v0 found no usable sandbox backend.\n"
            f"  backend='docker': {docker_reason}\n"
            f"  backend='local':  {local_reason}\n"
            "Fix: `source docker/ci_setup.sh` (as root or with sudo) installs docker.io and bubblewrap, starts "
            "a private dockerd, builds the images and fetches the project sources; or install bubblewrap and "
            "run `python -m turngym.envs.swe.build fetch` for backend='local'."
        )

    def _problem(self, backend: str) -> str | None:
        """Why ``backend`` cannot run and grade these tasks here (None when it can)."""
        if backend == "docker":
            from turngym.envs.swe.docker_backend import connect, engine_available

            reason = engine_available()
            if reason is not None:
                return reason
            # the bundled projects' few images now; an external task's image at its reset (lazily)
            images = sorted({t.image for t in self.tasks.values() if t.image and t.project})
            missing = [image for image in images if not connect().images.list(name=image)]
            return f"the images {missing} are not built" if missing else None
        from turngym.envs.swe.local_backend import local_available

        if not all(t.project for t in self.tasks.values()):
            return (
                "external tasks (without 'project') run only on docker: the local jail runs a "
                "bundled project's tree over this host's Python, and an external instance needs "
                "its own interpreter and dependencies, which only its image holds"
            )
        return local_available(sorted({t.project for t in self.tasks.values() if t.project}))

    # ------------------------------------------------------------------ hooks
    def _task_ids(self, split: str) -> list[str]:
        return self._splits[split]

    def _start(self, task_id: str, rng: np.random.Generator) -> Start:
        task = self.tasks[task_id]
        reusable = (
            self._sandbox is not None
            and self._task is not None
            and task.image == self._task.image
            and task.project == self._task.project
        )
        self._start_tree = start_tree(task, self.backend)
        if not (reusable and self._sandbox.renew(self._start_tree, task.instance_id)):
            self._close_sandbox()
            self._sandbox = self._make_sandbox(task)
        # P2P tests count as passing until a run shows otherwise (they passed at the start).
        self._task, self._observed, self._final = (
            task,
            {n: "passed" for n in task.PASS_TO_PASS},
            None,
        )
        self._diff_hash = self._sandbox.initial["diff_hash"]
        self._measured = self._diff_hash
        self._judge = EpisodeJudge(self._sandbox, task, suspicious=self.suspicious,
                                   progress_timeout=self.progress_timeout, progress_budget=self.progress_budget)  # fmt: skip
        instructions = (
            f"You are fixing an issue in the repository {task.repo} (checked out at {WORKSPACE}, the "
            f"working directory of every command; python3 and pytest are installed; there is no "
            f"network).\n\n{SYNTAX}\n\nCommand output is truncated to {self.limits.max_output} "
            f"characters; commands time out after {self.limits.command_timeout:.0f} s.\n\n"
            f"<issue>\n{task.problem_statement}\n</issue>"
        )
        observation = (
            f"The repository {task.repo} is at {WORKSPACE}. Issue:\n{task.problem_statement}"
        )
        return Start(
            observation=observation, instructions=instructions, info={"backend": self.backend}
        )

    def _make_sandbox(self, task: Task) -> Sandbox:
        if self.backend == "docker":
            from turngym.envs.swe.docker_backend import DockerSandbox

            if not task.image:
                raise InvalidArgumentError(
                    f"backend='docker' needs an image for task {task.instance_id}: "
                    + missing_image_message(task)
                )
            record = task.to_dict()
            return DockerSandbox(
                task.image,
                self.limits,
                start=self._start_tree,
                task=task.instance_id,
                contract=contract_for(record, task.image),
                get_image=image_command(record, task.image, self.tasks_path),
            )
        from turngym.envs.swe.local_backend import LocalSandbox

        if self._start_tree is None:
            raise InvalidArgumentError(
                f"task {task.instance_id} is an external instance (no 'project'); run it with backend='docker'"
            )
        return LocalSandbox(self._start_tree, self.limits, task=task.instance_id)

    def _act(self, action: str) -> Outcome:
        call, problem = parse_action(action)
        try:
            outcome = (
                self._execute(call)
                if call is not None
                else self._invalid(f"Invalid tool call: {problem}.\n{SYNTAX}")
            )
            if not outcome.terminated and self._turn + 1 >= self.max_turns:
                # The turn limit ends the episode after this step: grade what the agent leaves.
                end_components, resolved, report = self._judge.final(False, END_WEIGHTS)
                outcome.reward_components.update(end_components)
                outcome.info["grading"] = report
                self._final = (float(resolved), resolved)
        except SandboxError as error:
            self._close_sandbox()
            self._final = (0.0, False)
            return Outcome(
                f"The sandbox failed and the episode ends: {error}",
                {"valid_call": 0.0},
                terminated=True,
                outcome=0.0,
                success=False,
                info={"sandbox_error": str(error)},
            )
        return outcome

    def _execute(self, call: ToolCall) -> Outcome:
        assert self._sandbox is not None and self._task is not None
        if call.tool == "submit":
            components, resolved, report = self._judge.final(True, END_WEIGHTS)
            return Outcome(
                f"Submitted. {said(report, resolved)}",
                {"valid_call": 0.0 if report["zeroed"] else VALID, **components},
                terminated=True,
                outcome=float(resolved),
                success=resolved,
                info={"grading": report},
            )
        if call.tool == "bash":
            result = self._sandbox.call({"op": "run", "command": call.args["command"]})
        else:
            result = self._sandbox.call({"op": call.tool, **call.args})
        if "error" in result:
            return self._invalid(f"{call.tool} failed: {result['error']}")
        self._diff_hash = result.get("diff_hash", self._diff_hash)
        tests, budget = None, {}
        if call.tool == "bash" and self._diff_hash != self._measured:
            tests, budget = self._judge.progress(call.args["command"])
            self._measured = self._diff_hash if budget.get("ran") else self._measured
        components = {"valid_call": VALID, **self._test_components(tests)}
        if call.tool == "bash":
            status = (
                f"[timed out after {self.limits.command_timeout:.0f} s; the command was killed]"
                if result["timed_out"]
                else f"[exit code: {result['exit_code']}]"
            )
            observation = f"{result['output']}\n{status}"
        elif call.tool == "view":
            observation = f"{call.args['path']} ({result['lines']} lines):\n{result['text']}"
        else:
            observation = f"{call.tool}: {call.args['path']} written."
        if result.get("quota_exceeded"):
            self._close_sandbox()
            return Outcome(
                observation
                + f"\nThe workspace exceeds {self.limits.disk_mb} MB; the episode ends.",
                components,
                terminated=True,
                outcome=0.0,
                success=False,
            )
        return Outcome(observation, components, info={"grading_budget": budget} if budget else {})

    def _invalid(self, feedback: str) -> Outcome:
        return Outcome(feedback, {"valid_call": INVALID}, valid_action=False)

    def _fractions(self, statuses: dict[str, str]) -> tuple[float, float]:
        verdict = grade(self._task, statuses)
        return verdict["f2p_fraction"], verdict["p2p_broken_fraction"]

    def _test_components(self, tests: dict[str, str] | None) -> dict[str, float]:
        if not tests:
            return {}
        targets = set(self._task.FAIL_TO_PASS) | set(self._task.PASS_TO_PASS)
        seen = {node: status for node, status in tests.items() if node in targets}
        if not seen:
            return {}
        before = self._fractions(self._observed)
        self._observed = {**self._observed, **seen}
        after = self._fractions(self._observed)
        return {
            "test_progress": PROGRESS_WEIGHT * (after[0] - before[0]),
            "p2p_break": -BREAK_WEIGHT * (after[1] - before[1]),
        }

    def _state(self) -> dict[str, str]:
        return {"diff": self._diff_hash}

    def _progress(self) -> float:
        return self._fractions(self._observed)[0] if self._task is not None else 0.0

    def _privileged(self) -> dict[str, Any]:
        return {"patch": self._task.patch} if self._task is not None else {}

    def _truncation_outcome(self) -> tuple[float, bool]:
        return self._final if self._final is not None else (0.0, False)

    def example_action(self) -> str:
        """A valid, cheap action (used by the conformance check)."""
        return '{"tool": "bash", "command": "ls"}'

    # ------------------------------------------------------------------ lifecycle
    def _close_sandbox(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    def close(self) -> None:
        """Destroys the episode's sandbox."""
        self._close_sandbox()
        super().close()
