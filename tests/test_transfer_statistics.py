"""The paired statistics of the layer-transfer experiment, on synthetic outcomes with known answers."""

import numpy as np
import pandas as pd
import pytest

from workbench.evaluation.statistics import bootstrap_mean, fixed_effects_slope, holm, seed_example_bootstrap
from workbench.experiments import transfer_statistics as stats
from workbench.experiments.transfer import SWEEP_COLUMNS

N = 600  # examples per split: a 95% band of about +-0.04 at 50%


def test_fixed_effects_slope_matches_the_within_seed_regression():
    rng = np.random.default_rng(0)
    seeds = np.repeat([0, 1, 2], 5)
    x = np.tile(np.arange(5.0), 3)
    y = 0.5 + 0.02 * x + np.array([0.0, 0.05, -0.03])[seeds] + rng.normal(0, 0.01, 15)
    fit = fixed_effects_slope(x, y, seeds)
    # the same slope by hand: remove each seed's mean from x and y, then a regression through the origin
    xc = x - np.array([x[seeds == s].mean() for s in seeds])
    yc = y - np.array([y[seeds == s].mean() for s in seeds])
    slope = xc @ yc / (xc @ xc)
    residual = yc - slope * xc
    se = np.sqrt(residual @ residual / (15 - 4) / (xc @ xc))
    assert fit.slope == pytest.approx(slope) and fit.se == pytest.approx(se) and fit.df == 11
    assert fit.low < 0.02 < fit.high and fit.verdict == "rises"
    flat = fixed_effects_slope(x, 0.5 + rng.normal(0, 0.01, 15), seeds)
    assert flat.verdict == "flat" and flat.low < 0 < flat.high
    with pytest.raises(ValueError, match="needs x to vary within groups"):
        fixed_effects_slope(np.repeat([0.0, 1.0, 2.0], 5), y, seeds)


def test_bootstrap_mean_of_a_paired_difference():
    values = np.r_[np.ones(60), np.zeros(540)]
    mean, low, high = bootstrap_mean(values)
    assert mean == pytest.approx(0.1) and low < 0.1 < high and high - low == pytest.approx(0.048, abs=0.01)
    with pytest.raises(ValueError, match=r"expected a non-empty 1-D array .*, got shape \(0,\)"):
        bootstrap_mean(np.array([]))


def test_holm_adjusts_step_down_and_keeps_the_order():
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])  # 0.04 x 1 is lifted to 0.06
    assert list(holm([0.5])) == [0.5] and holm([0.2, 0.9]).max() <= 1
    with pytest.raises(ValueError, match="without NaN"):
        holm([0.1, float("nan")])


def test_the_seed_bootstrap_holds_seed_variance():
    rng = np.random.default_rng(3)
    steady = (rng.random((5, N)) < 0.6).astype(float)
    # the same examples, but each seed shifted up or down by 8 points: the seeds disagree
    shifts = np.array([-0.08, 0.08, -0.08, 0.08, 0.0])
    wobbly = (rng.random((5, N)) < 0.6 + shifts[:, None]).astype(float)
    _, low, high, _ = seed_example_bootstrap(steady)
    _, wobbly_low, wobbly_high, _ = seed_example_bootstrap(wobbly)
    assert high - low < 0.7 * (wobbly_high - wobbly_low)
    # one seed: the example bootstrap of the same outcomes
    mean, low, high, p_value = seed_example_bootstrap(steady[:1] - 0.6)
    assert low < mean < high and 0 <= p_value <= 1
    with pytest.raises(ValueError, match=r"\[seeds, examples\] array, got shape \(3,\)"):
        seed_example_bootstrap(np.ones(3))


def _outcomes(rng, accuracy):
    return "".join("1" if u < accuracy else "0" for u in rng.random(N))


def _sweep(rise_per_layer, steps=(1, 100), seeds=(0, 1, 2)):
    """A sweep whose accuracy rises by ``rise_per_layer`` per layer at the last checkpoint and not at the first."""
    rng = np.random.default_rng(1)
    rows = []
    for seed in seeds:
        for step in steps:
            for layers in range(5):
                rise = rise_per_layer if step == steps[-1] else 0.0
                correct = _outcomes(rng, 0.5 + rise * layers)
                for split in ("dev", "test"):
                    rows.append(
                        dict(
                            task="corrupted_sentence",
                            variant="transfer",
                            checkpoint_step=step,
                            tokens=step * 2048,
                            layers_transferred=layers,
                            seed=seed,
                            split=split,
                            n=N,
                            accuracy=correct.count("1") / N,
                            predicted_share=0.5,
                            constant=False,
                            correct=correct,
                        )
                    )
        correct = _outcomes(rng, 0.5)
        for split in ("dev", "test"):
            rows.append(
                dict(
                    task="corrupted_sentence",
                    variant="no_pretraining",
                    checkpoint_step=pd.NA,
                    tokens=0,
                    layers_transferred=pd.NA,
                    seed=seed,
                    split=split,
                    n=N,
                    accuracy=correct.count("1") / N,
                    predicted_share=0.95 if seed == 0 else 0.5,  # seed 0's no-pretraining run: a constant head
                    constant=seed == 0,
                    correct=correct,
                )
            )
    return pd.DataFrame(rows, columns=[*SWEEP_COLUMNS, "correct"])


def test_a_real_rise_is_found_and_a_null_is_not():
    rising, null = _sweep(0.04), _sweep(0.0)
    slopes = stats.layer_slopes(rising).set_index("checkpoint_step")
    assert slopes.loc[100, "verdict"] == "rises" and slopes.loc[1, "verdict"] == "flat"
    assert slopes.loc[100, "low"] < 0.04 < slopes.loc[100, "high"]
    assert set(stats.layer_slopes(null)["verdict"]) == {"flat"}
    one_seed = rising[(rising["seed"] == 0) & rising["layers_transferred"].isin([0, 4]).fillna(True)]
    assert set(stats.layer_slopes(one_seed)["verdict"]) == {"not estimable"}  # 2 runs, 2 parameters
    gains = stats.transfer_gains(rising).set_index("checkpoint_step")
    assert gains.loc[100, "gain_low"] > 0 and gains.loc[1, "gain_low"] < 0 < gains.loc[1, "gain_high"]
    assert gains.loc[100, "comparison"] == "4 layers - 0 layers"
    growth = stats.gain_growth(rising).iloc[0]
    assert growth["low"] > 0 and growth["growth"] == pytest.approx(gains.loc[100, "gain"] - gains.loc[1, "gain"])
    lines = stats.findings(rising)
    assert "over this split's 7 tests" in lines[0]
    assert "accuracy with layers transferred rises, Holm p = " in lines[1]
    assert "(helps, Holm p = " in lines[2] and "from step 1 to step 100 the gain grows, Holm p = " in lines[4]
    assert lines[-1] == (
        "- constant predictors, corrupted_sentence: 1 of 33 runs give one answer to more than 90% of examples "
        "(no information, never read as flat): transfer 0/30, no_pretraining 1/3."
    )
    lines = stats.findings(null)
    assert "accuracy with layers transferred flat, Holm p = 1" in lines[1] and "(no difference, Holm p = 1)" in lines[2]
    summary = stats.seed_summary(null[null["split"] == "dev"], ["variant"]).set_index("variant")
    assert summary.loc["no_pretraining", "constant"] == 1 and summary.loc["transfer", "constant"] == 0
    assert summary.loc["no_pretraining", "predicted_share"] == pytest.approx((0.95 + 0.5 + 0.5) / 3)


def test_differences_need_the_same_seeds():
    sweep = _sweep(0.0)
    fewer = sweep[~((sweep["variant"] == "no_pretraining") & (sweep["seed"] == 2))]
    with pytest.raises(ValueError, match=r"paired conditions need the same seeds, got \[0, 1\] and \[0, 1, 2\]"):
        stats.transfer_gains(fewer, "dev")


def test_ablation_and_probe_differences_are_paired_by_example():
    rng = np.random.default_rng(2)
    base = _outcomes(rng, 0.5)
    better = "".join("1" if i % 5 == 0 else c for i, c in enumerate(base))  # right on 20% more examples
    rows = [
        dict(task="t", variant=v, seed=s, split="dev", n=N, accuracy=0.0, correct=c)
        for s in (0, 1)
        for v, c in (("full", better), ("no_pretraining", base), ("no_aux_lm", better))
    ]
    differences = stats.ablation_differences(pd.DataFrame(rows)).set_index("variant")
    assert differences.loc["no_aux_lm", "full_minus_variant"] == 0
    assert differences.loc["no_pretraining", "low"] > 0  # a paired difference: tight although both are noisy
    probes = pd.DataFrame(
        [
            dict(task="t", checkpoint_step=s, tokens=s, layer=0, features=f, split="dev", n=N, accuracy=0.0, correct=c)
            for s, f, c in ((0, "untrained", base), (100, "pretrained", better))
        ]
    )
    gap = stats.probe_gaps(probes).iloc[0]
    assert gap["low"] > 0 and gap["gap"] == pytest.approx(better.count("1") / N - base.count("1") / N)
    table = stats.probe_table(probes)
    assert list(table["features"]) == ["untrained", "pretrained"] and (table["band"] > 0).all()
    cells = stats.banded(table, ["task"], ["features"])
    assert cells.loc["t", "untrained"] == f"{table['accuracy'].iloc[0]:.3f} ±{table['band'].iloc[0]:.3f}"
