"""``workbench --help`` and the light commands' ``--help`` answer at once: they do not import torch.

Importing torch takes seconds, and every command's module imports it (through workbench.core,
.data or .experiments). Checked by what a fresh interpreter imported, not by timing (machines are noisy).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from workbench.cli import arguments
from workbench.core.paths import REPO_ROOT
from workbench.data.sources import DATA_DIR_ENV
from workbench.data.vocabulary import DEFAULT_VOCAB_SIZE
from workbench.experiments.recipes import RECIPES

HEAVY = ("torch", "pandas")

PROBE = """\
import sys
from workbench.cli import main
status = main(sys.argv[1:])
print("IMPORTED", status, *[name for name in {heavy!r} if name in sys.modules])
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["reproduce", "--help"],
        ["recipes", "--help"],
        ["data", "--help"],
        ["--debug", "data", "-h"],
        ["verify", "-h"],
        ["export", "--help"],
        ["lm-eval", "--help"],
    ],
)
def test_help_imports_no_torch(argv):
    code = PROBE.format(heavy=HEAVY)
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True)
    assert "usage: workbench" in result.stdout
    assert result.stdout.splitlines()[-1] == "IMPORTED 0", result.stdout


def test_pretrain_help_still_lists_the_generated_options():
    result = subprocess.run(
        [sys.executable, "-m", "workbench", "pretrain", "--help"], capture_output=True, text=True, check=True
    )
    assert "--recipe {cpu,gpu,paper}" in result.stdout and "--train.steps" in result.stdout


def test_the_copied_constants_match_their_modules():
    """:mod:`workbench.cli.arguments` copies these to stay light; the originals are the truth."""
    assert arguments.REPO_ROOT == REPO_ROOT
    assert arguments.RECIPE_NAMES == tuple(RECIPES)
    assert arguments.DEFAULT_VOCAB_SIZE == DEFAULT_VOCAB_SIZE
    assert arguments.DATA_DIR_ENV == DATA_DIR_ENV
