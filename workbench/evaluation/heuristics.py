"""GPT-1's zero-shot heuristics (section 5, "Zero-shot behaviors"), generic over model and task.

Each heuristic turns a language model into a classifier with no training, using only
log-likelihoods from :mod:`workbench.evaluation.scoring`:

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
or ``GPT.from_pretrained`` weights with their tokenizer. Contexts too long for the model's window
are cut from the left; a continuation longer than the window is scored with a rolling window
(``score(..., rolling=True)``), so no example is dropped and no token is ignored.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.checks import NON_NEGATIVE_INT, POSITIVE_INT, optional
from ..data.tasks import get_task, load_task
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
    rule: str = ""  # the scoring rule in words


# The (context, continuation) requests each heuristic scores for one example, in one place so that
# the heuristics and :func:`describe_heuristics` show the same thing.


def acceptability_requests(example: dict) -> list[tuple[str, str]]:
    return [("", " " + example["text"])]


def sentiment_requests(example: dict, verbalizer: str = "positive/negative") -> list[tuple[str, str]]:
    positive, negative = _verbalizer_words(verbalizer)
    return [(example["text"].rstrip() + " very", word) for word in (positive, negative)]


def multiple_choice_requests(example: dict) -> list[tuple[str, str]]:
    return [(example["context"] + "\n", choice) for choice in example["choices"]]


def substitution_requests(example: dict) -> list[tuple[str, str]]:
    return [(f"{example['prefix']} {choice}", example["suffix"]) for choice in example["choices"]]


REQUESTS = {
    "acceptability": acceptability_requests,
    "sentiment": sentiment_requests,
    "multiple_choice": multiple_choice_requests,
    "substitution": substitution_requests,
}


def _verbalizer_words(verbalizer: str) -> tuple[str, str]:
    if verbalizer not in VERBALIZERS:
        raise ValueError(f"unknown verbalizer {verbalizer!r}; expected one of {list(VERBALIZERS)}")
    return VERBALIZERS[verbalizer]


def _acceptability(model, tokenizer, examples, dev, batch_size):
    def sentence_scores(items):
        requests = [r for e in items for r in acceptability_requests(e)]
        return score(model, tokenizer, requests, batch_size, rolling=True)["logprob_per_token"].to_numpy()

    dev_scores, dev_labels = sentence_scores(dev), np.array([e["label"] for e in dev])
    candidates = np.unique(dev_scores)
    accuracy = [((dev_scores >= t) == dev_labels).mean() for t in candidates]
    threshold = candidates[int(np.argmax(accuracy))]
    return (sentence_scores(examples) >= threshold).astype(int)


def _sentiment(model, tokenizer, examples, dev, batch_size, verbalizer="positive/negative"):
    words = _verbalizer_words(verbalizer)
    for word in words:
        ids = tokenizer.encode(word)
        if len(ids) != 1:
            warnings.warn(
                f"verbalizer {verbalizer!r}: {word!r} is {len(ids)} tokens {ids} for this tokenizer, not "
                "one; it is scored as a multi-token continuation (the sum of its tokens' log-probabilities)",
                stacklevel=3,
            )
    requests = [r for e in examples for r in sentiment_requests(e, verbalizer)]
    logprob = score(model, tokenizer, requests, batch_size, rolling=True)["logprob"].to_numpy().reshape(-1, 2)
    return (logprob[:, 0] > logprob[:, 1]).astype(int)


def _multiple_choice(model, tokenizer, examples, dev, batch_size):
    requests = [r for e in examples for r in multiple_choice_requests(e)]
    frame = score(model, tokenizer, requests, batch_size, rolling=True)
    return _argmax_per_example(frame["logprob_per_token"].to_numpy(), [len(e["choices"]) for e in examples])


def _substitution(model, tokenizer, examples, dev, batch_size):
    requests = [r for e in examples for r in substitution_requests(e)]
    frame = score(model, tokenizer, requests, batch_size, rolling=True)
    return _argmax_per_example(frame["logprob_per_token"].to_numpy(), [len(e["choices"]) for e in examples])


def _argmax_per_example(values: np.ndarray, sizes: list[int]) -> np.ndarray:
    bounds = np.cumsum([0, *sizes])
    return np.array([int(np.argmax(values[a:b])) for a, b in zip(bounds[:-1], bounds[1:])])


HEURISTICS = {
    h.name: h
    for h in [
        Heuristic(
            "acceptability",
            "corrupted_sentence",
            _acceptability,
            needs_dev=True,
            rule="mean token log-probability of the sentence >= a threshold chosen on the dev split",
        ),
        Heuristic(
            "sentiment",
            "sentiment",
            _sentiment,
            rule='append " very"; positive if log p(positive word) > log p(negative word)',
        ),
        Heuristic(
            "multiple_choice",
            "next_line",
            _multiple_choice,
            rule="the choice with the highest mean token log-probability after the context",
        ),
        Heuristic(
            "substitution",
            "name_substitution",
            _substitution,
            rule="put each candidate in the blank; the highest mean token log-probability of the rest",
        ),
    ]
}


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


def evaluate(
    model,
    tokenizer,
    heuristic: str,
    split: str = "test",
    max_examples: int | None = None,
    seed: int = 0,
    batch_size: int = 32,
    **options,
) -> dict:
    """Accuracy of one heuristic on (the first ``max_examples`` of) a split of its task."""
    if heuristic not in HEURISTICS:
        raise ValueError(f"unknown heuristic {heuristic!r}; expected one of {list(HEURISTICS)}")
    optional(POSITIVE_INT)(max_examples, "max_examples")
    NON_NEGATIVE_INT(seed, "seed")
    POSITIVE_INT(batch_size, "batch_size")
    allowed = ["verbalizer"] if heuristic == "sentiment" else []
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"heuristic {heuristic!r} has no option(s) {unknown}; expected some of {allowed}")
    if "verbalizer" in options:
        _verbalizer_words(options["verbalizer"])
    spec = HEURISTICS[heuristic]
    examples = load_task(spec.task, split, seed=seed)[:max_examples]
    dev = load_task(spec.task, "dev", seed=seed)[:max_examples] if spec.needs_dev else None
    if not examples:
        raise ValueError(f"{spec.task}/{split} has no examples")
    predictions = spec.run(model, tokenizer, examples, dev, batch_size, **options)
    labels = np.array([e["label"] for e in examples])
    name = heuristic if not options else f"{heuristic} ({', '.join(map(str, options.values()))})"
    return dict(
        task=spec.task,
        heuristic=name,
        split=split,
        n=len(examples),
        accuracy=float((predictions == labels).mean()),
        random=random_accuracy(spec.task),
    )


def evaluate_all(
    model,
    tokenizer,
    split: str = "test",
    max_examples: int | None = None,
    seed: int = 0,
    batch_size: int = 32,
    all_verbalizers: bool = True,
) -> pd.DataFrame:
    """Every heuristic (and every sentiment verbalizer pair) on its task: one row each."""
    optional(POSITIVE_INT)(max_examples, "max_examples")
    rows = []
    for name in HEURISTICS:
        variants = [{"verbalizer": v} for v in VERBALIZERS] if name == "sentiment" and all_verbalizers else [{}]
        for options in variants:
            rows.append(evaluate(model, tokenizer, name, split, max_examples, seed, batch_size, **options))
    return pd.DataFrame(rows)


def describe_heuristics(split: str = "test", seed: int = 0, max_examples: int | None = None) -> pd.DataFrame:
    """What each heuristic scores: its task, its rule, how many examples, and the requests of the
    first example of ``split`` (the sentiment heuristic once per verbalizer pair)."""
    optional(POSITIVE_INT)(max_examples, "max_examples")
    rows = []
    for name, spec in HEURISTICS.items():
        examples = load_task(spec.task, split, seed=seed)[:max_examples]
        variants = [{"verbalizer": v} for v in VERBALIZERS] if name == "sentiment" else [{}]
        for options in variants:
            requests = REQUESTS[name](examples[0], **options) if examples else []
            rows.append(
                dict(
                    heuristic=name if not options else f"{name} ({options['verbalizer']})",
                    task=spec.task,
                    n=len(examples),
                    requests_per_example=len(requests),
                    rule=spec.rule,
                    example_context=requests[0][0] if requests else "",
                    example_continuations=[c for _, c in requests],
                )
            )
    return pd.DataFrame(rows)
