"""Where a run's metrics go besides its ``history.csv``: the :class:`MetricsSink` protocol, and TensorBoard.

The Trainer hands a sink every history row at the moment the row joins the history, as plain Python
numbers: the row already cost the metrics log its one host sync, so a sink adds none. Any tracker
(W&B, MLflow, ...) becomes a sink by implementing the protocol's two methods.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

TENSORBOARD_EXTRA = "tensorboard"
"""The optional dependency group of pyproject.toml that installs TensorBoard."""


class MetricsSink(Protocol):
    """A receiver of a run's history rows; whoever makes one closes it (the Trainer only logs)."""

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        """Record a history row: its columns but ``step``, at optimizer update ``step``."""

    def close(self) -> None:
        """Write out what is buffered and let go of files or connections."""


class MissingExtra(ImportError, RuntimeError):
    """An optional dependency that a requested feature needs is not installed. A RuntimeError too,
    so that the command line reports it in one line, as it does every failure."""


def require_tensorboard() -> type:
    """PyTorch's TensorBoard ``SummaryWriter``, or an error naming the extra that installs it; called
    before any work, so that a sweep asking for TensorBoard fails at once, not in its first run."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise MissingExtra(
            f"TensorBoard logging needs the tensorboard package ({error}): install the workbench's "
            f"{TENSORBOARD_EXTRA!r} extra, pip install 'gpt-workbench[{TENSORBOARD_EXTRA}]'"
        ) from error
    return SummaryWriter


class TensorBoardSink:
    """Every history row as TensorBoard scalars in ``log_dir``, one tag per column (``loss``,
    ``val_loss``, ``tokens_per_s``, ...), the update as the step: ``tensorboard --logdir LOG_DIR``.

    The event file is opened at the first row, with that row's step as TensorBoard's purge step: a run
    resumed from a checkpoint logs again the steps a killed session logged after it, and TensorBoard
    then shows the resumed values only, not both.
    """

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        self._summary_writer = require_tensorboard()
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)  # a path that cannot be a directory fails here
        self._writer: Any = None

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        if self._writer is None:
            self._writer = self._summary_writer(str(self.log_dir), purge_step=step)
        for tag, value in scalars.items():
            self._writer.add_scalar(tag, value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> TensorBoardSink:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
