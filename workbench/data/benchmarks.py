"""Adapters from the real benchmarks (GLUE, SNLI, RACE) in Hugging Face ``datasets`` to task dicts.

For users who have the benchmarks (downloaded, or a hub they can reach): the examples come out in
the same plain-dict shapes as ``workbench.data.tasks``, so the same transforms and fine-tuning code
run on them. ``datasets`` is an optional dependency and imported only when a benchmark is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..core.checks import POSITIVE_INT, optional
from .tasks import TASK_SPLITS, TaskSchema, validate_examples


@dataclass(frozen=True, kw_only=True)
class Benchmark(TaskSchema):
    path: str  # the dataset's name on the Hugging Face hub
    config: str | None
    splits: dict[str, str]  # workbench split -> the dataset's split
    convert: Callable[[dict], dict]  # one row -> one example (rows with label -1 are unlabelled)


def _pair(first: str, second: str, a: str, b: str) -> Callable[[dict], dict]:
    return lambda row: {a: row[first], b: row[second], "label": row["label"]}


def _race(row: dict) -> dict:
    return dict(
        context=f"{row['article']}\n{row['question']}", choices=list(row["options"]), label="ABCD".index(row["answer"])
    )


GLUE_SPLITS = {"train": "train", "dev": "validation", "test": "test"}

BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in [
        Benchmark(
            name="sst2",
            kind="classification",
            description="SST-2 movie-review sentiment",
            labels={0: "negative", 1: "positive"},
            path="nyu-mll/glue",
            config="sst2",
            splits=GLUE_SPLITS,
            convert=lambda row: dict(text=row["sentence"], label=row["label"]),
        ),
        Benchmark(
            name="cola",
            kind="classification",
            description="CoLA grammatical acceptability",
            labels={0: "unacceptable", 1: "acceptable"},
            path="nyu-mll/glue",
            config="cola",
            splits=GLUE_SPLITS,
            convert=lambda row: dict(text=row["sentence"], label=row["label"]),
        ),
        Benchmark(
            name="mnli",
            kind="entailment",
            description="MultiNLI (dev/test: matched genres)",
            labels={0: "entailment", 1: "neutral", 2: "contradiction"},
            path="nyu-mll/glue",
            config="mnli",
            splits={"train": "train", "dev": "validation_matched", "test": "test_matched"},
            convert=_pair("premise", "hypothesis", "premise", "hypothesis"),
        ),
        Benchmark(
            name="snli",
            kind="entailment",
            description="Stanford NLI",
            labels={0: "entailment", 1: "neutral", 2: "contradiction"},
            path="stanfordnlp/snli",
            config=None,
            splits=GLUE_SPLITS,
            convert=_pair("premise", "hypothesis", "premise", "hypothesis"),
        ),
        Benchmark(
            name="qnli",
            kind="entailment",
            description="QNLI: does the sentence answer the question",
            labels={0: "entailment", 1: "not_entailment"},
            path="nyu-mll/glue",
            config="qnli",
            splits=GLUE_SPLITS,
            convert=_pair("question", "sentence", "premise", "hypothesis"),
        ),
        Benchmark(
            name="rte",
            kind="entailment",
            description="Recognizing Textual Entailment",
            labels={0: "entailment", 1: "not_entailment"},
            path="nyu-mll/glue",
            config="rte",
            splits=GLUE_SPLITS,
            convert=_pair("sentence1", "sentence2", "premise", "hypothesis"),
        ),
        Benchmark(
            name="mrpc",
            kind="similarity",
            description="Microsoft Research Paraphrase Corpus",
            labels={0: "not_equivalent", 1: "equivalent"},
            path="nyu-mll/glue",
            config="mrpc",
            splits=GLUE_SPLITS,
            convert=_pair("sentence1", "sentence2", "text_a", "text_b"),
        ),
        Benchmark(
            name="qqp",
            kind="similarity",
            description="Quora Question Pairs",
            labels={0: "not_duplicate", 1: "duplicate"},
            path="nyu-mll/glue",
            config="qqp",
            splits=GLUE_SPLITS,
            convert=_pair("question1", "question2", "text_a", "text_b"),
        ),
        Benchmark(
            name="stsb",
            kind="similarity",
            description="STS-B similarity score from 0 to 5",
            labels={},
            label_range=(0.0, 5.0),
            path="nyu-mll/glue",
            config="stsb",
            splits=GLUE_SPLITS,
            convert=_pair("sentence1", "sentence2", "text_a", "text_b"),
        ),
        Benchmark(
            name="race",
            kind="multiple_choice",
            description="RACE reading comprehension (context = article + question)",
            labels={0: "A", 1: "B", 2: "C", 3: "D"},
            n_choices=4,
            path="ehovy/race",
            config="all",
            splits={"train": "train", "dev": "validation", "test": "test"},
            convert=_race,
        ),
    ]
}


def get_benchmark(name: str) -> Benchmark:
    if name not in BENCHMARKS:
        raise KeyError(f"unknown benchmark {name!r}; expected one of {list(BENCHMARKS)}")
    return BENCHMARKS[name]


def from_dataset(name: str, rows: Iterable[dict]) -> list[dict]:
    """Convert a ``datasets.Dataset`` (or any iterable of its rows) to validated task dicts.

    Rows whose label is -1 (no gold label: GLUE test sets, some SNLI pairs) are left out.
    """
    benchmark = get_benchmark(name)
    examples = [benchmark.convert(row) for row in rows]
    examples = [e for e in examples if e["label"] != -1]
    validate_examples(benchmark, examples)
    return examples


def load_benchmark(name: str, split: str, n_train: int | None = None, **load_kwargs) -> list[dict]:
    """Load a benchmark split with ``datasets.load_dataset`` (its cache, or the hub) as task dicts.

    ``load_kwargs`` go to ``load_dataset`` (e.g. ``cache_dir``, ``data_files``).
    """
    benchmark = get_benchmark(name)
    if split not in TASK_SPLITS:
        raise ValueError(f"split={split!r}: expected one of {TASK_SPLITS}")
    optional(POSITIVE_INT)(n_train, "n_train")
    try:
        import datasets
    except ImportError:
        raise ImportError(
            "benchmarks need the optional dependency `datasets`: pip install 'gpt-workbench[benchmarks]'"
        ) from None
    rows = datasets.load_dataset(benchmark.path, benchmark.config, split=benchmark.splits[split], **load_kwargs)
    examples = from_dataset(name, rows)
    if not examples:
        raise ValueError(
            f"benchmark {name!r} split {split!r} ({benchmark.splits[split]}) has no "
            "labelled examples (test labels are often hidden); use 'dev'"
        )
    return examples[:n_train] if split == "train" and n_train is not None else examples
