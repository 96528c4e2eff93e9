"""GPT-1's zero-shot heuristics (section 5, "Zero-shot behaviors"), generic over model and task.

Each heuristic turns a language model into a classifier with no training, using only
log-likelihoods from :mod:`workbench.scoring`:

1. ``acceptability`` (``corrupted_sentence``): the average token log-probability of the sentence,
   thresholded; the threshold is the one that maximises accuracy on the dev split.
2. ``sentiment`` (``sentiment``): append " very" and compare the probabilities of two verbalizers
   as the continuation (" positive" vs " negative" as in the paper, and two other named pairs). A
   verbalizer of several tokens is scored as a multi-token continuation; :func:`verbalizer_tokens`
   says which ones are.
3. ``multiple_choice`` (``next_line``): the choice with the highest average token log-probability
   given the context (on a new line).
4. ``substitution`` (``name_substitution``): put each candidate in the blank and compare the average
   token log-probability of the rest of the sentence (the "partial" scoring of Trinh & Le, 2018).

Any model with ``model(idx).logits`` and ``model.config.n_ctx`` works: the GPT, the LSTM baseline,
or ``GPT.from_pretrained`` weights with their tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .data.tasks import get_task, load_task
from .scoring import score

VERBALIZERS = {
    "positive/negative": (" positive", " negative"),
    "good/bad": (" good", " bad"),
    "great/terrible": (" great", " terrible"),
}
"""Sentiment verbalizer pairs (positive word, negative word); the first is the paper's."""


@dataclass(frozen=True)
class Heuristic:
    name: str
    task: str
    run: Callable  # (model, tokenizer, examples, dev_examples, batch_size, **options) -> predictions
    needs_dev: bool = False


def _acceptability(model, tokenizer, examples, dev, batch_size):
    def sentence_scores(items):
        frame = score(model, tokenizer, [("", " " + e["text"]) for e in items], batch_size)
        return frame["logprob_per_token"].to_numpy()

    dev_scores, dev_labels = sentence_scores(dev), np.array([e["label"] for e in dev])
    candidates = np.unique(dev_scores)
    accuracy = [((dev_scores >= t) == dev_labels).mean() for t in candidates]
    threshold = candidates[int(np.argmax(accuracy))]
    return (sentence_scores(examples) >= threshold).astype(int)


def _sentiment(model, tokenizer, examples, dev, batch_size, verbalizer="positive/negative"):
    if verbalizer not in VERBALIZERS:
        raise ValueError(f"unknown verbalizer {verbalizer!r}; expected one of {list(VERBALIZERS)}")
    positive, negative = VERBALIZERS[verbalizer]
    requests = [(e["text"].rstrip() + " very", word) for e in examples for word in (positive, negative)]
    logprob = score(model, tokenizer, requests, batch_size)["logprob"].to_numpy().reshape(-1, 2)
    return (logprob[:, 0] > logprob[:, 1]).astype(int)


def _multiple_choice(model, tokenizer, examples, dev, batch_size):
    requests = [(e["context"] + "\n", choice) for e in examples for choice in e["choices"]]
    frame = score(model, tokenizer, requests, batch_size)
    return _argmax_per_example(frame["logprob_per_token"].to_numpy(), [len(e["choices"]) for e in examples])


def _substitution(model, tokenizer, examples, dev, batch_size):
    requests = [(f"{e['prefix']} {choice}", e["suffix"]) for e in examples for choice in e["choices"]]
    frame = score(model, tokenizer, requests, batch_size)
    return _argmax_per_example(frame["logprob_per_token"].to_numpy(), [len(e["choices"]) for e in examples])


def _argmax_per_example(values: np.ndarray, sizes: list[int]) -> np.ndarray:
    bounds = np.cumsum([0, *sizes])
    return np.array([int(np.argmax(values[a:b])) for a, b in zip(bounds[:-1], bounds[1:])])


HEURISTICS = {h.name: h for h in [
    Heuristic("acceptability", "corrupted_sentence", _acceptability, needs_dev=True),
    Heuristic("sentiment", "sentiment", _sentiment),
    Heuristic("multiple_choice", "next_line", _multiple_choice),
    Heuristic("substitution", "name_substitution", _substitution),
]}


def random_accuracy(task: str) -> float:
    """Chance level: one over the number of labels (or choices)."""
    spec = get_task(task)
    return 1.0 / (spec.n_choices or len(spec.labels))


def verbalizer_tokens(tokenizer) -> pd.DataFrame:
    """How each verbalizer word tokenizes; ``single_token`` False means it is scored as a sequence."""
    rows = []
    for pair, words in VERBALIZERS.items():
        for word in words:
            ids = tokenizer.encode(word)
            rows.append(dict(verbalizer=pair, word=word, tokens=ids, single_token=len(ids) == 1))
    return pd.DataFrame(rows)


def evaluate(model, tokenizer, heuristic: str, split: str = "test", max_examples: int | None = None,
             seed: int = 0, batch_size: int = 32, **options) -> dict:
    """Accuracy of one heuristic on (the first ``max_examples`` of) a split of its task."""
    if heuristic not in HEURISTICS:
        raise ValueError(f"unknown heuristic {heuristic!r}; expected one of {list(HEURISTICS)}")
    spec = HEURISTICS[heuristic]
    examples = load_task(spec.task, split, seed=seed)[:max_examples]
    dev = load_task(spec.task, "dev", seed=seed)[:max_examples] if spec.needs_dev else None
    if not examples:
        raise ValueError(f"{spec.task}/{split} has no examples")
    predictions = spec.run(model, tokenizer, examples, dev, batch_size, **options)
    labels = np.array([e["label"] for e in examples])
    name = heuristic if not options else f"{heuristic} ({', '.join(map(str, options.values()))})"
    return dict(task=spec.task, heuristic=name, split=split, n=len(examples),
                accuracy=float((predictions == labels).mean()), random=random_accuracy(spec.task))


def evaluate_all(model, tokenizer, split: str = "test", max_examples: int | None = None,
                 seed: int = 0, batch_size: int = 32, all_verbalizers: bool = True) -> pd.DataFrame:
    """Every heuristic (and every sentiment verbalizer pair) on its task: one row each."""
    rows = []
    for name in HEURISTICS:
        variants = [{"verbalizer": v} for v in VERBALIZERS] if name == "sentiment" and all_verbalizers else [{}]
        for options in variants:
            rows.append(evaluate(model, tokenizer, name, split, max_examples, seed, batch_size, **options))
    return pd.DataFrame(rows)
