"""``python -m workbench pretrain``: the pretraining run of a recipe, with overrides (DDP under torchrun).

``python -m workbench pretrain --recipe cpu --train.steps 1200`` builds exactly the spec that the
notebooks build from the same recipe and parameters, and trains it into the experiment cache, where
the notebooks then find it (``--out`` chooses another directory). An interrupted run resumes.
``--tensorboard DIR`` also writes the history rows to TensorBoard (the ``tensorboard`` extra).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

import torch.distributed as dist

from ..core.device import init_distributed
from ..core.options import add_arguments as add_option_arguments
from ..core.options import apply_overrides, overrides_from_args
from ..experiments.pretraining import cache_entry, pretrain
from ..experiments.recipes import RECIPES, PretrainSpec, load_recipe
from ..training.checkpoint import latest_checkpoint
from ..training.sinks import TENSORBOARD_EXTRA, TensorBoardSink
from . import UsageError


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--recipe",
        default="cpu",
        choices=list(RECIPES),
        help="the recipe to start from (the option help shows the cpu recipe's values)",
    )
    parser.add_argument(
        "--recipe-file",
        type=Path,
        default=None,
        metavar="YAML",
        help="a recipe file (python -m workbench recipes --yaml NAME writes one); replaces --recipe",
    )


def recipe_from_args(args: argparse.Namespace):
    return load_recipe(args.recipe_file if args.recipe_file is not None else args.recipe)


def add_tensorboard_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tensorboard",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"also write the history rows to TensorBoard event files in DIR (needs the {TENSORBOARD_EXTRA!r} "
        "extra; view them with tensorboard --logdir DIR); history.csv is written as always",
    )


def tensorboard_sink(log_dir: Path | None) -> contextlib.AbstractContextManager[TensorBoardSink | None]:
    """The ``--tensorboard`` sink (None without the option), closed when the command ends; made
    before any work, so that a missing extra fails at once."""
    return TensorBoardSink(log_dir) if log_dir is not None else contextlib.nullcontext()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_recipe_arguments(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="run directory; default the experiment cache entry of the spec",
    )
    parser.add_argument(
        "--train-tokens",
        type=Path,
        default=None,
        metavar="PATH",
        help="packed training tokens (.npy or a workbench corpus .bin) instead of the books corpus",
    )
    parser.add_argument(
        "--val-tokens",
        type=Path,
        default=None,
        metavar="PATH",
        help="packed validation tokens (with --train-tokens); default no validation",
    )
    add_tensorboard_argument(parser)
    add_option_arguments(parser, PretrainSpec, base=RECIPES["cpu"].pretraining)


def run(args: argparse.Namespace) -> int:
    """Train the spec; bad options raise (``python -m workbench`` prints them as one line)."""
    context = spec = tokens = None
    try:
        spec = apply_overrides(recipe_from_args(args).pretraining, overrides_from_args(args, PretrainSpec))
        if args.val_tokens is not None and args.train_tokens is None:
            raise UsageError("--val-tokens was given without --train-tokens")
        context = init_distributed(spec.train.device)  # join torchrun's job before anything else
        tokens = None if args.train_tokens is None else (args.train_tokens, args.val_tokens)
        with tensorboard_sink(args.tensorboard) as sink:
            result = pretrain(spec, progress=spec.train.progress, run_dir=args.out, tokens=tokens, sink=sink)
    except KeyboardInterrupt:
        if int(os.environ.get("RANK", "0")) == 0 and spec is not None:
            run_dir = args.out or cache_entry(spec, tokens)
            kept = latest_checkpoint(run_dir) if Path(run_dir).exists() else None
            where = f"the latest checkpoint is kept: {kept}" if kept else f"no checkpoint was written yet in {run_dir}"
            print(f"interrupted; {where}; the same command resumes from it")
        return 130
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if context.is_main:
        last = result.history.dropna(subset=["loss"]).iloc[-1]
        print(f"step {int(last['step'])}: loss {last['loss']:.4f}; run directory {result.run_dir}")
    return 0
