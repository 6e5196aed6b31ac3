"""Runs the ``>>>`` examples in the core, credit and orchestra docstrings."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import turngym

CORE = [
    f"turngym.{m.name}"
    for m in pkgutil.iter_modules(turngym.__path__)
    if m.name not in {"envs", "agents", "credit"}
]


def _credit_modules() -> list[str]:
    try:
        import turngym.credit as credit
    except ImportError:
        return []
    return [f"turngym.credit.{m.name}" for m in pkgutil.iter_modules(credit.__path__)]


@pytest.mark.parametrize("module_name", [*CORE, *_credit_modules(), "turngym.envs.orchestra"])
def test_doctests(module_name: str) -> None:
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {module_name}"
