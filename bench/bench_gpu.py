"""The GPU profile: GPT-2 124M training throughput and MFU through the workbench Trainer.

GPT-2 (the ``gpt2`` preset, 124M parameters; dropout 0, as nanoGPT measures it), context 1024,
bf16 autocast, fused AdamW, flash attention through SDPA (the kernel PyTorch picks for causal bf16
attention on CUDA) and, by default on CUDA, ``torch.compile``. Contenders: the Trainer eager and,
with compile on, the Trainer compiled (its ratio vs eager), alternating rounds as everywhere in
``bench/``. MFU is against the device's bf16 peak (:func:`workbench.core.device.peak_flops`), with the
FLOPs per token counted by torch on one real update and checked against the Trainer's 6N + 12 L T d
(:func:`bench_train.checked_flops_per_token`). Goal on an H100/H200-class GPU (issue 16): >= 50% MFU
(nanoGPT reports about 37% on an A100). Peak memory as in ``bench_train.py``, from the allocator.

On a GPU, one line writes ``bench/results/cuda-<cores>core-<date>.json`` and its table:

    .venv/bin/python bench/run.py --only gpu --no-readme

Without CUDA it says so and writes a CSV of the header only. ``--tiny`` runs the same code path on
the CPU at test size (gpt2-micro, context 64, batch 2, 2 updates, 1 round). Compiled contenders:
the Trainer as it is, with the LM head's logits materialised (the textbook loss) instead of the
chunked linear + cross-entropy, and with nanoGPT's padded vocabulary.

    .venv/bin/python bench/bench_gpu.py [--batch 64] [--micro-batch 32] [--steps 10] [--rounds 3]
        [--compile | --no-compile] [--tiny] [--csv out.csv]
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch
from bench_train import FORMATTERS, TrainerContender, measure_training
from harness import EXTRA_COLUMNS, RESULT_COLUMNS, machine, peak_memory_mb

from workbench import GPTConfig
from workbench.training.trainer import LossFn, lm_loss


def textbook_lm_loss(model, batch):
    """``F.cross_entropy`` over the ``[batch, time, vocab]`` logits, the path before issue 16."""
    inputs, targets = batch
    return model(inputs, targets).loss, {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64, help="sequences per update")
    parser.add_argument(
        "--micro-batch",
        type=int,
        default=32,
        help="sequences per forward pass (gradient accumulation over batch / micro-batch)",
    )
    parser.add_argument("--steps", type=int, default=10, help="training updates per round")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per contender (median reported)")
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also time the Trainer with torch.compile (default: on CUDA)",
    )
    parser.add_argument("--tiny", action="store_true", help="the same path on the CPU at test size")
    parser.add_argument("--csv", default=None, help="also write the table to this CSV")
    parser.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)  # see harness.peak_memories
    args = parser.parse_args()

    if not (args.tiny or torch.cuda.is_available()):
        print("The GPU profile needs a CUDA device and this machine has none (--tiny runs it on the CPU at test size).")
        if args.csv:
            pd.DataFrame(columns=RESULT_COLUMNS + EXTRA_COLUMNS).to_csv(args.csv, index=False)
        return
    if args.tiny:
        args.batch, args.micro_batch, args.steps, args.rounds = 2, None, 2, 1
    device = torch.device("cpu" if args.tiny else "cuda")
    preset = "gpt2-micro" if args.tiny else "gpt2"
    model_config = GPTConfig.from_preset(preset, dropout=0.0)
    compile_model = device.type == "cuda" if args.compile is None else args.compile
    # Random tokens over the whole vocabulary: throughput does not depend on them, and the GPU
    # machine needs no data.
    tokens = np.random.default_rng(0).integers(0, model_config.vocab_size, 1 << 20, dtype=np.uint16)

    def trainer(compiled: bool, config: GPTConfig = model_config, loss_fn: LossFn = lm_loss):
        return lambda: TrainerContender(
            tokens,
            config,
            args.steps,
            loss_fn,
            batch_size=args.batch,
            micro_batch_size=args.micro_batch,
            precision="bf16",
            device=device.type,
            compile=compiled,
            deterministic=False,
        )

    specs = {"trainer eager": (trainer(False), torch.bfloat16)}
    if compile_model:
        specs["trainer compiled"] = (trainer(True), torch.bfloat16)
        # The textbook loss over materialised logits, which Inductor fuses on its own: whether the
        # chunked linear + cross-entropy (the Trainer's lm_loss) pays on this GPU too.
        specs["trainer compiled, logits materialised"] = (trainer(True, loss_fn=textbook_lm_loss), torch.bfloat16)
        padded = -(-model_config.vocab_size // 64) * 64
        if padded != model_config.vocab_size:
            # nanoGPT's trick: a head of 50,304 rows (a multiple of 64) instead of GPT-2's 50,257.
            # Not the released architecture, so a contender, not the default; its MFU counts the
            # unpadded model's FLOPs (0.1% fewer than it does).
            specs[f"trainer compiled, vocabulary padded to {padded:,}"] = (
                trainer(True, model_config.replace(vocab_size=padded)),
                torch.bfloat16,
            )
    if args.memory_of:
        print(peak_memory_mb(lambda: specs[args.memory_of][0]()(), device))
        return

    table = measure_training(
        f"GPU profile: {preset}, context {model_config.n_ctx}",
        specs,
        baseline="trainer eager",
        rounds=args.rounds,
        device=device,
        count_on="trainer eager",
    )
    info = machine()
    micro = args.micro_batch or args.batch
    print(
        f"{info.get('gpu', info['cpu'])}, torch {info['torch']}; {preset}, batch {args.batch} x "
        f"{model_config.n_ctx} (micro-batch {micro}, accumulation {args.batch // micro}), bf16, "
        f"{args.steps} updates x {args.rounds} rounds"
    )
    print(
        table[["contender", "median", "spread", "ratio", "mfu", "peak_memory_mb"]].to_string(
            index=False, formatters=FORMATTERS
        )
    )
    print(f"best MFU {table['mfu'].max():.1%} (goal >= 50% on an H100/H200-class GPU)")
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
