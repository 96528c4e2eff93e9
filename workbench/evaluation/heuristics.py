"""GPT-1's zero-shot heuristics (section 5, "Zero-shot behaviors"), and readouts that work at small scale.

Each heuristic turns a language model into a classifier with no training, from log-likelihoods
(:mod:`workbench.evaluation.scoring`). Each has several *readouts*: ``"paper"`` is the rule exactly
as GPT-1 defines it; the others, named for what they are, are the readouts small models need:

- ``acceptability`` (``corrupted_sentence``): ``paper``, the mean token log-probability of the line
  against a threshold chosen on the dev split; ``SLOR``, the same rule on the syntactic
  log-odds ratio (log-probability minus the unigram log-probability, per token: it removes word
  frequency); ``minimal pairs``, each line against its twin (the same line as written and with two
  words swapped): the higher total log-probability is called the original.
- ``sentiment`` (``sentiment``): append " very" and compare the probabilities of a positive and a
  negative word as the next token. The paper's words " positive" / " negative" are not both one
  token of every tokenizer, so the pair used is the first of :data:`VERBALIZERS` whose words are
  single tokens (:func:`single_token_verbalizer`). ``paper`` predicts positive when the log-odds
  exceed 0; ``calibrated`` when they exceed their median over the evaluated reviews (label-free:
  it removes the model's prior for one of the words); ``AUC`` is the threshold-free area under
  the ROC curve of the log-odds.
- ``multiple_choice`` (``next_line``): ``paper``, the choice with the highest mean token
  log-probability after the context; ``PMI``, the highest log p(choice | context) - log p(choice)
  (it removes the prior of the choice itself).
- ``substitution`` (``name_substitution``): ``paper``, the "partial" scoring of Trinh & Le (2018):
  each candidate in the blank, the highest mean log-probability of the rest of the line;
  ``full scoring``, the highest total log-probability of the whole line.

Every request of every heuristic is collected first and scored once, in one batched pass
(:func:`score_outcomes`); the readouts are read off those scores. Any model with
``model(idx).logits`` and ``model.config.n_ctx`` works (the GPT, the LSTM baseline, or
``GPT.from_pretrained`` weights with their tokenizer); long sequences are scored with a rolling
window, so no example is dropped and no token ignored.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.checks import NON_NEGATIVE_INT, POSITIVE_INT, optional
from ..data.tasks import get_task, load_task
from .scoring import score
from .statistics import CONSTANT_SHARE, Outcomes, interval, replicates

VERBALIZERS = {
    "positive/negative": (" positive", " negative"),
    "good/bad": (" good", " bad"),
    "great/terrible": (" great", " terrible"),
    "excellent/poor": (" excellent", " poor"),
}
"""Sentiment verbalizer pairs (positive word, negative word), the paper's first, in order of preference."""

OUTCOME_COLUMNS = ["task", "heuristic", "readout", "metric", "example", "label", "correct", "score"]
SUMMARY_COLUMNS = [
    "task",
    "heuristic",
    "readout",
    "metric",
    "n",
    "accuracy",
    "ci_low",
    "ci_high",
    "random",
    "predicted_share",
    "constant",
]


@dataclass(frozen=True)
class Readout:
    """One way of reading predictions off a heuristic's scores (``paper``: GPT-1's own)."""

    name: str
    rule: str
    metric: str = "accuracy"


@dataclass(frozen=True)
class Inputs:
    """What the readouts need besides the scores: the tokenizer, the sentiment pair and unigram log-probabilities."""

    tokenizer: object
    verbalizer: tuple[str, str]
    unigram: np.ndarray | None = None  # log-probability of each token id; None: no SLOR readout


Lookup = Callable[[tuple[str, str]], dict]  # a request -> its row of scores


@dataclass(frozen=True)
class Heuristic:
    """A zero-shot heuristic: its task, its readouts, the requests it scores per example and how it reads them."""

    name: str
    task: str
    readouts: tuple[Readout, ...]
    requests: Callable[[dict, Inputs], list[tuple[str, str]]]  # one test example's requests
    read: Callable[[list[dict], list[dict] | None, Lookup, Inputs], dict[str, Outcomes]]
    dev_requests: Callable[[dict, Inputs], list[tuple[str, str]]] | None = None  # None: no dev split

    @property
    def needs_dev(self) -> bool:
        return self.dev_requests is not None


# --- acceptability -----------------------------------------------------------------------------


def _line(text: str) -> tuple[str, str]:
    return ("", " " + text)


def _acceptability_requests(example: dict, inputs: Inputs) -> list[tuple[str, str]]:
    if "twin" not in example:
        raise ValueError(f"acceptability example {example!r:.80} has no 'twin' (its other version) for minimal pairs")
    return [_line(example["text"]), _line(example["twin"])]


def _threshold_outcomes(dev_values: np.ndarray, dev_labels: np.ndarray, values: np.ndarray, labels: np.ndarray):
    """Predict 1 at or above the threshold that maximises accuracy on the dev split."""
    candidates = np.unique(dev_values)
    accuracy = [((dev_values >= t) == dev_labels).mean() for t in candidates]
    predicted = (values >= candidates[int(np.argmax(accuracy))]).astype(int)
    return Outcomes("accuracy", (predicted == labels).astype(int), values, labels)


def _read_acceptability(examples, dev, lookup: Lookup, inputs: Inputs) -> dict[str, Outcomes]:
    labels, dev_labels = _labels(examples), _labels(dev)
    rows = [lookup(_line(e["text"])) for e in examples]
    dev_rows = [lookup(_line(e["text"])) for e in dev]

    def per_token(rows):
        return np.array([r["logprob_per_token"] for r in rows])

    result = {"paper": _threshold_outcomes(per_token(dev_rows), dev_labels, per_token(rows), labels)}
    if inputs.unigram is not None:

        def slor(items, rows):
            ids = inputs.tokenizer.encode_batch([" " + e["text"] for e in items])
            unigram = np.array([inputs.unigram[i].sum() for i in ids])
            return (np.array([r["logprob"] for r in rows]) - unigram) / np.array([len(i) for i in ids])

        result["SLOR"] = _threshold_outcomes(slor(dev, dev_rows), dev_labels, slor(examples, rows), labels)
    own = np.array([r["logprob"] for r in rows])
    twin = np.array([lookup(_line(e["twin"]))["logprob"] for e in examples])
    margin = np.where(labels == 1, own - twin, twin - own)  # original minus corrupted
    result["minimal pairs"] = Outcomes("accuracy", (margin > 0).astype(int), margin, np.ones_like(labels))
    return result


# --- sentiment ---------------------------------------------------------------------------------


def _sentiment_requests(example: dict, inputs: Inputs) -> list[tuple[str, str]]:
    return [(example["text"].rstrip() + " very", word) for word in inputs.verbalizer]


def _read_sentiment(examples, dev, lookup: Lookup, inputs: Inputs) -> dict[str, Outcomes]:
    labels = _labels(examples)
    pairs = [[lookup(r)["logprob"] for r in _sentiment_requests(e, inputs)] for e in examples]
    log_odds = np.array([positive - negative for positive, negative in pairs])
    paper = (log_odds > 0).astype(int)
    calibrated = (log_odds > np.median(log_odds)).astype(int)
    return {
        "paper": Outcomes("accuracy", (paper == labels).astype(int), log_odds, labels),
        "calibrated": Outcomes("accuracy", (calibrated == labels).astype(int), log_odds, labels),
        "AUC": Outcomes("auc", (calibrated == labels).astype(int), log_odds, labels),
    }


# --- multiple choice ---------------------------------------------------------------------------


def _multiple_choice_requests(example: dict, inputs: Inputs) -> list[tuple[str, str]]:
    conditional = [(example["context"] + "\n", choice) for choice in example["choices"]]
    return conditional + [("\n", choice) for choice in example["choices"]]  # "\n" + choice from nothing


def _choice_outcomes(examples, values: list[np.ndarray]) -> Outcomes:
    labels = _labels(examples)
    chosen = np.array([int(np.argmax(v)) for v in values])
    margin = np.array([v[label] - np.delete(v, label).max() for v, label in zip(values, labels)])
    return Outcomes("accuracy", (chosen == labels).astype(int), margin, labels)


def _read_multiple_choice(examples, dev, lookup: Lookup, inputs: Inputs) -> dict[str, Outcomes]:
    paper, pmi = [], []
    for example in examples:
        rows = [lookup(r) for r in _multiple_choice_requests(example, inputs)]
        k = len(example["choices"])
        paper.append(np.array([r["logprob_per_token"] for r in rows[:k]]))
        pmi.append(np.array([a["logprob"] - b["logprob"] for a, b in zip(rows[:k], rows[k:])]))
    return {"paper": _choice_outcomes(examples, paper), "PMI": _choice_outcomes(examples, pmi)}


# --- substitution ------------------------------------------------------------------------------


def _substitution_requests(example: dict, inputs: Inputs) -> list[tuple[str, str]]:
    prefix, suffix = example["prefix"], example["suffix"]
    partial = [(f"{prefix} {choice}", suffix) for choice in example["choices"]]
    return partial + [_line(f"{prefix} {choice}{suffix}") for choice in example["choices"]]


def _read_substitution(examples, dev, lookup: Lookup, inputs: Inputs) -> dict[str, Outcomes]:
    partial, full = [], []
    for example in examples:
        rows = [lookup(r) for r in _substitution_requests(example, inputs)]
        k = len(example["choices"])
        partial.append(np.array([r["logprob_per_token"] for r in rows[:k]]))
        full.append(np.array([r["logprob"] for r in rows[k:]]))
    return {"paper": _choice_outcomes(examples, partial), "full scoring": _choice_outcomes(examples, full)}


def _labels(examples: list[dict]) -> np.ndarray:
    return np.array([e["label"] for e in examples], dtype=int)


HEURISTICS = {
    h.name: h
    for h in [
        Heuristic(
            "acceptability",
            "corrupted_sentence",
            (
                Readout("paper", "mean token log-probability of the line >= a threshold chosen on the dev split"),
                Readout("SLOR", "(log p(line) - unigram log p(line)) / tokens >= a threshold chosen on the dev split"),
                Readout("minimal pairs", "the line and its twin: the higher total log-probability is the original"),
            ),
            _acceptability_requests,
            _read_acceptability,
            dev_requests=lambda example, inputs: [_line(example["text"])],
        ),
        Heuristic(
            "sentiment",
            "sentiment",
            (
                Readout("paper", 'append " very"; positive if log p(positive word) > log p(negative word)'),
                Readout("calibrated", "positive if the log-odds exceed their median over the reviews (label-free)"),
                Readout("AUC", "area under the ROC curve of the log-odds (threshold-free)", metric="auc"),
            ),
            _sentiment_requests,
            _read_sentiment,
        ),
        Heuristic(
            "multiple_choice",
            "next_line",
            (
                Readout("paper", "the choice with the highest mean token log-probability after the context"),
                Readout("PMI", "the choice with the highest log p(choice | context) - log p(choice)"),
            ),
            _multiple_choice_requests,
            _read_multiple_choice,
        ),
        Heuristic(
            "substitution",
            "name_substitution",
            (
                Readout("paper", "each candidate in the blank; the highest mean log-probability of the rest"),
                Readout("full scoring", "each candidate in the blank; the highest total log-probability of the line"),
            ),
            _substitution_requests,
            _read_substitution,
        ),
    ]
}


def random_accuracy(task: str) -> float:
    """Chance level: one over the number of labels (or choices)."""
    spec = get_task(task)
    return 1.0 / (spec.n_choices or len(spec.labels))


def verbalizer_tokens(tokenizer) -> pd.DataFrame:
    """How each verbalizer word tokenizes, and which pair the sentiment heuristic uses."""
    used = single_token_verbalizer(tokenizer) or next(iter(VERBALIZERS))
    rows = []
    for pair, words in VERBALIZERS.items():
        for word in words:
            ids = tokenizer.encode(word)
            rows.append(dict(verbalizer=pair, word=word, tokens=ids, single_token=len(ids) == 1, used=pair == used))
    return pd.DataFrame(rows)


def single_token_verbalizer(tokenizer) -> str | None:
    """The first pair of :data:`VERBALIZERS` whose two words are single tokens of ``tokenizer`` (the
    paper restricts the next-token distribution to two words); None if there is none."""
    for pair, words in VERBALIZERS.items():
        if all(len(tokenizer.encode(word)) == 1 for word in words):
            return pair
    return None


def _verbalizer(tokenizer, verbalizer: str | None) -> tuple[str, str]:
    """The pair named, or the first single-token pair; a word of several tokens is scored as a
    sequence, with a warning (the paper's pair when no pair is single tokens)."""
    if verbalizer is None:
        verbalizer = single_token_verbalizer(tokenizer) or next(iter(VERBALIZERS))
    if verbalizer not in VERBALIZERS:
        raise ValueError(f"unknown verbalizer {verbalizer!r}; expected one of {list(VERBALIZERS)}")
    for word in VERBALIZERS[verbalizer]:
        ids = tokenizer.encode(word)
        if len(ids) != 1:
            warnings.warn(
                f"verbalizer {verbalizer!r}: {word!r} is {len(ids)} tokens {ids} for this tokenizer, not one; "
                "it is scored as a multi-token continuation (the sum of its tokens' log-probabilities)",
                stacklevel=3,
            )
    return VERBALIZERS[verbalizer]


def _check_heuristics(heuristics: str | Sequence[str] | None) -> list[str]:
    names = list(HEURISTICS) if heuristics is None else [heuristics] if isinstance(heuristics, str) else heuristics
    names = list(dict.fromkeys(names))
    unknown = [h for h in names if h not in HEURISTICS]
    if unknown or not names:
        raise ValueError(f"unknown heuristic(s) {unknown or names}; expected some of {list(HEURISTICS)}")
    return names


def score_outcomes(
    model,
    tokenizer,
    heuristics: str | Sequence[str] | None = None,
    split: str = "test",
    max_examples: int | None = None,
    seed: int = 0,
    batch_size: int = 32,
    unigram: np.ndarray | None = None,
    verbalizer: str | None = None,
) -> pd.DataFrame:
    """Per-example outcomes of every readout of ``heuristics`` (default all): one row per
    ``(heuristic, readout, example)`` with the columns of :data:`OUTCOME_COLUMNS`.

    All requests (the dev split's for the acceptability threshold included) are scored in one
    batched pass, each distinct request once. ``max_examples`` keeps the first examples of each
    split (None: all); ``seed`` is the task-split seed; ``unigram`` (log-probability per token id)
    enables SLOR; ``verbalizer`` names a sentiment pair (default: the first single-token pair).
    """
    names = _check_heuristics(heuristics)
    optional(POSITIVE_INT)(max_examples, "max_examples")
    NON_NEGATIVE_INT(seed, "seed")
    POSITIVE_INT(batch_size, "batch_size")
    inputs = Inputs(tokenizer, _verbalizer(tokenizer, verbalizer), unigram)
    plans, requests = [], {}
    for name in names:
        spec = HEURISTICS[name]
        examples = load_task(spec.task, split, seed=seed)[:max_examples]
        dev = load_task(spec.task, "dev", seed=seed)[:max_examples] if spec.needs_dev else []
        if not examples:
            raise ValueError(f"{spec.task}/{split} has no examples")
        for example in examples:
            requests.update(dict.fromkeys(spec.requests(example, inputs)))
        for example in dev:
            requests.update(dict.fromkeys(spec.dev_requests(example, inputs)))
        plans.append((spec, examples, dev))
    records = score(model, tokenizer, list(requests), batch_size, rolling=True).to_dict("records")
    row_of = {request: records[i] for i, request in enumerate(requests)}
    frames = []
    for spec, examples, dev in plans:
        for readout, outcomes in spec.read(examples, dev, row_of.__getitem__, inputs).items():
            metric = next(r.metric for r in spec.readouts if r.name == readout)
            frames.append(
                pd.DataFrame(
                    dict(
                        task=spec.task,
                        heuristic=spec.name,
                        readout=readout,
                        metric=metric,
                        example=np.arange(len(examples)),
                        label=outcomes.label,
                        correct=outcomes.correct,
                        score=outcomes.score,
                    )
                )
            )
    return pd.concat(frames, ignore_index=True)[OUTCOME_COLUMNS]


def outcomes_of(frame: pd.DataFrame) -> dict[tuple[str, str], Outcomes]:
    """The :class:`Outcomes` of each ``(heuristic, readout)`` of a :func:`score_outcomes` frame."""
    return {
        key: Outcomes(group["metric"].iloc[0], *(group[c].to_numpy() for c in ("correct", "score", "label")))
        for key, group in frame.groupby(["heuristic", "readout"], sort=False)
    }


def summarize_outcomes(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """One row per readout: its accuracy (or AUC) with a 95% bootstrap interval over the examples,
    chance, the share of its most frequent answer and whether that makes it a constant predictor
    (:data:`~workbench.evaluation.statistics.CONSTANT_SHARE`); the columns of :data:`SUMMARY_COLUMNS`."""
    rows = []
    for (heuristic, readout), outcomes in outcomes_of(frame).items():
        task = HEURISTICS[heuristic].task
        low, high = interval(outcomes.values(replicates(len(outcomes.correct), seed=seed)))
        random = 0.5 if outcomes.metric == "auc" else random_accuracy(task)
        rows.append(
            dict(
                task=task,
                heuristic=heuristic,
                readout=readout,
                metric=outcomes.metric,
                n=len(outcomes.correct),
                accuracy=outcomes.value(),
                ci_low=low,
                ci_high=high,
                random=random,
                predicted_share=outcomes.predicted_share(),
                constant=outcomes.predicted_share() > CONSTANT_SHARE,
            )
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def evaluate(
    model,
    tokenizer,
    heuristics: str | Sequence[str] | None = None,
    split: str = "test",
    max_examples: int | None = None,
    seed: int = 0,
    batch_size: int = 32,
    unigram: np.ndarray | None = None,
    verbalizer: str | None = None,
) -> pd.DataFrame:
    """Every readout of ``heuristics`` (default all) on one model: :func:`summarize_outcomes` of
    :func:`score_outcomes` (the arguments are the same)."""
    frame = score_outcomes(model, tokenizer, heuristics, split, max_examples, seed, batch_size, unigram, verbalizer)
    return summarize_outcomes(frame)


def describe_readouts() -> pd.DataFrame:
    """Every readout of every heuristic: its task, whether it is the paper's rule, its metric and rule."""
    return pd.DataFrame(
        [
            dict(heuristic=h.name, task=h.task, readout=r.name, metric=r.metric, rule=r.rule)
            for h in HEURISTICS.values()
            for r in h.readouts
        ]
    )


def describe_heuristics(tokenizer, split: str = "test", seed: int = 0, max_examples: int | None = None) -> pd.DataFrame:
    """What each heuristic scores: its task, how many examples, and the requests of the first
    example of ``split`` (with ``tokenizer``'s sentiment pair)."""
    optional(POSITIVE_INT)(max_examples, "max_examples")
    inputs = Inputs(tokenizer, _verbalizer(tokenizer, None))
    rows = []
    for name, spec in HEURISTICS.items():
        examples = load_task(spec.task, split, seed=seed)[:max_examples]
        requests = spec.requests(examples[0], inputs) if examples else []
        rows.append(
            dict(
                heuristic=name,
                task=spec.task,
                n=len(examples),
                requests_per_example=len(requests),
                readouts=", ".join(r.name for r in spec.readouts),
                example_context=requests[0][0] if requests else "",
                example_continuations=[c for _, c in requests],
            )
        )
    return pd.DataFrame(rows)
