"""GPT-1 input transformations: exact layouts with the real GPT-2 vocabulary, and properties."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.data import transforms
from workbench.data.tokenizer import gpt2_tokenizer

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


def test_truncation_shortens_the_longest_part_first():
    assert transforms.fit_parts([[1] * 10, [2] * 3], 8) == [[1] * 5, [2] * 3]
    assert transforms.fit_parts([[1] * 10, [2] * 9], 9) == [[1] * 5, [2] * 4]
    assert transforms.fit_parts([list(range(10)), [7]], 4, keep_end=[True, False]) == [[7, 8, 9], [7]]
    assert transforms.fit_parts([[1, 2], [3]], 5) == [[1, 2], [3]]


def test_multiple_choice_context_keeps_its_end(tok):
    context = "one two three four five six seven eight nine ten"
    rows = transforms.multiple_choice(tok, context, ["eleven"], 8)
    assert len(rows[0]) == 8
    assert tok.decode(rows[0][1:rows[0].index(tok.delim_id)]).strip().endswith("ten")


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


texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=300).filter(str.strip)


@settings(max_examples=60, deadline=None)
@given(a=texts, b=texts, n_ctx=st.integers(min_value=5, max_value=64))
def test_specials_stay_in_place_and_fit(tok, a, b, n_ctx):
    specials = {tok.start_id, tok.delim_id, tok.extract_id}
    for seq in [transforms.entailment(tok, a, b, n_ctx), *transforms.similarity(tok, a, b, n_ctx),
                *transforms.multiple_choice(tok, a, [b, a], n_ctx)]:
        assert len(seq) <= n_ctx
        assert seq[0] == tok.start_id and seq[-1] == tok.extract_id
        assert seq.count(tok.delim_id) == 1
        delim = seq.index(tok.delim_id)
        assert 1 < delim < len(seq) - 2  # both parts keep at least one token
        assert not specials & set(seq[1:delim]) and not specials & set(seq[delim + 1:-1])
    single = transforms.classification(tok, a, n_ctx)
    assert len(single) <= n_ctx and single[0] == tok.start_id and single[-1] == tok.extract_id
