"""No-language-model baselines (DESIGN.md): every in-domain task of 03 is at chance for each of them
on its test split, and the baselines do find a shortcut where one exists."""

import math

import numpy as np
import pytest

from workbench.evaluation import baselines
from workbench.evaluation.baselines import BASELINE_COLUMNS, WordCounts, surface_features, task_baselines

pytestmark = pytest.mark.data


def test_in_domain_tasks_are_at_chance_for_every_baseline():
    table = task_baselines(["corrupted_sentence", "corrupted_pair"])
    assert list(table.columns) == [*BASELINE_COLUMNS, "within_2se", "correct"]
    assert (table["correct"].str.len() == table["n"]).all()
    assert set(table["baseline"]) == {"majority class", "surface", "word frequency", "change position"}
    for row in table.itertuples():
        band = 2 * math.sqrt(row.chance * (1 - row.chance) / row.n)
        assert row.n > 1000 and row.chance == 0.5, row
        assert abs(row.accuracy - row.chance) <= band, f"{row.task} {row.baseline}: {row.accuracy:.3f}, band {band:.3f}"
        assert row.within_2se


def test_the_surface_baseline_catches_the_shortcut_of_the_old_swaps(monkeypatch):
    """Swapping the first word with the second (as the task did before TASKS_VERSION 3) starts many
    corrupted lines in lower case: the surface baseline must see it."""
    real = baselines.load_task

    def first_words_swapped(task, split, seed=0):
        examples = []
        for e in real("corrupted_sentence", split, seed):
            original = e["text"] if e["label"] == 1 else e["twin"]
            words = original.split()
            words[0], words[1] = words[1], words[0]
            examples.append(dict(e, text=original if e["label"] == 1 else " ".join(words)))
        return examples

    monkeypatch.setattr(baselines, "load_task", first_words_swapped)
    table = task_baselines("corrupted_sentence").set_index("baseline")
    assert table.loc["surface", "accuracy"] > 0.6 and not table.loc["surface", "within_2se"]
    assert table.loc["majority class", "within_2se"]


def test_features_read_case_punctuation_and_counts():
    features = surface_features("Hark, the herald angels sing!")
    assert features[:2] == [5, 29] and features[4] == 0.0 and features[5] == 1.0
    counts = WordCounts(["the cat", "The dog", "a cat"])
    assert counts("the") == pytest.approx(np.log(3)) and counts("cat,") == pytest.approx(np.log(3))
    position = counts.change_features("a b c d", "a c b d")
    assert position[:4] == [0.25, 0.5, 0.25, 4]


def test_tasks_without_a_baseline_shape_are_refused():
    with pytest.raises(ValueError, match="'line_order' is a entailment task"):
        baselines.baseline_outcomes("line_order")
