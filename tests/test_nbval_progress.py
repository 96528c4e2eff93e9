"""A long cell's progress bar must not break nbval (``notebooks/conftest.py``).

nbval reads a cell's IOPub messages only after the cell has finished. A widget progress bar sends
thousands of them during a long cell; past ZeroMQ's queue limit the cell's final "idle" status is lost
and nbval fails the cell ("Timeout of 5 seconds exceeded waiting for output"), then stops the kernel:
02's cold 1400-update run failed so in CI. The conftest sends the bars to the kernel's own stderr.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.notebook


def test_a_cell_with_thousands_of_progress_updates_passes_under_nbval(tmp_path):
    flood = (
        "# NBVAL_IGNORE_OUTPUT\n"
        "from workbench.core.progress import tqdm\n\n"
        "for _ in tqdm(range(30_000), mininterval=0, miniters=1):\n"
        "    pass"
    )
    checked = nbformat.v4.new_code_cell("print(1 + 1)", execution_count=2)
    checked.outputs = [nbformat.v4.new_output("stream", name="stdout", text="2\n")]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(flood, execution_count=1), checked])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "long_cell.ipynb")
    shutil.copy(ROOT / "notebooks" / "conftest.py", tmp_path / "conftest.py")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "-p", "no:cacheprovider", "-W", "ignore"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "2 passed" in done.stdout
