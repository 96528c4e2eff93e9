"""What every benchmark shares: alternating runs, warm-up, median and spread, the machine, the report.

A benchmark compares contenders on one workload. Each contender is a callable that performs one
measured unit of work and returns how much work it did (tokens, examples); the harness times it.
Contenders run in turn, A B A B ..., so that drift of a shared, noisy machine hits all alike; the
first ``warmup`` rounds are discarded.

Peak memory is measured per contender in a process of its own (:func:`peak_memories`):
a CPU process's peak resident set never comes down, so a second contender measured in the same
process would see the first one's peak.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from workbench.core.device import resolve_precision

RESULT_COLUMNS = ["benchmark", "contender", "unit", "median", "spread", "rounds", "ratio", "baseline"]
# Optional: only some benchmarks measure them; blank (NaN) in the others' rows. ratio_low and
# ratio_high are the smallest and largest ratio of one round (contender / its baseline in that round).
EXTRA_COLUMNS = ["ratio_low", "ratio_high", "precision", "mfu", "peak_memory_mb"]


def compare(
    benchmark: str,
    contenders: dict[str, Callable[[], float]],
    unit: str,
    baseline: str,
    rounds: int = 5,
    warmup: int = 1,
    baselines: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Throughput of each contender (work / second): median, spread (max - min), and the ratio of
    medians to ``baseline``, or to ``baselines[contender]`` where given (e.g. the peer at the same
    precision), with the lowest and highest ratio of a single round beside it."""
    baselines = {name: (baselines or {}).get(name, baseline) for name in contenders}
    unknown = sorted({b for b in baselines.values() if b not in contenders})
    if unknown:
        raise ValueError(f"baselines {unknown} are not among the contenders {list(contenders)}")
    if rounds < 1 or warmup < 0:
        raise ValueError(f"rounds must be >= 1 and warmup >= 0, got {rounds} and {warmup}")
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for round_index in range(warmup + rounds):
        for name, work in contenders.items():
            start = time.perf_counter()
            amount = work()
            elapsed = time.perf_counter() - start
            if round_index >= warmup:
                samples[name].append(amount / elapsed)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    rows = []
    for name, values in samples.items():
        per_round = [mine / theirs for mine, theirs in zip(values, samples[baselines[name]])]
        rows.append(
            dict(
                benchmark=benchmark,
                contender=name,
                unit=unit,
                median=medians[name],
                spread=max(values) - min(values),
                rounds=rounds,
                ratio=medians[name] / medians[baselines[name]],
                baseline=baselines[name],
                ratio_low=min(per_round),
                ratio_high=max(per_round),
            )
        )
    return pd.DataFrame(rows, columns=RESULT_COLUMNS + ["ratio_low", "ratio_high"])


def precision_name(dtype: torch.dtype) -> str:
    """``"fp32"`` or ``"bf16"``, the names ``TrainConfig.precision`` takes."""
    return {torch.float32: "fp32", torch.bfloat16: "bf16"}[dtype]


def peak_memory_mb(work: Callable[[], object], device: torch.device) -> float:
    """Peak memory, in MiB, that ``work()`` adds to what this process held just before it.

    On CUDA the allocator's exact peak; on a CPU the peak resident set (``ru_maxrss``, KiB on
    Linux) above the resident set before ``work`` (``/proc/self/statm``). That includes what the
    process loads on first use, except torch's compiler stack (about 70 MiB, which optimizers
    import when built), loaded here first because it is the same for every contender.
    """
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        work()
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    importlib.import_module("torch._dynamo")  # not `import torch._dynamo`: that makes `torch` local
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    before = pages * os.sysconf("SC_PAGE_SIZE")
    work()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before) / 2**20


def peak_memories(contenders: list[str], steps: int) -> dict[str, float]:
    """Each contender's :func:`peak_memory_mb`, from this script's command line run again with
    ``--memory-of CONTENDER --steps STEPS`` in a fresh process that prints it as its last line.

    One after the other: on a 2-core CPU, processes running side by side slow each other down
    many times over (their OpenMP threads spin while they wait for a core).
    """
    memories = {}
    for name in contenders:
        command = [sys.executable, *sys.argv, "--memory-of", name, "--steps", str(steps)]
        output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
        memories[name] = float(output.split()[-1])
    return memories


def machine() -> dict:
    """The facts a reader needs to compare numbers across machines."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    info = dict(
        host=socket.gethostname(),
        cpu=cpu,
        cores=os.cpu_count(),
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        python=platform.python_version(),
        device=device.type,
        precision=precision_name(resolve_precision("auto", device)),
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
    )
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def write_report(
    results: pd.DataFrame, directory: str | os.PathLike[str], extra: dict | None = None
) -> tuple[Path, Path]:
    """Write ``<machine>-<date>.json`` and the Markdown table beside it; return both paths."""
    from workbench.core.io import write_text_atomic

    info = machine()
    directory = Path(directory)
    stem = f"{info['device']}-{info['cores']}core-{dt.date.today().isoformat()}"
    records = results.astype(object).where(results.notna(), None).to_dict(orient="records")  # NaN is no JSON
    payload = dict(machine=info, date=dt.datetime.now().isoformat(timespec="seconds"), results=records, **(extra or {}))
    json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
    write_text_atomic(json_path, json.dumps(payload, indent=2, default=str))
    write_text_atomic(md_path, markdown_table(results, info))
    return json_path, md_path


def markdown_table(results: pd.DataFrame, info: dict) -> str:
    gpu = f", {info['gpu']}" if "gpu" in info else ""
    lines = [
        f"Measured on {info['cpu']} ({info['cores']} cores, {info['cpu_capability']}{gpu}), "
        f"torch {info['torch']}, {info['threads']} threads; default precision {info['precision']}.",
        "",
        "| benchmark | contender | precision | throughput (median) | spread | ratio vs baseline | MFU "
        "| peak memory (MiB) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in results.reindex(columns=RESULT_COLUMNS + EXTRA_COLUMNS).itertuples():
        lines.append(
            f"| {row.benchmark} | {row.contender} | {_cell(row.precision, '{}')} | "
            f"{row.median:,.1f} {row.unit} | {row.spread:,.1f} | "
            f"{row.ratio:.2f}x{_ratio_range(row)} vs {row.baseline} | "
            f"{_cell(row.mfu, '{:.1%}')} | {_cell(row.peak_memory_mb, '{:,.0f}')} |"
        )
    return "\n".join(lines) + "\n"


def _ratio_range(row) -> str:
    """`` [low-high]``: the ratio's range over single rounds; blank where there is none to show."""
    if pd.isna(row.ratio_low) or row.contender == row.baseline:
        return ""
    return f" [{row.ratio_low:.2f}-{row.ratio_high:.2f}]"


def _cell(value: object, template: str) -> str:
    """``template`` filled with ``value``; blank where the benchmark did not measure it."""
    return "" if pd.isna(value) else template.format(value)
