"""``python -m workbench recipes``: every recipe side by side, or one as a YAML file to edit."""

from __future__ import annotations

import argparse

import pandas as pd

from ..core.io import write_text_atomic
from ..experiments.recipes import RECIPES, recipe_yaml, recipes_table
from . import UsageError, arguments

add_arguments = arguments.recipes  # in .arguments: `recipes --help` need not import this module


def run(args: argparse.Namespace) -> int:
    if args.yaml is None:
        if args.out is not None:
            raise UsageError(f"--out {args.out} needs --yaml NAME: which recipe to write (one of {list(RECIPES)})")
        with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 60):
            print(recipes_table().to_string())
        return 0
    text = recipe_yaml(RECIPES[args.yaml])
    if args.out is None:
        print(text, end="")
    else:
        try:
            write_text_atomic(args.out, text)
        except OSError as error:
            raise OSError(
                f"cannot write --out {args.out}: {error.strerror or error} ({error.filename}); "
                "expected a file path in a writable directory"
            ) from error
        print(f"wrote {args.out}; edit it and pass it back with --recipe-file {args.out}")
    return 0
