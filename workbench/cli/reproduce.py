"""Run the notebooks headless with papermill and report a table of status and wall time.

Figures go to ``figures/`` (or ``$WORKBENCH_FIGURES_DIR``); the executed notebooks go to a scratch
directory, or back over the committed ones with ``--inplace`` (how their outputs are refreshed).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from ..core.paths import REPO_ROOT
from . import UsageError

KERNEL_NAME = "python3"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--notebooks",
        type=Path,
        default=REPO_ROOT / "notebooks",
        help="directory of the notebooks to run (all *.ipynb, in name order)",
    )
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        metavar="NAME",
        help="run only notebooks whose file name starts with one of these",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="where executed notebooks are written (default: a new temporary directory)",
    )
    parser.add_argument(
        "--inplace", action="store_true", help="write executed notebooks over the inputs (refreshes committed outputs)"
    )
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="papermill parameter passed to every notebook (value parsed as YAML)",
    )


def select_notebooks(directory: Path, only: list[str] | None) -> list[Path]:
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise FileNotFoundError(f"notebook directory {directory} {what}; expected a directory of *.ipynb files")
    every = sorted(p for p in directory.glob("*.ipynb") if not p.name.startswith("."))
    if not every:
        raise FileNotFoundError(f"no notebooks to run in {directory}: expected *.ipynb files there")
    notebooks = [p for p in every if any(p.name.startswith(prefix) for prefix in only)] if only else every
    if not notebooks:
        raise FileNotFoundError(
            f"no notebooks to run in {directory}: none starts with --only {only}; "
            f"expected a prefix of one of {[p.name for p in every]}"
        )
    return notebooks


def run_notebooks(
    notebooks: list[Path], output_dir: Path | None, inplace: bool = False, parameters: dict | None = None
) -> pd.DataFrame:
    """Execute each notebook; one row per notebook with status, wall time and the failing cell."""
    import papermill

    output_dir = Path(output_dir or tempfile.mkdtemp(prefix="workbench-reproduce-"))
    output_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for notebook in notebooks:
        output = notebook if inplace else output_dir / notebook.name
        start = time.perf_counter()
        status, failure = "ok", ""
        try:
            papermill.execute_notebook(
                str(notebook),
                str(output),
                parameters=parameters or {},
                kernel_name=KERNEL_NAME,
                cwd=str(notebook.parent),
                progress_bar=False,
            )
        except papermill.PapermillExecutionError as error:
            status = "failed"
            failure = f"cell {error.cell_index} (execution count {error.exec_count}): {error.ename}: {error.evalue}"
        rows.append(
            dict(
                notebook=notebook.name,
                status=status,
                seconds=round(time.perf_counter() - start, 1),
                output=str(output),
                failure=failure,
            )
        )
    return pd.DataFrame(rows)


def parse_parameters(pairs: list[list[str]] | list[tuple[str, str]]) -> dict:
    """``-p NAME VALUE`` pairs as papermill parameters, each value read as YAML (``5``, ``null``, ``[0, 1]``)."""
    import yaml

    parameters = {}
    for name, value in pairs:
        if not name.isidentifier():
            raise UsageError(f"-p {name} {value}: the parameter name {name!r} is not a Python identifier")
        try:
            parameters[name] = yaml.safe_load(value)
        except yaml.YAMLError as error:
            problem, mark = getattr(error, "problem", None), getattr(error, "problem_mark", None)
            where = f" ({problem} at character {mark.column + 1})" if problem and mark else ""
            raise UsageError(
                f"-p {name} {value!r}: the value is not valid YAML{where}; expected a YAML value such as "
                "5, 0.1, null, true, abc or [0, 1] (quote a string that is not meant as YAML)"
            ) from None
    return parameters


def run(args: argparse.Namespace) -> int:
    parameters = parse_parameters(args.parameter)
    table = run_notebooks(select_notebooks(args.notebooks, args.only), args.output_dir, args.inplace, parameters)
    print(table[["notebook", "status", "seconds"]].to_string(index=False))
    failed = table[table["status"] != "ok"]
    for row in failed.itertuples():
        print(f"FAILED {row.notebook}: {row.failure}\n  executed notebook: {row.output}")
    return 1 if len(failed) else 0
