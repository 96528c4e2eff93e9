"""The layer-transfer sweep's fine-tuning runs: runs per minute on this machine.

Workload: four runs of the CPU recipe's fine-tuning (2560 labels, one epoch of batch 16, 64-token
window, full dev and test evaluation, lambda 0.5), two on ``corrupted_sentence`` and two on
``line_order`` (seeds 0 and 1), the sweep's two tasks. They start from a fresh transformer (the
"no pretraining" runs): a run's speed does not depend on its starting weights, and no pretraining
run is needed. Each round trains them from an empty cache of its own, through the library's job
runner (``transfer._run_jobs``), worker start-up included, as the notebook does.

Contenders (alternating rounds, ``harness.compare``), in runs per minute:

- ``two processes, grouped by length``: the library's path since issue 14: two worker processes of
  one thread each, batches grouped by length.
- ``two processes, random batches``: the path before issue 14 (the baseline): the same processes,
  batches drawn at random, so each pads to the longest of a random draw.
- ``one process, two threads, grouped``: one run at a time with both cores.

Precision is the recipe's (``auto``: bf16 on a CPU with native bf16, as here). Not a contender:
training several runs as one batched model (``torch.func`` + ``vmap``) was not built. ``torch.profiler``
on one update of 32 x 24 tokens put about 40% of the time in the LM head's matrix multiply and the
8192-way log-softmax of the auxiliary objective (the log-softmax and its backward alone 23%), and a
fifth in casts, fills and dropout masks: work that stacking models does not shrink on two cores
(it would pay on a GPU, where small runs leave the device idle). Since issue 16 the auxiliary loss
is computed without its logits (``linear_cross_entropy``): one update of 16 x 40 tokens on one
thread in bf16 went from 71 to 49 ms.

    .venv/bin/python bench/bench_sweep.py [--rounds 2] [--csv out.csv]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable

import pandas as pd
from harness import compare, machine

from workbench.core.options import apply_overrides
from workbench.experiments import transfer
from workbench.experiments.recipes import RECIPES

RUNS = [("corrupted_sentence", 0), ("corrupted_sentence", 1), ("line_order", 0), ("line_order", 1)]


def sweep_runs(group_by_length: bool, threads: int) -> Callable[[], float]:
    """One round: the four runs with these settings, in an empty cache; returns 60 x runs (per minute)."""
    recipe = RECIPES["cpu"]
    settings = apply_overrides(recipe.finetuning, {"group_by_length": group_by_length, "threads": threads})
    jobs = [
        transfer._job(None, task, None, seed, recipe.n_labelled(task), 0.5, settings, recipe.pretraining)
        for task, seed in RUNS
    ]

    def work() -> float:
        with tempfile.TemporaryDirectory() as cache:
            previous = os.environ.get("WORKBENCH_CACHE_DIR")
            os.environ["WORKBENCH_CACHE_DIR"] = cache  # the workers inherit it when they start
            try:
                transfer._run_jobs(jobs, "bench", progress=False)
            finally:
                if previous is None:
                    del os.environ["WORKBENCH_CACHE_DIR"]
                else:
                    os.environ["WORKBENCH_CACHE_DIR"] = previous
        return 60.0 * len(jobs)

    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds per contender (median reported)")
    parser.add_argument("--csv", default=None, help="also write the table to this CSV")
    args = parser.parse_args()
    results = compare(
        "layer-transfer sweep: fine-tuning runs (cpu recipe)",
        {
            "two processes, grouped by length": sweep_runs(True, 1),
            "two processes, random batches": sweep_runs(False, 1),
            "one process, two threads, grouped": sweep_runs(True, 2),
        },
        unit="runs/min",
        baseline="two processes, random batches",
        rounds=args.rounds,
        warmup=0,
    )
    print(machine())
    print(results.to_string(index=False))
    if args.csv:
        pd.DataFrame(results).to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
