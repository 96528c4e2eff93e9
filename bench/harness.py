"""What every benchmark shares: alternating runs, warm-up, median and spread, the machine, the report.

A benchmark compares contenders on one workload. Each contender is a callable that performs one
measured unit of work and returns how much work it did (tokens, examples); the harness times it.
Contenders run in turn, A B A B ..., so that drift of a shared, noisy machine hits all alike; the
first ``warmup`` rounds are discarded.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import socket
import statistics
import time
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

RESULT_COLUMNS = ["benchmark", "contender", "unit", "median", "spread", "rounds", "ratio", "baseline"]


def compare(benchmark: str, contenders: dict[str, Callable[[], float]], unit: str, baseline: str,
            rounds: int = 5, warmup: int = 1) -> pd.DataFrame:
    """Throughput of each contender (work / second): median, spread (max - min), ratio to ``baseline``."""
    if baseline not in contenders:
        raise ValueError(f"baseline {baseline!r} is not one of the contenders {list(contenders)}")
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
    return pd.DataFrame(
        [dict(benchmark=benchmark, contender=name, unit=unit, median=medians[name],
              spread=max(values) - min(values), rounds=rounds,
              ratio=medians[name] / medians[baseline], baseline=baseline)
         for name, values in samples.items()],
        columns=RESULT_COLUMNS,
    )


def machine() -> dict:
    """The facts a reader needs to compare numbers across machines."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = dict(
        host=socket.gethostname(), cpu=cpu, cores=os.cpu_count(), torch=torch.__version__,
        threads=torch.get_num_threads(), python=platform.python_version(),
        device="cuda" if torch.cuda.is_available() else "cpu",
    )
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def write_report(results: pd.DataFrame, directory: str | os.PathLike[str], extra: dict | None = None) -> tuple[Path, Path]:
    """Write ``<machine>-<date>.json`` and the Markdown table beside it; return both paths."""
    from workbench.io import write_text_atomic

    info = machine()
    directory = Path(directory)
    stem = f"{info['device']}-{info['cores']}core-{dt.date.today().isoformat()}"
    payload = dict(machine=info, date=dt.datetime.now().isoformat(timespec="seconds"),
                   results=results.to_dict(orient="records"), **(extra or {}))
    json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
    write_text_atomic(json_path, json.dumps(payload, indent=2, default=str))
    write_text_atomic(md_path, markdown_table(results, info))
    return json_path, md_path


def markdown_table(results: pd.DataFrame, info: dict) -> str:
    gpu = f", {info['gpu']}" if "gpu" in info else ""
    lines = [
        f"Measured on {info['cpu']} ({info['cores']} cores{gpu}), torch {info['torch']}, "
        f"{info['threads']} threads.",
        "",
        "| benchmark | contender | throughput (median) | spread | ratio vs baseline |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in results.itertuples():
        lines.append(
            f"| {row.benchmark} | {row.contender} | {row.median:,.1f} {row.unit} | "
            f"{row.spread:,.1f} | {row.ratio:.2f}x vs {row.baseline} |"
        )
    return "\n".join(lines) + "\n"
