"""The figures. Each writer saves ``NAME.png`` and the ``NAME.csv`` of the numbers behind it."""

from __future__ import annotations

import gzip
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..core.io import atomic_path
from ..core.paths import figures_dir
from ..evaluation.heuristics import random_accuracy
from ..evaluation.scaling_law import KAPLAN_ALPHA_N
from ..evaluation.statistics import BOOTSTRAP_REPLICATES, CONFIDENCE
from ..models.config import PRESETS
from ..models.params import parameter_breakdown
from ..training.schedules import Schedule


def save_figure(fig: plt.Figure, data: pd.DataFrame, name: str, directory=None) -> tuple[Path, Path]:
    """Write ``figures/NAME.png`` and ``figures/NAME.csv`` atomically; return both paths."""
    directory = figures_dir(directory)
    png, csv = directory / f"{name}.png", directory / f"{name}.csv"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    with atomic_path(csv) as tmp:
        data.to_csv(tmp, index=False)
    return png, csv


def save_table(data: pd.DataFrame, name: str, directory=None) -> Path:
    """Write ``figures/NAME`` (a ``.csv``, or a ``.csv.gz`` compressed reproducibly: no timestamp and
    no file name in the header) atomically; return its path."""
    path = figures_dir(directory) / name
    text = data.to_csv(index=False).encode()
    with atomic_path(path) as tmp:
        tmp.write_bytes(gzip.compress(text, mtime=0) if name.endswith(".gz") else text)
    return path


ZERO_SHOT_MODEL_STYLES = {"transformer": "-", "lstm": "--", "ladder": "-"}
ZERO_SHOT_AXES = {
    "tokens": dict(label="tokens seen (log)", log=True),
    "parameters": dict(label="parameters (log)", log=True),
    "non_embedding_params": dict(label="non-embedding parameters (log)", log=True),
    "val_loss": dict(label="validation loss (nats, lower to the right)", log=False),
}
METRIC_LABELS = {"accuracy": "accuracy", "auc": "AUC"}
LEGEND_FONTSIZE = 9
CHANCE = dict(color="grey", linestyle="--", linewidth=1, label="chance")
SEED_BAND = (
    f"± the half-width of the mean's {CONFIDENCE:.0%} bootstrap interval over seeds and examples together "
    f"({BOOTSTRAP_REPLICATES} resamples)"
)


def _caption(fig: plt.Figure, text: str) -> None:
    """Lay the panels out above ``text``, written under them at the figure's width: a figure read
    alone must say what its bands and reference lines are."""
    text = textwrap.fill(text, width=int(13 * fig.get_figwidth()))
    fig.text(0.01, 0.01, text, ha="left", va="bottom", fontsize=LEGEND_FONTSIZE)
    fig.tight_layout(rect=(0, (0.1 + 0.17 * (text.count("\n") + 1)) / fig.get_figheight(), 1, 1))


def _legend_below(ax: plt.Axes) -> None:
    """A legend under the panel, where it covers no curve however crowded the data."""
    ax.legend(fontsize=LEGEND_FONTSIZE, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)


def _readout_panels(table: pd.DataFrame, xs: tuple[str, ...], title: str, note: str = "") -> plt.Figure:
    """One column per heuristic and metric (accuracy and AUC never share an axis), one row per x axis;
    a colour per readout (with its 95% band), a line style per model; chance dashed grey and the
    fine-tuned reference dotted (on accuracy panels: it is an accuracy)."""
    if table.empty:
        raise ValueError("the zero-shot table is empty: nothing to plot")
    panels = list(dict.fromkeys(zip(table["heuristic"], table["metric"])))
    fig, axes = plt.subplots(len(xs), len(panels), figsize=(4.3 * len(panels), 3.6 * len(xs) + 1.6), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for column, (heuristic, metric) in enumerate(panels):
        rows = table[(table["heuristic"] == heuristic) & (table["metric"] == metric)]
        for row, x in enumerate(xs):
            ax = axes[row][column]
            for index, readout in enumerate(dict.fromkeys(rows["readout"])):
                for model in dict.fromkeys(rows["model"]):
                    line = rows[(rows["readout"] == readout) & (rows["model"] == model)].sort_values(x)
                    style = ZERO_SHOT_MODEL_STYLES.get(model, "-")
                    colour = colours[index % len(colours)]
                    label = readout if rows["model"].nunique() == 1 else f"{model}: {readout}"
                    ax.plot(line[x], line["accuracy"], style, marker="o", markersize=3, color=colour, label=label)
                    ax.fill_between(line[x], line["ci_low"], line["ci_high"], color=colour, alpha=0.12, linewidth=0)
            ax.axhline(rows["random"].max(), **CHANCE)
            supervised = rows["supervised"].dropna() if "supervised" in rows else pd.Series(dtype=float)
            if metric == "accuracy" and len(supervised):
                ax.axhline(supervised.iloc[0], color="black", linewidth=0.8, linestyle=":", label="fine-tuned")
            if ZERO_SHOT_AXES[x]["log"]:
                ax.set_xscale("log")
            else:
                ax.invert_xaxis()
            ax.set_xlabel(ZERO_SHOT_AXES[x]["label"])
            ax.set_ylabel(METRIC_LABELS[metric])
            ax.set_title(f"{heuristic} ({rows['task'].iloc[0]}): {METRIC_LABELS[metric]}", fontsize="medium")
            ax.grid(alpha=0.3)
        _legend_below(axes[-1][column])
    fig.suptitle(title)
    _caption(
        fig,
        f"Bands: {CONFIDENCE:.0%} bootstrap interval over examples ({BOOTSTRAP_REPLICATES} resamples). "
        "Dashed grey: chance (one over the number of choices; 0.5 for AUC). "
        "Dotted black: fine-tuned dev accuracy (the supervised reference)." + note,
    )
    return fig


def plot_zero_shot(curve: pd.DataFrame) -> plt.Figure:
    """GPT-1 Figure 2 (right): every readout's zero-shot accuracy (AUC on panels of its own) against
    tokens seen (log axis, top) and against validation loss (bottom); Transformer solid, LSTM dashed,
    95% bands shaded."""
    return _readout_panels(
        curve,
        ("tokens", "val_loss"),
        "Zero-shot behaviour over pretraining: Transformer (solid) vs LSTM (dashed)",
    )


def plot_zero_shot_scaling(table: pd.DataFrame) -> plt.Figure:
    """GPT-2's claim: every readout at the last checkpoint of each model size, against non-embedding
    parameters (log axis, top; Kaplan et al. 2020) and against validation loss (bottom), 95% bands
    shaded; a size's point is the mean over its pretraining runs (one row per run in ``table``)."""
    keys = ["preset", "non_embedding_params", "task", "heuristic", "readout", "metric"]
    means = table.groupby(keys, sort=False, as_index=False)[
        ["accuracy", "ci_low", "ci_high", "val_loss", "random", "supervised"]
    ].mean()
    runs = table.groupby("preset", sort=False)["seed"].nunique()
    return _readout_panels(
        means.assign(model="ladder"),
        ("non_embedding_params", "val_loss"),
        "Zero-shot readouts against model size (same tokens, same updates)",
        f" A point is the mean over the size's pretraining runs ({', '.join(f'{p} {n}' for p, n in runs.items())}), "
        "its band the mean of theirs; the runs are rows of the CSV, and the trends' intervals hold their variance.",
    )


def plot_scaling_fit(table: pd.DataFrame, fit) -> plt.Figure:
    """Validation loss of every run of the ladder against non-embedding parameters N (log axis), with the
    fitted L(N) = (N_c / N)^alpha + L_inf of Kaplan et al. (2020) (a :class:`~workbench.evaluation.ScalingFit`)."""
    runs = table.drop_duplicates(["preset", "seed"])
    fig, ax = plt.subplots(figsize=(6.5, 4.4))
    ax.plot(runs["non_embedding_params"], runs["val_loss"], "o", label="a pretraining run")
    grid = np.geomspace(runs["non_embedding_params"].min() / 1.5, runs["non_embedding_params"].max() * 1.5, 200)
    alpha, low, high = fit.alpha
    ax.plot(grid, fit.predict(grid), "-", label=f"L(N) fit: alpha = {alpha:.3f} [{low:.3f}, {high:.3f}]")
    if fit.l_inf[0] > 0:
        ax.axhline(fit.l_inf[0], color="grey", linestyle=":", label=f"L_inf = {fit.l_inf[0]:.2f}")
    ax.set_xscale("log")
    ax.set_xlabel("non-embedding parameters N (log)")
    ax.set_ylabel("validation cross-entropy (nats per token)")
    ax.set_title("Loss against model size (same tokens, same updates)")
    ax.legend(fontsize=LEGEND_FONTSIZE)
    ax.grid(alpha=0.3)
    _caption(
        fig,
        f"Least squares over {fit.runs} runs of {fit.sizes} sizes"
        + ("" if fit.l_inf[0] > 0 else " (no floor identified: L_inf at 0, a pure power law)")
        + f"; {CONFIDENCE:.0%} t intervals from the fit's "
        f"covariance ({fit.df} degrees of freedom). Kaplan et al. (2020): alpha_N = {KAPLAN_ALPHA_N} at convergence, "
        "over six decades of N.",
    )
    return fig


def parameter_count_data(names: list[str] | None = None) -> pd.DataFrame:
    """Long table ``model, component, group, parameters`` for every named preset."""
    names = names or ["gpt1", "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"]
    frames = []
    for name in names:
        breakdown = parameter_breakdown(PRESETS[name])
        breakdown.insert(0, "model", name)
        frames.append(breakdown)
    return pd.concat(frames, ignore_index=True)


def plot_parameter_count(data: pd.DataFrame) -> plt.Figure:
    """Left: parameters per component group and model. Right: exact count vs 12 L d^2."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    by_group = data.pivot_table(index="model", columns="group", values="parameters", aggfunc="sum")
    order = [g for g in ("embedding", "attention", "ffn", "layer norm", "head") if by_group[g].sum() > 0]
    by_group = by_group.loc[list(dict.fromkeys(data["model"])), order] / 1e6
    by_group.plot.bar(stacked=True, ax=left, rot=0)
    left.set_ylabel("parameters (millions)")
    left.set_title("Parameters by component")
    models = list(by_group.index)
    exact = by_group.sum(axis=1).to_numpy()
    rule = [12 * PRESETS[m].n_layer * PRESETS[m].d_model ** 2 / 1e6 for m in models]
    right.plot(models, exact, "o-", label="exact count")
    right.plot(models, rule, "s--", label="12 L d$^2$ (block matrices only)")
    right.set_yscale("log")
    right.set_ylabel("parameters (millions, log scale)")
    right.set_title("Exact count vs the 12 L d$^2$ rule")
    right.legend()
    fig.tight_layout()
    return fig


def pretraining_loss_data(history: pd.DataFrame) -> pd.DataFrame:
    """Long table ``step, tokens, split, loss`` (train and val) from a pretraining history."""
    train = history.dropna(subset=["loss"])[["step", "tokens", "loss"]].assign(split="train")
    val = history.dropna(subset=["val_loss"])[["step", "tokens", "val_loss"]]
    val = val.rename(columns={"val_loss": "loss"}).assign(split="val")
    data = pd.concat([train, val], ignore_index=True)[["step", "tokens", "split", "loss"]]
    return data.sort_values(["split", "step"], kind="stable").reset_index(drop=True)


def plot_pretraining_loss(data: pd.DataFrame, title: str = "Pretraining") -> plt.Figure:
    """Train and validation cross-entropy (nats per token) against tokens seen."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    styles = {"train": dict(color="tab:blue", alpha=0.8), "val": dict(color="tab:orange", marker="o")}
    for split, rows in data.groupby("split", sort=False):
        ax.plot(rows["tokens"] / 1e6, rows["loss"], label=split, **styles.get(split, {}))
    ax.set_xlabel("tokens seen (millions)")
    ax.set_ylabel("cross-entropy (nats per token)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def validation_loss_data(histories: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Long table ``model, step, tokens, val_loss`` of several runs' histories."""
    frames = [
        history.dropna(subset=["val_loss"])[["step", "tokens", "val_loss"]].assign(model=label)
        for label, history in histories.items()
    ]
    return pd.concat(frames, ignore_index=True)[["model", "step", "tokens", "val_loss"]]


def plot_validation_loss(data: pd.DataFrame, unigram_entropy: float, title: str = "Validation loss") -> plt.Figure:
    """Each run's validation loss against tokens seen, beside the unigram entropy of the training tokens:
    a model on that line knows token frequencies and nothing of context."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    styles = {"transformer": dict(linestyle="-"), "lstm": dict(linestyle="--")}
    for model, rows in data.groupby("model", sort=False):
        ax.plot(rows["tokens"] / 1e6, rows["val_loss"], marker="o", label=model, **styles.get(model, {}))
    ax.axhline(unigram_entropy, color="grey", linestyle=":", label=f"unigram entropy ({unigram_entropy:.2f})")
    ax.set_xlabel("tokens seen (millions)")
    ax.set_ylabel("validation cross-entropy (nats per token)")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_loss_by_position(data: pd.DataFrame) -> plt.Figure:
    """Validation loss at each position of the context, one line per model (and seed) with its 95%
    band: where in the context each model predicts better (Kaplan et al. 2020, Figure 7)."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    styles = {"transformer": dict(linestyle="-"), "lstm": dict(linestyle="--")}
    for (model, seed), rows in data.groupby(["model", "seed"], sort=False):
        line = ax.plot(rows["position"], rows["loss"], label=f"{model} (seed {seed})", **styles.get(model, {}))[0]
        ax.fill_between(rows["position"], rows["ci_low"], rows["ci_high"], color=line.get_color(), alpha=0.2)
    ax.set_xscale("log")
    ax.set_xlabel("position in the context (tokens, log scale)")
    ax.set_ylabel("validation cross-entropy (nats per token)")
    ax.set_title("Loss by position at the last checkpoint")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_layer_transfer(table: pd.DataFrame, gains: pd.DataFrame) -> plt.Figure:
    """GPT-1 Figure 2 (left) per task, and how its gain grows with pretraining.

    Top row: accuracy against pretrained layers transferred, one line per checkpoint (the last
    one bold: GPT-1's panel), with 95% bands; no pretraining dotted grey with its band, chance dashed.
    Bottom row: all layers minus embeddings only against tokens seen, with its paired 95% interval.
    ``table`` is :func:`workbench.experiments.transfer_statistics.seed_summary` of the sweep by task,
    variant, checkpoint_step, tokens and layers_transferred; ``gains`` is ``transfer_gains``.
    """
    tasks = list(dict.fromkeys(table["task"]))
    fig, axes = plt.subplots(2, len(tasks), figsize=(5.2 * len(tasks), 9.5), squeeze=False)
    for column, task in enumerate(tasks):
        ax = axes[0][column]
        rows = table[table["task"] == task]
        curve = rows[rows["variant"] == "transfer"]
        steps = sorted(curve["checkpoint_step"].unique())
        for index, step in enumerate(steps):
            line = curve[curve["checkpoint_step"] == step].sort_values("layers_transferred")
            x = line["layers_transferred"].astype(int)
            last = step == steps[-1]
            label = f"step {int(step)} ({int(line['tokens'].iloc[0]):,} tokens)"
            ax.plot(x, line["accuracy"], marker="o", linewidth=2.2 if last else 1, label=label, color=f"C{index}")
            ax.fill_between(
                x, line["accuracy"] - line["band"], line["accuracy"] + line["band"], color=f"C{index}", alpha=0.12
            )
        base = rows[rows["variant"] == "no_pretraining"]
        if len(base):
            mean, band = float(base["accuracy"].iloc[0]), float(base["band"].iloc[0])
            ax.axhline(mean, color="grey", linestyle=":", label="no pretraining")
            ax.axhspan(mean - band, mean + band, color="grey", alpha=0.12)
        ax.axhline(random_accuracy(task), **CHANCE)
        ax.set_title(f"{task} ({int(curve['seeds'].max())} seeds, n={int(curve['n'].iloc[0])})")
        ax.set_xlabel("# of layers transferred")
        ax.set_xticks(sorted(curve["layers_transferred"].astype(int).unique()))
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
        _legend_below(ax)
        ax = axes[1][column]
        gain = gains[gains["task"] == task].sort_values("tokens")
        ax.errorbar(
            gain["tokens"],
            gain["gain"],
            yerr=[gain["gain"] - gain["gain_low"], gain["gain_high"] - gain["gain"]],
            marker="o",
            capsize=3,
        )
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("pretraining tokens seen (log)")
        ax.set_ylabel(f"accuracy gain: {gain['comparison'].iloc[0]}")
        ax.grid(alpha=0.3)
    _caption(
        fig,
        f"Top: lines are the mean over seeds, bands {SEED_BAND}; no pretraining is the dotted grey line and grey band, "
        "chance (one over the number of labels) dashed grey. Bottom: error bars are the paired "
        f"{CONFIDENCE:.0%} bootstrap interval of the difference over seeds and examples together; grey: no gain.",
    )
    return fig


def plot_layer_probes(table: pd.DataFrame) -> plt.Figure:
    """Linear-probe accuracy against layer, one panel per task: a line per checkpoint's pretrained
    features and the untrained model's dashed black, each with its 95% band, and chance dashed grey.
    ``table`` is :func:`workbench.experiments.transfer_statistics.probe_table`."""
    tasks = list(dict.fromkeys(table["task"]))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.8 * len(tasks), 5.3), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rows = table[table["task"] == task]
        for index, ((features, step), line) in enumerate(rows.groupby(["features", "checkpoint_step"], sort=True)):
            line = line.sort_values("layer")
            untrained = features == "untrained"
            colour = "black" if untrained else f"C{index}"
            label = "untrained" if untrained else f"step {step}"
            ax.plot(line["layer"], line["accuracy"], "--" if untrained else "-", marker="o", color=colour, label=label)
            ax.fill_between(
                line["layer"], line["accuracy"] - line["band"], line["accuracy"] + line["band"], color=colour, alpha=0.1
            )
        ax.axhline(random_accuracy(task), **CHANCE)
        ax.set_title(f"{task} (n={int(rows['n'].iloc[0])})")
        ax.set_xlabel("layer (0 = embeddings)")
        ax.set_xticks(sorted(rows["layer"].unique()))
        ax.set_ylabel("probe accuracy")
        ax.grid(alpha=0.3)
        _legend_below(ax)
    _caption(
        fig,
        f"Bands: probe accuracy ± the half-width of its {CONFIDENCE:.0%} bootstrap interval over examples "
        f"({BOOTSTRAP_REPLICATES} resamples). Dashed grey: chance (one over the number of labels).",
    )
    return fig


def plot_layer_lens(table: pd.DataFrame) -> plt.Figure:
    """The logit lens on minimal pairs: accuracy against layer, one panel per task, a line per
    checkpoint (the untrained model dashed black) with its 95% band, and chance dashed grey.
    ``table`` is :meth:`workbench.experiments.TransferExperiment.lens`."""
    tasks = list(dict.fromkeys(table["task"]))
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.6 * len(tasks), 5.3), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rows = table[table["task"] == task]
        steps = sorted(rows["checkpoint_step"].unique())
        for index, step in enumerate(steps):
            line = rows[rows["checkpoint_step"] == step].sort_values("layer")
            colour = "black" if step == 0 else plt.cm.viridis(index / max(1, len(steps) - 1))
            label = "untrained" if step == 0 else f"step {int(step)} ({int(line['tokens'].iloc[0]):,} tokens)"
            ax.plot(line["layer"], line["accuracy"], "--" if step == 0 else "-", marker="o", color=colour, label=label)
            ax.fill_between(line["layer"], line["ci_low"], line["ci_high"], color=colour, alpha=0.1)
        ax.axhline(random_accuracy(task), **CHANCE)
        ax.set_title(f"{task}: logit lens (n={int(rows['n'].iloc[0])} pairs)")
        ax.set_xlabel("layer read (0 = embeddings; last = the model's own output)")
        ax.set_xticks(sorted(rows["layer"].unique()))
        ax.set_ylabel("accuracy (the original scored higher)")
        ax.grid(alpha=0.3)
        _legend_below(ax)
    _caption(
        fig,
        "Each layer's residual stream read through the final LayerNorm and the LM head; a pair is right when the "
        f"line as written gets the higher total log-probability. Bands: {CONFIDENCE:.0%} bootstrap interval over "
        f"examples ({BOOTSTRAP_REPLICATES} resamples). Dashed grey: chance.",
    )
    return fig


def plot_ablation(table: pd.DataFrame) -> plt.Figure:
    """GPT-1 Table 5 as bars: accuracy per task and variant (mean over seeds) with its 95% band, and
    each task's chance dashed grey. ``table`` is :func:`workbench.experiments.transfer_statistics.seed_summary`
    by task and variant."""
    tasks = list(dict.fromkeys(table["task"]))
    variants = list(dict.fromkeys(table["variant"]))
    width = 0.8 / len(variants)
    fig, ax = plt.subplots(figsize=(2.2 + 2.4 * len(tasks), 4.8))
    for i, variant in enumerate(variants):
        for j, task in enumerate(tasks):
            row = table[(table["task"] == task) & (table["variant"] == variant)]
            x = j + (i - (len(variants) - 1) / 2) * width
            ax.bar(
                x, row["accuracy"], width, yerr=row["band"], capsize=3, color=f"C{i}", label=variant if j == 0 else None
            )
    chance = [random_accuracy(task) for task in tasks]
    ax.hlines(chance, [j - 0.45 for j in range(len(tasks))], [j + 0.45 for j in range(len(tasks))], zorder=3, **CHANCE)
    ax.set_xticks(range(len(tasks)), tasks)
    ax.set_ylabel("accuracy")
    ax.set_title(f"GPT-1 Table 5 ({int(table['seeds'].max())} seeds)")
    low = min((table["accuracy"] - table["band"]).min(), *chance)
    ax.set_ylim(max(0.0, low - 0.05), min(1.0, (table["accuracy"] + table["band"]).max() + 0.05))
    ax.legend(fontsize=LEGEND_FONTSIZE, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    _caption(
        fig,
        f"Bars: the mean over seeds; error bars {SEED_BAND}. Dashed grey: chance (one over the number of labels).",
    )
    return fig


def plot_schedule(schedule: Schedule, lr: float = 1.0, ax: plt.Axes | None = None) -> plt.Figure:
    """Learning rate against update number (1 = first update); returns the Figure."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    else:
        fig = ax.figure
    updates = range(1, schedule.steps + 1)
    ax.plot(updates, [lr * schedule(u - 1) for u in updates], label=f"{schedule.name} (warmup {schedule.warmup_steps})")
    ax.set_xlabel("update")
    ax.set_ylabel("learning rate" if lr != 1.0 else "learning-rate multiplier")
    ax.set_ylim(bottom=0)
    ax.legend()
    return fig
