"""The figures. Each writer saves ``NAME.png`` and the ``NAME.csv`` of the numbers behind it."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from .config import PRESETS
from .io import atomic_path
from .params import parameter_breakdown
from .paths import figures_dir


def save_figure(fig: plt.Figure, data: pd.DataFrame, name: str, directory=None) -> tuple[Path, Path]:
    """Write ``figures/NAME.png`` and ``figures/NAME.csv`` atomically; return both paths."""
    directory = figures_dir(directory)
    png, csv = directory / f"{name}.png", directory / f"{name}.csv"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    with atomic_path(csv) as tmp:
        data.to_csv(tmp, index=False)
    return png, csv


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
