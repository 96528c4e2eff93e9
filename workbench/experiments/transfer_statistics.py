"""What the layer-transfer sweep, the Table 5 ablation and the probes show: paired statistics and
the computed comparison with GPT-1.

Every condition of the sweep is evaluated on the same examples and, for each seed, starts from the
same head and sees the same data order, so comparisons are paired: by seed for the per-layer slope
(seed fixed effects), and by example for differences (each example's outcome averaged over the
seeds, then a bootstrap over examples). :data:`TRANSFER_PROTOCOL` says what counts before any result.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..evaluation.heuristics import random_accuracy
from ..evaluation.statistics import BOOTSTRAP_REPLICATES, CONFIDENCE, bootstrap_mean, fixed_effects_slope

CONSTANT_SHARE = 0.9
"""A run or readout that gives one answer to more than this share of examples is a constant predictor."""

TRANSFER_PROTOCOL = f"""\
Protocol (fixed before any result was computed):
- Figure 2 (left) "rises" with layers transferred when the least-squares slope of accuracy on the
  number of layers (0..L), with one intercept per fine-tuning seed, has a {CONFIDENCE:.0%} t interval above 0.
- "All layers over embeddings only" is the accuracy with all L layers minus with 0 layers, each
  example's outcome averaged over the seeds, with a {CONFIDENCE:.0%} bootstrap interval over examples
  ({BOOTSTRAP_REPLICATES} resamples); it "helps" when the interval lies above 0. It "grows with
  pretraining" when the same paired interval for (gain at the last checkpoint - gain at the first)
  lies above 0.
- A Table 5 row differs from the full method when the paired interval of their difference excludes 0.
- A probe layer's features are useful when pretrained minus untrained probe accuracy (same
  examples) has an interval above 0.
- The dev split is read; the test split is reported beside it and chose nothing.
- Counted beside the verdicts (a rule of issue 22, added after this protocol's first run; it changes
  no verdict): a fine-tuning run that gives one answer to more than {CONSTANT_SHARE:.0%} of a split's
  examples is a constant predictor, which says nothing about its features.
"""


def correct_matrix(rows: pd.DataFrame) -> np.ndarray:
    """The per-example 0/1 outcomes of ``rows`` (one per seed or run), ``[rows, examples]``."""
    strings = list(rows["correct"])
    if not strings:
        raise ValueError("no runs to compare: the selection of the frame is empty")
    lengths = {len(s) for s in strings}
    if len(lengths) != 1:
        raise ValueError(f"paired runs must cover the same examples, got sizes {sorted(lengths)}")
    return np.array([np.frombuffer(s.encode(), dtype=np.uint8) - ord("0") for s in strings], dtype=float)


def _per_example(rows: pd.DataFrame) -> np.ndarray:
    """Each example's outcome averaged over the seeds of ``rows``, in seed order."""
    return correct_matrix(rows.sort_values("seed")).mean(axis=0)


def _paired(a: pd.DataFrame, b: pd.DataFrame) -> tuple[float, float, float]:
    """``b`` minus ``a`` (each averaged over its seeds per example) with its bootstrap interval."""
    if sorted(a["seed"]) != sorted(b["seed"]):
        raise ValueError(f"paired conditions need the same seeds, got {sorted(a['seed'])} and {sorted(b['seed'])}")
    return bootstrap_mean(_per_example(b) - _per_example(a))


def _verdict(low: float, high: float, above: str = "above", below: str = "below", level: str = "level with") -> str:
    return above if low > 0 else below if high < 0 else level


def seed_summary(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Accuracy per group of ``by``: the mean over seeds, the half-width of its 95% interval (bootstrap
    over examples of the seed-averaged outcomes), the spread over seeds, the mean predicted-class
    share and how many seeds' runs were constant predictors, and the seeds run."""
    rows = []
    for keys, group in frame.groupby(by, sort=False, dropna=False):
        mean, low, high = bootstrap_mean(_per_example(group))
        rows.append(
            dict(
                zip(by, keys),
                accuracy=mean,
                band=(high - low) / 2,
                seed_min=group["accuracy"].min(),
                seed_max=group["accuracy"].max(),
                predicted_share=group["predicted_share"].mean(),
                constant=int(group["constant"].sum()),
                seeds=group["seed"].nunique(),
                n=int(group["n"].iloc[0]),
            )
        )
    return pd.DataFrame(rows)


def constant_runs(frame: pd.DataFrame, split: str = "dev") -> pd.DataFrame:
    """Per task and variant of a sweep or ablation frame, the runs on ``split`` and how many of them
    gave one answer to more than :data:`CONSTANT_SHARE` of the examples (no information, never "flat")."""
    rows = frame[frame["split"] == split]
    counts = rows.groupby(["task", "variant"], sort=False)["constant"].agg(runs="size", constant="sum")
    return counts.reset_index()


def banded(table: pd.DataFrame, index: list[str], columns: list[str]) -> pd.DataFrame:
    """A :func:`seed_summary` or :func:`probe_table` pivoted, each accuracy written beside its band
    (the half-width of its 95% interval): "0.538 ±0.021"."""
    cells = table.assign(value=[f"{a:.3f} ±{b:.3f}" for a, b in zip(table["accuracy"], table["band"])])
    return cells.pivot_table(index=index, columns=columns, values="value", aggfunc="first", sort=False)


def probe_table(probes: pd.DataFrame, split: str = "dev") -> pd.DataFrame:
    """Probe accuracy per task, features, checkpoint and layer on ``split``, with the half-width of
    its 95% bootstrap interval over examples."""
    rows = []
    keys = ["task", "features", "checkpoint_step", "tokens", "layer"]
    for values, group in probes[probes["split"] == split].groupby(keys, sort=False):
        mean, low, high = bootstrap_mean(correct_matrix(group)[0])
        rows.append(dict(zip(keys, values), n=int(group["n"].iloc[0]), accuracy=mean, band=(high - low) / 2))
    return pd.DataFrame(rows)


def layer_slopes(sweep: pd.DataFrame, split: str = "dev") -> pd.DataFrame:
    """Per task and checkpoint: the per-layer slope of accuracy with seed fixed effects (points per
    layer), its standard error and interval, and the verdict ("not estimable" when the runs leave no
    residual degree of freedom, e.g. one seed and two layer counts)."""
    rows = []
    transfer = sweep[(sweep["variant"] == "transfer") & (sweep["split"] == split)]
    for (task, step), group in transfer.groupby(["task", "checkpoint_step"], sort=False):
        row = dict(task=task, checkpoint_step=int(step), tokens=int(group["tokens"].iloc[0]))
        if len(group) <= group["seed"].nunique() + 1:  # no residual degree of freedom: no interval
            row.update(slope_per_layer=np.nan, se=np.nan, low=np.nan, high=np.nan, verdict="not estimable")
        else:
            fit = fixed_effects_slope(group["layers_transferred"].astype(float), group["accuracy"], group["seed"])
            row.update(slope_per_layer=fit.slope, se=fit.se, low=fit.low, high=fit.high, verdict=fit.verdict)
        rows.append(row)
    return pd.DataFrame(rows)


def _transfer_rows(sweep: pd.DataFrame, task: str, split: str, step: int, layers: int) -> pd.DataFrame:
    return sweep[
        (sweep["task"] == task)
        & (sweep["split"] == split)
        & (sweep["variant"] == "transfer")
        & (sweep["checkpoint_step"] == step)
        & (sweep["layers_transferred"] == layers)
    ]


def transfer_gains(sweep: pd.DataFrame, split: str = "dev") -> pd.DataFrame:
    """Per task and checkpoint: all layers minus embeddings only (``gain``), and all layers minus no
    pretraining (``over_no_pretraining``), paired by example, with intervals."""
    rows = []
    split_rows = sweep[sweep["split"] == split]
    for task, group in split_rows.groupby("task", sort=False):
        transfer = group[group["variant"] == "transfer"]
        fewest, most = int(transfer["layers_transferred"].min()), int(transfer["layers_transferred"].max())
        baseline = group[group["variant"] == "no_pretraining"]
        for step in sorted(transfer["checkpoint_step"].unique()):
            top = _transfer_rows(sweep, task, split, step, most)
            gain = _paired(_transfer_rows(sweep, task, split, step, fewest), top)
            over = _paired(baseline, top)
            rows.append(
                dict(
                    task=task,
                    checkpoint_step=int(step),
                    tokens=int(top["tokens"].iloc[0]),
                    comparison=f"{most} layers - {fewest} layers",
                    gain=gain[0],
                    gain_low=gain[1],
                    gain_high=gain[2],
                    over_no_pretraining=over[0],
                    over_low=over[1],
                    over_high=over[2],
                )
            )
    return pd.DataFrame(rows)


def gain_growth(sweep: pd.DataFrame, split: str = "dev") -> pd.DataFrame:
    """Per task: the gain of all layers over embeddings only at the last checkpoint minus at the
    first, paired by example, with its interval."""
    rows = []
    split_rows = sweep[(sweep["split"] == split) & (sweep["variant"] == "transfer")]
    for task, group in split_rows.groupby("task", sort=False):
        fewest, most = int(group["layers_transferred"].min()), int(group["layers_transferred"].max())
        steps = sorted(group["checkpoint_step"].unique())
        if len(steps) < 2:
            continue
        first, last = steps[0], steps[-1]
        gains = [
            _per_example(_transfer_rows(sweep, task, split, step, most))
            - _per_example(_transfer_rows(sweep, task, split, step, fewest))
            for step in (first, last)
        ]
        growth = bootstrap_mean(gains[1] - gains[0])
        rows.append(
            dict(task=task, first_step=int(first), last_step=int(last), growth=growth[0], low=growth[1], high=growth[2])
        )
    return pd.DataFrame(rows)


def ablation_differences(table: pd.DataFrame, split: str = "dev") -> pd.DataFrame:
    """Per task: the full method minus each other Table 5 row, paired by example, with intervals."""
    rows = []
    for task, group in table[table["split"] == split].groupby("task", sort=False):
        full = group[group["variant"] == "full"]
        for variant, other in group[group["variant"] != "full"].groupby("variant", sort=False):
            value, low, high = _paired(other, full)
            rows.append(dict(task=task, variant=variant, full_minus_variant=value, low=low, high=high))
    return pd.DataFrame(rows)


def probe_gaps(probes: pd.DataFrame, split: str = "dev") -> pd.DataFrame:
    """Per task, checkpoint and layer: pretrained minus untrained probe accuracy on the same examples."""
    rows = []
    split_rows = probes[probes["split"] == split]
    for task, group in split_rows.groupby("task", sort=False):
        untrained = group[group["features"] == "untrained"]
        pretrained = group[group["features"] == "pretrained"]
        for (step, layer), row in pretrained.groupby(["checkpoint_step", "layer"], sort=True):
            base = untrained[untrained["layer"] == layer]
            value, low, high = bootstrap_mean(correct_matrix(row)[0] - correct_matrix(base)[0])
            rows.append(
                dict(
                    task=task,
                    checkpoint_step=int(step),
                    tokens=int(row["tokens"].iloc[0]),
                    layer=int(layer),
                    pretrained=float(row["accuracy"].iloc[0]),
                    untrained=float(base["accuracy"].iloc[0]),
                    gap=value,
                    low=low,
                    high=high,
                )
            )
    return pd.DataFrame(rows)


def findings(
    sweep: pd.DataFrame,
    ablation_table: pd.DataFrame | None = None,
    probes: pd.DataFrame | None = None,
    split: str = "dev",
) -> list[str]:
    """What the sweep, the ablation and the probes say on ``split``, point by point against GPT-1,
    in sentences computed from them (the rules are :data:`TRANSFER_PROTOCOL`'s)."""
    lines = [f"On the {split} split ({CONFIDENCE:.0%} intervals):"]
    slopes = layer_slopes(sweep, split)
    gains = transfer_gains(sweep, split)
    growth = gain_growth(sweep, split).set_index("task")
    for task in dict.fromkeys(sweep["task"]):
        task_slopes = slopes[slopes["task"] == task].sort_values("checkpoint_step")
        last = task_slopes.iloc[-1]
        task_gains = gains[gains["task"] == task].sort_values("checkpoint_step")
        end = task_gains.iloc[-1]
        lines.append(
            f"- {task} (chance {random_accuracy(task):.2f}), Figure 2 (left) at the last checkpoint (step "
            f"{last['checkpoint_step']}): accuracy {last['verdict']} with layers transferred, "
            f"{last['slope_per_layer']:+.4f} per layer [{last['low']:+.4f}, {last['high']:+.4f}] "
            f"(GPT-1: rises with every layer, about +1.7 points per layer on RACE and +0.8 on MultiNLI)."
        )
        lines.append(
            f"  - all layers over embeddings only: {end['gain']:+.3f} "
            f"[{end['gain_low']:+.3f}, {end['gain_high']:+.3f}] "
            f"({_verdict(end['gain_low'], end['gain_high'], 'helps', 'hurts', 'no difference')}); "
            f"over no pretraining: {end['over_no_pretraining']:+.3f} "
            f"[{end['over_low']:+.3f}, {end['over_high']:+.3f}]."
        )
        by_step = "; ".join(
            f"step {r['checkpoint_step']} ({r['tokens']:,} tokens): {r['gain']:+.3f} "
            f"[{r['gain_low']:+.3f}, {r['gain_high']:+.3f}]"
            for _, r in task_gains.iterrows()
        )
        lines.append(f"  - the gain over pretraining: {by_step}.")
        if task in growth.index:
            g = growth.loc[task]
            lines.append(
                f"  - it {_verdict(g['low'], g['high'], 'grows', 'shrinks', 'does not change measurably')} from "
                f"step {int(g['first_step'])} to step {int(g['last_step'])}: {g['growth']:+.3f} "
                f"[{g['low']:+.3f}, {g['high']:+.3f}]."
            )
    if ablation_table is not None and len(ablation_table):
        differences = ablation_differences(ablation_table, split)
        paper = {
            "no_pretraining": "GPT-1: -14.8 points on average without pretraining",
            "no_aux_lm": "GPT-1: the auxiliary LM helps the larger datasets, not the smaller ones",
            "lstm": "GPT-1: -5.6 points on average with an LSTM",
        }
        for task, group in differences.groupby("task", sort=False):
            parts = [
                f"{r['variant']} is {_verdict(r['low'], r['high'], 'below', 'above', 'level with')} full "
                f"(full minus {r['variant']}: {r['full_minus_variant']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]; "
                f"{paper[r['variant']]})"
                for _, r in group.iterrows()
            ]
            lines.append(f"- Table 5, {task}: " + "; ".join(parts) + ".")
    if probes is not None and len(probes):
        gaps = probe_gaps(probes, split)
        for task, group in gaps.groupby("task", sort=False):
            last = group[group["checkpoint_step"] == group["checkpoint_step"].max()]
            best = last.loc[last["gap"].idxmax()]
            useful = [int(r["layer"]) for _, r in last.iterrows() if r["low"] > 0]
            lines.append(
                f"- probes, {task}, last checkpoint: pretrained features beat untrained ones at layers "
                f"{useful or 'none'}; the largest gap is at layer {best['layer']}: {best['pretrained']:.3f} "
                f"against {best['untrained']:.3f} "
                f"({best['gap']:+.3f} [{best['low']:+.3f}, {best['high']:+.3f}])."
            )
    counts = constant_runs(sweep, split)
    if ablation_table is not None and len(ablation_table):
        only_in_ablation = ablation_table[ablation_table["variant"].isin(["no_aux_lm", "lstm"])]
        counts = pd.concat([counts, constant_runs(only_in_ablation, split)])
    for task, group in counts.groupby("task", sort=False):
        each = ", ".join(f"{r['variant']} {int(r['constant'])}/{int(r['runs'])}" for _, r in group.iterrows())
        lines.append(
            f"- constant predictors, {task}: {int(group['constant'].sum())} of {int(group['runs'].sum())} runs "
            f"give one answer to more than {CONSTANT_SHARE:.0%} of examples (no information, never read as "
            f"flat): {each}."
        )
    return lines
