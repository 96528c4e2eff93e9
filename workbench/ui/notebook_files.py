"""Notebook files in the form JupyterLab saves them, so that opening a committed notebook changes nothing.

When JupyterLab opens a notebook it starts the notebook's kernel and writes two things the kernel tells it
into the notebook's metadata: ``kernelspec`` (name, display name and language of the kernel spec) and
``language_info``. If either differs from what the file holds, the notebook is modified and autosave
rewrites it. The file then comes back from the browser, in which every JSON number is a JavaScript double:
a float with an integral value (widget state's ``"max": 600.0``) comes back as ``600``. The server writes
it with :func:`nbformat.write`, which also ends the file with a newline.

papermill, which executes the notebooks, leaves ``kernelspec`` as the source notebook had it (here
``"Python 3"``, while ``make install`` registers ``python3`` as ``"Python 3 (workbench)"``), writes
floats as Python does and ends the file without a newline: opening any executed notebook rewrote it
(issue 28). :func:`normalize_notebook` brings an executed notebook into the form a save from JupyterLab
would write, in the environment that executed it; ``language_info`` is already the kernel's (nbclient
records it from the kernel it ran). Outputs keep their content: only integral floats in them (none in
these notebooks) are written as integers, as a save from JupyterLab would.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from ..core.io import atomic_path

# JSON.stringify writes a double with an integral value below 1e21 as an integer, larger ones in exponent form.
_JS_INTEGER_LIMIT = 1e21
_JS_SAFE_INTEGER = 2**53


def javascript_json(value: Any) -> Any:
    """``value`` (parsed JSON) as it reads back after ``JSON.stringify(JSON.parse(...))`` in a browser.

    Numbers become doubles: a float with an integral value below 1e21 is written as an integer
    (``600.0`` -> ``600``), an integer beyond 2**53 rounds to the nearest double, and a value that is not
    finite (NaN, an overflow) becomes ``null``. Everything else is unchanged.
    """
    if isinstance(value, dict):
        return {key: javascript_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [javascript_json(item) for item in value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(value, int) and abs(value) <= _JS_SAFE_INTEGER:
        return value
    try:
        number = float(value)
    except OverflowError:
        return None
    if not math.isfinite(number):
        return None
    return int(number) if number.is_integer() and abs(number) < _JS_INTEGER_LIMIT else number


def kernelspec_metadata(kernel_name: str) -> dict[str, str]:
    """The ``metadata.kernelspec`` JupyterLab writes for a kernel named ``kernel_name`` in this environment."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec(kernel_name)
    return {"display_name": spec.display_name, "language": spec.language, "name": kernel_name}


def normalized_notebook_text(text: str, kernel_name: str | None = None) -> str:
    """The text JupyterLab would save for the notebook ``text`` after opening it with ``kernel_name``'s
    kernel (by default the one its ``metadata.kernelspec`` names)."""
    import nbformat

    notebook = javascript_json(json.loads(text))
    metadata = notebook.setdefault("metadata", {})
    name = kernel_name or metadata.get("kernelspec", {}).get("name")
    if not name:
        raise ValueError("the notebook names no kernel (metadata.kernelspec.name); pass kernel_name")
    metadata["kernelspec"] = kernelspec_metadata(name)
    written = nbformat.writes(nbformat.from_dict(notebook), version=nbformat.NO_CONVERT)
    return written if written.endswith("\n") else written + "\n"  # as nbformat.write, which the server calls


def normalize_notebook(path: str | os.PathLike[str], kernel_name: str | None = None) -> bool:
    """Rewrite the notebook at ``path`` in the form JupyterLab saves it (:func:`normalized_notebook_text`),
    atomically; return whether its bytes changed. Call it on an executed notebook, in the environment that
    executed it: the kernel spec is looked up there."""
    path = Path(path)
    before = path.read_bytes()
    after = normalized_notebook_text(before.decode("utf-8"), kernel_name).encode("utf-8")
    if after == before:
        return False
    with atomic_path(path) as tmp:
        tmp.write_bytes(after)
    return True
