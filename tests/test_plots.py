"""The figures say what they show: one metric per axis, a chance line on every accuracy axis, legible
legends and a caption for the bands. Inputs are the committed figures/*.csv, with per-example outcomes
drawn at each row's accuracy so that the real statistics (transfer_statistics) build the frames."""

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from workbench.evaluation.heuristics import random_accuracy
from workbench.experiments import transfer_statistics
from workbench.ui import plots

matplotlib.use("Agg")

FIGURES = Path(__file__).resolve().parents[1] / "figures"
N = 120  # examples per run: enough for the bootstrap, quick


def with_outcomes(frame: pd.DataFrame, n: int | None = N) -> pd.DataFrame:
    """``frame`` with ``n`` examples per run (None: the run's own ``n``) and a ``correct`` string of 0/1
    outcomes drawn at each row's accuracy."""
    rng = np.random.default_rng(0)
    sizes = frame["n"] if n is None else [n] * len(frame)
    correct = ["".join("1" if r else "0" for r in rng.random(k) < a) for k, a in zip(sizes, frame["accuracy"])]
    return frame.assign(n=sizes, correct=correct)


def transfer_inputs(n: int | None = N) -> tuple[pd.DataFrame, pd.DataFrame]:
    sweep = with_outcomes(pd.read_csv(FIGURES / "layer_transfer.csv"), n)
    by = ["task", "variant", "checkpoint_step", "tokens", "layers_transferred"]
    summary = transfer_statistics.seed_summary(sweep[sweep["split"] == "dev"], by)
    return summary, transfer_statistics.transfer_gains(sweep)


def probe_input(n: int | None = N) -> pd.DataFrame:
    return transfer_statistics.probe_table(with_outcomes(pd.read_csv(FIGURES / "layer_probes.csv"), n))


def ablation_input(n: int | None = N) -> pd.DataFrame:
    frame = with_outcomes(pd.read_csv(FIGURES / "ablation.csv"), n)
    return transfer_statistics.seed_summary(frame[frame["split"] == "dev"], ["task", "variant"])


def zero_shot_input() -> pd.DataFrame:
    return pd.read_csv(FIGURES / "zero_shot.csv")


def scaling_input() -> pd.DataFrame:
    return pd.read_csv(FIGURES / "zero_shot_scaling.csv")


METRICS = ("accuracy", "AUC")


def metric_of(ax) -> str:
    """The one metric named by the axis's label (an axis naming none or two fails)."""
    named = [m for m in METRICS if m in ax.get_ylabel()]
    assert len(named) == 1, f"y label {ax.get_ylabel()!r} names {named}"
    return named[0]


def chance_levels(ax) -> list[float]:
    """The y of every line labelled "chance" (axhline or hlines)."""
    levels = [line.get_ydata()[0] for line in ax.lines if line.get_label() == "chance"]
    levels += [s[0][1] for c in ax.collections if c.get_label() == "chance" for s in c.get_segments()]
    return levels


def check_figure(fig, caption: str) -> list:
    """The checks every figure passes; returns its data axes (those with a y label)."""
    axes = [ax for ax in fig.axes if ax.get_ylabel()]
    assert axes
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + fig.legends
    assert legends and all(t.get_fontsize() >= 9 for legend in legends for t in legend.get_texts())
    assert any(caption in text.get_text().replace("\n", " ") for text in fig.texts)
    return axes


@pytest.mark.parametrize(
    "plot, table", [(plots.plot_zero_shot, zero_shot_input), (plots.plot_zero_shot_scaling, scaling_input)]
)
def test_zero_shot_figures_put_one_metric_on_each_axis_with_its_chance_line(plot, table):
    table = table()
    fig = plot(table)
    axes = check_figure(fig, "Bands: 95% bootstrap interval over examples (1000 resamples)")
    panels = table[["heuristic", "metric"]].drop_duplicates()
    assert len(axes) == 2 * len(panels)  # a column per heuristic and metric, a row per x axis
    for ax in axes:
        metric = metric_of(ax)
        rows = table[(table["heuristic"] == ax.get_title().split(" (")[0]) & (table["metric"] == metric.lower())]
        assert len(rows), ax.get_title()
        assert chance_levels(ax) == [0.5 if metric == "AUC" else random_accuracy(rows["task"].iloc[0])]
        labels = {line.get_label() for line in ax.lines}
        assert ("fine-tuned" in labels) == (metric == "accuracy")  # a fine-tuned accuracy is no AUC
    chance = {ax.get_title(): chance_levels(ax)[0] for ax in axes}
    assert chance["multiple_choice (next_line): accuracy"] == 0.25
    assert chance["sentiment (sentiment): AUC"] == 0.5


def test_zero_shot_keeps_its_styles_and_axes():
    fig = plots.plot_zero_shot(zero_shot_input())
    columns = len(fig.axes) // 2
    assert fig.axes[0].get_xscale() == "log" and fig.axes[columns].xaxis_inverted()
    styles = {line.get_label(): line.get_linestyle() for line in fig.axes[0].lines}
    assert styles["transformer: paper"] == "-" and styles["lstm: paper"] == "--" and styles["chance"] == "--"
    with pytest.raises(ValueError, match="empty"):
        plots.plot_zero_shot(zero_shot_input().iloc[:0])


def test_layer_transfer_has_chance_and_says_what_its_bands_are():
    table, gains = transfer_inputs()
    fig = plots.plot_layer_transfer(table, gains)
    axes = check_figure(
        fig, "lines are the mean over seeds, bands ± the half-width of the mean's 95% bootstrap interval"
    )
    assert any("paired 95% bootstrap interval" in t.get_text().replace("\n", " ") for t in fig.texts)
    tasks = list(dict.fromkeys(table["task"]))
    top, bottom = axes[: len(tasks)], axes[len(tasks) :]
    for ax, task in zip(top, tasks):
        assert metric_of(ax) == "accuracy" and chance_levels(ax) == [random_accuracy(task)]
    assert all(metric_of(ax) == "accuracy" and ax.get_ylabel().startswith("accuracy gain") for ax in bottom)


def test_layer_probes_have_chance_and_say_what_their_bands_are():
    table = probe_input()
    fig = plots.plot_layer_probes(table)
    axes = check_figure(fig, "probe accuracy ± the half-width of its 95% bootstrap interval over examples")
    for ax, task in zip(axes, dict.fromkeys(table["task"])):
        assert metric_of(ax) == "accuracy" and chance_levels(ax) == [random_accuracy(task)]


def test_ablation_has_each_tasks_chance_and_says_what_its_error_bars_are():
    table = ablation_input()
    fig = plots.plot_ablation(table)
    (ax,) = check_figure(
        fig, "Bars: the mean over seeds; error bars ± the half-width of the mean's 95% bootstrap interval"
    )
    assert metric_of(ax) == "accuracy"
    assert chance_levels(ax) == [random_accuracy(t) for t in dict.fromkeys(table["task"])]
    assert ax.get_ylim()[0] < min(chance_levels(ax))


def test_layer_lens_has_chance_and_says_what_it_reads():
    table = pd.read_csv(FIGURES / "layer_lens.csv").assign(tokens=lambda f: f["checkpoint_step"] * 2048)
    fig = plots.plot_layer_lens(table)
    (ax,) = check_figure(fig, "Each layer's residual stream read through the final LayerNorm and the LM head")
    assert metric_of(ax) == "accuracy" and chance_levels(ax) == [random_accuracy("corrupted_pair")]
    assert len(ax.get_lines()) == table["checkpoint_step"].nunique() + 1  # a line per checkpoint, and chance


def test_save_table_compresses_reproducibly(tmp_path):
    table = zero_shot_input()
    first = plots.save_table(table, "outcomes.csv.gz", tmp_path).read_bytes()
    second = plots.save_table(table, "outcomes.csv.gz", tmp_path).read_bytes()
    assert first == second and first[:2] == b"\x1f\x8b"  # gzip, with no timestamp in it
    assert pd.read_csv(tmp_path / "outcomes.csv.gz").equals(table)


def test_save_figure_writes_the_same_csv(tmp_path):
    table = zero_shot_input()
    png, csv = plots.save_figure(plots.plot_zero_shot(table), table, "zero_shot", tmp_path)
    assert png.stat().st_size > 0
    assert csv.read_bytes() == (FIGURES / "zero_shot.csv").read_bytes()
