"""Control tokens come from code, never from text: user and corpus text that spells ``<|endoftext|>``,
``<|start|>``, ``<|delim|>``, ``<|extract|>`` or ``<|pad|>`` is encoded as the characters it is.

Checked through every tokenizer the workbench uses (a freshly trained BPE, the corpus BPE and GPT-2's),
every GPT-1 input transformation, generation prompts and zero-shot scoring requests.
"""

from __future__ import annotations

import pytest
import torch

from workbench import GPT, GPTConfig
from workbench.data import transforms
from workbench.data.tokenizer import EOS, SPECIAL_TOKENS, Tokenizer, gpt2_tokenizer, train_bpe
from workbench.evaluation.scoring import encode_requests
from workbench.models import generation

# Each special string alone, glued to words, spaced, doubled, and a near miss.
HOSTILE = [
    *SPECIAL_TOKENS,
    "a" + "b".join(SPECIAL_TOKENS) + "c",
    " ".join(SPECIAL_TOKENS),
    "".join(SPECIAL_TOKENS) * 2,
    "Hello <|endoftext|> world <|start|>x<|delim|>y<|extract|><|pad|>",
    "<|endoftext|",
]
EVERYTHING = "Hello " + " and ".join(SPECIAL_TOKENS) + " world"

CORPUS = [
    "It was the best of times, it was the worst of times, it was the age of wisdom.",
    "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer.",
] * 20


def _corpus_bpe() -> Tokenizer:
    from workbench.data.prepare import corpus_tokenizer

    return corpus_tokenizer(8192)


TOKENIZERS = {
    "trained": lambda: train_bpe(CORPUS, 300),
    "corpus": _corpus_bpe,
    "gpt2": lambda: gpt2_tokenizer(with_special_tokens=True),
}


@pytest.fixture(
    scope="module",
    params=[
        "trained",
        pytest.param("corpus", marks=pytest.mark.data),
        pytest.param("gpt2", marks=pytest.mark.data),
    ],
)
def tok(request) -> Tokenizer:
    return TOKENIZERS[request.param]()


def _special_ids(tok: Tokenizer) -> set[int]:
    return {tok.token_to_id(t) for t in SPECIAL_TOKENS}


def test_text_that_spells_a_special_token_is_encoded_as_text(tok):
    specials = _special_ids(tok)
    assert len(specials) == len(SPECIAL_TOKENS)
    for text in HOSTILE:
        ids = tok.encode(text)
        assert not specials & set(ids), text
        assert tok.decode(ids) == text
    assert tok.encode_batch(HOSTILE) == [tok.encode(t) for t in HOSTILE]
    # Inserted by id, a special token decodes to its string: the two only look alike.
    assert tok.decode([tok.eos_id]) == EOS and tok.encode(EOS) != [tok.eos_id]


def test_a_reloaded_tokenizer_still_reads_text_as_text(tok, tmp_path):
    loaded = Tokenizer.load(tok.save(tmp_path))
    assert loaded.sha256 == tok.sha256
    assert loaded.encode_batch(HOSTILE) == tok.encode_batch(HOSTILE)


def _example(kind: str) -> dict:
    t = EVERYTHING
    return {
        "classification": dict(text=t, label=0),
        "entailment": dict(premise=t, hypothesis="<|delim|>" + t, label=1),
        "similarity": dict(text_a=t, text_b="<|extract|>", label=1),
        "multiple_choice": dict(context=t, choices=["<|start|>", t, "<|pad|>"], label=2),
        "substitution": dict(prefix=t, choices=[" <|delim|>", " <|endoftext|>"], suffix=" <|extract|>", label=0),
    }[kind]


@pytest.mark.parametrize("kind", ["classification", "entailment", "similarity", "multiple_choice", "substitution"])
@pytest.mark.parametrize("n_ctx", [512, 24])  # whole, and truncated
def test_every_transformation_has_exactly_its_own_control_tokens(tok, kind, n_ctx):
    example = _example(kind)
    sequences = transforms.transform_example(kind, example, tok, n_ctx)
    assert len(sequences) == {"similarity": 2, "multiple_choice": 3, "substitution": 2}.get(kind, 1)
    for sequence in sequences:
        ids = sequence.ids
        assert len(ids) <= n_ctx
        assert ids.count(tok.start_id) == 1 and ids[0] == tok.start_id
        assert ids.count(tok.extract_id) == 1 and ids[-1] == tok.extract_id and sequence.extract == len(ids) - 1
        assert ids.count(tok.delim_id) == (0 if kind == "classification" else 1)
        assert tok.eos_id not in ids and tok.pad_id not in ids
        roles = transforms.token_roles(tok, ids)
        assert [r for r in roles if r] == (
            ["start", "extract"] if kind == "classification" else ["start", "delim", "extract"]
        )
    if n_ctx == 512 and kind == "entailment":  # untruncated, the text parts are the texts, special strings and all
        ids = sequences[0].ids
        delim = ids.index(tok.delim_id)
        assert tok.decode(ids[1:delim]) == example["premise"]
        assert tok.decode(ids[delim + 1 : -1]) == example["hypothesis"]


def test_collate_pads_with_the_pad_id_only(tok):
    rows = transforms.multiple_choice(tok, EVERYTHING, ["<|pad|>", "x"], 64)
    ids, extract = transforms.collate(rows, tok.pad_id)
    for row, length in zip(ids.tolist(), (len(r) for r in rows)):
        assert tok.pad_id not in row[:length]
        assert row[length:] == [tok.pad_id] * (ids.size(1) - length)
    assert (ids[torch.arange(len(rows)), extract] == tok.extract_id).all()


@pytest.fixture
def model(tok) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig.from_preset("gpt2-micro", dropout=0.0, vocab_size=tok.vocab_size)).eval()


def _prompt_ids(monkeypatch, model, tok, prompts) -> list[list[int]]:
    """The token rows generate_text builds from ``prompts`` (left padding removed)."""
    seen = {}

    def spy(*args, **kwargs):
        idx = kwargs["idx"] if "idx" in kwargs else args[1]
        masks = kwargs.get("attention_mask")
        masks = torch.ones_like(idx) if masks is None else masks
        seen["rows"] = [row[mask.bool()].tolist() for row, mask in zip(idx, masks)]
        return iter(())

    monkeypatch.setattr(generation, "stream", spy)
    generation.generate_text(model, tok, prompts, 4)
    return seen["rows"]


def test_generation_prompts_are_text_and_an_empty_prompt_starts_from_the_eos_id(tok, model, monkeypatch):
    rows = _prompt_ids(monkeypatch, model, tok, [*HOSTILE, "", EOS])
    specials = _special_ids(tok)
    for text, ids in zip(HOSTILE, rows):
        assert ids == tok.encode(text) and not specials & set(ids), text
    assert rows[len(HOSTILE)] == [tok.eos_id]  # the empty prompt: the id itself
    assert rows[-1] == tok.encode(EOS) != [tok.eos_id]  # the string: text, not a document boundary


def test_generation_from_a_hostile_prompt_continues_its_text_tokens(tok, model):
    text = generation.generate_text(model, tok, EVERYTHING, 5, temperature=0, stop_at_eos=False)
    ids = torch.tensor([tok.encode(EVERYTHING)])
    expected = model.generate(ids, 5, temperature=0)[0, ids.size(1) :].tolist()
    assert text == tok.decode(expected)


def test_scoring_requests_are_text(tok):
    specials = _special_ids(tok)
    (context, continuation), (empty, _) = encode_requests(tok, [(EVERYTHING, " <|endoftext|>"), ("", " x")])
    assert not specials & set(context) and not specials & set(continuation)
    assert tok.decode(continuation) == " <|endoftext|>"
    assert empty == [tok.eos_id]
