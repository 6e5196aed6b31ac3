"""One SWE episode's out-of-band grades: cache, cost budget, diff analysis and the policy on flags.

:class:`EpisodeJudge` is the env's side of :mod:`turngym.envs.swe.grading`. It grades the agent's
diff in a fresh grading sandbox when the agent submits (or the turn limit ends the episode) and,
for the dense ``test_progress`` reward, when a ``bash`` command *runs tests*
(:func:`runs_tests`: a test runner in command position, not the bare word "test"). Those progress
grades are the agent's to trigger, so they are bounded: each gets at most ``progress_timeout``
seconds and the episode's progress grades together at most ``progress_budget`` seconds of wall
time; once the budget is spent the env stops measuring progress (``info["grading_budget"]``
says so). A grade that times out says so (``timed_out``, ``verdict="timeout"``) and measures
nothing.

Every grade's patched Python files go through :func:`turngym.envs.swe.diff_analysis.analyse`.
With ``suspicious="zero"`` (the default) a high-severity flag makes the grade worth nothing: no
progress, outcome 0 and no end-of-episode components; ``"flag"`` only reports. A ``tampered``
verdict (canaries or the runner's tripwires) is always worth nothing.

An empty diff at the end (the agent changed nothing) is not run, as SWE-bench's harness does not
run an empty patch (its report counts "empty patch instances" apart, none resolved): verdict
``unresolved``, ``empty_patch`` True in ``info["grading"]``, no end-of-episode component but
``submitted``. What it would have measured is the task's starting tree, whose FAIL_TO_PASS tests
fail by construction, so no reward changes; it saves an untrained policy's episode a grading
sandbox (2-3 s on ``local``, a container start on ``docker``). A progress grade of an empty diff
(the agent runs the tests) still runs: it is the agent's feedback.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import time
from typing import Any

from turngym.envs.swe.diff_analysis import HIGH, Flag, analyse, flag_names
from turngym.envs.swe.grading import grading_spec, verdict
from turngym.envs.swe.sandbox_base import Sandbox, SandboxError
from turngym.envs.swe.tasks import Task, grade

__all__ = ["EpisodeJudge", "runs_tests", "said", "SUSPICIOUS_POLICIES", "FINAL_TIMEOUT"]

SUSPICIOUS_POLICIES = ("zero", "flag")
#: Seconds the final grade (submit or turn limit) may take when the task's spec names none.
FINAL_TIMEOUT = 180.0
EMPTY_HASH = hashlib.sha1(b"").hexdigest()
_RUNNERS = re.compile(
    r"^(pytest|py\.test|nosetests|nose2|tox|runtests(\.py)?|\S*/runtests(\.py)?|bin/test)$"
)
_PYTHON = re.compile(r"^(\S*/)?python[\d.]*$")
_PREFIXES = {"timeout", "env", "nice", "time", "command", "exec", "xargs", "sudo", "stdbuf"}


def runs_tests(command: str) -> bool:
    """True when ``command`` starts a test runner: ``pytest``/``py.test``/``tox``/``runtests``
    or ``python -m pytest|unittest|nose`` or ``python path/test_x.py`` in command position
    (after ``;``, ``&&``, ``|``, ``(``, env assignments and wrappers like ``timeout 5``)."""
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: bash fails too
        return False
    position = True
    for index, token in enumerate(tokens):
        if token and set(token) <= set(";&|()"):
            position = True
            continue
        if not position:
            continue
        if "=" in token and not token.startswith("-") and token.split("=")[0].isidentifier():
            continue  # VAR=value before the command
        if token in _PREFIXES or (
            token.replace(".", "").isdigit() and index and tokens[index - 1] == "timeout"
        ):
            continue
        if token.startswith("-") and index and tokens[index - 1] in _PREFIXES:
            continue
        if _RUNNERS.match(token):
            return True
        if token in ("sh", "bash") and tokens[index + 1 : index + 2] == ["-c"]:
            return runs_tests(" ".join(tokens[index + 2 : index + 3]))
        if _PYTHON.match(token):
            rest = tokens[index + 1 : index + 4]
            if "-m" in rest and rest[rest.index("-m") + 1 : rest.index("-m") + 2] in (
                ["pytest"], ["unittest"], ["nose"], ["py.test"],
            ):  # fmt: skip
                return True
            if any(re.search(r"(^|/)(test_\w*|\w*_test|runtests)\.py$", word) for word in rest):
                return True
        position = False
    return False


def said(report: dict[str, Any], resolved: bool) -> str:
    """What the submit observation says about the grade (never "the tests ran" when they did not)."""
    if report.get("tampered"):
        return (
            "The grade is void: the test run was tampered with (see info['grading']['tampered'])."
        )
    if report.get("timed_out"):
        return "The tests did not finish in time; the issue is not resolved."
    if report.get("zeroed"):
        return "The patch was flagged as a cheat (see info['grading']['flags']); it earns nothing."
    if report.get("empty_patch"):
        return "You changed nothing, so there was nothing to test; the issue is not resolved."
    said = (
        "resolved: every target test passes" if resolved else "not resolved: some target tests fail"
    )
    return f"The tests ran; the issue is {said}."


class EpisodeJudge:
    """Grades one episode's diffs (see the module docstring)."""

    def __init__(
        self,
        sandbox: Sandbox,
        task: Task,
        *,
        suspicious: str,
        progress_timeout: float,
        progress_budget: float,
    ) -> None:
        self.sandbox, self.task, self.suspicious = sandbox, task, suspicious
        self.progress_timeout, self.progress_budget = progress_timeout, progress_budget
        self.spent = 0.0  # seconds of progress grading this episode
        self.evaluations: dict[str, dict[str, Any]] = {}  # graded diff hash -> judged grade

    def evaluate(self, final: bool, timeout: float) -> dict[str, Any]:
        """The judged grade of the agent's current diff (cached per diff within the episode)."""
        diff = self.sandbox.agent_diff(stop=final)
        key = hashlib.sha1(diff.encode()).hexdigest()
        cached = self.evaluations.get(key)
        if cached is not None and not (cached["timed_out"] and timeout > cached["timeout"]):
            return cached
        if final and not diff:
            return self._empty_patch(timeout)
        spec = grading_spec(self.task)
        request = {
            "files": spec.files,
            "targets": spec.targets,
            "command": spec.command,
            "test_patch": self.task.test_patch,
            "task": self.task.instance_id,
        }
        result = self.sandbox.evaluate(diff, request, timeout=timeout)
        if "error" in result:
            raise SandboxError(f"grading failed: {result['error']}")
        judged = verdict(self.task, spec, result)
        flags = analyse(diff, result.get("sources") or {})
        flags += [  # a file the grader refused for its encoding: no honest fix writes UTF-7
            Flag("source encoding", "high", path, 1, reason)
            for path, reason in result.get("dropped", [])
            if reason.startswith("source encoding")
        ]
        high = [flag for flag in flags if flag.name in HIGH]
        judged.update(
            dropped=[f"{path}: {reason}" for path, reason in result.get("dropped", [])],
            graded_patch=result.get("applied", EMPTY_HASH) != EMPTY_HASH,
            apply_error=result.get("apply_error"),
            flags=flag_names(flags),
            flag_details=[flag.as_dict() for flag in flags],
            timed_out=bool(result.get("timed_out")),
            timeout=timeout,
            empty_patch=False,
            zeroed=bool(judged.get("tampered") or (high and self.suspicious == "zero")),
        )
        if judged["timed_out"] and not judged.get("tampered"):
            judged["verdict"] = "timeout"
        if judged["zeroed"]:
            judged.update(statuses={}, resolved=False, f2p_fraction=0.0)
        self.evaluations[key] = judged
        return judged

    def _empty_patch(self, timeout: float) -> dict[str, Any]:
        """The grade of an empty diff at the end, without a run (see the module doc)."""
        judged = grade(self.task, {})
        judged.update(resolved=False, f2p_fraction=0.0, statuses={}, mismatch=[], tampered=[],
                      dropped=[], graded_patch=False, apply_error=None, flags=[], flag_details=[],
                      timed_out=False, timeout=timeout, zeroed=False, empty_patch=True,
                      verdict="unresolved", reason="empty patch: the agent changed nothing, so "
                      "no test ran (SWE-bench's harness does not run an empty patch either)")  # fmt: skip
        return judged

    def progress(self, command: str) -> tuple[dict[str, str] | None, dict[str, Any]]:
        """(statuses measured for ``command``'s step or None, the budget report for ``info``)."""
        left = self.progress_budget - self.spent
        report: dict[str, Any] = {
            "step_s": self.progress_timeout,
            "episode_s": self.progress_budget,
        }
        if not runs_tests(command):
            return None, {}
        if left < 1.0:
            report.update(
                spent_s=round(self.spent, 3),
                ran=False,
                reason="the episode's grading budget is spent",
            )
            return None, report
        started = time.monotonic()
        judged = self.evaluate(final=False, timeout=min(self.progress_timeout, left))
        self.spent += time.monotonic() - started
        report.update(spent_s=round(self.spent, 3), ran=True, timed_out=judged["timed_out"],
                      tampered=judged.get("tampered") or [], zeroed=judged["zeroed"])  # fmt: skip
        if judged["timed_out"]:
            return None, report
        return judged["statuses"], report

    def final(
        self, submitted: bool, weights: dict[str, float]
    ) -> tuple[dict[str, float], bool, dict[str, Any]]:
        """(end-of-episode reward components, resolved, ``info["grading"]``)."""
        timeout = getattr(grading_spec(self.task), "timeout", FINAL_TIMEOUT)  # per task (harness)
        judged = self.evaluate(final=True, timeout=timeout)
        components = {
            "submitted": weights["submitted"] if submitted else 0.0,
            "patch": weights["patch"] if judged["graded_patch"] else 0.0,
            "f2p_partial": weights["f2p_partial"] * judged["f2p_fraction"],
        }
        if judged["zeroed"]:
            components = dict.fromkeys(components, 0.0)
        keys = (
            "dropped",
            "flags",
            "flag_details",
            "mismatch",
            "apply_error",
            "tampered",
            "timed_out",
            "zeroed",
            "empty_patch",
        )
        report = {key: judged.get(key) for key in keys}
        report.update(
            suspicious=self.suspicious, verdict=judged.get("verdict"), reason=judged.get("reason")
        )
        return components, bool(judged["resolved"]) and not judged["zeroed"], report
