"""Test-log parsers with SWE-bench's keys, per repository; SWE-bench's own when it is installed.

SWE-bench (``swebench`` on PyPI, the optional extra ``turngym[swe-bench]``) grades an instance by
parsing its test log with the parser its repository is mapped to, and stores FAIL_TO_PASS /
PASS_TO_PASS under the keys that parser makes. The keys are not always pytest's node ids:

* pytest family: a line that *starts* with a status word (``PASSED FAILED SKIPPED ERROR XFAIL``)
  names the test by the **first whitespace-separated token** after the status, so
  ``PASSED t.py::test_x[assert x == 1]`` is keyed ``t.py::test_x[assert``. On ``FAILED`` lines
  `` - `` (the message separator) becomes a blank first. ``SKIPPED [2] file:line`` skip summaries
  name no test.
* ``pytest_options`` (pydicom, requests, pylint): the parameter part of the key is cut to its
  last path component when it is an absolute path (``[/a/b/f.dcm]`` -> ``[/f.dcm]``, not ``//``
  or globs); text after the last ``]`` is dropped.
* ``pytest_v2`` (astropy, scikit-learn, sphinx): terminal colour codes and control characters
  are removed, the whole rest of the line is the key (blanks collapsed; ``FAILED`` lines cut at
  `` - ``), and verbose ``id STATUS`` lines count too.
* ``django``: ``id ... ok|OK|skipped|FAIL|ERROR`` lines, ``FAIL: x`` / ``ERROR: x`` headers (the
  first word), a line starting with ``ok`` after an ``id ...`` line whose output came between,
  and three multi-line forms of an interrupted ``... ok``.
* ``sympy``: ``___ path.py:test ___`` failure headers (FAILED) and ``test_x ok|F|E`` lines; a
  skipped sympy test has no entry.
* ``seaborn`` and ``matplotlib``: the pytest rules with their repositories' quirks (``id PASSED``
  lines; ``MouseButton.LEFT/RIGHT`` -> ``1``/``3``).

:func:`parse_log` uses SWE-bench's function of the same name when ``swebench`` imports
(``engine="auto"``), else this module's own implementation of the rules above (written from
SWE-bench's documented behaviour, compared with it line for line by ``tests/test_swe_parsers.py``
on real and scripted logs). Repositories outside SWE-bench's map (SWE-Gym, SWE-smith) use the
pytest rules, as SWE-smith's harness does. :func:`test_key` turns a pytest node id into the key
its repository's parser makes, so the grader's own per-test stream can be compared with the log.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from turngym.error import DependencyNotInstalled, InvalidArgumentError

__all__ = [
    "FAMILIES",
    "REPO_PARSER",
    "ENGINES",
    "STATUSES",
    "parser_for_repo",
    "parse_log",
    "test_key",
    "swebench_parser",
    "swebench_version",
]

STATUSES = ("FAILED", "PASSED", "SKIPPED", "ERROR", "XFAIL")
FAMILIES = ("pytest", "pytest_options", "pytest_v2", "django", "sympy", "seaborn", "matplotlib")
ENGINES = ("auto", "swebench", "own")
#: SWE-bench's repositories and the parser family each is graded with.
REPO_PARSER = {
    **dict.fromkeys(
        """marshmallow-code/marshmallow pallets/flask pvlib/pvlib-python pydata/xarray
        pylint-dev/astroid pytest-dev/pytest pyvista/pyvista sqlfluff/sqlfluff""".split(),
        "pytest",
    ),
    **dict.fromkeys("pydicom/pydicom psf/requests pylint-dev/pylint".split(), "pytest_options"),
    **dict.fromkeys(
        "astropy/astropy scikit-learn/scikit-learn sphinx-doc/sphinx".split(), "pytest_v2"
    ),
    "django/django": "django",
    "sympy/sympy": "sympy",
    "mwaskom/seaborn": "seaborn",
    "matplotlib/matplotlib": "matplotlib",
}
_SKIP_COUNT = re.compile(r"^\[\d+\]$")
_OPTION = re.compile(r"(.*?)\[(.*)\]")
_COLOUR = re.compile(r"\[(\d+)m")
_CONTROL = str.maketrans("", "", "".join(chr(code) for code in range(1, 32)))
_DJANGO_PASS = (" ... ok", " ... OK", " ...  OK")
_DJANGO_INTERRUPTED = (
    r"^(.*?)\s\.\.\.\sTesting\ against\ Django\ installed\ in\ ((?s:.*?))\ silenced\)\.\nok$",
    r"^(.*?)\s\.\.\.\sInternal\ Server\ Error:\ \/(.*)\/\nok$",
    r"^(.*?)\s\.\.\.\sSystem check identified no issues \(0 silenced\)\nok$",
)
_SYMPY_HEADER = re.compile(r"(_*) (.*)\.py:(.*) (_*)")


def parser_for_repo(repo: str) -> str:
    """The parser family SWE-bench grades ``repo`` with (``pytest`` for repositories it lacks)."""
    return REPO_PARSER.get(repo, "pytest")


def _status_tokens(line: str, cut: bool) -> list[str] | None:
    """The blank-separated tokens of a line starting with a status word (None otherwise)."""
    if not line.startswith(STATUSES):
        return None
    if line.startswith("FAILED"):
        line = line.split(" - ", 1)[0] if cut else line.replace(" - ", " ")
    tokens = line.split()
    if len(tokens) <= 1 or (tokens[0] == "SKIPPED" and _SKIP_COUNT.match(tokens[1])):
        return None
    return tokens


def _pytest(log: str, normalise_paths: bool = False, rewrite: Callable | None = None) -> dict:
    statuses: dict[str, str] = {}
    for line in log.split("\n"):
        tokens = _status_tokens(rewrite(line) if rewrite else line, cut=False)
        if tokens is None:
            continue
        key = tokens[1]
        option = _OPTION.search(key) if normalise_paths else None
        if option:
            main, parameter = option.groups()
            if (
                parameter.startswith("/")
                and not parameter.startswith("//")
                and "*" not in parameter
            ):
                parameter = "/" + parameter.split("/")[-1]
            key = f"{main}[{parameter}]"
        statuses[key] = tokens[0]
    return statuses


def _pytest_v2(log: str) -> dict[str, str]:
    statuses: dict[str, str] = {}
    for raw in log.split("\n"):
        line = _COLOUR.sub("", raw).translate(_CONTROL)
        tokens = _status_tokens(line, cut=True)
        if tokens is not None:
            statuses[" ".join(tokens[1:])] = tokens[0]
        elif not line.startswith(STATUSES) and line.endswith(STATUSES):
            tokens = line.split()
            if len(tokens) >= 2:
                statuses[" ".join(tokens[:-1])] = tokens[-1]
    return statuses


def _django(log: str) -> dict[str, str]:
    statuses: dict[str, str] = {}
    previous = None
    for raw in log.split("\n"):
        line = raw.strip()
        if "--version is equivalent to version" in line:
            statuses["--version is equivalent to version"] = "PASSED"
        if " ... " in line:
            previous = line.split(" ... ")[0]
        for suffix in _DJANGO_PASS:
            if line.endswith(suffix):
                if line.startswith("Applying sites.0002_alter_domain_unique...test_no_migrations"):
                    line = line.split("...", 1)[-1].strip()  # a migration message on the same line
                statuses[line.rsplit(suffix, 1)[0]] = "PASSED"
                break
        if " ... skipped" in line:
            statuses[line.split(" ... skipped")[0]] = "SKIPPED"
        if line.endswith(" ... FAIL"):
            statuses[line.split(" ... FAIL")[0]] = "FAILED"
        if line.startswith("FAIL:"):
            statuses[line.split()[1].strip()] = "FAILED"
        if line.endswith(" ... ERROR"):
            statuses[line.split(" ... ERROR")[0]] = "ERROR"
        if line.startswith("ERROR:"):
            statuses[line.split()[1].strip()] = "ERROR"
        if line.startswith("ok") and previous is not None:
            statuses[previous] = "PASSED"  # the test printed between "..." and "ok"
    for pattern in _DJANGO_INTERRUPTED:
        for match in re.finditer(pattern, log, re.MULTILINE):
            statuses[match.group(1)] = "PASSED"
    return statuses


def _sympy(log: str) -> dict[str, str]:
    statuses = {f"{m[1]}.py:{m[2]}": "FAILED" for m in _SYMPY_HEADER.findall(log)}
    for raw in log.split("\n"):
        line = raw.strip()
        if not line.startswith("test_"):
            continue
        for suffix, status in ((" E", "ERROR"), (" F", "FAILED"), (" ok", "PASSED")):
            if line.endswith(suffix):
                statuses[line.split()[0]] = status
    return statuses


def _seaborn(log: str) -> dict[str, str]:
    statuses: dict[str, str] = {}
    for line in log.split("\n"):
        parts = line.split()
        if len(parts) < 2:
            continue
        if line.startswith("FAILED"):
            statuses[parts[1]] = "FAILED"
        elif " PASSED " in line:
            if parts[1] == "PASSED":
                statuses[parts[0]] = "PASSED"
        elif line.startswith("PASSED"):
            statuses[parts[1]] = "PASSED"
    return statuses


def _mouse(line: str) -> str:
    return line.replace("MouseButton.LEFT", "1").replace("MouseButton.RIGHT", "3")


_OWN: dict[str, Callable[[str], dict[str, str]]] = {
    "pytest": _pytest,
    "pytest_options": functools.partial(_pytest, normalise_paths=True),
    "pytest_v2": _pytest_v2,
    "django": _django,
    "sympy": _sympy,
    "seaborn": _seaborn,
    "matplotlib": functools.partial(_pytest, rewrite=_mouse),
}


@functools.lru_cache(maxsize=1)
def swebench_version() -> str | None:
    """The installed ``swebench`` version, or None when it does not import."""
    try:
        import swebench
        import swebench.harness.log_parsers.python  # noqa: F401 - the part we use must import
    except Exception:  # noqa: BLE001 - absent, or broken by a missing dependency: the fallback
        return None
    return str(getattr(swebench, "__version__", "?"))


def swebench_parser(family: str) -> Callable[[str], dict[str, str]] | None:
    """SWE-bench's own parser of a family (``log -> statuses``), None when ``swebench`` is absent."""
    if swebench_version() is None:
        return None
    from swebench.harness.log_parsers import python as parsers

    function = getattr(parsers, f"parse_log_{family}", None)
    if function is None:
        return None
    return lambda log: dict(function(log, None))  # the Python parsers never read the test spec


def parse_log(parser: str, log: str, engine: str = "auto") -> dict[str, str]:
    """Test key -> ``PASSED``/``FAILED``/``ERROR``/``SKIPPED``/``XFAIL`` from a test log.

    Args:
        parser: a family of :data:`FAMILIES` (see :func:`parser_for_repo`).
        log: the test command's output.
        engine: ``"auto"`` (SWE-bench's parser when ``swebench`` imports, else ours),
            ``"swebench"`` (raises when it is absent) or ``"own"``.
    """
    if parser not in _OWN:
        raise InvalidArgumentError(f"parser={parser!r} is not known; use one of {list(FAMILIES)}.")
    if engine not in ENGINES:
        raise InvalidArgumentError(f"engine={engine!r} is not valid; use one of {list(ENGINES)}.")
    if engine != "own":
        theirs = swebench_parser(parser)
        if theirs is not None:
            return theirs(log or "")
        if engine == "swebench":
            raise DependencyNotInstalled(
                "engine='swebench' needs SWE-bench's harness: pip install 'turngym[swe-bench]'."
            )
    return _OWN[parser](log or "")


def test_key(parser: str, node_id: str, engine: str = "auto") -> str:
    """The key ``parser`` gives the pytest test ``node_id`` (its line ``PASSED <node_id>``)."""
    keys = list(parse_log(parser, f"PASSED {node_id}", engine))
    return keys[0] if keys else node_id


test_key.__test__ = False  # type: ignore[attr-defined]  # not a pytest test where imported
