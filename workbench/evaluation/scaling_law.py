"""Kaplan et al.'s (2020) loss against model size, L(N) = (N_c / N)^alpha + L_inf, fitted to a ladder of runs.

N is the non-embedding parameter count and L the validation loss of a run trained on the same tokens
as the others. The fit is least squares over the runs (every seed a point), in the parameters
``alpha``, ``log N_c`` and ``L_inf``; the intervals are t intervals from the fit's covariance
(``runs`` less the parameters fitted), so a ladder of few sizes gives wide ones, as it should. Kaplan
et al. fit alpha_N = 0.076 over six decades of N with an irreducible loss of 0; at a few decades and
one pass over a small corpus, the larger models are limited by data, which the ``L_inf`` term absorbs
where the ladder identifies it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .statistics import CONFIDENCE

KAPLAN_ALPHA_N = 0.076
"""Kaplan et al. (2020), equation 1.1: the exponent of L(N) for models trained to convergence on WebText2."""

SCALING_FIT_COLUMNS = ["parameter", "value", "ci_low", "ci_high", "runs", "sizes", "df"]


def scaling_law(n: np.ndarray, alpha: float, log_n_c: float, l_inf: float) -> np.ndarray:
    """L(N) = (N_c / N)^alpha + L_inf, with N_c = exp(log_n_c)."""
    return np.exp(alpha * (log_n_c - np.log(np.asarray(n, dtype=float)))) + l_inf


def _initial_guess(n: np.ndarray, loss: np.ndarray) -> tuple[float, float, float]:
    """A straight line in log-log of ``loss - L_inf`` for the best of a grid of ``L_inf`` below every loss."""
    best = None
    for l_inf in loss.min() - np.geomspace(1e-2, loss.min(), 40):
        slope, intercept = np.polyfit(np.log(n), np.log(loss - l_inf), 1)
        guess = (-slope, intercept / -slope if slope else 0.0, l_inf)
        error = float(np.sum((scaling_law(n, *guess) - loss) ** 2))
        if slope < 0 and (best is None or error < best[0]):
            best = (error, guess)
    return best[1] if best else (0.1, float(np.log(n.max())), float(loss.min()))


@dataclass(frozen=True)
class ScalingFit:
    """The fitted L(N): each parameter with its ``confidence`` interval, and what it was fitted on."""

    alpha: tuple[float, float, float]
    n_c: tuple[float, float, float]
    l_inf: tuple[float, float, float]
    runs: int
    sizes: int
    df: int

    def predict(self, n: np.ndarray) -> np.ndarray:
        return scaling_law(n, self.alpha[0], math.log(self.n_c[0]), self.l_inf[0])

    def table(self) -> pd.DataFrame:
        """One row per parameter (:data:`SCALING_FIT_COLUMNS`)."""
        rows = [
            dict(parameter=name, value=v, ci_low=low, ci_high=high, runs=self.runs, sizes=self.sizes, df=self.df)
            for name, (v, low, high) in (("alpha", self.alpha), ("N_c", self.n_c), ("L_inf", self.l_inf))
        ]
        return pd.DataFrame(rows, columns=SCALING_FIT_COLUMNS)


def fit_scaling_law(n, loss, confidence: float = CONFIDENCE) -> ScalingFit:
    """Least-squares L(N) over runs of ``n`` non-embedding parameters and validation ``loss`` (one pair per
    run), with t intervals; at least four runs over at least three sizes (three parameters, and one degree
    of freedom left for the intervals). ``L_inf`` is held between 0 (a loss is not negative) and the lowest
    loss; where the best fit puts it at 0, the ladder does not identify a floor, and the law is fitted as
    Kaplan et al. wrote it, a pure power law (``L_inf`` 0 without an interval, one more degree of freedom)."""
    n, loss = np.asarray(n, dtype=float), np.asarray(loss, dtype=float)
    if n.shape != loss.shape or n.ndim != 1:
        raise ValueError(f"expected one N and one loss per run, got shapes {n.shape} and {loss.shape}")
    if not (np.isfinite(n).all() and np.isfinite(loss).all() and (n > 0).all() and (loss > 0).all()):
        raise ValueError(f"N and the loss must be positive and finite, got N={n.tolist()}, loss={loss.tolist()}")
    sizes = len(np.unique(n))
    if len(n) < 4 or sizes < 3:
        raise ValueError(
            f"a fit of three parameters needs at least 4 runs of at least 3 sizes, got {len(n)} runs of {sizes}"
        )
    bounds = ([-np.inf, -np.inf, 0.0], [np.inf, np.inf, float(loss.min())])
    params, covariance = optimize.curve_fit(scaling_law, n, loss, p0=_initial_guess(n, loss), bounds=bounds)
    floor = params[2] > 1e-6 * loss.min()
    if not floor:
        params, covariance = optimize.curve_fit(lambda x, a, c: scaling_law(x, a, c, 0.0), n, loss, p0=params[:2])
    df = len(n) - len(params)
    half = stats.t.ppf((1 + confidence) / 2, df) * np.sqrt(np.diag(covariance))
    alpha, log_n_c = params[:2]
    return ScalingFit(
        alpha=(float(alpha), float(alpha - half[0]), float(alpha + half[0])),
        n_c=tuple(float(v) for v in np.exp([log_n_c, log_n_c - half[1], log_n_c + half[1]])),
        l_inf=(float(params[2]), float(params[2] - half[2]), float(params[2] + half[2]))
        if floor
        else (0.0, math.nan, math.nan),
        runs=len(n),
        sizes=sizes,
        df=df,
    )
