"""Packed token files: layout, manifest, the checks on opening (whole, unchanged content, ids within
the vocabulary), documents encoded as ordinary text, and a full disk.

Tests marked ``data`` pack real documents; the others pack a small made-up corpus.
"""

import errno
import io
import json
import os
import time

import numpy as np
import pytest

import workbench.data.tokens as tokens_module
from workbench.data.corpus import Document, load_documents
from workbench.data.sources import SOURCES, DiskFullError, sha256_file
from workbench.data.tokenizer import EOS, SPECIAL_TOKENS, gpt2_tokenizer, train_bpe
from workbench.data.tokens import dtype_for, manifest_path, open_tokens, pack_tokens, read_manifest, upgrade_manifest

TEXTS = [
    "The quick brown fox jumps over the lazy dog. " * 20,
    "In the beginning was the word, and the word was with the tokenizer. " * 15,
    "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer. " * 10,
]


@pytest.fixture(scope="module")
def documents():
    """Real documents of two sources: three short books of the Bible and three sonnet-like poems."""
    kjv = sorted(load_documents("kjv"), key=lambda d: len(d.text))[:3]
    poems = sorted(load_documents("shakespeare"), key=lambda d: len(d.text))[:3]
    return kjv + poems


@pytest.fixture(scope="module")
def tokenizer(documents):
    return train_bpe([d.text for d in documents], vocab_size=400)


@pytest.fixture(scope="module")
def small():
    """A made-up corpus and a BPE trained on it."""
    docs = [Document("mine", f"doc {i}", text) for i, text in enumerate(TEXTS)]
    return docs, train_bpe([d.text for d in docs], vocab_size=300)


def later(path):
    """Give ``path`` a new mtime, as any later write does."""
    stamp = time.time_ns()
    os.utime(path, ns=(stamp, stamp))


@pytest.mark.data
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


@pytest.mark.data
def test_dtype_grows_with_the_vocabulary(tmp_path, documents):
    assert dtype_for(65536) == np.uint16 and dtype_for(65537) == np.uint32
    big = gpt2_tokenizer(with_special_tokens=True)
    big.backend.add_special_tokens([f"<|reserved_{i}|>" for i in range(16000)])  # > 65,536 ids
    manifest = pack_tokens(documents[:1], big, tmp_path / "big.bin", progress=False)
    tokens = open_tokens(tmp_path / "big.bin", big)
    assert manifest["dtype"] == "uint32" and tokens.dtype == np.uint32
    assert tokens[-1] == big.eos_id == 50256 and tokens.tolist()[:-1] == big.encode(documents[0].text)


@pytest.mark.data
def test_a_different_tokenizer_is_refused(tmp_path, documents, tokenizer):
    pack_tokens(documents, tokenizer, tmp_path / "val.bin", progress=False)
    with pytest.raises(ValueError, match=r"val.bin was encoded with tokenizer .* not with the given tokenizer"):
        open_tokens(tmp_path / "val.bin", gpt2_tokenizer())


@pytest.mark.data
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


@pytest.mark.data
def test_a_failed_pack_leaves_nothing(tmp_path, documents, tokenizer):
    class Failing:
        """A tokenizer that breaks mid-way, as an interrupted run would."""

        vocab_size, eos_id, sha256 = tokenizer.vocab_size, tokenizer.eos_id, tokenizer.sha256

        def encode_batch(self, texts):
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        pack_tokens(documents, Failing(), tmp_path / "train.bin", progress=False)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------
# Content hashes


def test_the_manifest_records_the_content_hash(tmp_path, small):
    docs, tok = small
    path = tmp_path / "val.bin"
    manifest = pack_tokens(docs, tok, path, progress=False)
    assert manifest["sha256"] == sha256_file(path)
    assert manifest["stat"] == {"size": path.stat().st_size, "mtime_ns": path.stat().st_mtime_ns}


def test_a_file_overwritten_with_ids_beyond_the_vocabulary_is_refused(tmp_path, small):
    docs, tok = small
    path = tmp_path / "val.bin"
    pack_tokens(docs, tok, path, progress=False)
    ids = np.fromfile(path, dtype=np.uint16)
    ids[5] = 60000  # same size, an id the 300-id vocabulary does not have
    ids.tofile(path)
    with pytest.raises(ValueError, match=rf"{path} holds token id 60000, beyond the vocabulary of 300 ids"):
        open_tokens(path, tok)


def test_a_file_changed_with_the_same_size_is_refused(tmp_path, small):
    docs, tok = small
    path = tmp_path / "val.bin"
    manifest = pack_tokens(docs, tok, path, progress=False)
    ids = np.fromfile(path, dtype=np.uint16)
    other = next(k for k in range(1, len(ids)) if ids[k] != ids[0])
    ids[[0, other]] = ids[[other, 0]]  # ids of the vocabulary, the same size, other bytes
    ids.tofile(path)
    with pytest.raises(ValueError, match=rf"{path} has SHA-256 [0-9a-f]{{64}}, but its manifest val.json records"):
        read_manifest(path)
    assert manifest["sha256"] in str(pytest.raises(ValueError, open_tokens, path).value)


def test_an_unchanged_file_is_not_hashed_again(tmp_path, small, monkeypatch):
    docs, tok = small
    path = tmp_path / "train.bin"
    pack_tokens(docs, tok, path, progress=False)
    scans = []
    real = tokens_module._scan
    monkeypatch.setattr(tokens_module, "_scan", lambda *args: scans.append(1) or real(*args))
    for _ in range(3):
        open_tokens(path, tok)
    assert scans == []  # size and mtime as recorded
    later(path)  # touched (copied, restored), content the same
    for _ in range(3):
        open_tokens(path, tok)
    assert len(scans) == 3 and len(tokens_module._scans) >= 1  # looked up 3 times, read once per process
    key = next(k for k in tokens_module._scans if k[0] == str(path))
    assert tokens_module._scans[key][0] == sha256_file(path)


def test_a_manifest_of_an_older_version_is_upgraded_in_place(tmp_path, small):
    docs, tok = small
    path = tmp_path / "val.bin"
    manifest = pack_tokens(docs, tok, path, progress=False, split="val", seed=0)
    old = {k: v for k, v in manifest.items() if k not in ("sha256", "stat")}
    manifest_path(path).write_text(json.dumps(old, indent=1))
    before = path.read_bytes()
    assert open_tokens(path, tok).tolist() == np.frombuffer(before, np.uint16).tolist()  # still readable
    upgraded = upgrade_manifest(path)
    assert upgraded == json.loads(manifest_path(path).read_text())
    assert {k: v for k, v in upgraded.items() if k not in ("sha256", "stat")} == old  # fields kept, in order
    assert list(upgraded)[: len(old)] == list(old)
    assert upgraded["sha256"] == sha256_file(path) and path.read_bytes() == before
    # an old manifest does not vouch for a file that holds ids beyond the vocabulary
    manifest_path(path).write_text(json.dumps(old, indent=1))
    ids = np.frombuffer(before, np.uint16).copy()
    ids[0] = 4000
    ids.tofile(path)
    with pytest.raises(ValueError, match="holds token id 4000, beyond the vocabulary of 300 ids"):
        upgrade_manifest(path)


# ---------------------------------------------------------------------------------------------------
# Control tokens: documents are ordinary text


def test_a_document_that_spells_a_special_token_is_packed_as_text(tmp_path, small):
    docs, tok = small
    text = f"Models end documents with {EOS}, and GPT-1 uses {SPECIAL_TOKENS[1]} and {SPECIAL_TOKENS[2]}."
    path = tmp_path / "val.bin"
    manifest = pack_tokens([Document("mine", "spoof", text), docs[0]], tok, path, progress=False)
    ids = open_tokens(path, tok).tolist()
    control = {tok.token_to_id(t) for t in SPECIAL_TOKENS}
    first = ids[: ids.index(tok.eos_id)]
    assert tok.decode(first) == text and not control & set(first)
    assert [i for i in ids if i in control] == [tok.eos_id, tok.eos_id]  # the two separators, by id
    assert manifest["tokens"] == len(ids)


def test_packing_refuses_a_tokenizer_that_turns_text_into_control_tokens(tmp_path, small):
    docs, tok = small

    class Spoofed:
        """A tokenizer that reads "<|endoftext|>" in the text as the separator."""

        vocab_size, eos_id, sha256, special_tokens = tok.vocab_size, tok.eos_id, tok.sha256, tok.special_tokens
        token_to_id = staticmethod(tok.token_to_id)

        def encode_batch(self, texts):
            return [tok.encode(t)[:3] + [tok.eos_id] + tok.encode(t)[3:] for t in texts]

    with pytest.raises(ValueError, match=r"document 'doc 0' \(mine\) was encoded with the control token ids \[0\]"):
        pack_tokens(docs, Spoofed(), tmp_path / "train.bin", progress=False)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------
# A full disk


def test_a_full_disk_while_packing_names_the_file_and_its_size(tmp_path, small, monkeypatch):
    docs, tok = small
    real = open

    class Full(io.RawIOBase):
        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, data):
            if self.written > 100:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(data)
            return self.f.write(data)

        def close(self):
            self.f.close()

    monkeypatch.setattr(
        tokens_module,
        "open",
        lambda f, mode="r", *a, **k: Full(real(f, mode)) if "w" in mode else real(f, mode, *a, **k),
        raising=False,
    )
    with pytest.raises(
        DiskFullError, match=rf"no space left on the device to write {tmp_path / 'train.bin'}: it needs about"
    ):
        pack_tokens(docs, tok, tmp_path / "train.bin", progress=False)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_a_full_disk_while_writing_the_manifest_leaves_nothing(tmp_path, small, monkeypatch):
    docs, tok = small

    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tokens_module, "write_text_atomic", full)
    with pytest.raises(DiskFullError, match=rf"to write {tmp_path / 'train.json'}: it needs about \d+ bytes") as error:
        pack_tokens(docs, tok, tmp_path / "train.bin", progress=False)
    assert error.value.needed > 100 and list(tmp_path.iterdir()) == []
