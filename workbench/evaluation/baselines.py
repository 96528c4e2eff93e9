"""Baselines that use no language model: what a task's surface alone gives away.

DESIGN.md, "No task without its no-model baselines": before a task is used, logistic regressions on
features that need no language model are fit on its train split and scored on its test split, and
each must be within two standard errors of chance. A task a surface classifier solves measures
orthography, not language modelling. The feature sets:

- ``surface``: case, punctuation, digits and length;
- ``word frequency``: how common the words are (log counts in the task's own train split);
- ``change position``: where the two versions of a line differ, and how common the words there are
  (tasks whose examples carry both versions: a ``twin``, or two choices);
- ``majority class``: the most frequent train label, for every example.

A two-choice task is scored choice by choice: one regression scores each choice alone from its
features ("is this the right choice?"), and the higher-scoring choice is the answer (ties go to the
first). A task without a classification or two-choice shape has no baselines here.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..data.tasks import TASKS, load_task
from .heuristics import random_accuracy
from .probes import SOLVER, fit_probe

BASELINE_COLUMNS = ["task", "baseline", "split", "n", "accuracy", "chance", "ci_low", "ci_high"]
PUNCTUATION = ".,;:!?'\"-()"
Z95 = 1.96


def surface_features(text: str) -> list[float]:
    """Case, punctuation, digits and length of a text."""
    words = text.split()
    return [
        len(words),
        len(text),
        np.mean([len(w) for w in words]),
        sum(w[:1].isupper() for w in words) / len(words),
        float(text[:1].islower()),
        float(text[-1:] in PUNCTUATION),
        sum(c.isdigit() for c in text),
        *(text.count(c) for c in PUNCTUATION),
    ]


def _word(word: str) -> str:
    return word.strip(PUNCTUATION).lower()


class WordCounts:
    """Log counts of words (lower case, outer punctuation stripped) in a list of texts, add-one smoothed."""

    def __init__(self, texts: list[str]):
        self.counts = Counter(_word(w) for text in texts for w in text.split())

    def __call__(self, word: str) -> float:
        return math.log(1 + self.counts[_word(word)])

    def features(self, text: str) -> list[float]:
        """Mean, least and most log count of the words, and those of the first and last word."""
        logs = [self(w) for w in text.split()]
        return [float(np.mean(logs)), min(logs), max(logs), logs[0], logs[-1]]

    def change_features(self, text: str, other: str) -> list[float]:
        """Where ``text`` differs from ``other`` (relative positions of the first and last differing
        words, their distance, the length) and the log counts of ``text``'s words there."""
        words, others = text.split(), other.split()
        changed = [i for i, (a, b) in enumerate(zip(words, others)) if a != b] or [0]
        first, last = changed[0], changed[-1]
        n = len(words)
        return [first / n, last / n, (last - first) / n, n, self(words[first]), self(words[last])]


def _texts(example: dict) -> list[str]:
    """The texts a baseline sees: the text of a classification, or each choice of a two-choice task."""
    return [example["text"]] if "text" in example else list(example["choices"])


def _other(example: dict, k: int) -> str:
    """The other version of text ``k`` of an example: its twin, or the other choice."""
    return example["twin"] if "text" in example else example["choices"][1 - k]


def _feature_sets(task: str, train: list[dict]) -> dict[str, Callable[[dict, int], list[float]]]:
    """Baseline name -> features of text ``k`` of an example."""
    counts = WordCounts([t for e in train for t in _texts(e)])
    sets: dict[str, Callable[[dict, int], list[float]]] = {
        "surface": lambda e, k: surface_features(_texts(e)[k]),
        "word frequency": lambda e, k: counts.features(_texts(e)[k]),
    }
    if "twin" in TASKS[task].optional_fields or TASKS[task].n_choices == 2:
        sets["change position"] = lambda e, k: counts.change_features(_texts(e)[k], _other(e, k))
    return sets


def has_baselines(task: str) -> bool:
    spec = TASKS[task]
    return spec.kind == "classification" or (spec.kind == "multiple_choice" and spec.n_choices == 2)


def baseline_outcomes(task: str, seed: int = 0, split: str = "test") -> dict[str, np.ndarray]:
    """Baseline name -> which examples of ``split`` it gets right (0/1, in the split's order), each
    regression fit on every train example of ``task`` (split with ``seed``)."""
    if not has_baselines(task):
        raise ValueError(f"task {task!r} is a {TASKS[task].kind} task; baselines need classification or two choices")
    train, evaluated = load_task(task, "train", seed), load_task(task, split, seed)
    splits = {"train": train, split: evaluated}
    labels = {name: np.array([e["label"] for e in examples]) for name, examples in splits.items()}
    majority = Counter(labels["train"].tolist()).most_common(1)[0][0]
    outcomes = {"majority class": (labels[split] == majority).astype(np.int8)}
    for name, features in _feature_sets(task, train).items():
        if TASKS[task].kind == "classification":
            x = {name: np.array([features(e, 0) for e in examples]) for name, examples in splits.items()}
            outcomes[name] = fit_probe(x["train"], labels["train"], {split: (x[split], labels[split])})[split]
        else:
            outcomes[name] = _choice_alone(features, train, evaluated, labels)[split]
    return outcomes


def _choice_alone(features, train: list[dict], evaluated: list[dict], labels: dict) -> dict[str, np.ndarray]:
    """Score each of two choices alone ("is it the right one?"); answer the higher-scoring one."""
    x = np.array([features(e, k) for e in train for k in (0, 1)])
    y = np.array([int(k == e["label"]) for e in train for k in (0, 1)])
    scorer = make_pipeline(StandardScaler(), LogisticRegression(solver=SOLVER, max_iter=1000, random_state=0))
    scorer.fit(x, y)
    split = next(s for s in labels if s != "train")
    scores = scorer.decision_function(np.array([features(e, k) for e in evaluated for k in (0, 1)])).reshape(-1, 2)
    answers = (scores[:, 1] > scores[:, 0]).astype(int)
    return {split: (answers == labels[split]).astype(np.int8)}


def task_baselines(tasks, seed: int = 0, split: str = "test") -> pd.DataFrame:
    """One row per task and baseline (:data:`BASELINE_COLUMNS`): accuracy on ``split`` with a 95%
    normal interval, beside chance; ``within_2se`` says whether it is within two standard errors of
    chance (the standard error of a guess on n examples); ``correct`` holds the per-example outcomes
    (a 0/1 string in the split's order)."""
    rows = []
    for task in [tasks] if isinstance(tasks, str) else tasks:
        for name, correct in baseline_outcomes(task, seed, split).items():
            n, accuracy, guess = len(correct), float(correct.mean()), random_accuracy(task)
            half = Z95 * math.sqrt(accuracy * (1 - accuracy) / n)
            rows.append(
                dict(
                    task=task,
                    baseline=name,
                    split=split,
                    n=n,
                    accuracy=accuracy,
                    chance=guess,
                    ci_low=accuracy - half,
                    ci_high=accuracy + half,
                    within_2se=abs(accuracy - guess) <= 2 * math.sqrt(guess * (1 - guess) / n),
                    correct="".join(map(str, correct)),
                )
            )
    return pd.DataFrame(rows)
