"""A papermill parameter that the notebook does not declare is an error, not a warning.

papermill injects the parameters it is given as a cell right after the notebook's ``parameters`` cell,
and only warns about a name that cell does not declare: the notebook then runs its defaults, and a
misspelt ``-p seed 3`` looks like a success. :func:`check_parameters`, the first call of every
notebook's second code cell, reads the cells the kernel has run (IPython's ``In``), compares the
names the injected cell assigns with those the parameters cell declares, and refuses the unknown ones
by name. ``python -m workbench reproduce`` checks the same before it starts any notebook.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from IPython import get_ipython

INJECTED = "# Parameters\n"
"""How papermill's injected cell begins (the notebooks' own parameters cell says more on its first line)."""


def assigned_names(source: str) -> set[str]:
    """The names a cell assigns at its top level."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        names.update(target.id for target in targets if isinstance(target, ast.Name))
    return names


def check_parameters(cells: Sequence[str] | None = None) -> None:
    """Raise ``ValueError`` naming any parameter papermill injected that the parameters cell (the first
    cell run) does not declare. ``cells``: the sources run so far, in order (default: the kernel's ``In``);
    outside a kernel, or with no injected cell (JupyterLab, nbval), there is nothing to check."""
    if cells is None:
        shell = get_ipython()
        cells = shell.user_ns.get("In", []) if shell is not None else []
    sources = [cell for cell in cells if cell.strip()]
    injected = [cell for cell in sources if cell.startswith(INJECTED)]
    if not injected:
        return
    declared = assigned_names(sources[0])
    unknown = sorted(set().union(*map(assigned_names, injected)) - declared)
    if unknown:
        raise ValueError(
            f"unknown notebook parameter(s) {unknown}: this notebook's parameters cell declares "
            f"{sorted(declared)} (papermill only warns, and would run the defaults)"
        )
