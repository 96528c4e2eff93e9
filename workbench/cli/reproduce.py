"""Run the notebooks headless with papermill and report a table of status and wall time.

Running never changes the repository: the executed notebooks and their figures go to an output
folder (``runs/reproduce/DATE-TIME/`` by default, ignored by git); ``--inplace`` writes them over the
committed notebooks and into ``figures/`` (or ``$WORKBENCH_FIGURES_DIR``), which is how the committed
outputs are refreshed. Each notebook's start and end are printed as they happen, and the progress bars
of its long cells are drawn on this terminal (:mod:`workbench.core.progress`).
"""

from __future__ import annotations

import argparse
import os
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from ..core.paths import REPO_ROOT
from ..core.progress import TO_TERMINAL
from ..ui.notebook_files import normalize_notebook
from . import UsageError, arguments

KERNEL_NAME = "python3"

add_arguments = arguments.reproduce  # in .arguments: `reproduce --help` need not import this module


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
    notebooks: list[Path], output_dir: Path | None, inplace: bool = False, parameters: dict[Path, dict] | None = None
) -> pd.DataFrame:
    """Execute each notebook (with its ``parameters``), printing its start and end; one row per notebook
    with status, wall time and the failing cell. Figures go to ``output_dir/figures`` unless ``inplace``."""
    import papermill

    output_dir = Path(output_dir or REPO_ROOT / "runs" / "reproduce" / time.strftime("%Y%m%d-%H%M%S"))
    output_dir.mkdir(parents=True, exist_ok=True)
    environment = {TO_TERMINAL: "1"}
    if not inplace:
        environment["WORKBENCH_FIGURES_DIR"] = str(output_dir / "figures")
    rows = []
    with _environment(environment):
        for number, notebook in enumerate(notebooks, 1):
            output = notebook if inplace else output_dir / notebook.name
            print(f"[{number}/{len(notebooks)}] {notebook.name}: started {time.strftime('%H:%M:%S')}", flush=True)
            start = time.perf_counter()
            status, failure = "ok", ""
            try:
                papermill.execute_notebook(
                    str(notebook),
                    str(output),
                    parameters=(parameters or {}).get(notebook, {}),
                    kernel_name=KERNEL_NAME,
                    cwd=str(notebook.parent),
                    progress_bar=False,
                )
            except papermill.PapermillExecutionError as error:
                status = "failed"
                failure = f"cell {error.cell_index} (execution count {error.exec_count}): {error.ename}: {error.evalue}"
            if output.exists():
                normalize_notebook(output)  # as JupyterLab saves it: opening it there rewrites nothing
            seconds = round(time.perf_counter() - start, 1)
            print(f"[{number}/{len(notebooks)}] {notebook.name}: {status} in {seconds:.0f} s -> {output}", flush=True)
            rows.append(
                dict(notebook=notebook.name, status=status, seconds=seconds, output=str(output), failure=failure)
            )
    return pd.DataFrame(rows)


@contextmanager
def _environment(values: dict[str, str]):
    """``values`` in this process's environment (which the notebooks' kernels inherit) for the block;
    a value the user set already is kept."""
    added = {name: value for name, value in values.items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


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


def parameters_per_notebook(notebooks: list[Path], parameters: dict) -> dict[Path, dict]:
    """Each notebook's share of ``parameters``: the names its ``parameters`` cell declares. A name that
    no notebook declares is refused before any work (papermill would only warn, and run the defaults)."""
    import papermill

    declared = {notebook: set(papermill.inspect_notebook(str(notebook))) for notebook in notebooks}
    unknown = sorted(set(parameters) - set().union(*declared.values()))
    if unknown:
        names = "; ".join(f"{n.name}: {', '.join(sorted(names)) or '(none)'}" for n, names in declared.items())
        raise UsageError(f"-p {', '.join(unknown)}: no notebook declares such a parameter; they declare {names}")
    return {notebook: {k: v for k, v in parameters.items() if k in names} for notebook, names in declared.items()}


def run(args: argparse.Namespace) -> int:
    notebooks = select_notebooks(args.notebooks, args.only)
    shares = parameters_per_notebook(notebooks, parse_parameters(args.parameter))
    table = run_notebooks(notebooks, args.output_dir, args.inplace, shares)
    print(table[["notebook", "status", "seconds"]].to_string(index=False))
    where = "over the committed notebooks, figures in figures/" if args.inplace else Path(table["output"][0]).parent
    print(f"executed notebooks: {where}")
    failed = table[table["status"] != "ok"]
    for row in failed.itertuples():
        print(f"FAILED {row.notebook}: {row.failure}\n  executed notebook: {row.output}")
    return 1 if len(failed) else 0
