"""What the layer-transfer sweep, the Table 5 ablation and the probes show: paired statistics and
the computed comparison with GPT-1.

Every condition of the sweep is evaluated on the same examples and, for each seed, starts from the
same head and sees the same data order, so comparisons are paired: by seed for the per-layer slope
(seed fixed effects), and by seed and example for differences, whose intervals come from a bootstrap
over seeds and examples together, so that they hold seed-to-seed variance. Every verdict of a split
is one test of a family, and Holm's correction over the family decides it.
:data:`TRANSFER_PROTOCOL` says what counts before any result.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..evaluation.heuristics import random_accuracy
from ..evaluation.statistics import (
    BOOTSTRAP_REPLICATES,
    CONFIDENCE,
    CONSTANT_SHARE,
    fixed_effects_slope,
    holm,
    seed_example_bootstrap,
)

ALPHA = 1 - CONFIDENCE
NO_PRETRAINING_TARGET = 0.10
"""Issue 22's target: no pretraining at least this far below full on a task (GPT-1: -14.8 on average)."""

TRANSFER_PROTOCOL = f"""\
Protocol (fixed before any result was computed; revised for issue 22 before its first run):
- Figure 2 (left) "rises" with layers transferred when the least-squares slope of accuracy on the
  number of layers (0..L), with one intercept per fine-tuning seed, is above 0 (t test).
- "All layers over embeddings only" is the accuracy with all L layers minus with 0 layers, paired by
  seed and example; its {CONFIDENCE:.0%} interval comes from a bootstrap over seeds and examples together
  ({BOOTSTRAP_REPLICATES} resamples), so it holds seed-to-seed variance; it "helps" when above 0. It
  "grows with pretraining" when the same paired contrast (gain at the last checkpoint - gain at the
  first) is above 0. "Over no pretraining" is all layers minus the same transformer trained from scratch.
- A Table 5 row differs from the full method when their paired difference is away from 0.
- A probe layer's features are useful when pretrained minus untrained probe accuracy (same
  examples, one probe each: an interval over examples) is above 0.
- Fine-tuning beats zero-shot when all layers (over seeds) minus the logit lens's last layer of the
  same checkpoint (the zero-shot minimal-pairs readout) on the same test examples is above 0.
- Many verdicts, one family: every verdict of a split above (each slope, gain, comparison with no
  pretraining, growth, Table 5 row, probe layer at the last checkpoint, fine-tuned against zero-shot)
  is a test of one family, and Holm's correction over the family at {ALPHA:.2f} decides it; the
  intervals printed are the uncorrected {CONFIDENCE:.0%} ones.
- Choices (tasks, head, learning rate, lambda, budget) were made on the dev split by a pilot; the
  claims are read on the test split, which is reported beside dev. The likelihood head was chosen
  by a second pilot (03's history cell), after GPT-1's linear head had been run and read on both
  splits; GPT-1's head stays in Table 5 as a row.
- A run that gives one answer to more than {CONSTANT_SHARE:.0%} of a split's examples is a constant
  predictor: counted, and never read as flat.
- Before any result, every in-domain task's no-language-model baselines must be within two standard
  errors of chance on its test split.
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


def _by_seed(rows: pd.DataFrame) -> np.ndarray:
    """The per-example outcomes of ``rows``, one row per seed in seed order, ``[seeds, examples]``."""
    return correct_matrix(rows.sort_values("seed"))


def _paired(a: pd.DataFrame, b: pd.DataFrame) -> tuple[float, float, float, float]:
    """``b`` minus ``a``, paired by seed and by example: the mean, its interval from a bootstrap over
    seeds and examples together, and a p-value."""
    if sorted(a["seed"]) != sorted(b["seed"]):
        raise ValueError(f"paired conditions need the same seeds, got {sorted(a['seed'])} and {sorted(b['seed'])}")
    return seed_example_bootstrap(_by_seed(b) - _by_seed(a))


def _verdict(low: float, high: float, above: str = "above", below: str = "below", level: str = "level with") -> str:
    return above if low > 0 else below if high < 0 else level


def seed_summary(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Accuracy per group of ``by``: the mean over seeds, the half-width of its 95% interval (a
    bootstrap over seeds and examples together), the spread over seeds, the mean predicted-class
    share and how many seeds' runs were constant predictors, and the seeds run."""
    rows = []
    for keys, group in frame.groupby(by, sort=False, dropna=False):
        mean, low, high, _ = seed_example_bootstrap(_by_seed(group))
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
        mean, low, high, _ = seed_example_bootstrap(correct_matrix(group))
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
            row.update(slope_per_layer=np.nan, se=np.nan, low=np.nan, high=np.nan, p=np.nan, verdict="not estimable")
        else:
            fit = fixed_effects_slope(group["layers_transferred"].astype(float), group["accuracy"], group["seed"])
            row.update(
                slope_per_layer=fit.slope, se=fit.se, low=fit.low, high=fit.high, p=fit.p_value, verdict=fit.verdict
            )
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
                    gain_p=gain[3],
                    over_no_pretraining=over[0],
                    over_low=over[1],
                    over_high=over[2],
                    over_p=over[3],
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
            _by_seed(_transfer_rows(sweep, task, split, step, most))
            - _by_seed(_transfer_rows(sweep, task, split, step, fewest))
            for step in (first, last)
        ]
        growth = seed_example_bootstrap(gains[1] - gains[0])
        rows.append(
            dict(
                task=task,
                first_step=int(first),
                last_step=int(last),
                growth=growth[0],
                low=growth[1],
                high=growth[2],
                p=growth[3],
            )
        )
    return pd.DataFrame(rows, columns=["task", "first_step", "last_step", "growth", "low", "high", "p"])


def ablation_differences(table: pd.DataFrame, split: str = "dev") -> pd.DataFrame:
    """Per task: the full method minus each other Table 5 row, paired by example, with intervals."""
    rows = []
    for task, group in table[table["split"] == split].groupby("task", sort=False):
        full = group[group["variant"] == "full"]
        for variant, other in group[group["variant"] != "full"].groupby("variant", sort=False):
            value, low, high, p_value = _paired(other, full)
            rows.append(dict(task=task, variant=variant, full_minus_variant=value, low=low, high=high, p=p_value))
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
            value, low, high, p_value = seed_example_bootstrap(correct_matrix(row)[:1] - correct_matrix(base)[:1])
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
                    p=p_value,
                )
            )
    return pd.DataFrame(rows)


def zero_shot_comparison(sweep: pd.DataFrame, lens: pd.DataFrame | None, split: str = "test") -> pd.DataFrame:
    """Per two-choice task: the fine-tuned all-layers model at the last checkpoint (per seed) minus
    the logit lens's last layer at the same checkpoint (the zero-shot minimal-pairs readout of the
    same weights), on the same examples of ``split``, with an interval over seeds and examples
    (no rows without a lens)."""
    columns = ["task", "checkpoint_step", "fine_tuned", "zero_shot", "difference", "low", "high", "p"]
    if lens is None:
        return pd.DataFrame(columns=columns)
    rows = []
    lens = lens[lens["split"] == split]
    for task, group in sweep[(sweep["split"] == split) & (sweep["variant"] == "transfer")].groupby("task", sort=False):
        step = int(group["checkpoint_step"].max())
        readout = lens[(lens["task"] == task) & (lens["checkpoint_step"] == step)]
        if readout.empty:
            continue
        readout = readout[readout["layer"] == readout["layer"].max()]
        top = _transfer_rows(sweep, task, split, step, int(group["layers_transferred"].max()))
        difference = _by_seed(top) - correct_matrix(readout)
        value, low, high, p_value = seed_example_bootstrap(difference)
        rows.append(
            dict(
                task=task,
                checkpoint_step=step,
                fine_tuned=float(top["accuracy"].mean()),
                zero_shot=float(readout["accuracy"].iloc[0]),
                difference=value,
                low=low,
                high=high,
                p=p_value,
            )
        )
    return pd.DataFrame(rows, columns=columns)


class _Family:
    """The verdicts of one split, decided together by Holm's correction (see the protocol)."""

    def __init__(self) -> None:
        self.p_values: list[float] = []

    def add(self, p_value: float) -> int:
        self.p_values.append(p_value)
        return len(self.p_values) - 1

    def decide(self) -> None:
        self.adjusted = holm(self.p_values) if self.p_values else np.array([])

    def verdict(self, index: int, estimate: float, above: str, below: str, level: str) -> str:
        adjusted = self.adjusted[index]
        word = level if adjusted >= ALPHA else above if estimate > 0 else below
        return f"{word}, Holm p = {adjusted:.3g}"


def findings(
    sweep: pd.DataFrame,
    ablation_table: pd.DataFrame | None = None,
    probes: pd.DataFrame | None = None,
    split: str = "dev",
    lens: pd.DataFrame | None = None,
) -> list[str]:
    """What the sweep, the ablation, the probes and the logit lens say on ``split``, point by point
    against GPT-1, in sentences computed from them (the rules are :data:`TRANSFER_PROTOCOL`'s); every
    verdict is decided by Holm's correction over all the verdicts of the split."""
    family = _Family()
    slopes = layer_slopes(sweep, split)
    slopes["test"] = [family.add(p) if not np.isnan(p) else -1 for p in slopes["p"]]
    gains = transfer_gains(sweep, split)
    gains["gain_test"] = [family.add(p) for p in gains["gain_p"]]
    gains["over_test"] = [family.add(p) for p in gains["over_p"]]
    growth = gain_growth(sweep, split)
    growth["test"] = [family.add(p) for p in growth["p"]]
    differences = None
    if ablation_table is not None and len(ablation_table):
        differences = ablation_differences(ablation_table, split)
        differences["test"] = [family.add(p) for p in differences["p"]]
    gaps = probe_gaps(probes, split) if probes is not None and len(probes) else None
    if gaps is not None:
        gaps = gaps[gaps["checkpoint_step"] == gaps.groupby("task")["checkpoint_step"].transform("max")].copy()
        gaps["test"] = [family.add(p) for p in gaps["p"]]
    zero_shot = zero_shot_comparison(sweep, lens, split)
    zero_shot["test"] = [family.add(p) for p in zero_shot["p"]]
    family.decide()

    lines = [
        f"On the {split} split ({CONFIDENCE:.0%} intervals over seeds and examples; verdicts by Holm's "
        f"correction over this split's {len(family.p_values)} tests):"
    ]
    for task in dict.fromkeys(sweep["task"]):
        task_slopes = slopes[slopes["task"] == task].sort_values("checkpoint_step")
        last = task_slopes.iloc[-1]
        slope_verdict = (
            "not estimable"
            if last["test"] < 0
            else family.verdict(int(last["test"]), last["slope_per_layer"], "rises", "falls", "flat")
        )
        task_gains = gains[gains["task"] == task].sort_values("checkpoint_step")
        end = task_gains.iloc[-1]
        lines.append(
            f"- {task} (chance {random_accuracy(task):.2f}), Figure 2 (left) at the last checkpoint (step "
            f"{last['checkpoint_step']}): accuracy with layers transferred {slope_verdict}: "
            f"{last['slope_per_layer']:+.4f} per layer [{last['low']:+.4f}, {last['high']:+.4f}] "
            f"(GPT-1: rises with every layer, about +1.7 points per layer on RACE and +0.8 on MultiNLI)."
        )
        over_verdict = family.verdict(int(end["over_test"]), end["over_no_pretraining"], "above", "below", "level")
        gain_verdict = family.verdict(int(end["gain_test"]), end["gain"], "helps", "hurts", "no difference")
        lines.append(
            f"  - all layers over embeddings only: {end['gain']:+.3f} "
            f"[{end['gain_low']:+.3f}, {end['gain_high']:+.3f}] ({gain_verdict}); "
            f"over no pretraining: {end['over_no_pretraining']:+.3f} "
            f"[{end['over_low']:+.3f}, {end['over_high']:+.3f}] "
            f"({over_verdict}; issue 22's target: at least {NO_PRETRAINING_TARGET:+.2f}, "
            f"{'met' if end['over_no_pretraining'] >= NO_PRETRAINING_TARGET else 'not met'})."
        )
        if len(task_gains) > 1:
            by_step = "; ".join(
                f"step {r['checkpoint_step']} ({r['tokens']:,} tokens): {r['gain']:+.3f} "
                f"[{r['gain_low']:+.3f}, {r['gain_high']:+.3f}]"
                for _, r in task_gains.iterrows()
            )
            lines.append(f"  - the gain over pretraining: {by_step}.")
        for _, g in growth[growth["task"] == task].iterrows():
            lines.append(
                f"  - from step {int(g['first_step'])} to step {int(g['last_step'])} the gain "
                f"{family.verdict(int(g['test']), g['growth'], 'grows', 'shrinks', 'does not change measurably')}: "
                f"{g['growth']:+.3f} [{g['low']:+.3f}, {g['high']:+.3f}]."
            )
        for _, z in zero_shot[zero_shot["task"] == task].iterrows():
            lines.append(
                f"  - fine-tuned (all layers, mean over seeds {z['fine_tuned']:.3f}) against the zero-shot "
                f"minimal-pairs readout of the same checkpoint ({z['zero_shot']:.3f}): {z['difference']:+.3f} "
                f"[{z['low']:+.3f}, {z['high']:+.3f}] "
                f"({family.verdict(int(z['test']), z['difference'], 'beats it', 'below it', 'level')}; GPT-1's "
                f"supervised models beat its zero-shot ones)."
            )
    if differences is not None:
        paper = {
            "no_pretraining": "GPT-1: -14.8 points on average without pretraining",
            "no_aux_lm": "GPT-1: the auxiliary LM helps the larger datasets, not the smaller ones",
            "lstm": "GPT-1: -5.6 points on average with an LSTM",
            "linear_head": "GPT-1's own head, a linear layer on the [extract] state",
        }
        for task, group in differences.groupby("task", sort=False):
            parts = [
                f"{r['variant']}: full minus {r['variant']} {r['full_minus_variant']:+.3f} "
                f"[{r['low']:+.3f}, {r['high']:+.3f}] "
                f"({family.verdict(int(r['test']), r['full_minus_variant'], 'full better', 'full worse', 'level')}; "
                f"{paper[r['variant']]})"
                for _, r in group.iterrows()
            ]
            lines.append(f"- Table 5, {task}: " + "; ".join(parts) + ".")
    if gaps is not None:
        for task, group in gaps.groupby("task", sort=False):
            best = group.loc[group["gap"].idxmax()]
            useful = [
                int(r["layer"]) for _, r in group.iterrows() if r["gap"] > 0 and family.adjusted[int(r["test"])] < ALPHA
            ]
            lines.append(
                f"- probes, {task}, last checkpoint: pretrained features beat untrained ones (Holm) at layers "
                f"{useful or 'none'}; the largest gap is at layer {best['layer']}: {best['pretrained']:.3f} "
                f"against {best['untrained']:.3f} ({best['gap']:+.3f} [{best['low']:+.3f}, {best['high']:+.3f}])."
            )
    counts = constant_runs(sweep, split)
    if ablation_table is not None and len(ablation_table):
        only_in_ablation = ablation_table[ablation_table["variant"].isin(["no_aux_lm", "lstm", "linear_head"])]
        counts = pd.concat([counts, constant_runs(only_in_ablation, split)])
    for task, group in counts.groupby("task", sort=False):
        each = ", ".join(f"{r['variant']} {int(r['constant'])}/{int(r['runs'])}" for _, r in group.iterrows())
        lines.append(
            f"- constant predictors, {task}: {int(group['constant'].sum())} of {int(group['runs'].sum())} runs "
            f"give one answer to more than {CONSTANT_SHARE:.0%} of examples (no information, never read as "
            f"flat): {each}."
        )
    return lines
