"""``make bench``: run every benchmark, write ``bench/results/<machine>-<date>.json`` + ``.md``,
and put the table into the README between its ``bench:start`` / ``bench:end`` markers.

Each ``bench_*.py`` is a script that takes ``--rounds N`` and ``--csv PATH`` and writes its
results in the harness's columns (:data:`harness.RESULT_COLUMNS`, plus whichever of
:data:`harness.EXTRA_COLUMNS` it measures: precision, MFU, peak memory). Each runs in its own
process, so one benchmark's threads, caches and allocator state cannot colour the next one's numbers.

    .venv/bin/python bench/run.py [--only train generate] [--rounds N] [--no-readme]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from harness import EXTRA_COLUMNS, RESULT_COLUMNS, write_report

BENCH_DIR = Path(__file__).resolve().parent
README = BENCH_DIR.parent / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def discover(only: list[str] | None) -> list[Path]:
    scripts = sorted(BENCH_DIR.glob("bench_*.py"))
    if only:
        unknown = sorted(set(only) - {s.stem.removeprefix("bench_") for s in scripts})
        if unknown:
            raise SystemExit(
                f"unknown benchmarks {unknown}; available: {[s.stem.removeprefix('bench_') for s in scripts]}"
            )
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in only]
    return scripts


def run_script(script: Path, rounds: int | None, extra: list[str]) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as directory:
        csv = Path(directory) / "result.csv"
        command = [sys.executable, str(script), "--csv", str(csv), *extra]
        if rounds is not None:
            command += ["--rounds", str(rounds)]
        print(f"== {script.name}", flush=True)
        subprocess.run(command, check=True, cwd=BENCH_DIR)
        table = pd.read_csv(csv)
    missing = [c for c in RESULT_COLUMNS if c not in table]
    if missing:
        raise SystemExit(f"{script.name} wrote no {missing} columns: expected {RESULT_COLUMNS}")
    return table.reindex(columns=RESULT_COLUMNS + EXTRA_COLUMNS)  # NaN where a script measured none


def update_readme(markdown: str, readme: Path = README) -> None:
    from workbench.core.io import write_text_atomic

    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme} has no {START} ... {END} markers for the benchmark table")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    write_text_atomic(readme, f"{head}{START}\n{markdown}{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=None, help="benchmark names (e.g. train generate)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per contender (default: each script's)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results", help="directory for the JSON and Markdown")
    parser.add_argument("--no-readme", action="store_true", help="do not update the README's table")
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="arguments after -- go to every script")
    args = parser.parse_args(argv)
    extra = args.extra[1:] if args.extra[:1] == ["--"] else args.extra
    tables = [run_script(s, args.rounds, extra) for s in discover(args.only)]
    # infer_objects: a header-only table (the GPU profile without a GPU) turns every column to object.
    results = pd.concat(tables, ignore_index=True).infer_objects()
    json_path, md_path = write_report(results, args.out)
    print(md_path.read_text())
    print(f"wrote {json_path} and {md_path}")
    if not args.no_readme:
        update_readme(md_path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
