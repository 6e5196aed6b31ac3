"""What every trainer integration shares: version checks and splitting token masks into turns.

Trainers flatten an episode into one token sequence with a 0/1 mask (1 on the tokens the policy
generated, 0 on the env's observations and the chat template). turngym's credit works per turn,
so the integrations recover turns as the maximal runs of 1s in that mask, and spread each turn's
advantage back over the tokens of its run.
"""

from __future__ import annotations

import importlib.metadata
from typing import TYPE_CHECKING

from turngym.error import DependencyNotInstalled, InvalidArgumentError, TurnGymError

if TYPE_CHECKING:  # torch is imported where used: `turngym serve env` needs none of it
    import torch

__all__ = [
    "IntegrationVersionError",
    "TurnSplitError",
    "check_version",
    "gather_runs",
    "mask_runs",
    "spread_over_runs",
    "turngym_version",
]


class IntegrationVersionError(TurnGymError, ImportError):
    """The installed trainer's version is outside the range a turngym integration supports."""


class TurnSplitError(InvalidArgumentError):
    """A completion's token mask cannot be split into the turns its per-turn data describes."""


def turngym_version() -> str:
    """The installed turngym version (``"unknown"`` when run from a bare source tree)."""
    try:
        return importlib.metadata.version("turngym")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _parse(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit()) if not piece.isdigit() else piece
        if not digits:
            break
        parts.append(int(digits))
        if not piece.isdigit():
            break
    return tuple(parts)


def check_version(
    distribution: str, minimum: str, below: str, *, extra: str, found: str | None = None
) -> str:
    """Returns the installed version of ``distribution`` if ``minimum <= version < below``.

    Args:
        distribution: the PyPI name (e.g. ``"trl"``).
        minimum: the oldest supported version.
        below: the first unsupported version.
        extra: the turngym extra that installs a supported version (named in the message).
        found: the version to check (default: the installed one; tests pass others).

    Raises:
        DependencyNotInstalled: the distribution is not installed.
        IntegrationVersionError: the version is out of range; the message names turngym's
            version, the trainer's version and the supported range.
    """
    if found is None:
        try:
            found = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            raise DependencyNotInstalled(
                f"turngym.integrations needs {distribution} (>={minimum},<{below}); install it "
                f"with: pip install 'turngym[{extra}]'"
            ) from None
    if not (_parse(minimum) <= _parse(found) < _parse(below)):
        raise IntegrationVersionError(
            f"turngym {turngym_version()} supports {distribution} >={minimum},<{below}, but "
            f"{distribution} {found} is installed; install a supported version with: "
            f"pip install 'turngym[{extra}]' (or '{distribution}>={minimum},<{below}')."
        )
    return found


def mask_runs(mask: torch.Tensor, *, what: str = "completion") -> list[list[tuple[int, int]]]:
    """The ``[start, end)`` spans of the maximal runs of nonzero entries of each row of ``mask``.

    Raises:
        TurnSplitError: a row has no run (no generated token at all); names the row.

    >>> import torch
    >>> mask_runs(torch.tensor([[1, 1, 0, 0, 1, 0], [0, 1, 1, 1, 0, 0]]))
    [[(0, 2), (4, 5)], [(1, 4)]]
    """
    import torch

    mask = torch.as_tensor(mask).detach().to("cpu").bool()
    if mask.dim() != 2:
        raise InvalidArgumentError(
            f"the token mask must be [batch, length]; got {tuple(mask.shape)}"
        )
    padded = torch.nn.functional.pad(mask.to(torch.int8), (1, 1))
    change = padded[:, 1:] - padded[:, :-1]
    spans: list[list[tuple[int, int]]] = []
    for row in range(mask.shape[0]):
        starts = torch.nonzero(change[row] == 1).flatten().tolist()
        ends = torch.nonzero(change[row] == -1).flatten().tolist()
        if not starts:
            raise TurnSplitError(
                f"{what} row {row}: its mask has no run of generated tokens, so it cannot be "
                "split into turns; drop the row or check that the policy's tokens are masked 1."
            )
        spans.append(list(zip(starts, ends, strict=False)))
    return spans


def spread_over_runs(
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    expected_turns: list[int] | None = None,
    what: str = "completion",
) -> torch.Tensor:
    """Gives every token of the ``k``-th run of 1s in ``mask`` row ``i`` the value ``advantages[i, k]``.

    Args:
        advantages: ``[B, T]`` per-turn values.
        mask: ``[B, L]`` 0/1 token mask (1 = generated by the policy).
        expected_turns: the number of turns each row must have; a mismatch raises.
        what: names the rows in error messages.

    Returns:
        ``[B, L]`` float tensor, 0 where ``mask`` is 0, on ``mask``'s device.

    Raises:
        TurnSplitError: a row without runs, or with a run count other than ``expected_turns``.

    >>> import torch
    >>> spread_over_runs(torch.tensor([[1.0, -2.0]]), torch.tensor([[0, 1, 1, 0, 1]]))
    tensor([[ 0.,  1.,  1.,  0., -2.]])
    """
    spans = mask_runs(mask, what=what)
    if expected_turns is not None:
        for row, (runs, turns) in enumerate(zip(spans, expected_turns, strict=False)):
            if len(runs) != turns:
                raise TurnSplitError(
                    f"{what} row {row}: its mask has {len(runs)} runs of generated tokens but its "
                    f"per-turn data has {turns} turns; each turn's action must be one run of 1s "
                    "(env tokens 0 between them). Was the response truncated mid-episode?"
                )
    return gather_runs(advantages, mask)


def gather_runs(advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """:func:`spread_over_runs` without its checks, for a caller that has already split
    ``mask`` with :func:`mask_runs` and matched the runs to its turns (one scan, not two)."""
    import torch

    mask_b = mask.bool()
    starts = mask_b & ~torch.nn.functional.pad(mask_b, (1, 0))[:, :-1]
    run_index = (torch.cumsum(starts.long(), dim=1) - 1).clamp(min=0)
    advantages = advantages.to(mask.device, torch.float32)
    run_index = run_index.clamp(max=max(advantages.shape[1] - 1, 0))
    return advantages.gather(1, run_index) * mask_b
