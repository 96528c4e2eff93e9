"""nbval runs the notebooks with their default parameters; keep their outputs out of the repo.

The kernel inherits this process's environment, so pointing the workbench's output directories at
a temporary directory here keeps `pytest --nbval notebooks/` from overwriting `figures/`.

Two more things nbval cannot be told on its command line:

- Widget outputs are not compared. nbval leaves out the ``application/vnd.jupyter.widget-view+json``
  entry (a random model id) but still compares the same output's ``text/plain`` twin: a widget's
  repr, or for tqdm's notebook bars the bar's text with its timings. Here every output that carries
  a widget view is dropped, whole, from both sides before nbval compares them.
- A cell whose stored outputs are all widgets (``parameter_explorer(...)``) is not compared at all,
  only run: what an ``ipywidgets.Output`` inside it displays reaches nbval, which has no front end
  to route it into the widget, as stray ``display_data`` outputs of the cell.
- Markers: every cell of a notebook gets ``notebook``, and ``data`` and ``train`` unless the notebook
  is listed in ``QUICK_NOTEBOOKS``, so ``pytest -m "not data and not train" --nbval notebooks/``
  runs only the notebooks that need neither the data cache nor a training run.
"""

import os
import tempfile

import nbval.plugin
import pytest

from workbench.core.progress import TO_TERMINAL

_scratch = tempfile.mkdtemp(prefix="workbench-nbval-")
os.environ["WORKBENCH_FIGURES_DIR"] = os.path.join(_scratch, "figures")
# Progress bars are drawn as text on each kernel's own stderr (the terminal running pytest), as the
# kernels of `python -m workbench reproduce` draw them. As widgets, a long cell's bar sends thousands of
# messages on the kernel's IOPub channel, which nbval reads only after the cell has finished; past
# ZeroMQ's queue limit the cell's final "idle" status is lost, nbval fails the cell with "Timeout of 5
# seconds exceeded waiting for output" and stops the kernel (02's 1400-update run did, cold, in CI).
os.environ[TO_TERMINAL] = "1"

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

# Notebooks that read no data and train nothing (seconds under nbval); every other one gets the
# `data` and `train` markers.
QUICK_NOTEBOOKS = {"01_parameter_count.ipynb"}


def _without_widget_outputs(transform):
    def transform_without_widgets(outputs):
        return transform([out for out in outputs if WIDGET_VIEW not in out.get("data", {})])

    transform_without_widgets.wrapped = transform
    return transform_without_widgets


# nbval.plugin.IPyNbCell.compare_outputs passes both the stored and the fresh outputs through this
# module-level function before comparing them (nbval 0.11); fail loudly if that ever changes.
if not hasattr(nbval.plugin, "transform_streams_for_comparison"):
    raise ImportError("nbval.plugin.transform_streams_for_comparison is gone: update notebooks/conftest.py")
if not hasattr(nbval.plugin.transform_streams_for_comparison, "wrapped"):
    nbval.plugin.transform_streams_for_comparison = _without_widget_outputs(
        nbval.plugin.transform_streams_for_comparison
    )


def _only_widgets(outputs) -> bool:
    return bool(outputs) and all(WIDGET_VIEW in out.get("data", {}) for out in outputs)


def pytest_collection_modifyitems(items):
    for item in items:
        if not isinstance(item, nbval.plugin.IPyNbCell):
            continue
        if _only_widgets(item.cell.outputs):
            item.options["check"] = False
        item.add_marker(pytest.mark.notebook)
        if item.path.name not in QUICK_NOTEBOOKS:
            item.add_marker(pytest.mark.data)
            item.add_marker(pytest.mark.train)
