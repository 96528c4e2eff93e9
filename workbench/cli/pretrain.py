"""``python -m workbench pretrain``: pretrain a GPT language model on packed tokens (DDP under torchrun)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
import torch.distributed as dist

from ..core.device import init_distributed
from ..models.config import PRESETS, GPTConfig
from ..models.gpt import GPT
from ..training.language_model import default_token_files, open_token_file, train_language_model
from ..training.trainer import add_train_config_arguments, config_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train-tokens", type=Path, default=None, metavar="PATH",
                        help="packed training tokens (.npy or a workbench corpus .bin); default "
                             "the books corpus's train split, prepared for the preset's vocabulary")
    parser.add_argument("--val-tokens", type=Path, default=None, metavar="PATH",
                        help="packed validation tokens; default the books corpus's val split when "
                             "--train-tokens is not given, else no validation")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="run directory for checkpoints and history.csv; default runs/PRESET")
    parser.add_argument("--preset", default="gpt1-mini", choices=list(PRESETS),
                        help="model configuration")
    parser.add_argument("--dropout", type=float, default=None,
                        help="dropout instead of the preset's (GPT-1 and GPT-2 use 0.1)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the latest checkpoint in --out")
    add_train_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    out = args.out or Path("runs") / args.preset
    try:
        config = config_from_args(args)
        context = init_distributed(config.device)  # join torchrun's job before anything else
        overrides = {} if args.dropout is None else {"dropout": args.dropout}
        model_config = GPTConfig.from_preset(args.preset, **overrides)
        train_path, val_path = args.train_tokens, args.val_tokens
        if train_path is None:
            if val_path is not None:
                raise ValueError("--val-tokens was given without --train-tokens")
            train_path, val_path = default_token_files(model_config.vocab_size)
        train_tokens, metadata = open_token_file(train_path, model_config.vocab_size)
        val_tokens = open_token_file(val_path, model_config.vocab_size)[0] if val_path else None
        torch.manual_seed(config.seed)  # the same initial weights on every rank
        model = GPT(model_config)
        trainer = train_language_model(model, train_tokens, val_tokens, config, run_dir=out,
                           resume=args.resume, metadata=metadata)
    except KeyboardInterrupt:
        if int(os.environ.get("RANK", "0")) == 0:
            print(f"interrupted; the latest checkpoint is in {out}; continue with --resume")
        return 130
    except (ValueError, OSError, FloatingPointError) as error:  # bad input or a diverged run
        raise SystemExit(f"pretrain: error: {error}") from error
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    if context.is_main:
        last = trainer.history.dropna(subset=["loss"]).iloc[-1]
        print(f"step {trainer.step}: loss {last['loss']:.4f}; run directory {out}")
    return 0
