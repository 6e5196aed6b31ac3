"""The lab's statistics over runs: per-run scores, then mean +- 95 % interval over seeds and paired
differences against a reference method (Student t over the seeds both methods ran).

Per run (a curve of batch success vs episodes trained):

- ``auc``: the mean of the success curve over the whole budget (area under it / budget);
- ``at_<budget>``: success of the batch that ends at or just past that many episodes;
- ``to_50`` / ``to_80``: episodes until the running mean over 3 batches first reaches 50 / 80 %
  (None when it never does; a mean over runs where some never got there is reported as None);
- ``turns``: mean turns per episode over the last quarter of training.

Success is the share of episodes with ``success=True``; an env that reports no success is scored
by its mean outcome instead (``metric`` says which; a run's ``"metric"`` key, set by
``turngym lab --metric outcome``, forces one, e.g. for WebShop, whose partial scores are the
signal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["interval", "paired", "run_scores", "summarize"]

WINDOW = 3
#: Two-sided 95 % quantiles of Student's t by degrees of freedom (normal beyond 30).
T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
       2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
       2.060, 2.056, 2.052, 2.048, 2.045, 2.042]  # fmt: skip


def _metric(curve: dict[str, list[float]], metric: str | None = None) -> tuple[str, list[float]]:
    """``metric`` (``success`` or ``outcome``), or success where every batch reported it."""
    if metric in ("success", "outcome"):
        return metric, curve[metric]
    success = curve["success"]
    if success and not any(s is None or math.isnan(s) for s in success):
        return "success", success
    return "outcome", curve["outcome"]


def run_scores(run: dict[str, Any], budgets: Sequence[int]) -> dict[str, Any]:
    """The scalar scores of one run (see the module docstring)."""
    curve = run["curve"]
    metric, values = _metric(curve, run.get("metric"))
    episodes = curve["episodes"]
    scores: dict[str, Any] = {"metric": metric, "auc": sum(values) / len(values)}
    for budget in budgets:
        index = next((i for i, e in enumerate(episodes) if e >= budget), len(episodes) - 1)
        scores[f"at_{budget}"] = values[index]
    smooth = [
        sum(values[max(0, i - WINDOW + 1) : i + 1]) / len(values[max(0, i - WINDOW + 1) : i + 1])
        for i in range(len(values))
    ]
    for level in (50, 80):
        scores[f"to_{level}"] = next(
            (episodes[i] for i, s in enumerate(smooth) if s >= level / 100), None
        )
    tail = curve["turns"][-max(1, len(values) // 4) :]
    scores["turns"] = sum(tail) / len(tail)
    return scores


def interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % Student-t interval (0 for one value)."""
    values = [float(v) for v in values]
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return mean, (T95[len(values) - 2] if len(values) <= 31 else 1.96) * sd / math.sqrt(len(values))


def paired(mine: dict[int, float], reference: dict[int, float]) -> tuple[float, float, int] | None:
    """Mean paired difference ``mine - reference`` over shared seeds, its 95 % half-width, n."""
    seeds = sorted(set(mine) & set(reference))
    if not seeds:
        return None
    mean, half = interval([mine[s] - reference[s] for s in seeds])
    return mean, half, len(seeds)


def summarize(
    runs: list[dict[str, Any]], budgets: Sequence[int], reference: str = "grpo"
) -> list[dict[str, Any]]:
    """One row per (env, method): scores' mean +- interval, paired differences vs ``reference``."""
    scored: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for run in runs:
        scored.setdefault((run["env"], run["method"]), {})[run["seed"]] = run_scores(run, budgets)
    rows = []
    for (env, method), by_seed in scored.items():
        scores = list(by_seed.values())
        row: dict[str, Any] = {"env": env, "method": method, "seeds": len(scores)}
        row["metric"] = scores[0]["metric"]
        for key in ["auc", "turns"] + [f"at_{b}" for b in budgets]:
            row[key] = interval([s[key] for s in scores])
        for level in (50, 80):
            reached = [s[f"to_{level}"] for s in scores]
            row[f"to_{level}"] = None if None in reached else interval(reached)
        base = scored.get((env, reference))
        if base is not None and method != reference:
            row["paired_auc"] = paired(
                {k: v["auc"] for k, v in by_seed.items()}, {k: v["auc"] for k, v in base.items()}
            )
        env_runs = [r for r in runs if r["env"] == env and r["method"] == method]
        row["anchors"] = {
            key: sum(r["anchors"][key] for r in env_runs) / len(env_runs)
            for key in env_runs[0]["anchors"]
        }
        total = {k: sum(r["seconds"][k] for r in env_runs) for k in env_runs[0]["seconds"]}
        row["seconds"] = total
        row["credit_share"] = total["credit"] / max(total["rollout"], 1e-9)
        rows.append(row)
    return rows
