"""GPT-1 input transformations: exact layouts with the real GPT-2 vocabulary, and properties."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.data import transforms
from workbench.data.tokenizer import SPECIAL_TOKENS, gpt2_tokenizer

pytestmark = pytest.mark.data

HELLO, WORLD = 15496, 995  # "Hello", " world" in GPT-2's vocabulary


@pytest.fixture(scope="module")
def tok():
    return gpt2_tokenizer(with_special_tokens=True)


def test_exact_layouts(tok):
    s, d, e = tok.start_id, tok.delim_id, tok.extract_id
    assert transforms.classification(tok, "Hello world", 16) == [s, HELLO, WORLD, e]
    assert transforms.entailment(tok, "Hello", "Hello world", 16) == [s, HELLO, d, HELLO, WORLD, e]
    assert transforms.similarity(tok, "Hello", "Hello world", 16) == [
        [s, HELLO, d, HELLO, WORLD, e],
        [s, HELLO, WORLD, d, HELLO, e],
    ]
    assert transforms.multiple_choice(tok, "Hello", ["Hello world", "Hello"], 16) == [
        [s, HELLO, d, HELLO, WORLD, e],
        [s, HELLO, d, HELLO, e],
    ]
    # no context (a minimal pair): each choice alone, as a classification would encode it
    assert transforms.multiple_choice(tok, "", ["Hello world", "Hello"], 16) == [
        [s, HELLO, WORLD, e],
        [s, HELLO, e],
    ]


def test_truncation_shortens_the_longest_part_first():
    assert transforms.fit_parts([[1] * 10, [2] * 3], 8) == [[1] * 5, [2] * 3]
    assert transforms.fit_parts([[1] * 10, [2] * 9], 9) == [[1] * 5, [2] * 4]
    assert transforms.fit_parts([list(range(10)), [7]], 4, keep_end=[True, False]) == [[7, 8, 9], [7]]
    assert transforms.fit_parts([[1, 2], [3]], 5) == [[1, 2], [3]]


def test_multiple_choice_context_keeps_its_end(tok):
    context = "one two three four five six seven eight nine ten"
    rows = transforms.multiple_choice(tok, context, ["eleven"], 8)
    assert len(rows[0]) == 8
    assert tok.decode(rows[0][1 : rows[0].index(tok.delim_id)]).strip().endswith("ten")


def test_bad_input_is_named(tok):
    with pytest.raises(ValueError, match="n_ctx=3 is too small"):
        transforms.entailment(tok, "a", "b", 3)
    with pytest.raises(ValueError, match="classification: empty or non-string text ''"):
        transforms.classification(tok, "", 16)
    with pytest.raises(ValueError, match="at least one choice"):
        transforms.multiple_choice(tok, "context", [], 16)


def test_collate_pads_and_records_extract(tok):
    rows = transforms.multiple_choice(tok, "Hello", ["Hello world", "Hello"], 16)
    ids, extract = transforms.collate(rows, tok.pad_id)
    assert ids.tolist()[1] == rows[1] + [tok.pad_id]
    assert extract.tolist() == [5, 4]
    assert (ids[torch.arange(2), extract] == tok.extract_id).all()
    targets = transforms.lm_targets(ids, extract)
    assert targets.tolist()[1] == rows[1][1:] + [-100, -100]


# Any text, special-token strings included: they are text, never control tokens.
_characters = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=100)
texts = st.lists(st.one_of(_characters, st.sampled_from(SPECIAL_TOKENS)), min_size=1, max_size=6).map("".join)
texts = texts.filter(lambda s: s.strip())


def test_text_that_spells_a_special_token_stays_text(tok):
    assert transforms.entailment(tok, "0", "<|delim|>", 64).count(tok.delim_id) == 1
    assert transforms.entailment(tok, "0", "<|delim|>", 64)[3:-1] == tok.encode("<|delim|>")


@settings(max_examples=60, deadline=None)
@given(a=texts, b=texts, n_ctx=st.integers(min_value=5, max_value=64))
def test_specials_stay_in_place_and_fit(tok, a, b, n_ctx):
    specials = {tok.start_id, tok.delim_id, tok.extract_id}
    for seq in [
        transforms.entailment(tok, a, b, n_ctx),
        *transforms.similarity(tok, a, b, n_ctx),
        *transforms.multiple_choice(tok, a, [b, a], n_ctx),
    ]:
        assert len(seq) <= n_ctx
        assert seq[0] == tok.start_id and seq[-1] == tok.extract_id
        assert seq.count(tok.delim_id) == 1
        delim = seq.index(tok.delim_id)
        assert 1 < delim < len(seq) - 2  # both parts keep at least one token
        assert not specials & set(seq[1:delim]) and not specials & set(seq[delim + 1 : -1])
    single = transforms.classification(tok, a, n_ctx)
    assert len(single) <= n_ctx and single[0] == tok.start_id and single[-1] == tok.extract_id


def test_transform_example_dispatches_on_kind(tok):
    s, d, e = tok.start_id, tok.delim_id, tok.extract_id
    built = transforms.transform_example("classification", dict(text="Hello world", label=1), tok, 16)
    assert [(x.title, x.ids, x.extract) for x in built] == [("", [s, HELLO, WORLD, e], 3)]
    pair = transforms.transform_example("similarity", dict(text_a="Hello", text_b="Hello world", label=0), tok, 16)
    assert [x.title for x in pair] == ["a; b", "b; a (the head adds both states)"]
    assert [x.ids for x in pair] == transforms.similarity(tok, "Hello", "Hello world", 16)
    choice = dict(context="Hello", choices=["Hello world", "Hello"], label=1)
    built = transforms.transform_example("multiple_choice", choice, tok, 16)
    assert [x.title for x in built] == ["choice 0", "choice 1 (correct)"]
    blank = dict(prefix="Hello", choices=[" world", ""], suffix=" world", label=0)
    built = transforms.transform_example("substitution", blank, tok, 16)
    assert built[0].ids == [s, HELLO, d, WORLD, WORLD, e] and built[0].title == "choice 0 (correct)"
    assert transforms.token_roles(tok, built[0].ids) == ["start", None, "delim", None, None, "extract"]


def test_transform_example_names_bad_examples(tok):
    with pytest.raises(ValueError, match=r"the entailment example .* lacks the field\(s\) \['hypothesis'\]"):
        transforms.transform_example("entailment", dict(premise="a", label=0), tok, 16)
    with pytest.raises(ValueError, match="unknown task kind 'regression'"):
        transforms.transform_example("regression", dict(text="a"), tok, 16)


def test_a_tokenizer_that_makes_control_tokens_from_text_is_refused(tok):
    class Injecting:
        start_id, delim_id, extract_id, pad_id = tok.start_id, tok.delim_id, tok.extract_id, tok.pad_id

        def encode_batch(self, texts):
            return [[tok.delim_id] if text == "b" else tok.encode(text) for text in texts]

    with pytest.raises(ValueError, match=r"entailment: the tokenizer encoded the text 'b' into .*\['<\|delim\|>'\]"):
        transforms.entailment(Injecting(), "a", "b", 16)


@pytest.mark.parametrize("label", ["1", "positive", None, 0.5, True, [1]])
def test_encode_examples_refuses_a_label_that_is_not_a_class_index(tok, label):
    with pytest.raises(ValueError, match=r"example 0: label .* expected an int class index"):
        transforms.encode_examples("classification", [dict(text="Hello", label=label)], tok, 16)
    with pytest.raises(ValueError, match="example 0: no 'label' field"):
        transforms.encode_examples("classification", [dict(text="Hello")], tok, 16)


def test_encode_examples_uses_the_same_dispatch(tok):
    examples = [dict(text_a="Hello", text_b="Hello world", label=1), dict(text_a="Hello", text_b="", label=0)]
    with pytest.raises(ValueError, match="example 1: similarity: empty or non-string text ''"):
        transforms.encode_examples("similarity", examples, tok, 16)
    assert transforms.encode_examples("similarity", examples[:1], tok, 16) == [
        (transforms.similarity(tok, "Hello", "Hello world", 16), 1)
    ]
    numpy = pytest.importorskip("numpy")
    labels = [
        label
        for _, label in transforms.encode_examples(
            "classification", [dict(text="Hi", label=numpy.int64(1)), dict(text="Hi", label=0.0)], tok, 16
        )
    ]
    assert labels == [1, 0] and all(type(label) is int for label in labels)
