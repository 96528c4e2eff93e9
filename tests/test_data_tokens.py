"""Packed token files: layout, manifest, and the checks on opening."""

import json

import numpy as np
import pytest

from workbench.data.corpus import load_documents
from workbench.data.sources import SOURCES
from workbench.data.tokenizer import gpt2_tokenizer, train_bpe
from workbench.data.tokens import dtype_for, manifest_path, open_tokens, pack_tokens

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def documents():
    """Real documents of two sources: three short books of the Bible and three sonnet-like poems."""
    kjv = sorted(load_documents("kjv"), key=lambda d: len(d.text))[:3]
    poems = sorted(load_documents("shakespeare"), key=lambda d: len(d.text))[:3]
    return kjv + poems


@pytest.fixture(scope="module")
def tokenizer(documents):
    return train_bpe([d.text for d in documents], vocab_size=400)


def test_pack_writes_documents_separated_by_eos(tmp_path, documents, tokenizer):
    manifest = pack_tokens(documents, tokenizer, tmp_path / "train.bin", progress=False, split="train")
    tokens = open_tokens(tmp_path / "train.bin", tokenizer)
    expected = [i for d in documents for i in tokenizer.encode(d.text) + [tokenizer.eos_id]]
    assert isinstance(tokens, np.memmap) and tokens.dtype == np.uint16 and tokens.ndim == 1
    assert tokens.tolist() == expected
    assert manifest == json.loads(manifest_path(tmp_path / "train.bin").read_text())
    assert manifest["tokens"] == len(expected) and manifest["documents"] == 6
    assert manifest["tokenizer_sha256"] == tokenizer.sha256 and manifest["split"] == "train"
    assert manifest["sources"]["kjv"]["archive_sha256"] == SOURCES["kjv"].sha256
    assert manifest["sources"]["kjv"]["documents"] == 3
    assert sum(s["tokens"] for s in manifest["sources"].values()) == len(expected)
    decoded = tokenizer.decode(tokens[: tokens.tolist().index(tokenizer.eos_id)])
    assert decoded == documents[0].text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.bin", "train.json"]


def test_dtype_grows_with_the_vocabulary(tmp_path, documents):
    assert dtype_for(65536) == np.uint16 and dtype_for(65537) == np.uint32
    big = gpt2_tokenizer(with_special_tokens=True)
    big.backend.add_special_tokens([f"<|reserved_{i}|>" for i in range(16000)])  # > 65,536 ids
    manifest = pack_tokens(documents[:1], big, tmp_path / "big.bin", progress=False)
    tokens = open_tokens(tmp_path / "big.bin", big)
    assert manifest["dtype"] == "uint32" and tokens.dtype == np.uint32
    assert tokens[-1] == big.eos_id == 50256 and tokens.tolist()[:-1] == big.encode(documents[0].text)


def test_a_different_tokenizer_is_refused(tmp_path, documents, tokenizer):
    pack_tokens(documents, tokenizer, tmp_path / "val.bin", progress=False)
    with pytest.raises(ValueError, match=r"val.bin was encoded with tokenizer .* not with the given tokenizer"):
        open_tokens(tmp_path / "val.bin", gpt2_tokenizer())


def test_incomplete_files_are_refused(tmp_path, documents, tokenizer):
    path = tmp_path / "val.bin"
    pack_tokens(documents, tokenizer, path, progress=False)
    with open(path, "r+b") as f:
        f.truncate(100)
    with pytest.raises(ValueError, match=r"val.bin has 100 bytes, but its manifest says \d+ uint16 tokens"):
        open_tokens(path)
    manifest_path(path).unlink()
    with pytest.raises(FileNotFoundError, match="val.bin has no manifest val.json"):
        open_tokens(path)


def test_a_failed_pack_leaves_nothing(tmp_path, documents, tokenizer):
    class Failing:
        """A tokenizer that breaks mid-way, as an interrupted run would."""

        vocab_size, eos_id, sha256 = tokenizer.vocab_size, tokenizer.eos_id, tokenizer.sha256

        def encode_batch(self, texts):
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        pack_tokens(documents, Failing(), tmp_path / "train.bin", progress=False)
    assert list(tmp_path.iterdir()) == []
