"""Downstream tasks as plain dicts: real labelled sentiment, and tasks derived from held-out books.

Nothing real and offline exists for NLI, similarity, reading comprehension or Winograd, so those
shapes are built from the "heldout" documents of the book corpus (never seen in pretraining) and
named for what they are. Every task has deterministic train/dev/test splits (80/10/10 unless the
task says otherwise), a description of its fields, and a validator that users' own examples also go
through. Tasks whose examples show several lines of a passage are split by passage, and a dev or
test example that shows a line of a training example is dropped, so that no test line was trained on.

Fields by kind (what ``workbench.data.transforms`` turns into token sequences):
  classification   text, label
  entailment       premise, hypothesis, label
  similarity       text_a, text_b, label
  multiple_choice  context (may be empty), choices, label (index of the right choice)
  substitution     prefix, choices, suffix, label: the line is f"{prefix} {choice}{suffix}" and a
                   language model scores the suffix after each choice (GPT-1's Winograd heuristic)
"""

from __future__ import annotations

import functools
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import pandas as pd

from ..core.checks import POSITIVE_INT, optional
from .corpus import BOOK_SOURCES, Document, corpus_split, rated_sentences
from .sources import data_dir
from .vocabulary import DEFAULT_VOCAB_SIZE, corpus_tokenizer

TASKS_VERSION = 3
"""Bump when a task's examples change, so that cached results built on them are redone."""

TASK_SPLITS = ("train", "dev", "test")
DEV_FRACTION = 0.1
TEST_FRACTION = 0.1
MIN_WORDS = 4

KIND_FIELDS = {
    "classification": ("text", "label"),
    "entailment": ("premise", "hypothesis", "label"),
    "similarity": ("text_a", "text_b", "label"),
    "multiple_choice": ("context", "choices", "label"),
    "substitution": ("prefix", "choices", "suffix", "label"),
}


@dataclass(frozen=True, kw_only=True)
class TaskSchema:
    """What a task's examples look like: enough to validate them (benchmarks have one too)."""

    name: str
    kind: str
    description: str
    labels: dict[int, str]  # label value -> meaning; empty for a regression label
    n_choices: int | None = None
    label_range: tuple[float, float] | None = None  # for a regression label (e.g. STS-B 0-5)
    # text fields an example may carry beyond the kind's: checked when present, ignored by the transforms
    optional_fields: tuple[str, ...] = ()

    @property
    def fields(self) -> tuple[str, ...]:
        return KIND_FIELDS[self.kind]


@dataclass(frozen=True, kw_only=True)
class TaskSpec(TaskSchema):
    """A task of the workbench: its schema and how its examples are built from the sources."""

    build: Callable[..., list[dict]]  # (seed, **options) -> every example, unsplit
    options: dict[str, object] = field(default_factory=dict)  # option -> default
    # split by passage: build also gets {(work title, passage index): split}, returns {split: examples}
    by_passage: bool = False
    dev_fraction: float = DEV_FRACTION
    test_fraction: float = TEST_FRACTION
    # the task whose split this one shares (same number of examples, built in the same order), so
    # that two views of the same lines put each line in the same split
    split_like: str | None = None
    # how to show an example the other way round (the other label); with it, the labels of each
    # split alternate in its order, so that every split is balanced exactly and a constant answer
    # scores one half (a coin per example left the test split at 47% originals)
    flip: Callable[[dict], dict] | None = None


# ---------------------------------------------------------------------------------------------
# Text units of the held-out books

_STAGE_DIRECTION = re.compile(r"\[[^\]]*\]")
_HEADING = re.compile(r"^(ACT|SCENE|Scene|PROLOGUE|EPILOGUE|Epilogue|Prologue)\b")


def passages(document: Document) -> list[list[str]]:
    """Runs of consecutive lines: a speech (speaker tag and stage directions removed) or a chapter.

    A next line is only ever taken from the same passage, so a line never "follows" a heading or
    a different speaker's cue.
    """
    result = []
    for block in re.split(r"\n\s*\n", _STAGE_DIRECTION.sub("", document.text)):
        lines = [" ".join(line.split()) for line in block.splitlines()]
        lines = [line for line in lines if line]
        if len(lines) >= 2 and _is_speaker_tag(lines[0]):
            lines = lines[1:]
        lines = [line for line in lines if not _HEADING.match(line) and re.search("[a-z]", line)]
        if lines:
            result.append(lines)
    return result


def _is_speaker_tag(line: str) -> bool:
    return line.endswith(".") and len(line.split()) <= 4 and line[0].isupper()


def _words(line: str) -> int:
    return len(line.split())


def _works(seed: int, sources: Iterable[str]) -> list[tuple[Document, list[list[str]]]]:
    sources = tuple(sources)
    unknown = [s for s in sources if s not in BOOK_SOURCES]
    if unknown:
        raise ValueError(f"sources={sources!r}: tasks are derived from book text; expected a subset of {BOOK_SOURCES}")
    return [(d, passages(d)) for d in corpus_split("heldout", seed, sources)]


def _long_lines(passage_list: list[list[str]], min_words: int = MIN_WORDS) -> list[str]:
    """The distinct lines of a work with at least ``min_words`` words, in order."""
    return list(dict.fromkeys(line for p in passage_list for line in p if _words(line) >= min_words))


def _works_by_split(seed: int, sources, passage_split: dict) -> Iterator[tuple[str, list[list[str]]]]:
    """(split, the passages of a work in that split), for every work and split."""
    for document, work in _works(seed, sources):
        for split in TASK_SPLITS:
            chosen = [p for i, p in enumerate(work) if passage_split[document.title, i] == split]
            if chosen:
                yield split, chosen


# ---------------------------------------------------------------------------------------------
# Builders: each returns every example of a task (by split, for a task split by passage), in a
# deterministic order


def _sentiment(seed: int) -> list[dict]:
    return [
        dict(text=text, label=int(score > 0))
        for _, score, text in rated_sentences("movie_reviews")
        if score != 0 and text
    ]


def _next_line(seed: int, passage_split: dict, sources=BOOK_SOURCES, context_lines: int = 2) -> dict[str, list[dict]]:
    """Distractors come from the answers' own population: lines that follow a line of their passage,
    of the same work and split, in the answer's length bin, so that no choice alone gives it away."""
    POSITIVE_INT(context_lines, "context_lines")
    rng = random.Random(f"next_line:{seed}")
    examples = {split: [] for split in TASK_SPLITS}
    for split, work in _works_by_split(seed, sources, passage_split):
        items = [
            (passage[max(0, i - context_lines) : i], passage[i])
            for passage in work
            for i in range(1, len(passage))
            if _words(passage[i]) >= MIN_WORDS and _words(passage[i - 1]) >= MIN_WORDS
        ]
        answers = _LengthBins(dict.fromkeys(answer for _, answer in items))
        for context, answer in items:
            distractors = answers.sample(rng, answer, 3, exclude={answer, *context})
            if distractors is None:
                continue
            choices = [answer] + distractors
            rng.shuffle(choices)
            examples[split].append(dict(context="\n".join(context), choices=choices, label=choices.index(answer)))
    return examples


class _LengthBins:
    """Lines by number of words, in log-spaced bins (30% wide, then wider where too few lines)."""

    WIDTHS = (1.3, 1.7, 2.5, 5.0)

    def __init__(self, lines: Iterable[str]):
        self.bins: dict[tuple[float, int], list[str]] = {}
        for line in lines:
            for width in self.WIDTHS:
                self.bins.setdefault(self._key(line, width), []).append(line)

    @staticmethod
    def _key(line: str, width: float) -> tuple[float, int]:
        return width, math.floor(math.log(_words(line)) / math.log(width))

    def sample(self, rng: random.Random, line: str, k: int, exclude: set[str]) -> list[str] | None:
        """``k`` different lines of the narrowest bin of ``line`` that has them outside ``exclude``."""
        for width in self.WIDTHS:
            candidates = [c for c in self.bins.get(self._key(line, width), []) if c not in exclude]
            if len(candidates) >= k:
                return rng.sample(candidates, k)
        return None


def _sample_distinct(rng: random.Random, pool: list[str], k: int, exclude: set[str]) -> list[str] | None:
    """``k`` different lines of ``pool`` (distinct lines) outside ``exclude``; None if too few."""
    if len(pool) < k + len(exclude):
        return None
    chosen: list[str] = []
    while len(chosen) < k:
        candidate = rng.choice(pool)
        if candidate not in exclude and candidate not in chosen:
            chosen.append(candidate)
    return chosen


def _line_order(seed: int, passage_split: dict, sources=BOOK_SOURCES) -> dict[str, list[dict]]:
    """Positives: B is the line after A. Negatives, half each: B is the line before A (same words,
    wrong order), or a line from elsewhere in the same work (and split)."""
    rng = random.Random(f"line_order:{seed}")
    examples = {split: [] for split in TASK_SPLITS}
    for split, work in _works_by_split(seed, sources, passage_split):
        pool = _long_lines(work)
        for passage in work:
            for i in range(1, len(passage) - 1):
                before, line, after = passage[i - 1], passage[i], passage[i + 1]
                if min(_words(before), _words(line), _words(after)) < MIN_WORDS:
                    continue
                if rng.random() < 0.5:
                    examples[split].append(dict(premise=line, hypothesis=after, label=1))
                elif rng.random() < 0.5:
                    examples[split].append(dict(premise=line, hypothesis=before, label=0))
                else:
                    other = _sample_distinct(rng, pool, 1, exclude={before, line, after})
                    if other is not None:
                        examples[split].append(dict(premise=line, hypothesis=other[0], label=0))
    return examples


def _same_work(seed: int, sources=BOOK_SOURCES, min_words: int = 6) -> list[dict]:
    """Pairs of lines from one work, or from two works of the same source (so that the style of
    the source does not give the answer away)."""
    rng = random.Random(f"same_work:{seed}")
    works = _works(seed, sources)
    pools = [(doc.source, _long_lines(work, min_words)) for doc, work in works]
    examples = []
    for index, (source, pool) in enumerate(pools):
        others = [p for j, (s, p) in enumerate(pools) if j != index and s == source and p]
        for line in pool:
            if rng.random() < 0.5 or not others:
                partner = _sample_distinct(rng, pool, 1, {line})
                if partner is not None:
                    examples.append(dict(text_a=line, text_b=partner[0], label=1))
            else:
                examples.append(dict(text_a=line, text_b=rng.choice(rng.choice(others)), label=0))
    return examples


_PLAIN_WORD = re.compile(r"^[a-z]+$")


def _corrupted_sentence(seed: int, sources=BOOK_SOURCES, min_words: int = 6, max_words: int = 30) -> list[dict]:
    """Each line as written (1), its ``twin`` with two different interior words swapped; the task
    shows half of each split the other way round (:func:`_show_twin`), and the twin serves a
    minimal-pairs readout that compares the two versions.

    Only plain lower-case words (no capital, digit or punctuation), never the first or the last,
    are swapped: the two versions hold the same tokens, the same first and last word, the same
    capitals and punctuation in the same places, so that no surface feature tells them apart (an
    earlier version swapped any two words, and a classifier on capitals and punctuation beat every
    fine-tuned model). Lines with fewer than two different such words are left out, and so are lines
    of more than ``max_words`` words, so that a line fits the CPU recipe's 64 tokens whole and no
    swap is truncated away (30 words are at most 59 tokens of the corpus BPE)."""
    POSITIVE_INT(max_words, "max_words")
    rng = random.Random(f"corrupted_sentence:{seed}")
    examples = []
    for _, work in _works(seed, sources):
        for line in _long_lines(work, min_words):
            words = line.split()
            if len(words) > max_words:
                continue
            plain = [i for i in range(1, len(words) - 1) if _PLAIN_WORD.match(words[i])]
            if len({words[i] for i in plain}) < 2:
                continue
            i, j = rng.sample(plain, 2)
            while words[i] == words[j]:
                i, j = rng.sample(plain, 2)
            words[i], words[j] = words[j], words[i]
            examples.append(dict(text=line, twin=" ".join(words), label=1))
    return examples


def _show_twin(example: dict) -> dict:
    return dict(text=example["twin"], twin=example["text"], label=1 - example["label"])


def _corrupted_pair(seed: int, sources=BOOK_SOURCES, min_words: int = 6, max_words: int = 30) -> list[dict]:
    """The lines of ``corrupted_sentence`` as minimal pairs, in the same order (so in the same
    splits): the original and its corrupted twin as two choices with no context."""
    return [
        dict(context="", choices=[e["text"], e["twin"]], label=0)
        for e in _corrupted_sentence(seed, sources, min_words, max_words)
    ]


def _swap_choices(example: dict) -> dict:
    return dict(example, choices=example["choices"][::-1], label=1 - example["label"])


_CANDIDATE = re.compile(r"^([A-Z][a-z]{2,})([^\w]*)$")


def _name_substitution(
    seed: int, passage_split: dict, sources=BOOK_SOURCES, min_suffix_words: int = 3, min_count: int = 3
) -> dict[str, list[dict]]:
    """The candidates are a work's names: capitalised words met mid-sentence at least ``min_count``
    times and never written in lower case there (which rules out "Lord", "Sir", "Whosoever").
    Every name of a line far enough from its end makes an example. The wrong candidate is a name of
    the same work that the line does not contain, with as many tokens (" " + name, under the corpus
    BPE of 8192 ids; other tokenizers match only approximately) and the nearest count, so that
    neither a name's length nor its frequency gives the answer away."""
    rng = random.Random(f"name_substitution:{seed}")
    tokenizer = corpus_tokenizer(DEFAULT_VOCAB_SIZE, seed)
    examples = {split: [] for split in TASK_SPLITS}
    for document, work in _works(seed, sources):
        counts = _name_counts(_long_lines(work), min_count)
        n_tokens = {name: len(tokenizer.encode(" " + name)) for name in counts}
        seen = set()
        for index, passage in enumerate(work):
            for line in passage:
                if _words(line) < MIN_WORDS or line in seen:
                    continue
                seen.add(line)
                words = line.split()
                for position, right in _mid_sentence_candidates(line):
                    if right not in counts or len(words) - position - 1 < min_suffix_words:
                        continue
                    matched = [n for n in counts if n_tokens[n] == n_tokens[right] and n not in line]
                    if not matched:
                        continue
                    distance = {n: abs(counts[n] - counts[right]) for n in matched}
                    wrong = rng.choice([n for n in matched if distance[n] == min(distance.values())])
                    punctuation = _CANDIDATE.match(words[position]).group(2)
                    choices = [right, wrong]
                    rng.shuffle(choices)
                    examples[passage_split[document.title, index]].append(
                        dict(
                            prefix=" ".join(words[:position]),
                            choices=choices,
                            suffix=punctuation + " " + " ".join(words[position + 1 :]),
                            label=choices.index(right),
                        )
                    )
    return examples


def _name_counts(lines: list[str], min_count: int) -> dict[str, int]:
    """Name -> times met mid-sentence, for the names met at least ``min_count`` times, sorted."""
    lower = {w.strip(".,;:!?'\"()-").lower() for line in lines for w in line.split() if w.islower()}
    counts = Counter(word for line in lines for _, word in _mid_sentence_candidates(line) if word.lower() not in lower)
    return {name: count for name, count in sorted(counts.items()) if count >= min_count}


def _mid_sentence_candidates(line: str) -> list[tuple[int, str]]:
    words = line.split()
    found = []
    for position in range(1, len(words)):
        match = _CANDIDATE.match(words[position])
        if match and not words[position - 1].endswith((".", "?", "!", ":", ";", '"', "'", ")")):
            found.append((position, match.group(1)))
    return found


TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in [
        TaskSpec(
            name="sentiment",
            kind="classification",
            description="Rotten Tomatoes sentences (the source sentences of SST) with mean human "
            "scores; score > 0 positive, < 0 negative, 0 dropped (VADER's ground truth)",
            labels={0: "negative", 1: "positive"},
            build=_sentiment,
        ),
        TaskSpec(
            name="next_line",
            kind="multiple_choice",
            description="the true next line of a held-out speech or chapter among 4; distractors "
            "are next lines of the same work and split, of about the answer's length",
            labels={0: "choice 0", 1: "choice 1", 2: "choice 2", 3: "choice 3"},
            n_choices=4,
            build=_next_line,
            options={"sources": BOOK_SOURCES, "context_lines": 2},
            by_passage=True,
        ),
        TaskSpec(
            name="line_order",
            kind="entailment",
            description="is the hypothesis the line that directly follows the premise? negatives "
            "are the line before it or a line from elsewhere in the work",
            labels={0: "does not follow", 1: "follows"},
            build=_line_order,
            options={"sources": BOOK_SOURCES},
            by_passage=True,
        ),
        TaskSpec(
            name="same_work",
            kind="similarity",
            description="are two held-out lines from the same work (play or book of the Bible)? "
            "negatives pair two works of the same source",
            labels={0: "different works", 1: "same work"},
            build=_same_work,
            options={"sources": BOOK_SOURCES, "min_words": 6},
        ),
        TaskSpec(
            name="corrupted_sentence",
            kind="classification",
            description="a held-out line as written (1) or with two of its interior lower-case words "
            "swapped (0); twin is the other version of the line (for minimal pairs)",
            labels={0: "corrupted", 1: "original"},
            optional_fields=("twin",),
            build=_corrupted_sentence,
            options={"sources": BOOK_SOURCES, "min_words": 6, "max_words": 30},
            flip=_show_twin,
        ),
        TaskSpec(
            name="corrupted_pair",
            kind="multiple_choice",
            description="which of two versions of a held-out line is as written? the lines of "
            "corrupted_sentence, in the same splits, each beside its twin (no context)",
            labels={0: "choice 0", 1: "choice 1"},
            n_choices=2,
            build=_corrupted_pair,
            options={"sources": BOOK_SOURCES, "min_words": 6, "max_words": 30},
            flip=_swap_choices,
            split_like="corrupted_sentence",
        ),
        TaskSpec(
            name="name_substitution",
            kind="substitution",
            description="a held-out line with one name blanked: which of two names of the same "
            "work, as long in tokens and about as frequent, was there? (Winograd-shaped: score the "
            "rest of the line)",
            labels={0: "choice 0", 1: "choice 1"},
            n_choices=2,
            build=_name_substitution,
            options={"sources": BOOK_SOURCES, "min_suffix_words": 3, "min_count": 3},
            by_passage=True,
            test_fraction=0.3,  # n_test >= 625: a two-standard-error band of at most 4 points
        ),
    ]
}


def get_task(name: str) -> TaskSpec:
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; expected one of {list(TASKS)}")
    return TASKS[name]


def describe_tasks() -> pd.DataFrame:
    """One row per task: its kind, fields, labels, options and what it is."""
    return pd.DataFrame(
        [
            dict(
                task=t.name,
                kind=t.kind,
                fields=", ".join([*t.fields, *(f"{f} (optional)" for f in t.optional_fields)]),
                labels=t.labels,
                options=t.options,
                description=t.description,
            )
            for t in TASKS.values()
        ]
    )


def load_task(name: str, split: str, seed: int = 0, n_train: int | None = None, **options) -> list[dict]:
    """The examples of one split of a task, as fresh dicts.

    ``seed`` fixes which documents are held out, how examples are drawn and how they are split;
    ``n_train`` keeps only the first ``n_train`` training examples (the semi-supervised regime).
    """
    spec = get_task(name)
    if split not in TASK_SPLITS:
        raise ValueError(f"split={split!r}: expected one of {TASK_SPLITS}")
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise TypeError(f"task {name!r} has no option {unknown}; its options are {spec.options}")
    optional(POSITIVE_INT)(n_train, "n_train")
    chosen = {**spec.options, **options}
    if "sources" in chosen:
        chosen["sources"] = (chosen["sources"],) if isinstance(chosen["sources"], str) else tuple(chosen["sources"])
    examples = _split_examples(name, seed, tuple(sorted(chosen.items())), str(data_dir()))[split]
    if split == "train" and n_train is not None:
        examples = examples[:n_train]
    return [{k: list(v) if isinstance(v, list) else v for k, v in e.items()} for e in examples]


@functools.lru_cache(maxsize=32)
def _split_examples(name: str, seed: int, options: tuple, cache: str) -> dict[str, list[dict]]:
    spec, options = TASKS[name], dict(options)
    if spec.by_passage:
        passage_split = _passage_splits(spec, seed, options["sources"])
        splits = _drop_seen_lines(spec.build(seed, passage_split, **options))
        for split, examples in splits.items():  # in a seeded order, so that n_train takes a sample
            random.Random(f"order:{name}:{seed}:{split}").shuffle(examples)
    else:
        examples = spec.build(seed, **options)
        order = list(range(len(examples)))
        random.Random(f"split:{spec.split_like or name}:{seed}").shuffle(order)
        n_dev, n_test = round(spec.dev_fraction * len(order)), round(spec.test_fraction * len(order))
        ranges = {"test": order[:n_test], "dev": order[n_test : n_test + n_dev], "train": order[n_test + n_dev :]}
        splits = {split: [examples[i] for i in indices] for split, indices in ranges.items()}
    if spec.flip is not None:
        splits = {
            split: [e if e["label"] == i % 2 else spec.flip(e) for i, e in enumerate(examples)]
            for split, examples in splits.items()
        }
    for examples in splits.values():
        validate_examples(spec, examples)
    return splits


def _passage_splits(spec: TaskSpec, seed: int, sources) -> dict[tuple[str, int], str]:
    """(work title, passage index) -> split. Each work's passages are laid end to end in a seeded
    order; a passage whose middle line falls in the first ``test_fraction`` of the work's lines goes
    to test, in the next ``dev_fraction`` to dev, else to train (every work is split alike)."""
    splits = {}
    for document, work in _works(seed, sources):
        order = list(range(len(work)))
        random.Random(f"split:{spec.name}:{seed}:{document.title}").shuffle(order)
        total, done = sum(map(len, work)), 0
        for index in order:
            middle = (done + len(work[index]) / 2) / total
            test, dev = middle < spec.test_fraction, middle < spec.test_fraction + spec.dev_fraction
            splits[document.title, index] = "test" if test else "dev" if dev else "train"
            done += len(work[index])
    return splits


def _drop_seen_lines(splits: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Drop the dev and test examples that show a line of a training example (lines recur across
    passages, and a passage split does not see that)."""
    seen = {line for example in splits["train"] for line in _shown_lines(example)}
    return {
        split: [e for e in examples if split == "train" or not _shown_lines(e) & seen]
        for split, examples in splits.items()
    }


def _shown_lines(example: dict) -> set[str]:
    if "context" in example:
        return {*example["context"].split("\n"), *example["choices"]}
    if "premise" in example:
        return {example["premise"], example["hypothesis"]}
    return {f"{example['prefix']} {choice}{example['suffix']}" for choice in example["choices"]}


def validate_examples(task: str | TaskSchema, examples: list[dict]) -> None:
    """Raise ``ValueError`` naming the first bad example: a missing or empty field, a label outside
    the label set, or a multiple-choice example with the wrong number of choices."""
    spec = task if isinstance(task, TaskSchema) else get_task(task)
    for index, example in enumerate(examples):
        where = f"task {spec.name!r} example {index} {_excerpt(example)}"
        if not isinstance(example, dict):
            raise ValueError(f"{where}: expected a dict with fields {spec.fields}")
        missing = [f for f in spec.fields if f not in example]
        if missing:
            raise ValueError(f"{where}: missing field(s) {missing}; a {spec.kind} example has {spec.fields}")
        for name in (*spec.fields, *(f for f in spec.optional_fields if f in example)):
            value = example[name]
            if name == "label" and spec.label_range is not None:
                low, high = spec.label_range
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                    raise ValueError(f"{where}: label {value!r} is not a number in [{low}, {high}]")
            elif name == "label":
                if isinstance(value, bool) or value not in spec.labels:
                    raise ValueError(f"{where}: label {value!r} is not in the label set {sorted(spec.labels)}")
            elif name == "choices":
                if not isinstance(value, list) or len(value) != spec.n_choices:
                    raise ValueError(
                        f"{where}: expected a list of {spec.n_choices} choices, got "
                        f"{len(value) if isinstance(value, list) else type(value).__name__}"
                    )
                if any(not isinstance(c, str) or not c.strip() for c in value):
                    raise ValueError(f"{where}: every choice must be non-empty text, got {value!r}")
            elif name not in ("prefix", "suffix", "context") and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{where}: field {name!r} must be non-empty text, got {value!r}")
            elif not isinstance(value, str):
                raise ValueError(f"{where}: field {name!r} must be text, got {type(value).__name__}")


def _excerpt(example) -> str:
    text = repr(example)
    return text if len(text) <= 100 else text[:97] + "..."


def task_sizes(seed: int = 0) -> pd.DataFrame:
    """Examples per split of every task (default options), with its kind."""
    rows = []
    for name, spec in TASKS.items():
        splits = {s: len(load_task(name, s, seed)) for s in TASK_SPLITS}
        rows.append(dict(task=name, kind=spec.kind, **splits, total=sum(splits.values())))
    return pd.DataFrame(rows)
