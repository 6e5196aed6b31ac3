"""Tables and curves of ``benchmarks/credit_learning.py`` runs (mean and 95 % intervals over seeds).

Each run is the JSON ``credit_learning.run_one`` returns: ``env``, ``env_id``, ``method``,
``seed``, ``curve`` (eval points with ``success`` and ``success/<class>``) and ``train`` (the
learner's per-iteration metrics).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["interval", "plot", "summarize", "write_table"]

#: Two-sided 95 % Student t quantiles by degrees of freedom (n seeds - 1).
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95 % confidence interval of the mean (0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, T95.get(n - 1, 1.96) * sd / math.sqrt(n)


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (env, method): start/final success over seeds, worst class, per seed."""
    rows = []
    for env in dict.fromkeys(r["env"] for r in runs):
        for method in dict.fromkeys(r["method"] for r in runs if r["env"] == env):
            picked = sorted(
                (r for r in runs if r["env"] == env and r["method"] == method),
                key=lambda r: r["seed"],
            )
            first = [r["curve"][0]["success"] for r in picked]
            final = [r["curve"][-1]["success"] for r in picked]
            classes = [
                min(v for k, v in r["curve"][-1].items() if k.startswith("success/"))
                for r in picked
            ]
            mean, half = interval(final)
            rows.append(
                {
                    "env": env,
                    "method": method,
                    "seeds": len(picked),
                    "repeated_state_share": picked[0]["curve"][0].get("repeated_state_share"),
                    "start": sum(first) / len(first),
                    "final": mean,
                    "final_ci95": half,
                    "worst_class": sum(classes) / len(classes),
                    "per_seed": final,
                    "per_seed_worst_class": classes,
                }
            )
    return rows


def write_table(
    rows: list[dict[str, Any]], path: Path, command: str, runs: list[dict[str, Any]]
) -> str:
    lines = [
        "# Credit methods compared by training",
        "",
        f"Command: `{command}`",
        "",
        "Success on held-out task seeds; final = after the last iteration, mean over seeds "
        "+- 95 % CI half-width (Student t); worst class = mean over seeds of the lowest "
        "per-class success (exit side on Corridor, game on TextWorld/SearchQA); repeated "
        "states = share of turns at iteration 0 whose (task group, state) anchor holds >= 2 "
        "turns (what GiGPO and SALT group on).",
        "",
        "| env | method | seeds | start | final | worst class | final per seed (worst class) |"
        " repeated states |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        seeds = ", ".join(
            f"{s:.2f} ({c:.2f})"
            for s, c in zip(row["per_seed"], row["per_seed_worst_class"], strict=True)
        )
        lines.append(
            f"| {row['env']} | {row['method']} | {row['seeds']} | {row['start']:.2f} | "
            f"{row['final']:.2f} +- {row['final_ci95']:.2f} | {row['worst_class']:.2f} | "
            f"{seeds} | {row['repeated_state_share'] or 0:.2f} |"
        )
    lines.append("")
    for env in dict.fromkeys(r["env"] for r in runs):
        steps = [m for r in runs if r["env"] == env for m in r["train"]]
        sorted_ = [m["padding_fraction"] for m in steps if "padding_fraction_unsorted" in m]
        unsorted = [
            m["padding_fraction_unsorted"] for m in steps if "padding_fraction_unsorted" in m
        ]
        if sorted_:
            lines.append(
                f"Padding of the training micro-batches on {env}: {sum(sorted_) / len(sorted_):.1%}"
                f" sorted by length vs {sum(unsorted) / len(unsorted):.1%} in rollout order "
                f"(mean over {len(sorted_)} updates)."
            )
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


def plot(runs: list[dict[str, Any]], out: Path) -> list[Path]:
    """``curves_<env>.png``: mean success vs iteration per method with a 95 % band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for env in dict.fromkeys(r["env"] for r in runs):
        figure, axis = plt.subplots(figsize=(6, 4))
        for method in dict.fromkeys(r["method"] for r in runs if r["env"] == env):
            picked = [r for r in runs if r["env"] == env and r["method"] == method]
            iterations = [p["iteration"] for p in picked[0]["curve"]]
            means, lows, highs = [], [], []
            for k in range(len(iterations)):
                mean, half = interval([r["curve"][k]["success"] for r in picked])
                means.append(mean)
                lows.append(max(0.0, mean - half))
                highs.append(min(1.0, mean + half))
            axis.plot(iterations, means, label=f"{method} (n={len(picked)})")
            axis.fill_between(iterations, lows, highs, alpha=0.15)
        axis.set_xlabel("iteration")
        axis.set_ylabel("success (held-out seeds)")
        axis.set_ylim(-0.02, 1.02)
        env_id = next(r["env_id"] for r in runs if r["env"] == env)
        axis.set_title(f"{env_id}: mean and 95 % band over seeds")
        axis.legend(fontsize=8)
        figure.tight_layout()
        path = out / f"curves_{env}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        paths.append(path)
    return paths
