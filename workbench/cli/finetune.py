"""``python -m workbench finetune``: fine-tune a checkpoint on a task with GPT-1's L3 = L2 + lambda L1.

The fine-tuning settings are a recipe's (``--recipe paper`` is GPT-1's), with overrides such as
``--train.lr 1e-4`` or ``--epochs none --train.steps 300``. ``--tensorboard DIR`` also writes the
history rows to TensorBoard (the ``tensorboard`` extra).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..core.checks import NON_NEGATIVE_INT, NON_NEGATIVE_NUMBER, POSITIVE_INT, Check
from ..core.options import add_arguments as add_option_arguments
from ..core.options import apply_overrides, overrides_from_args
from ..data.tasks import TASKS, get_task, load_task
from ..data.transforms import encode_examples
from ..data.vocabulary import corpus_tokenizer
from ..experiments.recipes import RECIPES, FinetuneSettings
from ..models.config import PRESETS, GPTConfig
from ..models.gpt import GPT
from ..training import checkpoint as ckpt
from ..training.finetuning import finetune
from ..training.sinks import MetricsSink
from ..training.surgery import transfer
from . import UsageError
from .pretrain import add_recipe_arguments, add_tensorboard_argument, recipe_from_args, tensorboard_sink


def add_arguments(parser) -> None:
    add_recipe_arguments(parser)
    parser.add_argument("--task", required=True, choices=list(TASKS), help="task to fine-tune on")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        metavar="DIR",
        help="a pretraining run directory (its latest checkpoint) or one checkpoint "
        "(checkpoints/step-N); omit to fine-tune without pretraining",
    )
    parser.add_argument(
        "--preset",
        default=None,
        choices=list(PRESETS),
        help="model configuration when there is no --checkpoint; default the recipe's",
    )
    parser.add_argument(
        "--layers",
        type=_checked(int, NON_NEGATIVE_INT),
        default=None,
        help="pretrained blocks to transfer (0 = embeddings only); default all",
    )
    parser.add_argument(
        "--lm-weight", type=_checked(float, NON_NEGATIVE_NUMBER), default=0.5, help="lambda in L3 = L2 + lambda L1"
    )
    parser.add_argument(
        "--n-train", type=_checked(int, POSITIVE_INT), default=None, help="labelled training examples (default all)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="run directory for checkpoints and history.csv; default runs/finetune-TASK",
    )
    add_tensorboard_argument(parser)
    add_option_arguments(parser, FinetuneSettings, base=RECIPES["cpu"].finetuning)


def _checked(convert, check: Check):
    """An argparse ``type``: ``convert`` the text, then ``check`` it; a bad value is a usage error."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {check.expected}, got {text!r}") from None
        if not check.test(value):
            raise argparse.ArgumentTypeError(f"expected {check.expected}, got {text!r}")
        return value

    parse.__name__ = convert.__name__  # argparse names the type in its own messages
    return parse


def run(args) -> int:
    """Fine-tune; bad options raise (``python -m workbench`` prints them as one line)."""
    if args.layers is not None and args.checkpoint is None:
        raise UsageError(f"--layers {args.layers} needs --checkpoint: without pretraining nothing is transferred")
    with tensorboard_sink(args.tensorboard) as sink:
        return _finetune(args, sink)


def _finetune(args, sink: MetricsSink | None) -> int:
    recipe = recipe_from_args(args)
    settings = apply_overrides(recipe.finetuning, overrides_from_args(args, FinetuneSettings))
    task = get_task(args.task)
    pretrained, source = None, args.checkpoint
    if source is not None:
        source = ckpt.checkpoint_of(source, "--checkpoint")
        pretrained = ckpt.load_model(source)
        model_config = pretrained.config
    else:
        model_config = GPTConfig.from_preset(args.preset or recipe.pretraining.preset)
    if settings.n_ctx is not None:
        model_config = model_config.replace(n_ctx=min(settings.n_ctx, model_config.n_ctx))
    if source is None:
        tokenizer = corpus_tokenizer(model_config.vocab_size)
    else:
        tokenizer = ckpt.checkpoint_tokenizer(source)
    torch.manual_seed(settings.train.seed)
    gpt = GPT(model_config)
    if pretrained is not None:
        layers = model_config.n_layer if args.layers is None else args.layers
        copied = transfer(pretrained, gpt, layers)
        print(f"transferred {int(copied['copied'].sum())} tensors: embeddings + {layers} blocks from {source}")
    model = settings.task_model(gpt, task, tokenizer)
    train, dev = (
        encode_examples(task.kind, load_task(args.task, split, n_train=n), tokenizer, model_config.n_ctx)
        for split, n in (("train", args.n_train), ("dev", None))
    )
    config = settings.train.replace(steps=settings.updates(len(train)))
    trainer = finetune(
        model,
        train,
        config,
        tokenizer.pad_id,
        dev=dev,
        lm_weight=args.lm_weight,
        run_dir=args.out or Path("runs") / f"finetune-{args.task}",
        sink=sink,
    )
    print(trainer.history.tail(1).to_string(index=False))
    return 0
