"""The bench plots explain themselves: axis labels, one shared legend outside the panels, one
y-range per env family (stated), and success curves drawn to the env's turn limit."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("matplotlib")

from turngym.agents import bench  # noqa: E402


def test_plots_have_labels_one_legend_family_ranges_and_full_curves(tmp_path, monkeypatch):
    import matplotlib.figure

    figures = {}
    save = matplotlib.figure.Figure.savefig

    def record(figure, path, *args, **kwargs):
        # written through turngym.atomic: a handle on the hidden ".<name>.tmp.<...>" sibling
        name = str(getattr(path, "name", path)).rsplit("/", 1)[-1]
        figures[name.removeprefix(".").split(".tmp.")[0]] = figure
        return save(figure, path, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", record)
    env_ids = ["turngym/Corridor-v0", "turngym/SearchQA-1hop-v0", "turngym/SearchQA-2hop-v0"]
    bench.run_bench(
        env_ids,
        ["random", "expert"],
        3,
        tmp_path,
        progress=False,
        env_kwargs=None,
    )
    assert set(figures) == {"rewards.png", "success_by_turn_budget.png"}
    for name, figure in figures.items():
        axes = [axis for axis in figure.axes if axis.get_visible()]
        assert len(axes) == len(env_ids), name
        assert all(axis.get_xlabel() and axis.get_ylabel() for axis in axes), name
        assert all(axis.get_legend() is None for axis in axes), f"{name}: a legend over a panel"
        assert len(figure.legends) == 1, f"{name}: one shared legend"
        labels = [text.get_text() for text in figure.legends[0].get_texts()]
        assert labels == ["random", "expert"]
    rewards = [a for a in figures["rewards.png"].axes if a.get_visible()]
    search = [axis.get_ylim() for axis in rewards if "SearchQA" in axis.get_title()]
    assert len(search) == 2 and search[0] == search[1]  # one range for the family...
    assert all("y: " in axis.get_title() for axis in rewards)  # ...stated on every panel
    saved = json.loads((tmp_path / "results.json").read_text())
    for record_ in saved["results"]:  # curves run to the turn limit, not the last turn played
        limit = bench._turn_limit(record_["env"], None)
        assert limit > 0 and len(record_["success_by_turn_budget"]) == limit
    budget = figures["success_by_turn_budget.png"].axes[0]
    assert budget.get_xlim()[1] >= bench._turn_limit("turngym/Corridor-v0", None)


def test_a_failed_write_leaves_the_earlier_results_whole_and_no_temp_file(tmp_path, monkeypatch):
    from turngym.agents import bench_plots

    bench.run_bench(["turngym/Corridor-v0"], ["random"], 2, tmp_path, progress=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert {"results.json", "results.csv", "rewards.png"} <= set(before)

    def broken_writer(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bench_plots.csv, "writer", broken_writer)
    with pytest.raises(OSError):
        bench.run_bench(["turngym/Corridor-v0"], ["random"], 3, tmp_path, progress=False)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after["results.csv"] == before["results.csv"]  # the earlier file is whole
    assert not [name for name in after if ".tmp." in name], sorted(after)
