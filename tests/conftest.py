"""Tests never write into the repository's figures/ directory, and Ctrl-C is Ctrl-C; ``license_tokens``
is the small real token file the training tests share.

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
