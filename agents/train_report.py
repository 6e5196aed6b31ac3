"""What ``turngym train`` shows while it runs, and ``metrics.png``: ``turngym plot RUN_DIR``.

Each iteration prints one line above a progress bar over the run's iterations::

    iter   3/20  success 0.50  reward  0.812  loss -0.0123  kl 0.0000  clip 0.000  tok/s   812  0:00:42

``tok/s`` is the action tokens the policy generated and trained on in that iteration over its
wall time (rollout and update); the last column is the time since the command started.
:func:`plot_metrics` draws ``metrics.jsonl`` (one line per iteration, :class:`MetricsLogger`)
into ``metrics.png`` beside it: reward and success (with the held-out ``eval/*`` points when
``--eval-every`` was on), loss, KL, clip fraction and throughput, one panel each.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from turngym.error import InvalidArgumentError, missing_dependency

__all__ = ["TrainReport", "format_line", "main", "plot_metrics", "read_metrics"]

#: Panels of metrics.png: (title, [(metric, label)]).
PANELS = (
    ("episode reward", [("reward", "train"), ("eval/reward", "eval (held-out)")]),
    ("success rate", [("success", "train"), ("eval/success", "eval (held-out)")]),
    ("policy loss", [("loss", "loss")]),
    ("KL to the reference", [("kl", "kl")]),
    ("clip fraction", [("clip_frac", "clipped tokens")]),
    ("throughput (action tokens/s)", [("tokens_per_s", "tokens/s")]),
)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def tokens_per_second(metrics: dict[str, Any]) -> float:
    """Action tokens of the iteration over its wall time (0 when either is missing)."""
    seconds = float(metrics.get("seconds") or 0.0)
    return float(metrics.get("action_tokens") or 0) / seconds if seconds > 0 else 0.0


def format_line(metrics: dict[str, Any], total: int, elapsed: float) -> str:
    """One iteration's line: iteration, success, reward, loss, KL, clip fraction, tokens/s,
    elapsed time; the held-out ``eval/success`` and ``eval/reward`` when it was evaluated."""
    width = len(str(total))
    line = (
        f"iter {metrics['iteration']:>{width}}/{total}"
        f"  success {metrics['success']:.2f}"
        f"  reward {metrics['reward']:+.3f}"
        f"  loss {metrics['loss']:+.4f}"
        f"  kl {metrics['kl']:.4f}"
        f"  clip {metrics['clip_frac']:.3f}"
        f"  tok/s {tokens_per_second(metrics):5.0f}"
        f"  {_clock(elapsed)}"
    )
    if "eval/success" in metrics:
        line += (
            f"  | eval success {metrics['eval/success']:.2f} reward {metrics['eval/reward']:+.3f}"
        )
    return line


class TrainReport:
    """The per-iteration lines and a tqdm bar over ``total`` iterations, starting at ``start``.

    Args:
        total: the run's last iteration (``config.steps``).
        start: iterations already done (a resumed checkpoint's).
        stream: where lines and the bar go (stdout by default).
    """

    def __init__(self, total: int, start: int = 0, stream: IO[str] | None = None) -> None:
        from tqdm.auto import tqdm

        self.total, self.started = total, time.perf_counter()
        self.stream = stream or sys.stdout
        self.bar = tqdm(
            total=total, initial=start, desc="train", unit="iter", file=self.stream, leave=True
        )

    def update(self, metrics: dict[str, Any]) -> str:
        """Prints the iteration's line above the bar and advances the bar; returns the line."""
        line = format_line(metrics, self.total, time.perf_counter() - self.started)
        self.bar.write(line, file=self.stream)
        self.bar.update(1)
        return line

    def close(self) -> None:
        """Closes the bar (the lines stay on the terminal)."""
        self.bar.close()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The iterations of ``run_dir/metrics.jsonl`` (a ``metrics.jsonl`` path works too)."""
    path = Path(run_dir)
    path = path if path.is_file() else path / "metrics.jsonl"
    if not path.is_file():
        raise InvalidArgumentError(
            f"no metrics at {path}; pass the output_dir of a `turngym train` run "
            "(the folder holding metrics.jsonl)"
        )
    rows = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):  # the line a run killed mid-write left: skipped
                warnings.warn(f"{path}:{number} is a torn last line; skipped", stacklevel=2)
                continue
            raise InvalidArgumentError(f"{path}:{number} is not a JSON line") from None
    return rows


def plot_metrics(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Draws ``run_dir/metrics.jsonl`` into ``out`` (default ``metrics.png`` beside it)."""
    rows = read_metrics(run_dir)
    source = Path(run_dir)
    folder = source.parent if source.is_file() else source
    out = Path(out) if out is not None else folder / "metrics.png"
    if not rows:
        raise InvalidArgumentError(f"{folder / 'metrics.jsonl'} has no iterations yet")
    try:
        import matplotlib
    except ImportError:
        raise missing_dependency("matplotlib", "bench") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for row in rows:
        row["tokens_per_s"] = tokens_per_second(row)
    figure, axes = plt.subplots(2, 3, figsize=(13, 6.5), squeeze=False)
    for axis, (title, series) in zip(axes.flat, PANELS, strict=True):
        for index, (name, label) in enumerate(series):
            points = [(r["iteration"], r[name]) for r in rows if r.get(name) is not None]
            if points:
                x, y = zip(*points, strict=True)
                axis.plot(
                    x, y, marker="o" if index or len(points) <= 40 else None, ms=3, label=label
                )
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("iteration", fontsize=9)
        axis.tick_params(labelsize=8)
        axis.grid(alpha=0.3)
        if len(series) > 1:
            axis.legend(fontsize=8, frameon=False)
    figure.suptitle(
        f"{folder.name}: {len(rows)} iterations ({folder / 'metrics.jsonl'})", fontsize=10
    )
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``turngym plot RUN_DIR [--out FILE]``: writes the run's ``metrics.png``."""
    parser = argparse.ArgumentParser(
        prog="turngym plot", description="plot a training run's metrics.jsonl into metrics.png"
    )
    parser.add_argument("run_dir", help="output_dir of a `turngym train` run (holds metrics.jsonl)")
    parser.add_argument("--out", default=None, help="image path (default RUN_DIR/metrics.png)")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        path = plot_metrics(args.run_dir, args.out)
    except (InvalidArgumentError, ImportError) as error:
        print(f"turngym plot: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0
