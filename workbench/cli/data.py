"""``python -m workbench data``: fetch and prepare the corpora, tokenizer, packed tokens and tasks."""

from __future__ import annotations

import argparse
import os

import pandas as pd

from ..data.prepare import prepare
from ..data.sources import DATA_DIR_ENV, SOURCES, data_dir, fetch_all
from . import arguments

add_arguments = arguments.data  # in .arguments: `data --help` need not import this module


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
