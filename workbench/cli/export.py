"""``python -m workbench export RUN_OR_CHECKPOINT OUT_DIR``: a checkpoint as a Hugging Face model directory.

The directory holds ``config.json``, ``model.safetensors`` and the tokenizer the run was trained with, in the
``gpt2`` layout (pre-LN models) or the ``openai-gpt`` layout (post-LN), so that ``transformers``, lm-eval's
``hf`` model and any other tool that reads those checkpoints take it as is.
"""

from __future__ import annotations

import argparse
import json

from ..models.huggingface import CONFIG_FILE, write_pretrained
from ..training import checkpoint as ckpt
from . import arguments

add_arguments = arguments.export  # in .arguments: `export --help` need not import this module


def run(args: argparse.Namespace) -> int:
    checkpoint = ckpt.checkpoint_of(args.source, "RUN_OR_CHECKPOINT")
    model = ckpt.load_language_model(checkpoint)
    out = write_pretrained(model, ckpt.checkpoint_tokenizer(checkpoint), args.out)
    architecture = json.loads((out / CONFIG_FILE).read_text())["architectures"][0]
    print(f"exported {checkpoint} to {out}: transformers.{architecture}.from_pretrained({str(out)!r}) loads it")
    return 0
