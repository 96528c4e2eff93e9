"""Tests never write into the repository's figures/ directory, and Ctrl-C is Ctrl-C.

A shell that starts pytest in the background (``make test &``) hands it SIGINT ignored; the tests of
Ctrl-C handling need Python's usual KeyboardInterrupt, in this process and in the ones it starts.
"""

import os
import signal
import tempfile

import workbench  # noqa: F401  first: it pins PyTorch's CPU kernels before any test runs a tensor operation

signal.signal(signal.SIGINT, signal.default_int_handler)

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["WORKBENCH_FIGURES_DIR"] = os.path.join(tempfile.mkdtemp(prefix="workbench-tests-"), "figures")
