"""Tests never write into the repository's figures/ directory."""

import os
import tempfile

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["WORKBENCH_FIGURES_DIR"] = os.path.join(tempfile.mkdtemp(prefix="workbench-tests-"), "figures")
