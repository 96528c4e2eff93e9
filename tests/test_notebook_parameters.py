"""A papermill parameter that a notebook does not declare stops the notebook by name (issue 26):
papermill itself only warns and runs the defaults."""

import json
from pathlib import Path

import papermill
import pytest

from workbench.ui import check_parameters

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
DECLARED = '# Parameters (papermill: -p NAME VALUE)\nscale = "cpu"  # the scale\nseeds = [0, 1]\n'


def test_an_injected_name_the_parameters_cell_does_not_declare_is_refused():
    check_parameters(["", DECLARED, "# Parameters\nseeds = [3]\n", "import os"])  # declared: fine
    check_parameters(["", DECLARED, "import os"])  # nothing injected (JupyterLab, nbval): nothing to check
    check_parameters([])
    with pytest.raises(
        ValueError, match=r"unknown notebook parameter\(s\) \['seed'\]: .* declares \['scale', 'seeds'\]"
    ):
        check_parameters(["", DECLARED, '# Parameters\nseed = 3\nscale = "gpu"\n'])


def test_outside_a_kernel_there_is_nothing_to_check():
    check_parameters()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_notebook_checks_its_parameters_before_any_work(path):
    code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", [])
    assert "\ncheck_parameters()" in "".join(code[1]["source"])


@pytest.mark.notebook
def test_papermill_stops_at_a_misspelt_parameter(tmp_path):
    notebook = next(p for p in NOTEBOOKS if p.name.startswith("01"))
    with pytest.raises(papermill.PapermillExecutionError, match=r"unknown notebook parameter\(s\) \['model'\]"):
        papermill.execute_notebook(
            str(notebook),
            str(tmp_path / "out.ipynb"),
            parameters={"model": "gpt2"},
            kernel_name="python3",
            progress_bar=False,
            log_output=False,
        )
