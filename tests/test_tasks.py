"""Tasks on the real data: shapes, determinism, splits, what each example means; validation errors;
adapters from in-memory ``datasets.Dataset`` objects (never the network)."""

import math
from collections import Counter

import numpy as np
import pytest
import torch

from workbench.data.corpus import corpus_split
from workbench.data.prepare import corpus_tokenizer, packed_split
from workbench.data.tasks import (
    KIND_FIELDS,
    TASK_SPLITS,
    TASKS,
    describe_tasks,
    load_task,
    passages,
    task_sizes,
    validate_examples,
)
from workbench.data.tokens import open_tokens
from workbench.evaluation.scoring import score
from workbench.models.config import GPTConfig
from workbench.models.gpt import GPT

pytestmark = pytest.mark.data


def heldout_lines(sources=("shakespeare", "kjv")):
    """work title -> its task lines, from the held-out documents only."""
    return {d.title: [line for p in passages(d) for line in p] for d in corpus_split("heldout", 0, sources)}


def assert_at_chance(hits, chance: float, what: str):
    """The accuracy of ``hits`` is within two standard errors of ``chance``."""
    n, accuracy = len(hits), float(np.mean(hits))
    band = 2 * math.sqrt(chance * (1 - chance) / n)
    assert abs(accuracy - chance) <= band, f"{what}: accuracy {accuracy:.3f}, n={n}, chance {chance} +- {band:.3f}"


def test_every_task_has_three_disjoint_deterministic_splits():
    for name, spec in TASKS.items():
        splits = {s: load_task(name, s) for s in TASK_SPLITS}
        total = sum(len(examples) for examples in splits.values())
        for split, fraction in (("dev", spec.dev_fraction), ("test", spec.test_fraction)):
            assert abs(len(splits[split]) / total - fraction) < 0.03, (name, split)
        keys = [repr(sorted(e.items())) for s in TASK_SPLITS for e in splits[s]]
        assert len(set(keys)) > 0.99 * len(keys), name  # splits do not share examples
        assert load_task(name, "dev") == splits["dev"], name
        assert load_task(name, "dev", seed=1) != splits["dev"], name
        for example in splits["dev"]:
            assert set(example) == {*KIND_FIELDS[spec.kind], *spec.optional_fields}, name


def test_sentiment_is_the_rated_movie_reviews():
    examples = [e for s in TASK_SPLITS for e in load_task("sentiment", s)]
    assert len(examples) == 10568  # 10,605 sentences, 37 with a mean score of exactly 0 dropped
    labels = Counter(e["label"] for e in examples)
    assert labels == {1: 5242, 0: 5326}
    assert {"text": "Effective but too tepid biopic", "label": 0} in examples


def test_n_train_caps_only_the_training_split():
    assert load_task("sentiment", "train", n_train=100) == load_task("sentiment", "train")[:100]
    assert len(load_task("sentiment", "dev", n_train=100)) == 1057
    with pytest.raises(ValueError, match="n_train must be None or a positive integer, got 0"):
        load_task("sentiment", "train", n_train=0)


def test_examples_are_fresh_dicts():
    first = load_task("next_line", "dev")
    first[0]["choices"].append("extra")
    assert len(load_task("next_line", "dev")[0]["choices"]) == 4


def test_next_line_answers_follow_the_context_in_a_heldout_work():
    works = heldout_lines()
    train_titles = {d.title for d in corpus_split("train", 0, ("shakespeare", "kjv"))}
    for example in load_task("next_line", "test")[:300]:
        assert len(example["choices"]) == 4 and len(set(example["choices"])) == 4
        last = example["context"].split("\n")[-1]
        answer = example["choices"][example["label"]]
        title = next(
            t for t, lines in works.items() if any(a == last and b == answer for a, b in zip(lines, lines[1:]))
        )
        assert title not in train_titles
        assert all(choice in works[title] for choice in example["choices"])  # same-work distractors
    labels = Counter(e["label"] for e in load_task("next_line", "train"))
    assert min(labels.values()) > 0.2 * sum(labels.values())  # the answer's position is shuffled


@pytest.fixture(scope="module")
def unigram():
    """The corpus tokenizer and the add-one unigram log-probabilities of the training tokens."""
    tokenizer = corpus_tokenizer(8192)
    counts = np.bincount(open_tokens(packed_split("train", 8192), tokenizer), minlength=tokenizer.vocab_size)
    return tokenizer, np.log((counts + 1) / (counts.sum() + len(counts)))


def test_next_line_choices_alone_do_not_give_the_answer_away(unigram):
    tokenizer, logprob = unigram
    examples = load_task("next_line", "test")
    scores = {"summed unigram": [], "mean unigram": [], "longest": [], "shortest": []}
    for example in examples:
        tokens = [logprob[tokenizer.encode("\n" + choice)] for choice in example["choices"]]
        scores["summed unigram"].append([t.sum() for t in tokens])
        scores["mean unigram"].append([t.mean() for t in tokens])
        scores["longest"].append([len(t) for t in tokens])
        scores["shortest"].append([-len(t) for t in tokens])
    labels = np.array([e["label"] for e in examples])
    for readout, values in scores.items():
        assert_at_chance(np.argmax(values, axis=1) == labels, 0.25, f"next_line, {readout} choice")


def test_next_line_context_lines_option():
    example = load_task("next_line", "dev", context_lines=1)[0]
    assert "\n" not in example["context"]
    with pytest.raises(ValueError, match="context_lines must be a positive integer, got 0"):
        load_task("next_line", "dev", context_lines=0)


def test_line_order_positives_follow_and_negatives_do_not():
    works = heldout_lines()
    pairs = {(a, b) for lines in works.values() for a, b in zip(lines, lines[1:])}
    examples = load_task("line_order", "dev")
    for example in examples:
        follows = (example["premise"], example["hypothesis"]) in pairs
        assert follows == (example["label"] == 1), example
    reversed_negatives = sum((e["hypothesis"], e["premise"]) in pairs for e in examples if e["label"] == 0)
    assert reversed_negatives > 0.3 * sum(e["label"] == 0 for e in examples)


def test_same_work_labels():
    works = heldout_lines()
    work_of = {}
    for title, lines in works.items():
        for line in lines:
            work_of.setdefault(line, set()).add(title)
    for example in load_task("same_work", "dev"):
        shared = work_of[example["text_a"]] & work_of[example["text_b"]]
        assert bool(shared) == (example["label"] == 1), example


def test_corrupted_sentences_swap_two_interior_plain_words():
    originals = {" ".join(line.split()) for lines in heldout_lines().values() for line in lines}
    examples = load_task("corrupted_sentence", "dev")
    for example in examples:
        assert (example["text"] in originals) == (example["label"] == 1), example
        original, corrupted = (example["text"], example["twin"])[:: 1 if example["label"] == 1 else -1]
        words, swapped = original.split(), corrupted.split()
        changed = [i for i, (a, b) in enumerate(zip(words, swapped)) if a != b]
        # two different plain lower-case words, neither the first nor the last, trade places
        assert len(words) == len(swapped) <= 30 and len(changed) == 2, example
        i, j = changed
        assert 0 < i < j < len(words) - 1 and (words[i], words[j]) == (swapped[j], swapped[i]), example
        assert words[i].isalpha() and words[i].islower() and words[j].isalpha() and words[j].islower(), example


def test_corrupted_sentences_carry_their_twin_and_are_balanced_in_every_split():
    originals = {line for lines in heldout_lines().values() for line in lines}
    for split in TASK_SPLITS:
        examples = load_task("corrupted_sentence", split)
        for example in examples:
            text, twin = example["text"], example["twin"]
            assert text != twin and sorted(text.split()) == sorted(twin.split()), example
            assert (text in originals) + (twin in originals) == 1, example
        # labels alternate in each split's order: a constant answer scores one half, exactly
        assert [e["label"] for e in examples] == [i % 2 for i in range(len(examples))]
    # the twin is optional for a user's own examples (fine-tuning ignores it), but checked when present
    validate_examples("corrupted_sentence", [{"text": "a line of verse", "label": 1}])
    with pytest.raises(ValueError, match="field 'twin' must be non-empty text, got ''"):
        validate_examples("corrupted_sentence", [{"text": "a line of verse", "twin": "", "label": 1}])


def test_corrupted_pairs_are_the_lines_of_corrupted_sentence_in_the_same_splits():
    for split in TASK_SPLITS:
        singles, pairs = load_task("corrupted_sentence", split), load_task("corrupted_pair", split)
        assert len(singles) == len(pairs)
        for single, pair in zip(singles, pairs):
            original = single["text"] if single["label"] == 1 else single["twin"]
            assert pair["context"] == "" and set(pair["choices"]) == {single["text"], single["twin"]}
            assert pair["choices"][pair["label"]] == original
        assert [e["label"] for e in pairs] == [i % 2 for i in range(len(pairs))]


def test_name_substitution_rebuilds_a_heldout_line():
    works = heldout_lines()
    lines = {line for ls in works.values() for line in ls}
    examples = load_task("name_substitution", "dev")
    assert len(examples) > 100
    for example in examples:
        right, wrong = example["choices"][example["label"]], example["choices"][1 - example["label"]]
        assert f"{example['prefix']} {right}{example['suffix']}" in lines
        assert right != wrong and right[0].isupper() and wrong[0].isupper()
        assert len(example["suffix"].split()) >= 3


def test_an_untrained_model_is_at_chance_on_name_substitution():
    examples = load_task("name_substitution", "test")
    assert len(examples) >= 625  # a two-standard-error band of at most 4 points
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_preset("gpt2-slim")).eval()
    requests = [("", f" {e['prefix']} {choice}{e['suffix']}") for e in examples for choice in e["choices"]]
    logprob = score(model, corpus_tokenizer(8192), requests, rolling=True)["logprob"].to_numpy()
    picked = logprob.reshape(len(examples), 2).argmax(axis=1)
    assert_at_chance(picked == [e["label"] for e in examples], 0.5, "name_substitution, untrained gpt2-slim")


def test_no_test_line_of_the_ordered_tasks_is_seen_in_training():
    def lines(example):
        if "context" in example:
            return {*example["context"].split("\n"), *example["choices"]}
        return {example["premise"], example["hypothesis"]}

    for name in ("next_line", "line_order"):
        seen = {line for example in load_task(name, "train") for line in lines(example)}
        leaked = [example for example in load_task(name, "test") if lines(example) & seen]
        assert not leaked, f"{name}: {len(leaked)} test examples share a line with training, e.g. {leaked[0]}"


def test_bad_options_and_names():
    with pytest.raises(KeyError, match="unknown task 'winograd'"):
        load_task("winograd", "train")
    with pytest.raises(ValueError, match="split='validation': expected one of"):
        load_task("sentiment", "validation")
    with pytest.raises(TypeError, match="task 'sentiment' has no option \\['sources'\\]"):
        load_task("sentiment", "train", sources=("kjv",))
    with pytest.raises(ValueError, match="tasks are derived from book text"):
        load_task("same_work", "train", sources=("tweets",))


def test_validation_names_the_bad_example():
    good = {"text": "A fine film.", "label": 1}
    validate_examples("sentiment", [good])
    with pytest.raises(ValueError, match=r"task 'sentiment' example 1 .*field 'text' must be non-empty text"):
        validate_examples("sentiment", [good, {"text": "  ", "label": 0}])
    with pytest.raises(ValueError, match=r"example 0 .*label 2 is not in the label set \[0, 1\]"):
        validate_examples("sentiment", [{"text": "Fine.", "label": 2}])
    with pytest.raises(ValueError, match=r"example 0 .*label True is not in the label set"):
        validate_examples("sentiment", [{"text": "Fine.", "label": True}])
    with pytest.raises(ValueError, match=r"task 'next_line' example 0 .*expected a list of 4 choices, got 3"):
        validate_examples("next_line", [{"context": "a", "choices": ["b", "c", "d"], "label": 0}])
    with pytest.raises(ValueError, match=r"missing field\(s\) \['hypothesis'\]"):
        validate_examples("line_order", [{"premise": "a", "label": 0}])


def test_tables_describe_every_task():
    sizes = task_sizes()
    assert list(sizes.task) == list(TASKS)
    assert (sizes.total == sizes.train + sizes.dev + sizes.test).all()
    assert sizes.set_index("task").loc["sentiment", "total"] == 10568
    described = describe_tasks().set_index("task")
    assert described.loc["next_line", "fields"] == "context, choices, label"
    assert described.loc["name_substitution", "kind"] == "substitution"


# --- adapters for the real benchmarks, on in-memory datasets ---------------------------------


def test_benchmark_adapters_on_in_memory_datasets():
    datasets = pytest.importorskip("datasets")
    from workbench.data.benchmarks import BENCHMARKS, from_dataset

    sst2 = datasets.Dataset.from_dict({"sentence": ["a gorgeous film", "dull"], "label": [1, 0], "idx": [0, 1]})
    assert from_dataset("sst2", sst2) == [{"text": "a gorgeous film", "label": 1}, {"text": "dull", "label": 0}]
    mnli = datasets.Dataset.from_dict(
        {"premise": ["It rains.", "It rains."], "hypothesis": ["It is wet.", "?"], "label": [0, -1], "idx": [0, 1]}
    )
    assert from_dataset("mnli", mnli) == [{"premise": "It rains.", "hypothesis": "It is wet.", "label": 0}]
    stsb = datasets.Dataset.from_dict(
        {"sentence1": ["A man sings."], "sentence2": ["A man is singing."], "label": [4.6], "idx": [0]}
    )
    assert from_dataset("stsb", stsb) == [{"text_a": "A man sings.", "text_b": "A man is singing.", "label": 4.6}]
    race = datasets.Dataset.from_dict(
        {
            "example_id": ["x"],
            "article": ["Tom went home."],
            "question": ["Where did Tom go?"],
            "options": [["home", "school", "park", "shop"]],
            "answer": ["A"],
        }
    )
    assert from_dataset("race", race) == [
        {"context": "Tom went home.\nWhere did Tom go?", "choices": ["home", "school", "park", "shop"], "label": 0}
    ]
    qnli = datasets.Dataset.from_dict({"question": ["Who?"], "sentence": ["Tom."], "label": [0], "idx": [0]})
    assert from_dataset("qnli", qnli) == [{"premise": "Who?", "hypothesis": "Tom.", "label": 0}]
    assert {b.kind for b in BENCHMARKS.values()} == {"classification", "entailment", "similarity", "multiple_choice"}


def test_benchmark_errors_name_the_example():
    datasets = pytest.importorskip("datasets")
    from workbench.data.benchmarks import from_dataset, load_benchmark

    bad_score = datasets.Dataset.from_dict({"sentence1": ["a"], "sentence2": ["b"], "label": [7.5], "idx": [0]})
    with pytest.raises(ValueError, match=r"task 'stsb' example 0 .*label 7.5 is not a number in \[0.0, 5.0\]"):
        from_dataset("stsb", bad_score)
    three = datasets.Dataset.from_dict(
        {"article": ["x"], "question": ["y"], "options": [["a", "b", "c"]], "answer": ["A"], "example_id": ["1"]}
    )
    with pytest.raises(ValueError, match="expected a list of 4 choices, got 3"):
        from_dataset("race", three)
    with pytest.raises(KeyError, match="unknown benchmark 'glue'"):
        load_benchmark("glue", "train")
