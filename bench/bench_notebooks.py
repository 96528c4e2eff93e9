"""Wall time of the pretraining and layer-transfer notebooks at their defaults (budget: 10 minutes
together on a 2-core CPU from an empty experiment cache).

Each round runs ``02_pretraining`` then ``03_layer_transfer`` through papermill, as
``python -m workbench reproduce`` does, with a fresh ``WORKBENCH_CACHE_DIR`` (the data and download
cache stay warm) and figures sent to a scratch directory; then both again on the now warm cache,
which must take seconds. The load average is printed before and after: on a shared machine it says
how much the numbers can be trusted.

    .venv/bin/python bench/bench_notebooks.py [--rounds 1] [--csv out.csv]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import pandas as pd
from harness import RESULT_COLUMNS, machine

from workbench.reproduce import run_notebooks
from workbench.paths import REPO_ROOT

NOTEBOOKS = [REPO_ROOT / "notebooks" / "02_pretraining.ipynb", REPO_ROOT / "notebooks" / "03_layer_transfer.ipynb"]
BUDGET_S = 600


def one_round(scratch: Path) -> dict[str, float]:
    """Seconds per notebook, cold then warm, in a fresh experiment cache under ``scratch``."""
    os.environ["WORKBENCH_CACHE_DIR"] = str(scratch / "cache")
    os.environ["WORKBENCH_FIGURES_DIR"] = str(scratch / "figures")
    seconds = {}
    for phase in ("cold", "warm"):
        table = run_notebooks(NOTEBOOKS, scratch / phase)
        failed = table[table["status"] != "ok"]
        if len(failed):
            raise SystemExit(f"{phase} run failed:\n{failed[['notebook', 'failure', 'output']].to_string()}")
        for row in table.itertuples():
            seconds[f"{row.notebook.removesuffix('.ipynb')} {phase}"] = row.seconds
        seconds[f"02+03 {phase}"] = float(table["seconds"].sum())
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1, help="cold + warm rounds (each about 10 minutes)")
    parser.add_argument("--csv", default=None, help="also write the table to this CSV")
    args = parser.parse_args()
    info = machine()
    print(f"{info['cpu']}, {info['cores']} cores, torch {info['torch']}; load before: {os.getloadavg()}")
    samples: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="bench-notebooks-") as scratch:
            for name, value in one_round(Path(scratch)).items():
                samples.setdefault(name, []).append(value)
    print(f"load after: {os.getloadavg()}")
    baseline = "02+03 cold"
    reference = statistics.median(samples[baseline])
    results = pd.DataFrame(
        [dict(benchmark="notebooks 02+03 wall time", contender=name, unit="s",
              median=statistics.median(values), spread=max(values) - min(values), rounds=args.rounds,
              ratio=statistics.median(values) / reference, baseline=baseline)
         for name, values in samples.items()],
        columns=RESULT_COLUMNS,
    )
    print(results[["contender", "median", "spread", "rounds"]].to_string(index=False))
    verdict = "within" if reference < BUDGET_S else "OVER"
    print(f"02+03 from an empty cache: {reference:.0f} s, {verdict} the {BUDGET_S} s budget")
    if args.csv:
        results.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
