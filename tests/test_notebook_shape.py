"""The notebooks stay thin: parameters first, short cells, no definitions, only the public API.

Every ``notebooks/*.ipynb`` is read as JSON (nothing runs) and must have:

- the ``python3`` kernelspec (what papermill, nbval and ``make install``'s kernel use);
- a first code cell tagged ``parameters`` (papermill injects ``-p`` values after it);
- no ``def`` or ``class`` in any code cell: logic lives in the package, where it is tested;
- at most ``MAX_LINES`` non-blank lines per code cell;
- workbench imports from public modules only: ``workbench`` itself or a layer package
  (``workbench.models``, ...), never a submodule such as ``workbench.models.gpt``, whether as
  ``import workbench.models.gpt``, ``from workbench.models.gpt import GPT`` or
  ``from workbench.models import gpt`` (unless the layer exports ``gpt`` in its ``__all__``: then
  the submodule is part of the layer's public API, like ``numpy.linalg``).

Cells are parsed with :mod:`ast`; IPython magics and shell escapes (lines starting with ``%`` or
``!``) become ``pass`` first. A cell under a cell magic whose body is Python (``%%time``, ...) is
checked without its first line; one in another language (``%%bash``, ...) is skipped.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

KERNEL = "python3"
MAX_LINES = 15
PACKAGE = "workbench"
LAYERS = ("core", "data", "models", "training", "evaluation", "experiments", "ui", "cli")
# `cli` is a layer but not for notebooks: they call the library, `python -m workbench` calls them.
PUBLIC_MODULES = {PACKAGE} | {f"{PACKAGE}.{layer}" for layer in LAYERS if layer != "cli"}
PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun", "debug"}


def code_cells(notebook: dict) -> list[tuple[int, str]]:
    """(index among all cells, source) of each code cell."""
    return [
        (index, "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"])
        for index, cell in enumerate(notebook["cells"])
        if cell["cell_type"] == "code"
    ]


def python_source(source: str) -> str | None:
    """The cell as plain Python, IPython-only lines made ``pass`` (line numbers kept); None: not Python."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        if lines[0].lstrip()[2:].split(" ")[0] not in PYTHON_CELL_MAGICS:
            return None
        lines[0] = ""
    return "\n".join(
        line[: len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!")) else line
        for line in lines
    )


def _where(path: Path, index: int, source: str, line: int | None = None, root: Path = ROOT) -> str:
    """``notebooks/x.ipynb cell 4, line 2 ('the line')``: the index counts every cell, from 0."""
    lines = source.splitlines()
    shown = lines[line - 1] if line and line <= len(lines) else next((s for s in lines if s.strip()), "")
    at = f", line {line}" if line else ""
    return f"{path.relative_to(root)} cell {index}{at} ({shown.strip()[:60]!r})"


def _is_module(name: str, root: Path) -> bool:
    """``workbench.models.gpt`` names a module file or package under ``root``."""
    candidate = root.joinpath(*name.split("."))
    return candidate.with_suffix(".py").is_file() or (candidate / "__init__.py").is_file()


def exported_names(package: str, root: Path = ROOT) -> set[str]:
    """The strings of a package's static ``__all__`` (assigned or extended with a list or tuple)."""
    init = root.joinpath(*package.split("."), "__init__.py")
    if not init.is_file():
        return set()
    names: set[str] = set()
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, (ast.AugAssign, ast.AnnAssign))
            else []
        )
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets) and isinstance(
            node.value, (ast.List, ast.Tuple)
        ):
            names |= {e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return names


def private_imports(tree: ast.Module, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, imported module) for every import of a non-public workbench module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            exported = exported_names(node.module, root) if node.module in PUBLIC_MODULES else set()
            names = [node.module] + [
                f"{node.module}.{alias.name}"
                for alias in node.names
                if _is_module(f"{node.module}.{alias.name}", root) and alias.name not in exported
            ]
        else:
            continue
        for name in names:
            if (name == PACKAGE or name.startswith(PACKAGE + ".")) and name not in PUBLIC_MODULES:
                found.append((node.lineno, name))
    return found


def shape_problems(path: Path, root: Path = ROOT) -> dict[str, list[str]]:
    """Every problem of one notebook, by rule; ``root`` holds the package (and names the files)."""

    def where(index: int, source: str, line: int | None = None) -> str:
        return _where(path, index, source, line, root)

    notebook = json.loads(path.read_text(encoding="utf-8"))
    problems: dict[str, list[str]] = {"kernel": [], "parameters": [], "definitions": [], "length": [], "imports": []}
    kernel = notebook.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != KERNEL:
        problems["kernel"].append(f"{path.relative_to(root)}: kernelspec name {kernel!r}, expected {KERNEL!r}")
    cells = code_cells(notebook)
    if not cells:
        problems["parameters"].append(f"{path.relative_to(root)}: no code cells")
    else:
        first = notebook["cells"][cells[0][0]]
        if "parameters" not in first.get("metadata", {}).get("tags", []):
            problems["parameters"].append(f"{where(*cells[0])}: first code cell is not tagged 'parameters'")
    for index, source in cells:
        lines = sum(1 for line in source.splitlines() if line.strip())
        if lines > MAX_LINES:
            problems["length"].append(f"{where(index, source)}: {lines} non-blank lines (at most {MAX_LINES})")
        python = python_source(source)
        if python is None:
            continue
        try:
            tree = ast.parse(python)
        except SyntaxError as error:
            problems["definitions"].append(f"{where(index, source, error.lineno)}: does not parse: {error.msg}")
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                kind = "class" if isinstance(node, ast.ClassDef) else "def"
                problems["definitions"].append(f"{where(index, source, node.lineno)}: {kind} {node.name}")
        for line, name in private_imports(tree, root):
            problems["imports"].append(f"{where(index, source, line)}: imports {name}, not a public module")
    return problems


def _check(path: Path, rule: str) -> None:
    offenders = shape_problems(path)[rule]
    public = f" (public modules: {', '.join(sorted(PUBLIC_MODULES))})" if rule == "imports" else ""
    assert not offenders, f"{len(offenders)} problem(s){public}:\n" + "\n".join(offenders)


_ids = [p.name for p in NOTEBOOKS]


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 5, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_kernel_is_python3(path):
    _check(path, "kernel")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_first_code_cell_is_tagged_parameters(path):
    _check(path, "parameters")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_no_definitions_in_cells(path):
    _check(path, "definitions")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_cells_are_short(path):
    _check(path, "length")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_imports_come_from_public_modules(path):
    _check(path, "imports")


# The checker, on a made-up notebook: each rule catches what it should and nothing else.


def _cell(source: str, tags: tuple[str, ...] = ()) -> dict:
    return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": textwrap.dedent(source), "outputs": []}


def test_the_checker_on_a_made_up_notebook(tmp_path):
    package = tmp_path / PACKAGE
    for module in (
        "__init__.py",
        "models/__init__.py",
        "models/gpt.py",
        "ui/__init__.py",
        "ui/widgets.py",
        "ui/plots.py",
    ):
        (package / module).parent.mkdir(parents=True, exist_ok=True)
        (package / module).write_text("")
    (package / "ui/__init__.py").write_text('from . import plots\n__all__ = ["plots"]\n')
    notebook = {
        "metadata": {"kernelspec": {"name": "workbench-venv"}},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "# Title"},
            _cell("import torch\nsteps = 3"),
            _cell("""\
                %matplotlib inline
                !ls
                import workbench
                from workbench import GPT
                from workbench.models import GPTConfig, gpt
                from workbench.ui.widgets import explorer
                from workbench.ui import plots
                import workbench.models.gpt as gpt_module
                for step in range(steps):
                    %time print(step)
                """),
            _cell("%%time\ndef f():\n    class Inner:\n        pass\n"),
            _cell("\n".join(f"x{i} = {i}" for i in range(MAX_LINES + 1)) + "\n\n\n"),
            _cell("x = (1,"),
            _cell("%%bash\nls -l"),
        ],
    }
    path = tmp_path / "notebook.ipynb"
    path.write_text(json.dumps(notebook))
    problems = {
        rule: [re.sub(r"^notebook\.ipynb ", "", p) for p in found]
        for rule, found in shape_problems(path, tmp_path).items()
    }
    assert problems["kernel"] == ["notebook.ipynb: kernelspec name 'workbench-venv', expected 'python3'"]
    assert problems["parameters"] == ["cell 1 ('import torch'): first code cell is not tagged 'parameters'"]
    assert [p.split(": ", 1)[1] for p in problems["definitions"]] == [
        "def f",
        "class Inner",
        "does not parse: '(' was never closed",
    ]
    assert [p.split(": ", 1)[1].removesuffix(", not a public module") for p in problems["imports"]] == [
        "imports workbench.models.gpt",
        "imports workbench.ui.widgets",
        "imports workbench.models.gpt",
    ]
    assert problems["length"] == [f"cell 4 ('x0 = 0'): {MAX_LINES + 1} non-blank lines (at most {MAX_LINES})"]
