"""The committed figures of 03 can be recomputed from the repository alone: every accuracy and interval
of layer_transfer.csv, ablation.csv, layer_probes.csv, layer_lens.csv and task_baselines.csv comes back
from the per-example outcomes saved beside them (issue 22), which stay small."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.evaluation.statistics import bootstrap_mean

FIGURES = Path(__file__).resolve().parents[1] / "figures"
OUTCOMES = FIGURES / "layer_transfer_outcomes.csv.gz"
KEYS = {
    "layer_transfer": ["task", "variant", "checkpoint_step", "layers_transferred", "seed", "split"],
    "ablation": ["task", "variant", "seed", "split"],
    "layer_probes": ["task", "checkpoint_step", "features", "layer", "split"],
    "layer_lens": ["task", "checkpoint_step", "layer"],
    "task_baselines": ["task", "baseline", "split"],
}


@pytest.fixture(scope="module")
def outcomes() -> pd.DataFrame:
    return pd.read_csv(OUTCOMES, dtype={"correct": str})


def _accuracy(correct: str) -> float:
    return float(np.mean([c == "1" for c in correct]))


def test_the_outcomes_stay_small():
    assert OUTCOMES.stat().st_size < 5e6


@pytest.mark.parametrize("table", list(KEYS))
def test_every_committed_accuracy_comes_back_from_its_outcomes(outcomes, table):
    keys = KEYS[table]
    figure = pd.read_csv(FIGURES / f"{table}.csv")
    mine = outcomes[outcomes["table"] == table]
    assert len(mine) == len(figure) > 0
    merged = figure.merge(mine[[*keys, "correct"]], on=keys, how="left", validate="one_to_one")
    assert merged["correct"].notna().all()
    assert (merged["correct"].str.len() == merged["n"]).all()
    np.testing.assert_allclose(merged["correct"].map(_accuracy), merged["accuracy"], atol=1e-12)


def test_the_lens_intervals_come_back(outcomes):
    figure = pd.read_csv(FIGURES / "layer_lens.csv")
    lens = outcomes[outcomes["table"] == "layer_lens"][[*KEYS["layer_lens"], "correct"]]
    for row in figure.merge(lens, on=KEYS["layer_lens"], validate="one_to_one").itertuples():
        values = np.array([c == "1" for c in row.correct], dtype=float)
        assert (row.accuracy, row.ci_low, row.ci_high) == pytest.approx(bootstrap_mean(values))
