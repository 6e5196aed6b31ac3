"""The lab's outputs: a markdown table, ``results.json``, a PNG of curves and a one-line verdict."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_curves", "table", "verdict", "write_report"]


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "never"
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return f"{value[0]:.{digits}f} ± {value[1]:.{digits}f}"
    if isinstance(value, (tuple, list)) and len(value) == 3:
        return f"{value[0]:+.{digits}f} ± {value[1]:.{digits}f}"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(rows: list[dict[str, Any]], budgets: Sequence[int]) -> str:
    """Markdown: one row per (env, method), then the anchor statistics and timings per env."""
    head = ["env", "method", "seeds", "AUC", "paired vs grpo"]
    head += [f"@{b}" for b in budgets] + ["to 50 %", "to 80 %", "turns/ep"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["env"], row["method"], str(row["seeds"]), _fmt(row["auc"])]
        cells.append(_fmt(row.get("paired_auc")) if row.get("paired_auc") else "")
        cells += [_fmt(row[f"at_{b}"], 2) for b in budgets]
        cells += [_fmt(row["to_50"], 0), _fmt(row["to_80"], 0), _fmt(row["turns"], 1)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| env | turns in anchors >= 2 | with >= 2 actions | unanimous groups | "
              "credit s | rollout s | credit / rollout |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    seen = set()
    for row in rows:
        if row["env"] in seen:
            continue
        seen.add(row["env"])
        env_rows = [r for r in rows if r["env"] == row["env"]]
        credit = sum(r["seconds"]["credit"] for r in env_rows)
        rollout = sum(r["seconds"]["rollout"] for r in env_rows)
        a = row["anchors"]
        lines.append(
            f"| {row['env']} | {a['turns_in_anchors_2plus']:.2f} | "
            f"{a['turns_in_anchors_2plus_actions']:.2f} | {a['unanimous_groups']:.2f} | "
            f"{credit:.1f} | {rollout:.1f} | {credit / max(rollout, 1e-9):.3f} |"
        )
    return "\n".join(lines)


def verdict(rows: list[dict[str, Any]], reference: str = "grpo") -> str:
    """One line: per env, the methods whose paired AUC interval excludes 0, with their sign."""
    parts = []
    for env in dict.fromkeys(r["env"] for r in rows):
        better, worse, tied = [], [], []
        for row in rows:
            if row["env"] != env or not row.get("paired_auc"):
                continue
            mean, half, _ = row["paired_auc"]
            name = f"{row['method']} {mean:+.3f}"
            (better if mean - half > 0 else worse if mean + half < 0 else tied).append(name)
        text = f"{env}: " + "; ".join(
            f"{label} {', '.join(names)}"
            for label, names in (("beat " + reference, better), ("lose", worse))
            if names
        )
        if tied:
            text += ("; " if better or worse else "") + f"no paired difference: {len(tied)}"
        if not (better or worse or tied):
            text += f"nothing to compare with {reference}"
        parts.append(text)
    return " | ".join(parts) or "no paired comparison (run grpo beside the other methods)"


def plot_curves(runs: list[dict[str, Any]], path: Path) -> None:
    """Mean success (or outcome) vs episodes per method, one panel per env, 95 % bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .stats import _metric, interval

    envs = list(dict.fromkeys(r["env"] for r in runs))
    figure, axes = plt.subplots(1, len(envs), figsize=(5.5 * len(envs), 4), squeeze=False)
    for axis, env in zip(axes[0], envs, strict=True):
        methods = dict.fromkeys(r["method"] for r in runs if r["env"] == env)
        metric = "success"
        for method in methods:
            curves = [r["curve"] for r in runs if r["env"] == env and r["method"] == method]
            width = min(len(c["episodes"]) for c in curves)
            forced = next(r.get("metric") for r in runs if r["env"] == env)
            metric, _ = _metric(curves[0], forced)
            values = [_metric(c, forced)[1][:width] for c in curves]
            stats = [interval([v[i] for v in values]) for i in range(width)]
            x = curves[0]["episodes"][:width]
            mean = [m for m, _ in stats]
            axis.plot(x, mean, label=f"{method} (n={len(curves)})")
            axis.fill_between(x, [m - h for m, h in stats], [m + h for m, h in stats], alpha=0.15)
        axis.set_title(env, fontsize=9)
        axis.set_xlabel("episodes")
        axis.set_ylabel(metric)
        axis.set_ylim(-0.02, 1.02)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(
    out: Path,
    runs: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    budgets: Sequence[int],
    command: str,
    configs: list[dict[str, Any]],
) -> str:
    """Writes ``results.md``, ``results.json`` and ``curves.png`` under ``out``; returns the verdict."""
    out.mkdir(parents=True, exist_ok=True)
    line = verdict(rows)
    text = f"# Credit lab\n\n`{command}`\n\nVerdict: {line}\n\n{table(rows, budgets)}\n"
    (out / "results.md").write_text(text)
    clean = json.loads(json.dumps(rows, default=str).replace("NaN", "null"))
    payload = {"command": command, "configs": configs, "summary": clean, "verdict": line}
    payload["runs"] = [
        {
            **r,
            "curve": {
                k: [None if math.isnan(v) else v for v in vs] for k, vs in r["curve"].items()
            },
        }
        for r in runs
    ]
    (out / "results.json").write_text(json.dumps(payload, indent=1))
    plot_curves(runs, out / "curves.png")
    return line
