"""Threads per training run on a CPU: the CPU recipe's pretraining with 1 and with 2 torch threads,
on an idle machine and on one where another process keeps a core busy (issue 28).

Why: on a loaded 2-core machine torch's default of one thread per core (2) trained 4-6x slower
than 1 thread (310-344 against 1,469-1,845 tokens/s), so the CPU recipe fixes ``threads=1`` per run
(``TrainConfig.threads``, applied by the Trainer with ``workbench.core.device.torch_threads``) and
runs independent runs side by side, one per core. This benchmark checks that choice on the machine
as it is: the default must not be 4x slower than the alternative, idle or loaded.

Workload: the Trainer on ``RECIPES["cpu"].pretraining``'s model and optimisation (gpt2-slim: 4
layers of width 128, vocabulary 8192, context 128, dropout 0.1; batch 16 x 128, fp32, AdamW with
the recipe's learning rate and clipping), on real batches: Python's LICENSE as byte tokens, drawn
by ``TokenSampler`` as in ``bench_train.py``. Each contender keeps its own Trainer and runs
``--steps`` more updates per round.

Contenders (alternating rounds, ``harness.compare``, the first round discarded), in tokens/s:
``(threads, condition)`` for threads 1 and 2, condition ``idle`` or ``one core busy``. The load is
one other process, a tight pure-Python loop pinned to no core, in a session of its own (as another
job's would be: Linux's autogroups share the CPU between sessions first), started once and paused
(``SIGSTOP``) except while a loaded contender trains: it is resumed (``SIGCONT``) just before that
contender's updates and paused again just after them. The share of a core it got is printed, as a
check that it ran. Each 1-thread contender's ratio is to 2 threads in the same condition, with the
range of the single rounds' ratios; each 2-thread contender is its own baseline. ``--steps`` (6)
is sized for a quiet 2-core machine, where ``--rounds 3`` should take about 2 minutes (not yet
timed there); on a busy one, pass fewer.

    .venv/bin/python bench/bench_threads.py [--rounds 3] [--steps 6] [--csv out.csv]

Found (2026-12-07, AMD EPYC, 2 cores, torch 2.13.0+cpu; ``--rounds 2 --steps 2``, two runs): NOT
a quiet machine. A background job kept both cores busy (load average 6-8), so "idle" was itself
loaded and the load process got only a third of a core. Under that, 1 thread trained 1,525 and
1,622 tokens/s idle against 401 and 331 for 2 threads (3.8x and 4.9x; single rounds 3.5-5.3x),
and 1,296 and 1,284 with one core busy against 217 and 298 (6.0x and 4.3x; 3.9-7.3x): 1 thread
was the faster in every round, by about as much as issue 28 saw.

Found on a quiet machine (2026-12-07, the same kind of AMD EPYC, 2 cores, no AVX-512; ``--rounds 3
--steps 6``, 3 min; the load process got 98% of a core): idle, 1 thread trained 1,964 tokens/s against
3,195 for 2 threads (0.61x, rounds 0.58-0.63x); with one core busy, 1,988 against 462 (4.30x,
4.04-4.52x). 2 threads lose 86% of their speed to one busy core, 1 thread nothing. So a lone run on an
idle machine would be 1.6x faster with 2 threads, but two 1-thread runs side by side (what the CPU
recipe's experiments do: GPT and LSTM in 02, the ladder in 04, the sweep's two workers in 03) train
3,928 tokens/s together, 1.23x one 2-thread run, and lose nothing when the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench_train import FORMATTERS, TrainerContender, text_tokens
from harness import compare, machine

from workbench.experiments.recipes import RECIPES

THREADS = (1, 2)
CONDITIONS = ("idle", "one core busy")
# The options TrainerContender sets itself (a long run that never evaluates, saves or shows a bar).
OWN_OPTIONS = {"steps", "log_every", "eval_every", "checkpoint_every", "progress"}
BUSY_LOOP = "while True:\n    pass\n"


def contender_name(threads: int, condition: str) -> str:
    return f"{threads} thread{'s' if threads > 1 else ''}, {condition}"


class CoreLoad:
    """Another process that keeps one core busy while it runs: a tight pure-Python loop, pinned to
    no core. Started paused; ``with load:`` resumes it for the block and pauses it again after."""

    def __init__(self) -> None:
        # A session of its own, as another job's would be: Linux's autogroups share the CPU fairly
        # between sessions first, so in this script's session the loop would split the session's share
        # with the trainer's threads (15% of a core on a loaded machine, against 33% on its own).
        self.process = subprocess.Popen([sys.executable, "-c", BUSY_LOOP], start_new_session=True)
        os.kill(self.process.pid, signal.SIGSTOP)
        self.running_s = 0.0
        self._resumed = 0.0

    def __enter__(self) -> CoreLoad:
        os.kill(self.process.pid, signal.SIGCONT)
        self._resumed = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)
        self.running_s += time.perf_counter() - self._resumed

    def cpu_seconds(self) -> float | None:
        """CPU time the loop has used (user + system, from ``/proc``); None where there is no ``/proc``."""
        stat = Path(f"/proc/{self.process.pid}/stat")
        if not stat.exists():
            return None
        fields = stat.read_text().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

    def close(self) -> None:
        self.process.kill()  # SIGKILL also ends a stopped process
        self.process.wait()


def trainer_contender(tokens, threads: int, steps: int) -> TrainerContender:
    """The CPU recipe's pretraining run, on the CPU with ``threads`` torch threads, ``steps`` updates a call."""
    spec = RECIPES["cpu"].pretraining
    options = {k: v for k, v in spec.train.to_dict().items() if k not in OWN_OPTIONS}
    return TrainerContender(tokens, spec.gpt_config, steps, **(options | {"threads": threads, "device": "cpu"}))


def under(load: CoreLoad | None, run: Callable[[], float]) -> Callable[[], float]:
    """``run``, with ``load`` running for exactly its duration (none: as it is)."""
    if load is None:
        return run

    def loaded() -> float:
        with load:
            return run()

    return loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per contender (median reported)")
    parser.add_argument("--steps", type=int, default=6, help="training updates per contender per round")
    parser.add_argument("--csv", default=None, help="also write the table to this CSV")
    args = parser.parse_args()

    spec = RECIPES["cpu"].pretraining
    tokens = text_tokens()
    load = CoreLoad()
    try:
        contenders, baselines = {}, {}
        for condition in CONDITIONS:
            for threads in THREADS:
                name = contender_name(threads, condition)
                run = trainer_contender(tokens, threads, args.steps)
                contenders[name] = under(load if condition != "idle" else None, run)
                baselines[name] = contender_name(max(THREADS), condition)
        table = compare(
            f"training, cpu recipe ({spec.preset}, batch {spec.train.batch_size} x {spec.gpt_config.n_ctx}, "
            f"{spec.train.precision}): threads per run",
            contenders,
            unit="tokens/s",
            baseline=contender_name(max(THREADS), CONDITIONS[0]),
            rounds=args.rounds,
            baselines=baselines,
        )
        busy = load.cpu_seconds()
        running = load.running_s
    finally:
        load.close()
    table["precision"] = spec.train.precision

    info = machine()
    print(
        f"{info['cpu']}, {info['cores']} cores, torch {info['torch']}; {spec.preset}, batch "
        f"{spec.train.batch_size} x {spec.gpt_config.n_ctx}, {spec.train.precision}, {args.steps} updates x "
        f"{args.rounds} rounds (+1 discarded)"
    )
    if busy is not None and running > 0:
        print(f"the load process used {busy / running:.0%} of a core while it ran ({busy:.1f} s of {running:.1f} s)")
    print(
        table[["contender", "median", "spread", "ratio", "ratio_low", "ratio_high", "baseline"]].to_string(
            index=False,
            formatters=FORMATTERS | {"ratio_low": "{:.2f}x".format, "ratio_high": "{:.2f}x".format},
        )
    )
    medians = table.set_index("contender")["median"]
    for threads in THREADS:
        idle, loaded = (medians[contender_name(threads, condition)] for condition in CONDITIONS)
        print(f"{contender_name(threads, 'one core busy')}: {loaded / idle:.2f}x its idle throughput")
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
