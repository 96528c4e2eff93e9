"""Tests never write into the repository's figures/ directory, and Ctrl-C is Ctrl-C; ``license_tokens``
is the small real token file the training tests share, ``tokenized_runs`` two tiny runs that record their
tokenizer (what export and lm-eval read).

A shell that starts pytest in the background (``make test &``) hands it SIGINT ignored; the tests of
Ctrl-C handling need Python's usual KeyboardInterrupt, in this process and in the ones it starts.
"""

import os
import signal
import sysconfig
import tempfile
from pathlib import Path

import numpy as np
import pytest

import workbench  # noqa: F401  first: it pins PyTorch's CPU kernels before any test runs a tensor operation
from workbench.cli import main
from workbench.data.corpus import Document
from workbench.data.sources import DATA_DIR_ENV
from workbench.data.tokenizer import train_bpe
from workbench.data.tokens import pack_tokens
from workbench.data.vocabulary import prepared_dir

signal.signal(signal.SIGINT, signal.default_int_handler)

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["WORKBENCH_FIGURES_DIR"] = os.path.join(tempfile.mkdtemp(prefix="workbench-tests-"), "figures")


@pytest.fixture(scope="session")
def license_tokens(tmp_path_factory) -> Path:
    """Python's LICENSE as byte tokens in a .npy file: real text, no tokenizer recorded."""
    text = (Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt").read_bytes()
    path = tmp_path_factory.mktemp("license") / "train.npy"
    np.save(path, np.frombuffer(text, dtype=np.uint8).astype(np.uint16))
    return path


@pytest.fixture(scope="session")
def _tokenized_runs(tmp_path_factory) -> dict[str, Path]:
    """A one-update pretraining run of ``gpt2-micro`` and one of its LSTM baseline on Python's LICENSE,
    packed with a byte-level BPE that a data directory of their own holds as the corpus tokenizer: runs
    whose checkpoints record their tokenizer, made offline. ``data`` is that data directory."""

    root = tmp_path_factory.mktemp("tokenized")
    text = (Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt").read_text()
    runs = {"data": root / "data"}
    with pytest.MonkeyPatch.context() as env:
        env.setenv(DATA_DIR_ENV, str(runs["data"]))
        tokenizer = train_bpe(text.splitlines(), 512)  # gpt2-micro's vocabulary
        tokenizer.save(prepared_dir() / "bpe512" / "tokenizer.json")
        pack_tokens([Document("license", "LICENSE", text)], tokenizer, root / "train.bin", progress=False)
        for model in ("gpt", "lstm"):
            runs[model] = root / model
            options = ["--preset", "gpt2-micro", "--model", model, "--n-checkpoints", "1", "--train.steps", "1"]
            options += ["--train.batch-size", "2", "--train.device", "cpu", "--train.precision", "fp32"]
            options += ["--train.eval-every", "0", "--train.progress", "false"]
            assert (
                main(["pretrain", "--train-tokens", str(root / "train.bin"), "--out", str(runs[model]), *options]) == 0
            )
    return runs


@pytest.fixture
def tokenized_runs(_tokenized_runs, monkeypatch) -> dict[str, Path]:
    """``_tokenized_runs``, with ``$WORKBENCH_DATA_DIR`` pointing at their data directory while a test reads them."""
    monkeypatch.setenv(DATA_DIR_ENV, str(_tokenized_runs["data"]))
    return _tokenized_runs
