"""Wall time of the notebooks at their defaults, from an empty experiment cache.

Each round runs the chosen notebooks in order through papermill, as ``python -m workbench
reproduce`` does, with a fresh ``WORKBENCH_CACHE_DIR`` (the data and download caches stay warm)
and figures sent to a scratch directory; then the same notebooks again on the now warm cache,
which must take seconds. The load average is printed before and after: on a shared machine it
says how much the numbers can be trusted.

The default, ``02 03``, is the pair with a 20-minute budget on a 2-core CPU (issue 14; what
``make bench`` runs; ``03`` trains the LSTM of Table 5 when ``04`` has not). ``--notebooks all``
times all of ``make reproduce`` (1753 s from an empty cache on 2026-11-30 after issue 16: 01 10 s,
02 256 s, 03 896 s, 04 587 s, 05 4 s; 32 s warm; before it, 1857 s).
``--reuse-pretraining`` links the pretraining runs of your own experiment cache into the fresh
one, so what is timed is the notebook's own work with its pretraining cached (``--notebooks 04
--reuse-pretraining``: 380 s measured on 2026-11-30; issue 13's budget of 15 minutes for 04 counts its
LSTM and ladder pretraining too, so it has no verdict here).

    .venv/bin/python bench/bench_notebooks.py [--notebooks 02 03] [--reuse-pretraining] [--rounds 1] [--csv out.csv]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import pandas as pd
from harness import RESULT_COLUMNS, machine

from workbench.cli.reproduce import run_notebooks, select_notebooks
from workbench.core.paths import REPO_ROOT
from workbench.experiments import cache_root

BUDGETS_S = {("02", "03"): 1200}


def one_round(notebooks: list[Path], scratch: Path, reuse_pretraining: bool) -> dict[str, float]:
    """Seconds per notebook, cold then warm, in a fresh experiment cache under ``scratch``."""
    own_pretraining = cache_root() / "pretrain"
    os.environ["WORKBENCH_CACHE_DIR"] = str(scratch / "cache")
    os.environ["WORKBENCH_FIGURES_DIR"] = str(scratch / "figures")
    if reuse_pretraining:
        if not own_pretraining.is_dir():
            raise SystemExit(f"--reuse-pretraining: no pretraining runs in {own_pretraining}; run the notebooks first")
        (scratch / "cache").mkdir()
        (scratch / "cache" / "pretrain").symlink_to(own_pretraining)
    seconds = {}
    for phase in ("cold", "warm"):
        table = run_notebooks(notebooks, scratch / phase)
        failed = table[table["status"] != "ok"]
        if len(failed):
            raise SystemExit(f"{phase} run failed:\n{failed[['notebook', 'failure', 'output']].to_string()}")
        for row in table.itertuples():
            seconds[f"{row.notebook.removesuffix('.ipynb')} {phase}"] = row.seconds
        seconds[f"total {phase}"] = float(table["seconds"].sum())
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--notebooks", nargs="+", default=["02", "03"], help="notebook name prefixes, or 'all' (default: 02 03)"
    )
    parser.add_argument(
        "--reuse-pretraining", action="store_true", help="link your cached pretraining runs into the fresh cache"
    )
    parser.add_argument("--rounds", type=int, default=1, help="cold + warm rounds")
    parser.add_argument("--csv", default=None, help="also write the table to this CSV")
    args = parser.parse_args()
    only = None if args.notebooks == ["all"] else args.notebooks
    notebooks = select_notebooks(REPO_ROOT / "notebooks", only)
    names = " + ".join(p.name.split("_")[0] for p in notebooks)
    info = machine()
    print(
        f"{info['cpu']}, {info['cores']} cores, torch {info['torch']}; notebooks {names}"
        f"{' (pretraining reused)' if args.reuse_pretraining else ''}; load before: {os.getloadavg()}"
    )
    samples: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="bench-notebooks-") as scratch:
            for name, value in one_round(notebooks, Path(scratch), args.reuse_pretraining).items():
                samples.setdefault(name, []).append(value)
    print(f"load after: {os.getloadavg()}")
    reference = statistics.median(samples["total cold"])
    benchmark = f"notebooks {names} wall time" + (" (pretraining cached)" if args.reuse_pretraining else "")
    results = pd.DataFrame(
        [
            dict(
                benchmark=benchmark,
                contender=name,
                unit="s",
                median=statistics.median(values),
                spread=max(values) - min(values),
                rounds=args.rounds,
                ratio=statistics.median(values) / reference,
                baseline="total cold",
            )
            for name, values in samples.items()
        ],
        columns=RESULT_COLUMNS,
    )
    print(results[["contender", "median", "spread", "rounds"]].to_string(index=False))
    budget = BUDGETS_S.get(tuple(p.name.split("_")[0] for p in notebooks))
    if budget:
        verdict = "within" if reference < budget else "OVER"
        print(f"{names} from an empty cache: {reference:.0f} s, {verdict} the {budget} s budget")
    if args.csv:
        results.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
