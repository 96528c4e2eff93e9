"""`python -m workbench reproduce` on small notebooks written by the test (real kernels, papermill)."""

import nbformat
import pytest

from workbench.cli import main
from workbench.cli.reproduce import run_notebooks, select_notebooks

pytestmark = pytest.mark.notebook


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cells = [nbformat.v4.new_code_cell(s) for s in sources]
    cells[0].metadata["tags"] = ["parameters"]
    nb.cells = cells
    nbformat.write(nb, path)


def test_reports_status_and_names_the_failing_cell(tmp_path, capsys):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(notebooks / "01_ok.ipynb", "x = 1", "y = x + 1")
    _notebook(notebooks / "02_bad.ipynb", "x = 1", "raise ValueError(f'bad x={x}')")
    code = main(["reproduce", "--notebooks", str(notebooks), "--output-dir", str(tmp_path / "out"), "-p", "x", "5"])
    printed = capsys.readouterr().out
    assert code == 1
    assert "01_ok.ipynb" in printed and "ok" in printed
    assert "FAILED 02_bad.ipynb: cell" in printed and "ValueError: bad x=5" in printed
    executed = nbformat.read(tmp_path / "out" / "01_ok.ipynb", as_version=4)
    assert any("x = 5" in c.source for c in executed.cells)  # papermill injected the parameter


def test_selection(tmp_path):
    _notebook(tmp_path / "01_a.ipynb", "pass")
    _notebook(tmp_path / "02_b.ipynb", "pass")
    assert [p.name for p in select_notebooks(tmp_path, ["02"])] == ["02_b.ipynb"]
    with pytest.raises(FileNotFoundError, match="no notebooks to run"):
        select_notebooks(tmp_path, ["09"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        select_notebooks(tmp_path / "missing", None)


def test_all_ok_returns_table(tmp_path):
    _notebook(tmp_path / "01_a.ipynb", "a = 2", "assert a == 2")
    table = run_notebooks(select_notebooks(tmp_path, None), tmp_path / "out")
    assert table["status"].tolist() == ["ok"]
    assert table["seconds"].iloc[0] >= 0


def test_figures_go_to_the_output_folder_and_progress_is_printed(tmp_path, capsys, monkeypatch):
    """Running never changes the repository: without --inplace a notebook's figures land beside the
    executed notebooks; each notebook's start and end are printed as they happen."""
    monkeypatch.delenv("WORKBENCH_FIGURES_DIR", raising=False)
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(
        notebooks / "01_figure.ipynb",
        "name = 'x'",
        "import os\nfrom workbench.core import figures_dir\n(figures_dir() / f'{name}.csv').write_text('a\\n1\\n')\n"
        "assert os.environ['WORKBENCH_PROGRESS_TO_TERMINAL'] == '1'",
    )
    assert main(["reproduce", "--notebooks", str(notebooks), "--output-dir", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert (tmp_path / "out" / "figures" / "x.csv").read_text() == "a\n1\n"
    assert "[1/1] 01_figure.ipynb: started" in printed and "[1/1] 01_figure.ipynb: ok in" in printed
    assert f"executed notebooks: {tmp_path / 'out'}" in printed


def test_a_parameter_no_notebook_declares_is_refused_before_any_work(tmp_path, capsys):
    """papermill only warns about an unknown name and runs the defaults; reproduce refuses it, and gives
    each notebook only the names its parameters cell declares."""
    _notebook(tmp_path / "01_a.ipynb", "x = 1", "assert x == 5")
    _notebook(tmp_path / "02_b.ipynb", "y = 1", "assert y == 1")
    out = tmp_path / "out"
    assert main(["reproduce", "--notebooks", str(tmp_path), "--output-dir", str(out), "-p", "z", "5"]) == 2
    err = capsys.readouterr().err
    assert "-p z: no notebook declares such a parameter; they declare 01_a.ipynb: x; 02_b.ipynb: y" in err
    assert not out.exists()
    assert main(["reproduce", "--notebooks", str(tmp_path), "--output-dir", str(out), "-p", "x", "5"]) == 0
