"""Training throughput: the workbench Trainer vs Hugging Face ``GPT2LMHeadModel`` with a plain AdamW loop.

Same config (gpt2-mini: 4 layers, width 256, 4 heads, FFN 1024, vocabulary 8192, context 128,
dropout 0.1), same batch (16 x 128 tokens of Python's LICENSE as byte tokens), same process. The
contenders run in turn, round after round (A B C D A B C D ...), the first round is discarded, and
the median tokens/s of each is reported with MFU (6N + 12 L T d FLOPs per token against the
nominal peak of :func:`workbench.device.peak_flops`). Targets: the Trainer with
``precision="auto"`` >= 1.3x the Hugging Face loop, and never slower in float32.
"Hugging Face + bf16 autocast" is shown for context: how much of the gain is bf16 alone.

    .venv/bin/python bench/bench_train.py [--rounds 5] [--steps 8] [--csv out.csv]
"""

from __future__ import annotations

import argparse
import sysconfig
from pathlib import Path

import numpy as np
import torch
import transformers
from harness import compare, machine

from workbench import GPT, GPTConfig
from workbench.device import autocast, peak_flops, resolve_precision
from workbench.pretrain import TokenSampler
from workbench.train import Trainer, TrainConfig, flops_per_token

BATCH = 16
PRESET = "gpt2-mini"


def text_tokens() -> np.ndarray:
    text = (Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt").read_bytes()
    return np.frombuffer(text, dtype=np.uint8).astype(np.uint16)


def workbench_contender(tokens: np.ndarray, precision: str, steps: int):
    """A Trainer that, per call, runs ``steps`` more updates; returns the tokens it trained on."""
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_preset(PRESET))
    config = TrainConfig(steps=10_000, batch_size=BATCH, precision=precision, log_every=10_000,
                         eval_every=0, checkpoint_every=0, progress=False)
    trainer = Trainer(model, lambda plan: TokenSampler.from_plan(tokens, plan), config)

    def run() -> float:
        trainer.train(until=trainer.step + steps)
        return steps * BATCH * model.config.n_ctx

    return run


def huggingface_contender(tokens: np.ndarray, steps: int, dtype: torch.dtype):
    """``GPT2LMHeadModel`` of the same shape, trained by the textbook loop with torch's AdamW."""
    preset = GPTConfig.from_preset(PRESET)
    config = transformers.GPT2Config(
        n_layer=preset.n_layer, n_embd=preset.d_model, n_head=preset.n_head, n_inner=preset.d_ff,
        vocab_size=preset.vocab_size, n_positions=preset.n_ctx, bos_token_id=0, eos_token_id=0,
    )
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2.5e-4, weight_decay=0.01)
    sampler = TokenSampler(tokens, preset.n_ctx, BATCH, seed=0)
    device = torch.device("cpu")

    def run() -> float:
        for _ in range(steps):
            inputs, _ = sampler.next_batch()
            with autocast(device, dtype):
                loss = model(input_ids=inputs, labels=inputs).loss  # HF shifts the labels itself
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return steps * BATCH * preset.n_ctx

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per contender (median reported)")
    parser.add_argument("--steps", type=int, default=8, help="training updates per round")
    parser.add_argument("--csv", default=None, help="also write the table to this CSV")
    args = parser.parse_args()

    tokens = text_tokens()
    cpu = torch.device("cpu")
    auto = resolve_precision("auto", cpu)
    contenders = {
        "hugging face fp32": (huggingface_contender(tokens, args.steps, torch.float32), torch.float32),
        "workbench fp32": (workbench_contender(tokens, "fp32", args.steps), torch.float32),
        "workbench auto": (workbench_contender(tokens, "auto", args.steps), auto),
        "hugging face + bf16 autocast": (huggingface_contender(tokens, args.steps, torch.bfloat16),
                                         torch.bfloat16),
    }
    table = compare("training", {name: run for name, (run, _) in contenders.items()},
                    unit="tokens/s", baseline="hugging face fp32", rounds=args.rounds)
    flops = flops_per_token(GPT(GPTConfig.from_preset(PRESET)), None)
    table["mfu"] = [row.median * flops / peak_flops(cpu, contenders[row.contender][1])
                    for row in table.itertuples()]

    info = machine()
    print(f"{info['cpu']}, {info['threads']} threads, torch {info['torch']}, transformers "
          f"{transformers.__version__}; {PRESET}, batch {BATCH} x 128, {args.steps} updates x "
          f"{args.rounds} rounds; precision auto = {str(auto).removeprefix('torch.')}")
    print(table[["contender", "median", "spread", "ratio", "mfu"]].to_string(
        index=False, formatters={"median": "{:,.0f}".format, "spread": "{:,.0f}".format,
                                 "ratio": "{:.2f}x".format, "mfu": "{:.1%}".format}))
    ratio = table.set_index("contender")["ratio"]
    print(f"workbench auto vs hugging face fp32: {ratio['workbench auto']:.2f}x (target >= 1.3x)")
    print(f"workbench fp32 vs hugging face fp32: {ratio['workbench fp32']:.2f}x (target >= 1.0x)")
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
