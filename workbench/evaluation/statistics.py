"""Paired statistics over examples: bootstrap intervals, paired differences and trends.

Zero-shot readouts are evaluated on the same examples at every checkpoint, so conditions are
compared *paired by example*: each bootstrap replicate draws one set of example indices and
uses it for every checkpoint. A metric is ``"accuracy"`` (the mean of per-example 0/1 outcomes)
or ``"auc"`` (the area under the ROC curve of a per-example score against its 0/1 label).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

BOOTSTRAP_REPLICATES = 1000
CONFIDENCE = 0.95
METRICS = ("accuracy", "auc")
CONSTANT_SHARE = 0.9
"""A run or readout that gives one answer to more than this share of examples is a constant predictor:
it carries no information about what it reads, and is never read as "flat"."""


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (ties count half): the probability that a positive outranks a negative."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels).astype(bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + 1 + ends) / 2)[inverse]  # the average rank of each run of ties
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


@dataclass(frozen=True)
class Outcomes:
    """Per-example results of one readout on ``n`` examples: ``correct`` (0/1), ``score`` and ``label``."""

    metric: str
    correct: np.ndarray
    score: np.ndarray
    label: np.ndarray

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric={self.metric!r}: expected one of {METRICS}")
        if not len(self.correct) == len(self.score) == len(self.label) > 0:
            raise ValueError(
                f"outcomes need the same positive number of correct, score and label values, got "
                f"{len(self.correct)}, {len(self.score)}, {len(self.label)}"
            )

    def value(self, index: np.ndarray | None = None) -> float:
        """The metric on all examples, or on the examples at ``index`` (a bootstrap replicate)."""
        if self.metric == "accuracy":
            return float(np.mean(self.correct if index is None else self.correct[index]))
        if index is None:
            return auc(self.score, self.label)
        return auc(self.score[index], self.label[index])

    def predicted_share(self) -> float:
        """The share of the most frequent answer of a two-class accuracy readout (labels 0 and 1, so
        a wrong answer is the other class); NaN for AUC, for more choices, whose answers the
        outcomes do not hold, and where every label is the same (a readout that always answers it
        is right, not uninformative: a minimal pair's original, say)."""
        if self.metric != "accuracy" or set(np.unique(self.label).tolist()) != {0, 1}:
            return float("nan")
        first = np.where(np.asarray(self.correct) == 1, self.label, 1 - self.label).mean()
        return float(max(first, 1 - first))

    def values(self, indices: np.ndarray) -> np.ndarray:
        """The metric on each replicate (a row of ``indices``)."""
        if self.metric == "accuracy":
            return np.asarray(self.correct, dtype=float)[indices].mean(axis=1)
        return np.array([self.value(row) for row in indices])


def replicates(n: int, count: int = BOOTSTRAP_REPLICATES, seed: int = 0) -> np.ndarray:
    """``count`` bootstrap resamples of ``n`` example indices, ``[count, n]``, reproducible from ``seed``."""
    return np.random.default_rng(seed).integers(0, n, size=(count, n))


def interval(samples: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The percentile interval of bootstrap ``samples``."""
    tail = (1 - confidence) / 2 * 100
    low, high = np.nanpercentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of each row of ``y`` (``[..., k]``) against ``x`` (``[k]``)."""
    x = np.asarray(x, dtype=float)
    centred = x - x.mean()
    return (np.asarray(y) - np.mean(y, axis=-1, keepdims=True)) @ centred / (centred @ centred)


@dataclass(frozen=True)
class Trend:
    """How a readout changed over checkpoints, paired by example.

    ``change`` is the last checkpoint's value minus the first's (the untrained baseline), ``slope``
    the least-squares slope of the value against ``x`` (log10 tokens seen), each with a bootstrap
    interval from the same resamples of the examples. ``p`` tests "both differ from 0" (an
    intersection-union test: the larger of the two p-values), for a correction over a family.
    """

    change: float
    change_low: float
    change_high: float
    slope: float
    slope_low: float
    slope_high: float
    p: float

    @property
    def verdict(self) -> str:
        """ "rises" when both intervals lie above 0, "falls" when both lie below, else "flat"."""
        if self.change_low > 0 and self.slope_low > 0:
            return "rises"
        if self.change_high < 0 and self.slope_high < 0:
            return "falls"
        return "flat"


def trend(x: np.ndarray, outcomes: list[Outcomes], count: int = BOOTSTRAP_REPLICATES, seed: int = 0) -> Trend:
    """The paired change from the first to the last of ``outcomes`` (ordered by ``x``) and the slope over all."""
    return seed_trend(x, [[o] for o in outcomes], count, seed)


def seed_trend(
    x: np.ndarray, points: list[Sequence[Outcomes]], count: int = BOOTSTRAP_REPLICATES, seed: int = 0
) -> Trend:
    """:func:`trend` with one or more runs (pretraining seeds) at each point, a point's value the mean over
    its runs. Each replicate draws the examples (the same at every point: paired by example) and, at each
    point, that point's runs with replacement, so that the intervals hold seed-to-seed variance as well as
    example variance (runs at different points are independent trainings, so they are drawn independently).
    With one run per point it is the example bootstrap of :func:`trend`, value for value."""
    if len(points) < 2 or len(x) != len(points):
        raise ValueError(f"a trend needs at least two points and one x per point, got {len(x)} x values")
    if any(len(runs) == 0 for runs in points):
        raise ValueError("every point of a trend needs at least one run")
    n = {len(o.correct) for runs in points for o in runs}
    if len(n) != 1:
        raise ValueError(f"paired outcomes must cover the same examples, got sizes {sorted(n)}")
    indices = replicates(n.pop(), count, seed)
    draw = np.random.default_rng(seed + 1)  # the runs' resamples, apart from the examples'
    columns, point = [], []
    for runs in points:
        per_run = np.stack([o.values(indices) for o in runs], axis=1)  # [replicates, runs]
        drawn = draw.integers(0, len(runs), size=(count, len(runs)))
        columns.append(np.take_along_axis(per_run, drawn, axis=1).mean(axis=1))
        point.append(np.mean([o.value() for o in runs]))
    values, point = np.stack(columns, axis=1), np.array(point)  # [replicates, points], [points]
    changes, slopes = values[:, -1] - values[:, 0], slope(x, values)
    change, slope_value = float(point[-1] - point[0]), float(slope(x, point))
    return Trend(
        change,
        *interval(changes),
        slope_value,
        *interval(slopes),
        max(normal_p_value(change, changes), normal_p_value(slope_value, slopes)),
    )


def paired_difference(
    a: Outcomes, b: Outcomes, count: int = BOOTSTRAP_REPLICATES, seed: int = 0
) -> tuple[float, float, float, float]:
    """``b``'s value minus ``a``'s on the same examples, with its bootstrap interval and two-sided p-value."""
    if len(a.correct) != len(b.correct):
        raise ValueError(f"paired outcomes must cover the same examples, got {len(a.correct)} and {len(b.correct)}")
    indices = replicates(len(a.correct), count, seed)
    samples = b.values(indices) - a.values(indices)
    difference = b.value() - a.value()
    return (difference, *interval(samples), normal_p_value(difference, samples))


def bootstrap_mean(values: np.ndarray, count: int = BOOTSTRAP_REPLICATES, seed: int = 0) -> tuple[float, float, float]:
    """The mean of per-example ``values`` with its bootstrap interval: for a paired difference of
    outcomes on the same examples (``b - a`` per example), or any contrast of several."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"expected a non-empty 1-D array of per-example values, got shape {values.shape}")
    samples = values[replicates(len(values), count, seed)].mean(axis=1)
    return (float(values.mean()), *interval(samples))


def seed_example_bootstrap(
    values: np.ndarray, count: int = BOOTSTRAP_REPLICATES, seed: int = 0
) -> tuple[float, float, float, float]:
    """The mean of ``values`` ``[seeds, examples]`` with a bootstrap over seeds and examples together:
    each replicate draws the seeds with replacement and, independently, the examples, so that the
    interval holds seed-to-seed variance as well as example variance (with a handful of seeds it is
    still a little narrow: a bootstrap of n seeds sees (n - 1) / n of their variance). Returns the
    mean, the interval, and a two-sided p-value against 0 from the replicates' standard error."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or 0 in values.shape:
        raise ValueError(f"expected a non-empty [seeds, examples] array, got shape {values.shape}")
    rng = np.random.default_rng(seed)
    n_seeds, n_examples = values.shape
    seeds = rng.integers(0, n_seeds, size=(count, n_seeds))
    examples = rng.integers(0, n_examples, size=(count, n_examples))
    per_seed = values[:, examples].mean(axis=2)  # [seeds, count]: each seed on each replicate's examples
    samples = np.take_along_axis(per_seed.T, seeds, axis=1).mean(axis=1)
    return (float(values.mean()), *interval(samples), normal_p_value(float(values.mean()), samples))


def normal_p_value(estimate: float, samples: np.ndarray) -> float:
    """Two-sided p-value of ``estimate`` against 0, from the standard error of its bootstrap ``samples``
    (replicates where the metric is undefined, an AUC on one class, are left out; 1 when fewer than
    two remain or the estimate is undefined: nothing can be tested)."""
    samples = np.asarray(samples, dtype=float)
    samples = samples[np.isfinite(samples)]
    if len(samples) < 2 or not np.isfinite(estimate):
        return 1.0
    se = float(np.std(samples, ddof=1))
    if se == 0:
        return 1.0 if estimate == 0 else 0.0
    return float(2 * stats.norm.sf(abs(estimate) / se))


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (in their order): the i-th smallest is
    multiplied by (m - i + 1), and the adjusted values are made non-decreasing in that order."""
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or np.isnan(p).any():
        raise ValueError(f"expected a 1-D array of p-values without NaN, got {p!r:.80}")
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, p[order] * (len(p) - np.arange(len(p))))
    adjusted = np.empty_like(p)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


@dataclass(frozen=True)
class Slope:
    """A least-squares slope with its standard error and ``confidence`` t interval (``df`` residual
    degrees of freedom)."""

    slope: float
    se: float
    low: float
    high: float
    df: int

    @property
    def p_value(self) -> float:
        """Two-sided p-value of the slope against 0 (t with ``df`` degrees of freedom)."""
        return float(2 * stats.t.sf(abs(self.slope / self.se), self.df)) if self.se > 0 else float(self.slope == 0)

    @property
    def verdict(self) -> str:
        """ "rises" when the interval lies above 0, "falls" when below, else "flat"."""
        return "rises" if self.low > 0 else "falls" if self.high < 0 else "flat"


def fixed_effects_slope(x, y, groups, confidence: float = CONFIDENCE) -> Slope:
    """The slope of ``y`` on ``x`` with one intercept per group (seed fixed effects: each seed may sit
    higher or lower, the slope is shared), by ordinary least squares."""
    x, y, groups = np.asarray(x, dtype=float), np.asarray(y, dtype=float), np.asarray(groups)
    if not len(x) == len(y) == len(groups):
        raise ValueError(f"x, y and groups need one value per observation, got {len(x)}, {len(y)}, {len(groups)}")
    levels = np.unique(groups)
    design = np.column_stack([x, *(groups == level for level in levels)]).astype(float)
    df = len(y) - design.shape[1]
    if df < 1 or np.linalg.matrix_rank(design) < design.shape[1]:
        raise ValueError(
            f"a slope with {len(levels)} group intercepts needs x to vary within groups and more than "
            f"{design.shape[1]} observations, got {len(y)}"
        )
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ coef
    covariance = residuals @ residuals / df * np.linalg.inv(design.T @ design)
    se = float(np.sqrt(covariance[0, 0]))
    half = float(stats.t.ppf((1 + confidence) / 2, df)) * se
    return Slope(float(coef[0]), se, float(coef[0] - half), float(coef[0] + half), int(df))
