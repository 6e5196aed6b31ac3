"""The pieces every trainer integration shares: version checks, turns from token-mask runs."""

from __future__ import annotations

import doctest

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import turngym.integrations.common as common
from turngym.error import DependencyNotInstalled
from turngym.integrations.common import (
    IntegrationVersionError,
    TurnSplitError,
    check_version,
    mask_runs,
    spread_over_runs,
)


def test_doctests():
    assert doctest.testmod(common).failed == 0


def test_version_range_and_messages():
    assert check_version("x", "1.16", "1.17", extra="trl", found="1.16.0") == "1.16.0"
    assert check_version("x", "0.9.1", "0.10", extra="verl", found="0.9.12+cpu") == "0.9.12+cpu"
    for bad in ("1.15.9", "1.17.0", "2.0"):
        with pytest.raises(IntegrationVersionError) as info:
            check_version("trl", "1.16", "1.17", extra="trl", found=bad)
        message = str(info.value)
        assert f"trl {bad} is installed" in message and ">=1.16,<1.17" in message
        assert "turngym " in message and "pip install 'turngym[trl]'" in message
    with pytest.raises(DependencyNotInstalled, match=r"turngym\[nope\]"):
        check_version("surely-not-installed-dist", "1", "2", extra="nope")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.booleans(), min_size=1, max_size=24), min_size=1, max_size=6))
def test_spread_over_runs_matches_a_loop(rows):
    width = max(map(len, rows))
    rows = [[*r, False] if not any(r) else r for r in rows]
    rows = [r if any(r) else [True, *r[1:]] for r in rows]
    mask = torch.zeros(len(rows), width + 1, dtype=torch.long)
    for i, r in enumerate(rows):
        mask[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    runs = mask_runs(mask)
    turns = max(len(r) for r in runs)
    advantages = torch.randn(len(rows), turns)
    got = spread_over_runs(advantages, mask, expected_turns=[len(r) for r in runs])
    want = torch.zeros(mask.shape)
    for i, row_runs in enumerate(runs):
        for k, (start, end) in enumerate(row_runs):
            want[i, start:end] = advantages[i, k]
            assert mask[i, start:end].all() and (start == 0 or mask[i, start - 1] == 0)
    assert torch.equal(got, want)


def test_rows_without_runs_or_with_wrong_turn_counts_are_named():
    with pytest.raises(TurnSplitError, match="TRL completion row 2: its mask has no run"):
        mask_runs(torch.tensor([[1, 0], [0, 1], [0, 0]]), what="TRL completion")
    with pytest.raises(ValueError, match="row 1: its mask has 1 runs .* 2 turns"):
        spread_over_runs(
            torch.ones(2, 2), torch.tensor([[1, 0, 1], [1, 1, 0]]), expected_turns=[2, 2]
        )
