"""A run's metrics log: one history row per logged step, with throughput and MFU.

Each update's numbers stay on the device; a row summarises the updates since the last one with a
single host sync (averaged across ranks), so logging does not stall the accelerator every step. A
:class:`~workbench.training.sinks.MetricsSink` (TensorBoard, ...) receives each row as it is added.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import pandas as pd
import torch
import torch.distributed as dist

from .sinks import MetricsSink


class Update(NamedTuple):
    """What one update leaves for the next history row; tensors stay on the device until then."""

    step: int
    loss: torch.Tensor
    grad_norm: torch.Tensor
    metrics: dict[str, torch.Tensor]
    tokens: int
    lr: float


class TrainingDiverged(FloatingPointError):
    """The loss or gradient norm became NaN or infinite; nothing after the last good step was saved."""


class MetricsLog:
    """The history rows of a run, the tokens trained on so far, and the updates not yet logged.

    ``clock()`` gives the row's ``seconds`` (training time over the whole run); MFU divides the
    model FLOP/s by ``peak_flops`` per device times ``world_size`` (NaN when the peak is unknown).
    ``sink`` receives every row :meth:`add` adds; rows restored from a checkpoint are not sent again.
    """

    def __init__(
        self,
        flops_per_token: float,
        peak_flops: float | None,
        world_size: int,
        clock: Callable[[], float],
        sink: MetricsSink | None = None,
    ) -> None:
        self.flops_per_token = flops_per_token
        self.peak_flops = peak_flops
        self.world_size = world_size
        self.clock = clock
        self.sink = sink
        self.rows: list[dict[str, Any]] = []
        self.tokens = 0
        self._window: list[Update] = []
        self._window_started = time.perf_counter()

    @property
    def history(self) -> pd.DataFrame:
        """One row per logged step: training metrics, and validation metrics where evaluated."""
        # Columns in order of appearance, except that the evaluation-only row of step 0 goes
        # last, so validation columns follow the training ones.
        columns = dict.fromkeys(["step", "tokens", "lr", "loss", "grad_norm"])
        columns.update(dict.fromkeys(k for row in self.rows[1:] + self.rows[:1] for k in row))
        history = pd.DataFrame(self.rows)
        return history[[c for c in columns if c in history]]

    def add(self, row: dict[str, Any]) -> None:
        """Append a finished row (from :meth:`flush`, evaluation merged in) and send it to the sink."""
        self.rows.append(row)
        if self.sink is not None:
            self.sink.log(row["step"], {name: value for name, value in row.items() if name != "step"})

    def record(self, update: Update) -> None:
        self._window.append(update)

    def restart_window(self) -> None:
        """Time throughput from now: evaluations and checkpoints do not count as training."""
        self._window_started = time.perf_counter()

    def flush(self, step: int) -> dict[str, Any]:
        """Summarise the updates since the last row, across ranks; stop on a NaN or inf."""
        window, self._window = self._window, []
        names = sorted(window[0].metrics)
        table = torch.stack(
            [torch.stack([u.loss, u.grad_norm, *(u.metrics[n] for n in names)]) for u in window]
        ).double()
        tokens = sum(u.tokens for u in window)
        if self.world_size > 1:
            dist.all_reduce(table)
            table /= self.world_size
            tokens *= self.world_size  # every rank runs the same micro-batch shapes
        values = table.tolist()  # the one host sync per logged row
        seconds = time.perf_counter() - self._window_started
        for update, (loss, norm, *_) in zip(window, values):
            if not (math.isfinite(loss) and math.isfinite(norm)):
                raise TrainingDiverged(
                    f"training diverged at step {update.step}: loss {loss}, gradient norm {norm} (lr {update.lr:.3g})"
                )
        self.tokens += tokens
        tokens_per_s = tokens / seconds
        peak = self.peak_flops
        mfu = self.flops_per_token * tokens_per_s / (peak * self.world_size) if peak else math.nan
        columns = list(zip(*values))
        row = {
            "step": step,
            "tokens": self.tokens,
            "lr": window[-1].lr,
            "loss": sum(columns[0]) / len(window),
            "grad_norm": sum(columns[1]) / len(window),
        }
        row.update({name: sum(col) / len(window) for name, col in zip(names, columns[2:])})
        row.update(tokens_per_s=tokens_per_s, mfu=mfu, seconds=self.clock())
        return row
