"""What a pip extra of turngym installs, read from pyproject.toml and the installed metadata.

The README's install is ``pip install -e '.[all]'``; CI installs ``[test]``, a superset. To run a
README example as the README's own install would, :func:`fenced_env` hides every module of a
distribution that the wanted extras do not pull in (directly or through dependencies), so an
import that only ``[test]`` satisfies fails in CI as it would for a user.
"""

from __future__ import annotations

import os
import re
import sys
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

__all__ = ["FENCE_DIR", "blocked_modules", "extra_distributions", "fenced_env", "normalize"]

ROOT = Path(__file__).resolve().parents[2]
#: Holds the ``sitecustomize`` that hides the modules named in ``$TURNGYM_TEST_BLOCKED``.
FENCE_DIR = Path(__file__).resolve().parent / "import_fence"


def normalize(name: str) -> str:
    """PEP 503 name: ``Foo_Bar`` and ``foo-bar`` are the same distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _direct(extras: set[str]) -> tuple[set[str], set[Requirement]]:
    """The extras named (expanding ``turngym[...]`` self-references) and their requirements."""
    optional = _project()["optional-dependencies"]
    done: set[str] = set()
    requirements = {Requirement(text) for text in _project()["dependencies"]}
    todo = list(extras)
    while todo:
        extra = todo.pop()
        if extra in done:
            continue
        if extra not in optional:
            raise KeyError(f"pyproject.toml has no extra [{extra}]")
        done.add(extra)
        for text in optional[extra]:
            requirement = Requirement(text)
            if normalize(requirement.name) == "turngym":
                todo += sorted(requirement.extras)
            else:
                requirements.add(requirement)
    return done, requirements


def extra_distributions(extras: set[str]) -> set[str]:
    """Normalised names of every distribution ``pip install 'turngym[extras]'`` installs.

    The closure over the installed packages' own requirements (markers evaluated for this
    interpreter, each package's requested extras followed).
    """
    _, requirements = _direct(extras)
    seen: set[str] = {"turngym"}
    todo = [(requirement, frozenset(requirement.extras)) for requirement in requirements]
    visited: set[tuple[str, frozenset]] = set()
    while todo:
        requirement, wanted = todo.pop()
        name = normalize(requirement.name)
        if (name, wanted) in visited:
            continue
        visited.add((name, wanted))
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # not installed here: nothing it could provide anyway
        seen.add(name)
        for text in requires:
            child = Requirement(text)
            if child.marker is not None:
                contexts = [{"extra": e} for e in wanted] or [{"extra": ""}]
                if not any(child.marker.evaluate(c) for c in contexts):
                    continue
            todo.append((child, frozenset(child.extras)))
    return seen


def blocked_modules(allowed: set[str]) -> list[str]:
    """Top-level modules installed here that only distributions outside ``allowed`` provide."""
    blocked = []
    for module, distributions in metadata.packages_distributions().items():
        if module in sys.stdlib_module_names or module.startswith("_") or module == "turngym":
            continue
        if not any(normalize(d) in allowed for d in distributions):
            blocked.append(module)
    return sorted(blocked)


def fenced_env(extras: set[str]) -> dict[str, str]:
    """``os.environ`` plus the fence: child Pythons see only what ``turngym[extras]`` installs."""
    env = dict(os.environ)
    env["TURNGYM_TEST_BLOCKED"] = ",".join(blocked_modules(extra_distributions(extras)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(FENCE_DIR), env.get("PYTHONPATH", "")) if p)
    return env
