"""Zero-shot evaluation of one checkpoint: every readout of every heuristic on the full test splits.

Workload: what ``04_zero_shot`` does for each kept checkpoint: ``score_outcomes`` with every
heuristic on every test example (the acceptability threshold's dev split included), for the CPU
recipe's ``gpt2-slim`` (4 x 128, 8192 tokens, 128-token window) with a seeded initialisation (the
speed of a forward pass does not depend on the weights), in float32 on the CPU.

Contenders (alternating rounds, ``harness.compare``), throughput in distinct requests per second:

- ``one pass, batch 32``: the library's path: every request of every readout collected, each
  distinct one scored once, in one batched pass.
- ``one pass, batch 128``: the same with four times the rows per forward pass.
- ``per heuristic``: the path before issue 13: one scoring pass per heuristic (the batches never
  mix tasks), with the same readouts.
- ``per readout``: each readout scores its own requests (the acceptability line three times,
  the sentiment pair three times, the conditional choices twice), the cost the single pass removes.
- ``two processes, one thread each``: two checkpoints evaluated at once (``04`` evaluates 16),
  in two worker processes of one thread, against the same two in turn with every thread.

bf16 is not a contender: before timing, the per-token log-probabilities of a sample in bf16
autocast are compared with float32 and printed; the issue allows bf16 only where they stay within
1e-3 nats, which a 8192-way softmax in bf16 does not (2.3e-3 measured on 2026-11-30).

    .venv/bin/python bench/bench_zero_shot.py [--rounds 3] [--csv out.csv]
"""

from __future__ import annotations

import argparse
import multiprocessing
import time

import numpy as np
import pandas as pd
import torch
from harness import compare, machine

from workbench import GPT, GPTConfig
from workbench.data.prepare import corpus_tokenizer
from workbench.data.tasks import load_task
from workbench.evaluation.heuristics import HEURISTICS, VERBALIZERS, Inputs, score_outcomes, single_token_verbalizer
from workbench.evaluation.scoring import score

PRESET = "gpt2-slim"


def build(seed: int = 0) -> tuple[GPT, object]:
    torch.manual_seed(seed)
    model = GPT(GPTConfig.from_preset(PRESET, dropout=0.0)).eval()
    return model, corpus_tokenizer(model.config.vocab_size)


def distinct_requests(tokenizer) -> list[tuple[str, str]]:
    """Every distinct request of one checkpoint's evaluation (what the single pass scores)."""
    inputs = Inputs(tokenizer, VERBALIZERS[single_token_verbalizer(tokenizer)])
    requests: dict = {}
    for spec in HEURISTICS.values():
        for example in load_task(spec.task, "test"):
            requests.update(dict.fromkeys(spec.requests(example, inputs)))
        if spec.needs_dev:
            for example in load_task(spec.task, "dev"):
                requests.update(dict.fromkeys(spec.dev_requests(example, inputs)))
    return list(requests)


READOUT_PASSES = {"acceptability": 3, "sentiment": 3, "multiple_choice": 2, "substitution": 1}
"""How many times a readout-by-readout evaluation scores each heuristic's shared requests (the
substitution readouts share none: partial and full scoring are different requests)."""


def per_readout(model, tokenizer, batch_size: int) -> None:
    for name, passes in READOUT_PASSES.items():
        for _ in range(passes):
            score_outcomes(model, tokenizer, name, batch_size=batch_size)


def _worker(seed: int) -> float:
    torch.set_num_threads(1)
    model, tokenizer = build(seed)
    start = time.perf_counter()
    with torch.inference_mode():
        score_outcomes(model, tokenizer)
    return time.perf_counter() - start


def two_processes(pool, n_requests: int) -> float:
    pool.map(_worker, [0, 1])
    return 2 * n_requests


def two_in_turn(model, tokenizer, n_requests: int) -> float:
    for _ in range(2):
        score_outcomes(model, tokenizer)
    return 2 * n_requests


def bf16_difference(model, tokenizer, requests) -> float:
    sample = requests[:: max(1, len(requests) // 500)]
    fp32 = score(model, tokenizer, sample, rolling=True)["logprob_per_token"].to_numpy()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = score(model, tokenizer, sample, rolling=True)["logprob_per_token"].to_numpy()
    return float(np.abs(fp32 - bf16).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per contender (median reported)")
    parser.add_argument("--csv", default=None, help="also write the table to this CSV")
    args = parser.parse_args()
    info = machine()
    print(f"{info['cpu']}, {info['cores']} cores, torch {info['torch']}, {info['threads']} threads")
    model, tokenizer = build()
    requests = distinct_requests(tokenizer)
    n = len(requests)
    print(f"one checkpoint of {PRESET}: {n} distinct requests over {len(HEURISTICS)} heuristics' full test splits")
    difference = bf16_difference(model, tokenizer, requests)
    print(f"bf16 autocast vs float32: max |per-token log-probability difference| {difference:.2e} nats (allowed 1e-3)")
    context = multiprocessing.get_context("spawn")
    with torch.inference_mode(), context.Pool(2) as pool:
        results = compare(
            f"zero-shot evaluation of one {PRESET} checkpoint (full test splits)",
            {
                "one pass, batch 32": lambda: (score_outcomes(model, tokenizer, batch_size=32), n)[1],
                "one pass, batch 128": lambda: (score_outcomes(model, tokenizer, batch_size=128), n)[1],
                "per heuristic": lambda: ([score_outcomes(model, tokenizer, h) for h in HEURISTICS], n)[1],
                "per readout": lambda: (per_readout(model, tokenizer, 32), n)[1],
                "two checkpoints in turn": lambda: two_in_turn(model, tokenizer, n),
                "two processes, one thread each": lambda: two_processes(pool, n),
            },
            unit="requests/s",
            baseline="per readout",
            rounds=args.rounds,
        ).assign(precision="fp32")
    print(
        results[["contender", "median", "spread", "ratio"]].to_string(index=False, float_format=lambda x: f"{x:,.2f}")
    )
    if args.csv:
        pd.DataFrame(results).to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
