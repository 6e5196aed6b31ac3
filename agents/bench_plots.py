"""The outputs of ``turngym bench``: ``results.json``, ``results.csv``, ``rewards.png`` and
``success_by_turn_budget.png`` (one panel per env, one colour per policy)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from turngym.atomic import atomic_write, atomic_write_text

__all__ = ["write_outputs"]


def write_outputs(
    out: Path,
    report: dict[str, Any],
    rewards: dict[str, list[float]],
    budgets: dict[str, list[float]],
) -> None:
    """Writes results.json, results.csv, rewards.png and success_by_turn_budget.png."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", json.dumps(report, indent=1))
    with atomic_write(out / "results.csv") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "env",
                "policy",
                "task_type",
                "episodes",
                "success",
                "mean_reward",
                "std_reward",
                "mean_turns",
            ]
        )
        for record in report["results"]:
            for kind, stats in [("all", record), *record["task_types"].items()]:
                writer.writerow(
                    [
                        record["env"],
                        record["policy"],
                        kind,
                        stats["episodes"],
                        stats["success"],
                        stats["mean_reward"],
                        stats["std_reward"],
                        stats["mean_turns"],
                    ]
                )
    if not rewards:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # One panel per env (small multiples), one box / one curve per policy inside it: readable
    # with `--env all` (dozens of env/policy pairs) as well as with one env. Colours are
    # policies, explained by one legend under the panels (never over a curve).
    from matplotlib.lines import Line2D

    policy_of = {label: label.split(" | ", 1)[1] for label in rewards}  # labels: "env | policy"
    by_env: dict[str, list[str]] = {}
    for label in rewards:
        by_env.setdefault(label.split(" | ", 1)[0], []).append(label)
    colors = {p: f"C{i % 10}" for i, p in enumerate(dict.fromkeys(policy_of.values()))}
    handles = [Line2D([], [], color=c, marker="o", label=p) for p, c in colors.items()]
    ranges = _family_ranges(rewards)

    def panels(title: str):
        ncols = min(4, len(by_env))
        nrows = -(-len(by_env) // ncols)
        figure, axes = plt.subplots(
            nrows, ncols, figsize=(3.8 * ncols, 2.8 * nrows + 1.2), squeeze=False
        )
        for axis in axes.flat[len(by_env) :]:
            axis.set_visible(False)
        figure.suptitle(title, fontsize=10)
        return figure, axes.flat

    def finish(figure, path: Path) -> None:
        figure.legend(
            handles=handles,
            title="policy",
            loc="lower center",
            ncol=min(len(handles), 6),
            fontsize=8,
            title_fontsize=8,
            frameon=False,
        )
        # Room at the top for the suptitle (0.45 in), at the bottom for the shared legend.
        top = 1 - 0.45 / figure.get_figheight()
        figure.tight_layout(rect=(0, 0.1 if len(by_env) <= 4 else 0.06, 1, top))
        with atomic_write(path, "wb") as handle:
            figure.savefig(handle, dpi=100, format="png")
        plt.close(figure)

    figure, axes = panels(
        f"Episode return per env ({report['episodes']} episodes each; box = quartiles, "
        "triangle = mean, dots = episodes)\ny-axis shared within an env family "
        "(its range is in each panel's title); families differ in scale"
    )
    jitter = np.random.default_rng(0)
    for axis, (env, labels) in zip(axes, by_env.items(), strict=False):
        axis.boxplot([rewards[label] for label in labels], showmeans=True)
        for index, label in enumerate(labels, start=1):
            values = rewards[label]
            axis.scatter(
                index + jitter.uniform(-0.15, 0.15, len(values)),
                values,
                s=8,
                alpha=0.5,
                color=colors[policy_of[label]],
            )
        low, high = ranges[_family(env)]
        axis.set_ylim(low, high)
        axis.set_xticks(range(1, len(labels) + 1), [policy_of[label] for label in labels])
        axis.set_title(f"{env}\ny: {low:.2f} to {high:.2f} ({_family(env)})", fontsize=8)
        axis.set_ylabel("episode return", fontsize=8)
        axis.set_xlabel("policy", fontsize=8)
        axis.tick_params(labelsize=7)
    finish(figure, out / "rewards.png")

    figure, axes = panels(
        "Success rate within a budget of k turns (each curve runs to the env's turn limit)"
    )
    for axis, (env, labels) in zip(axes, by_env.items(), strict=False):
        longest = max(len(budgets[label]) for label in labels)
        for label in labels:
            curve, policy = budgets[label], policy_of[label]
            curve = curve + curve[-1:] * (longest - len(curve))  # flat after the last episode ends
            axis.step(
                range(1, len(curve) + 1),
                curve,
                where="post",
                color=colors[policy],
                marker="o" if len(curve) <= 30 else None,
                markersize=2.5,
            )
        axis.set_xlim(0.5, longest + 0.5)
        axis.set_ylim(-0.03, 1.03)
        axis.set_title(env, fontsize=8)
        axis.set_xlabel("turn budget k", fontsize=8)
        axis.set_ylabel("success rate", fontsize=8)
        axis.tick_params(labelsize=7)
    finish(figure, out / "success_by_turn_budget.png")


def _family(env: str) -> str:
    """``TextWorld-Easy-v1`` -> ``TextWorld``: envs of one family share a reward scale."""
    return env.removeprefix("turngym/").split("-", 1)[0]


def _family_ranges(rewards: dict[str, list[float]]) -> dict[str, tuple[float, float]]:
    """Per env family, the y-range holding every episode return of its envs (5 % margin)."""
    values: dict[str, list[float]] = {}
    for label, returns in rewards.items():
        values.setdefault(_family(label.split(" | ", 1)[0]), []).extend(returns)
    ranges = {}
    for family, returns in values.items():
        low, high = (min(returns), max(returns)) if returns else (0.0, 1.0)
        margin = 0.05 * (high - low) if high > low else 0.5
        ranges[family] = (low - margin, high + margin)
    return ranges
