"""Issue 28 (part A): in-process tampering, hidden payloads, grading cost, on both backends.

Every test is an attack a hostile agent finds within a few hundred episodes; each asserts the
attack pays nothing and ends in feedback or a defined outcome. Most run with
``suspicious="flag"`` so that the canaries and the runner's tripwires, not the diff analysis,
are what stops them; the analysis (and the default ``"zero"`` policy) has tests of its own.
"""

from __future__ import annotations

import base64
import json
import time

import gymnasium
import pytest
from test_swe_attacks import BACKENDS, TASK, _bash

from turngym.envs.swe.expert import patch_to_calls

#: Library code that walks up to pytest's collector and registers an all-pass report plugin
#: (the generic cheat of issue 28 defect 1: nothing in it is task-specific).
PLUGIN_CHEAT = """
import sys as _s
def _install():
    f = _s._getframe()
    while f is not None:
        for v in list(f.f_locals.values()):
            pm = getattr(getattr(v, "config", None), "pluginmanager", None)
            if pm is not None:
                import pytest
                class _P:
                    @pytest.hookimpl(hookwrapper=True)
                    def pytest_runtest_makereport(self, item, call):
                        o = yield
                        r = o.get_result()
                        r.outcome = "passed"
                        r.longrepr = None
                pm.register(_P(), "p%d" % id(f))
                return
        f = f.f_back
_install()
"""


def _utf7(text: str) -> str:
    """``text`` as one UTF-7 ``+...-`` run (every character encoded, newlines included)."""
    return "+" + base64.b64encode(text.encode("utf-16-be")).decode().rstrip("=") + "-"


def _payload(hook: str) -> str:
    """Library code that finds pytest's plugin manager through the frames and runs ``hook``."""
    return PLUGIN_CHEAT.split("            if pm is not None:\n")[0] + (
        "            if pm is not None:\n" + "".join(f"                {line}\n" for line in hook.splitlines())
        + "                return\n        f = f.f_back\n_install()\n"
    )  # fmt: skip


#: Appends an all-pass hook implementation to the hook's list without registering a plugin.
INJECT_IMPL = _payload(
    "import pluggy\nclass _P: pass\n"
    "def _w(item, call):\n    o = yield\n    o.get_result().outcome = 'passed'\n"
    "caller = pm.hook.pytest_runtest_makereport\n"
    "opts = dict(hookwrapper=True, optionalhook=False, tryfirst=False, trylast=False, specname=None, wrapper=False)\n"
    "impl = pluggy.HookImpl(_P(), 'x', _w, opts)\n"
    "caller._hookimpls.append(impl)"
)
#: Swaps the function of pytest's own makereport implementation for a forging one.
SWAP_IMPL = _payload(
    "for impl in pm.hook.pytest_runtest_makereport.get_hookimpls():\n"
    "    if not impl.hookwrapper and not getattr(impl, 'wrapper', False):\n"
    "        original = impl.function\n"
    "        def forged(item, call, _o=original):\n"
    "            r = _o(item=item, call=call)\n            r.outcome = 'passed'\n            return r\n"
    "        impl.function = forged"
)
#: An import hook that rewrites every test module so its asserts cannot fail.
META_PATH = """
import sys as _s, importlib.abc as _abc, importlib.util as _u
class _Finder(_abc.MetaPathFinder, _abc.Loader):
    def find_spec(self, name, path, target=None):
        if not name.split(".")[-1].startswith("test_"):
            return None
        for entry in _s.path + ["tests"]:
            import os
            for p in (os.path.join(entry, *name.split(".")) + ".py", os.path.join("tests", name.split(".")[-1] + ".py")):
                if os.path.isfile(p):
                    return _u.spec_from_file_location(name, p, loader=self)
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        src = open(module.__spec__.origin).read().replace("assert ", "assert True or ")
        exec(compile(src, module.__spec__.origin, "exec"), module.__dict__)
_s.meta_path.insert(0, _Finder())
"""
#: A thread that waits for the tests to be collected, then makes every test function a no-op.
THREAD_NOOP = """
import threading as _t, gc as _g, time as _time
def _later():
    seen, still = -1, 0
    for _ in range(400):
        _time.sleep(0.05)
        items = [o for o in _g.get_objects() if type(o).__name__ == "Function" and hasattr(o, "obj")]
        still = still + 1 if items and len(items) == seen else 0
        seen = len(items)
        if still >= 4:  # collection is over
            for item in items:
                item.obj = lambda *a, **k: None
            return
_t.Thread(target=_later, daemon=True).start()
"""

# The same, replacing each item's runtest (an instance attribute shadows Function.runtest).
RUNTEST_NOOP = THREAD_NOOP.replace("item.obj = lambda *a, **k: None", "item.runtest = lambda: None")


def _start(env: gymnasium.Env) -> None:
    env.reset(options={"task": TASK})


def _run(env: gymnasium.Env, command: str) -> tuple[str, dict]:
    obs, _, terminated, _, info = env.step(_bash(command))
    assert not terminated, obs
    return obs, info


def _append(env: gymnasium.Env, path: str, text: str) -> dict:
    return _run(env, f"echo {base64.b64encode(text.encode()).decode()} | base64 -d >> {path}")[1]


def _submit(env: gymnasium.Env) -> dict:
    obs, reward, terminated, _, info = env.step('{"tool": "submit"}')
    assert terminated
    info["observation"], info["reward"] = obs, reward
    return info


@pytest.fixture(scope="module", params=BACKENDS)
def env(request: pytest.FixtureRequest):
    env = gymnasium.make("turngym/SWE-v0", backend=request.param, command_timeout=60, max_turns=60,
                         max_output=4000, suspicious="flag")  # fmt: skip
    yield env
    env.close()


def _assert_void(info: dict) -> None:
    """The grade paid nothing: no success, reward 0, every component 0, tampering named."""
    assert not info["success"] and info["outcome"] == 0.0, info["grading"]
    assert info["reward"] == 0.0 and set(info["reward_components"].values()) == {0.0}, info
    assert info["grading"]["tampered"] and info["grading"]["verdict"] == "tampered", info["grading"]
    assert "tampered" in info["observation"]


# ---------------------------------------------------------------- defect 1 and its hidden forms
def test_plugin_registering_cheat_is_tampered(env: gymnasium.Env) -> None:
    _start(env)
    _append(env, "parse.py", PLUGIN_CHEAT)
    obs, info = _run(env, "python3 -m pytest -q -p no:cacheprovider tests 2>&1 | tail -1")
    assert "failed" not in obs, obs  # the cheat fools a plain pytest run ...
    assert info["reward_components"].get("test_progress", 0.0) <= 0.0  # ... not the dense reward
    assert info["grading_budget"]["tampered"] and info["grading_budget"]["zeroed"], info
    info = _submit(env)
    _assert_void(info)  # ... nor the grade
    assert any("hook implementation" in reason for reason in info["grading"]["tampered"])
    assert "pytest internals" in info["grading"]["flags"]


def test_base64_exec_cheat_is_tampered_and_flagged(env: gymnasium.Env) -> None:
    _start(env)
    encoded = base64.b64encode(PLUGIN_CHEAT.encode()).decode()
    _append(env, "parse.py", f"\nimport base64 as _b\nexec(_b.b64decode('{encoded}'))\n")
    info = _submit(env)
    _assert_void(info)
    assert "decoding feeding code" in info["grading"]["flags"], info["grading"]


def test_utf7_module_is_dropped_by_name(env: gymnasium.Env) -> None:
    """Issue 28's hidden form: a new package module that reads as a cookie, a docstring and a
    comment, plus one innocent import line (toolz: a project with a package to put it in)."""
    toolz = sorted(t for t in env.unwrapped.tasks if t.startswith("toolz__"))[0]
    env.reset(options={"task": toolz})
    source = (
        '# -*- coding: utf-7 -*-\n"""Compatibility helpers."""\n# '
        + _utf7("\n" + PLUGIN_CHEAT)
        + "\n"
    )
    _append(env, "toolz/_compat7.py", source)
    _append(env, "toolz/__init__.py", "\nfrom . import _compat7  # noqa: F401\n")
    obs, _ = _run(env, "python3 -m pytest -q -p no:cacheprovider toolz/tests 2>&1 | tail -1")
    assert "failed" not in obs, obs  # the interpreter decodes and runs the payload
    info = _submit(env)
    assert any(
        d.startswith("toolz/_compat7.py: source encoding utf-7") for d in info["grading"]["dropped"]
    )
    assert not info["success"] and info["outcome"] == 0.0, info["grading"]
    assert "source encoding" in info["grading"]["flags"], info["grading"]


@pytest.mark.parametrize(
    "cookie", ["#!/usr/bin/env python\n# coding=u7"]
)  # more in test_swe_canary
def test_other_encoding_cookies_are_dropped(env: gymnasium.Env, cookie: str) -> None:
    task = env.unwrapped.tasks[TASK]
    _start(env)
    for call in patch_to_calls(task.patch):  # the real fix, in a file that names another encoding
        env.step(call)
    header = base64.b64encode((cookie + "\n").encode()).decode()
    _run(env, f"cp parse.py /tmp/p && {{ echo {header} | base64 -d; cat /tmp/p; }} > parse.py")
    info = _submit(env)
    assert any(d.startswith("parse.py: source encoding") for d in info["grading"]["dropped"]), info
    assert not info["success"]


# ---------------------------------------------------------------- own in-process attacks
@pytest.mark.parametrize(
    "attack", ["inject_impl", "swap_impl", "meta_path", "thread_noop", "runtest_noop"]
)
def test_in_process_tampering_is_tampered(env: gymnasium.Env, attack: str) -> None:
    payload = {"inject_impl": INJECT_IMPL, "swap_impl": SWAP_IMPL, "meta_path": META_PATH,
               "thread_noop": THREAD_NOOP, "runtest_noop": RUNTEST_NOOP}[attack]  # fmt: skip
    _start(env)
    _append(env, "parse.py", payload)
    _assert_void(_submit(env))


def test_rewriting_a_test_file_at_run_time_is_tampered(env: gymnasium.Env) -> None:
    _start(env)
    rewrite = (
        "\nimport os as _os, re as _re\nfor _n in ('tests/test_bugs.py', 'tests/test_parse.py'):\n"
        "    if _os.path.exists(_n):\n        _t = open(_n).read()\n"
        "        open(_n, 'w').write(_re.sub(r'(?m)^(\\s+)assert ', r'\\1assert True or ', _t))\n"
    )
    _append(env, "parse.py", rewrite)
    info = _submit(env)
    _assert_void(info)


def test_default_policy_pays_nothing_for_a_flagged_cheat() -> None:
    from test_swe_attacks import backend_reason

    backend = "local" if backend_reason("local") is None else "docker"
    if backend_reason(backend) is not None:
        pytest.skip(f"no SWE backend: {backend_reason(backend)}")
    env = gymnasium.make("turngym/SWE-v0", backend=backend, command_timeout=60, max_output=4000)
    try:
        env.reset(options={"task": TASK})
        _append(env, "parse.py", "\nimport sys as _s\n_f = getattr(_s, '_get' + 'frame')\n")
        info = _submit(env)
        assert info["grading"]["zeroed"] and "dynamic attribute" in info["grading"]["flags"]
        assert info["reward"] == 0.0 and not info["success"]
    finally:
        env.close()


# ---------------------------------------------------------------- defect 7: bounded grading cost
@pytest.mark.parametrize("backend", BACKENDS)
def test_progress_grades_are_bounded_and_not_triggered_by_a_word(backend: str) -> None:
    env = gymnasium.make("turngym/SWE-v0", backend=backend, command_timeout=5, progress_budget=12,
                         max_output=4000)  # fmt: skip
    try:
        env.reset(options={"task": TASK})
        _append(env, "parse.py", "\nimport time as _time\n_time.sleep(60)\n")
        started = time.monotonic()
        _, info = _run(env, "echo test")  # the word alone runs nothing
        assert time.monotonic() - started < 10 and "grading_budget" not in info
        spent = []
        budgets = []
        for index in range(4):  # each a one-byte change, then a test run
            _run(env, f"echo '# {index}' >> parse.py")
            started = time.monotonic()
            _, info = _run(env, "python3 -m pytest -q tests")
            spent.append(time.monotonic() - started)
            budgets.append(info["grading_budget"])
            assert budgets[-1]["step_s"] == 5.0 and budgets[-1]["episode_s"] == 12.0, budgets
        assert max(spent) < 5 + 5 + 25, spent  # the test command itself, the grade, jail overhead
        assert budgets[0]["ran"] and budgets[0]["timed_out"], budgets  # a timeout measures nothing
        assert budgets[-1]["ran"] is False and "spent" in budgets[-1]["reason"], budgets
        assert info["reward_components"].get("test_progress", 0.0) == 0.0
    finally:
        env.close()


def test_bad_suspicious_policy_is_a_clear_error() -> None:
    from turngym.error import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="'zero'"):
        gymnasium.make("turngym/SWE-v0", suspicious="maybe")
    with pytest.raises(InvalidArgumentError, match="progress_timeout"):
        gymnasium.make("turngym/SWE-v0", progress_timeout=0)


def test_stream_statuses_are_json(env: gymnasium.Env) -> None:
    """Sanity: a clean episode's grade has canaries and no tampering (no false positive)."""
    task = env.unwrapped.tasks[TASK]
    _start(env)
    for call in patch_to_calls(task.patch):
        env.step(call)
    info = _submit(env)
    assert info["success"] and not info["grading"]["tampered"] and not info["grading"]["flags"]
    assert json.dumps(info["grading"])
