"""The options of ``reproduce``, ``recipes``, ``data``, ``verify``, ``export`` and ``lm-eval``, apart from their
modules: ``--help`` is instant.

Those modules import ``workbench.core``, ``.data`` or ``.experiments``, whose packages import torch
(seconds), and the package keeps workbench imports at module level (tests/test_structure.py). So these
options import only the standard library, and ``workbench COMMAND --help`` imports this module, not the
command's. The constants below copy those the options show; tests/test_cli_speed.py keeps them equal.
"""

from __future__ import annotations

import argparse
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # workbench.core.paths.REPO_ROOT
RECIPE_NAMES = ("cpu", "gpu", "paper")  # the keys of workbench.experiments.recipes.RECIPES
DEFAULT_VOCAB_SIZE = 8192  # workbench.data.vocabulary.DEFAULT_VOCAB_SIZE
DATA_DIR_ENV = "WORKBENCH_DATA_DIR"  # workbench.data.sources.DATA_DIR_ENV


def reproduce(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--notebooks",
        type=Path,
        default=REPO_ROOT / "notebooks",
        help="directory of the notebooks to run (all *.ipynb, in name order)",
    )
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        metavar="NAME",
        help="run only notebooks whose file name starts with one of these",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="where executed notebooks and their figures are written (default: runs/reproduce/DATE-TIME)",
    )
    parser.add_argument(
        "--inplace",
        action="store_true",
        help="write executed notebooks over the inputs and figures into figures/ (refreshes the committed outputs)",
    )
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="papermill parameter passed to every notebook (value parsed as YAML)",
    )


def recipes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--yaml",
        choices=list(RECIPE_NAMES),
        default=None,
        metavar="NAME",
        help=f"print recipe NAME ({', '.join(RECIPE_NAMES)}) as YAML instead of the table",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="with --yaml: write the file here (then pass it back with --recipe-file)",
    )


def data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=("prepare", "fetch"),
        help="prepare: fetch everything and build the tokenizer, packed tokens and "
        "tasks; fetch: only download (straight from the package index pip is configured with: "
        "nothing is built or run), verify and extract the sources",
    )
    parser.add_argument(
        "--vocab-size",
        type=int,
        default=DEFAULT_VOCAB_SIZE,
        help="vocabulary size of the corpus BPE tokenizer (special tokens included)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the split by document")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"data cache (default ${DATA_DIR_ENV} or ~/.cache/gpt-workbench/data)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def verify(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path",
        type=Path,
        metavar="RUN_DIR",
        help="a run directory (every checkpoint under its checkpoints/) or one checkpoint directory",
    )


def export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        type=Path,
        metavar="RUN_OR_CHECKPOINT",
        help="a pretraining run directory (its latest checkpoint; cached runs live under the experiment cache) "
        "or one checkpoint directory (checkpoints/step-N)",
    )
    parser.add_argument(
        "out",
        type=Path,
        metavar="OUT_DIR",
        help="the Hugging Face model directory to write (new, empty, or an earlier export, which is replaced)",
    )


def lm_eval(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        type=Path,
        metavar="RUN_OR_CHECKPOINT",
        help="a pretraining run directory (its latest checkpoint), GPT or LSTM, or one checkpoint directory",
    )
    parser.add_argument(
        "--tasks", required=True, help="lm-evaluation-harness task names, comma-separated (e.g. lambada_openai)"
    )
    parser.add_argument(
        "--include-path", type=Path, default=None, metavar="DIR", help="a folder of your own task YAML files"
    )
    parser.add_argument(
        "--only-include-path",
        action="store_true",
        help="look for --tasks under --include-path only (skips indexing the harness's own tasks: about 20 s)",
    )
    parser.add_argument("--num-fewshot", type=int, default=None, help="examples in each prompt (None: the task's own)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N documents of each task")
    parser.add_argument("--batch-size", type=int, default=32, help="rows per forward pass")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps, ...")
    parser.add_argument("--output", type=Path, default=None, metavar="FILE", help="also write the results as JSON")
