"""Training throughput and peak memory: the workbench Trainer vs Hugging Face ``GPT2LMHeadModel``
with a plain AdamW loop, on the CPU.

Same config (default gpt2-mini: 4 layers, width 256, 4 heads, FFN 1024, vocabulary 8192, context
128, dropout 0.1), same batch (default 16 sequences of Python's LICENSE as byte tokens), same
process. The contenders run in turn, round after round (A B C D A B C D ...), the first round is
discarded, and the median tokens/s of each is reported with its precision, MFU and peak memory.
Targets: the Trainer with ``precision="auto"`` >= 1.3x the Hugging Face loop, and never slower in
float32. "Hugging Face + bf16 autocast" is shown for context: how much of the gain is bf16 alone.

MFU: torch's ``FlopCounterMode`` counts the FLOPs of one real update of the Trainer (forward and
backward), which must agree within 5% with the Trainer's own 6N + 12 L T d, else the script fails:
the MFU of both rests on that arithmetic. MFU = median tokens/s x counted FLOPs per token / the
nominal peak of :func:`workbench.core.device.peak_flops`, printed beside the MFU the Trainer logged.

Peak memory: each contender is built again in a fresh process (``--memory-of NAME``) and trained
for two updates; reported is the peak memory above what that process held before the build
(:func:`harness.peak_memory_mb`).

    .venv/bin/python bench/bench_train.py [--preset gpt2-mini] [--batch 16] [--rounds 5] [--steps 8] [--csv out.csv]
"""

from __future__ import annotations

import argparse
import math
import sysconfig
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import transformers
from harness import compare, machine, peak_memories, peak_memory_mb, precision_name
from torch.utils.flop_counter import FlopCounterMode

from workbench import GPT, GPTConfig
from workbench.core.device import autocast, peak_flops, resolve_precision
from workbench.training.config import TrainConfig
from workbench.training.language_model import TokenSampler
from workbench.training.trainer import Trainer

CPU = torch.device("cpu")
MEMORY_STEPS = 2  # the first update allocates the optimizer state, the second runs with it

# How the training benchmarks print their tables.
FORMATTERS = {
    "median": "{:,.0f}".format,
    "spread": "{:,.0f}".format,
    "ratio": "{:.2f}x".format,
    "mfu": "{:.1%}".format,
    "peak_memory_mb": "{:,.0f} MiB".format,
}

# Each contender's builder (a contender is built only when needed: --memory-of builds one) and
# its autocast dtype.
Specs = dict[str, tuple[Callable[[], Callable[[], float]], torch.dtype]]


def text_tokens() -> np.ndarray:
    text = (Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt").read_bytes()
    return np.frombuffer(text, dtype=np.uint8).astype(np.uint16)


class TrainerContender:
    """The workbench Trainer as a contender: each call runs ``steps`` more updates and returns the
    tokens they trained on. The Trainer logs one history row per call, its own MFU included."""

    def __init__(self, tokens: np.ndarray, model_config: GPTConfig, steps: int, **options) -> None:
        torch.manual_seed(0)
        config = TrainConfig(
            steps=10_000, log_every=10_000, eval_every=0, checkpoint_every=0, progress=False, **options
        )
        self.trainer = Trainer(GPT(model_config), lambda plan: TokenSampler.from_plan(tokens, plan), config)
        self.steps = steps

    def __call__(self) -> float:
        before = self.trainer.tokens
        self.trainer.train(until=self.trainer.step + self.steps)
        return self.trainer.tokens - before

    def logged_mfu(self, rounds: int) -> float:
        """The median of the MFU the Trainer logged over its last ``rounds`` calls."""
        return float(self.trainer.history["mfu"].tail(rounds).median())


def huggingface_contender(tokens: np.ndarray, preset: GPTConfig, batch: int, steps: int, dtype: torch.dtype):
    """``GPT2LMHeadModel`` of the same shape, trained by the textbook loop with torch's AdamW."""
    config = transformers.GPT2Config(
        n_layer=preset.n_layer,
        n_embd=preset.d_model,
        n_head=preset.n_head,
        n_inner=preset.d_ff,
        vocab_size=preset.vocab_size,
        n_positions=preset.n_ctx,
        bos_token_id=0,
        eos_token_id=0,
    )
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2.5e-4, weight_decay=0.01)
    sampler = TokenSampler(tokens, preset.n_ctx, batch, seed=0)

    def run() -> float:
        for _ in range(steps):
            inputs, _ = sampler.next_batch()
            with autocast(CPU, dtype):
                loss = model(input_ids=inputs, labels=inputs).loss  # HF shifts the labels itself
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return steps * batch * preset.n_ctx

    return run


def attention_flops(query: torch.Size, key: torch.Size, *_, **__) -> int:
    """Forward FLOPs of ``softmax(q k^T) v`` from its shapes: two products, 2 FLOPs a multiply-add."""
    batch, heads, queries, width = query
    return 4 * batch * heads * queries * key[2] * width


# FlopCounterMode has no formula for the CPU flash-attention kernel (SDPA without dropout): the
# forward's two products, and the backward's four (as for SDPA's math path).
CPU_ATTENTION_FLOPS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: attention_flops,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: lambda grad_out, query, key, *_, **__: (
        2 * attention_flops(query, key)
    ),
}


def checked_flops_per_token(contender: TrainerContender) -> float:
    """FLOPs per token of one real update of the contender's Trainer, counted by torch.

    Fails loudly where the Trainer's own 6N + 12 L T d differs by more than 5%: its logged MFU
    rests on that arithmetic. (On CUDA torch also counts flash attention's recomputation in the
    backward, about 2% more for GPT-2 at context 1024.)
    """
    trainer = contender.trainer
    before = trainer.tokens
    with FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FLOPS) as counter:
        trainer.train(until=trainer.step + 1)
    counted = counter.get_total_flops() / (trainer.tokens - before)
    ratio = counted / trainer.flops_per_token
    print(
        f"FLOPs per token: counted by torch over one update {counted:,.0f}, the Trainer's "
        f"6N + 12 L T d {trainer.flops_per_token:,.0f}, ratio {ratio:.3f}"
    )
    if abs(ratio - 1) > 0.05:
        raise SystemExit(
            f"FLOPs per token differ by more than 5%: counted {counted:,.0f}, "
            f"the Trainer's {trainer.flops_per_token:,.0f}"
        )
    return counted


def measure_training(
    benchmark: str, specs: Specs, baseline: str, rounds: int, device: torch.device, count_on: str
) -> pd.DataFrame:
    """Every contender's tokens/s, precision, MFU and peak memory.

    Peak memory first, in fresh processes, while this one holds no model; then the FLOPs count on
    ``count_on`` (a :class:`TrainerContender`), then the alternating rounds.
    """
    memory = peak_memories(list(specs), MEMORY_STEPS)
    runs = {name: build() for name, (build, _) in specs.items()}
    flops = checked_flops_per_token(runs[count_on])
    table = compare(benchmark, runs, unit="tokens/s", baseline=baseline, rounds=rounds)
    dtypes = {name: dtype for name, (_, dtype) in specs.items()}
    peaks = {name: peak_flops(device, dtype) for name, dtype in dtypes.items()}
    table["precision"] = [precision_name(dtypes[name]) for name in table["contender"]]
    table["mfu"] = [
        row.median * flops / peaks[row.contender] if peaks[row.contender] else math.nan for row in table.itertuples()
    ]
    table["peak_memory_mb"] = [memory[name] for name in table["contender"]]
    mfu = table.set_index("contender")["mfu"]
    for name, run in runs.items():
        if isinstance(run, TrainerContender):
            print(f"{name}: MFU logged by the Trainer {run.logged_mfu(rounds):.1%}, the benchmark's {mfu[name]:.1%}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="gpt2-mini", help="model preset of every contender")
    parser.add_argument("--batch", type=int, default=16, help="sequences per update")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per contender (median reported)")
    parser.add_argument("--steps", type=int, default=8, help="training updates per round")
    parser.add_argument("--csv", default=None, help="also write the table to this CSV")
    parser.add_argument("--memory-of", default=None, help=argparse.SUPPRESS)  # see harness.peak_memories
    args = parser.parse_args()

    tokens = text_tokens()
    preset = GPTConfig.from_preset(args.preset)
    auto = resolve_precision("auto", CPU)

    def workbench(precision: str):
        return lambda: TrainerContender(
            tokens, preset, args.steps, batch_size=args.batch, precision=precision, device="cpu"
        )

    def huggingface(dtype: torch.dtype):
        return lambda: huggingface_contender(tokens, preset, args.batch, args.steps, dtype)

    specs = {
        "hugging face fp32": (huggingface(torch.float32), torch.float32),
        "workbench fp32": (workbench("fp32"), torch.float32),
        "workbench auto": (workbench("auto"), auto),
        "hugging face + bf16 autocast": (huggingface(torch.bfloat16), torch.bfloat16),
    }
    if args.memory_of:
        print(peak_memory_mb(lambda: specs[args.memory_of][0]()(), CPU))
        return

    table = measure_training(
        "training", specs, baseline="hugging face fp32", rounds=args.rounds, device=CPU, count_on="workbench fp32"
    )
    info = machine()
    print(
        f"{info['cpu']}, {info['threads']} threads, torch {info['torch']}, transformers "
        f"{transformers.__version__}; {args.preset}, batch {args.batch} x {preset.n_ctx}, "
        f"{args.steps} updates x {args.rounds} rounds; precision auto = {precision_name(auto)}"
    )
    print(
        table[["contender", "precision", "median", "spread", "ratio", "mfu", "peak_memory_mb"]].to_string(
            index=False, formatters=FORMATTERS
        )
    )
    ratio = table.set_index("contender")["ratio"]
    print(f"workbench auto vs hugging face fp32: {ratio['workbench auto']:.2f}x (target >= 1.3x)")
    print(f"workbench fp32 vs hugging face fp32: {ratio['workbench fp32']:.2f}x (target >= 1.0x)")
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
