"""Progress bars: widgets in Jupyter, text in a terminal, and the terminal of ``reproduce`` for notebooks it runs.

A notebook executed headless by papermill has no front end to draw its widget bars, and its own text
output is written into the executed notebook, not shown. With ``WORKBENCH_PROGRESS_TO_TERMINAL=1``
(``python -m workbench reproduce`` sets it for its kernels) bars are drawn as text on the kernel
process's own stderr, which is the terminal that started ``reproduce``: the user sees every long cell
advance with its estimate, and the executed notebooks hold no bars at all.
"""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm as _auto
from tqdm.std import tqdm as _text

TO_TERMINAL = "WORKBENCH_PROGRESS_TO_TERMINAL"

LOG_INTERVAL = 30.0
"""Seconds between updates when the terminal is a log file (CI), where every update is a new line."""


def tqdm(*args, **kwargs):
    """``tqdm.auto.tqdm``, or a text bar on the process's stderr under :data:`TO_TERMINAL`."""
    if os.environ.get(TO_TERMINAL) != "1" or sys.__stderr__ is None:
        return _auto(*args, **kwargs)
    kwargs["file"] = sys.__stderr__
    if not sys.__stderr__.isatty():
        kwargs.setdefault("mininterval", LOG_INTERVAL)
    return _text(*args, **kwargs)
