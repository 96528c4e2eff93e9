"""Saving and resuming a Trainer's run, so that a resumed run continues bit for bit.

A checkpoint holds the weights, the optimizer state, the batch source's position, every rank's
RNG state and the history (file layout: :mod:`workbench.training.checkpoint`). Resuming refuses a
checkpoint of another model, data or recipe, naming what differs.

One process at a time writes a run directory: rank 0's Checkpointer holds the directory's lock
(:func:`workbench.core.locks.directory_lock`) from the Trainer's creation to the end of its
``train()``, and again during each later ``train()``. Code that reads and writes the directory
around training (``pretrain()`` marks a run done) holds it with :func:`hold_run_directory`, and the
Trainers it makes there use that hold.
"""

from __future__ import annotations

import base64
import contextlib
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch import nn

from ..core.device import DistributedContext
from ..core.io import atomic_path
from ..core.locks import directory_lock
from . import checkpoint as ckpt
from .config import RESUME_FIXED, TrainConfig
from .metrics import MetricsLog
from .schedules import Schedule

if TYPE_CHECKING:
    from .trainer import BatchSource

CHECKPOINT_FORMAT = 1


def rank_seed(seed: int, rank: int) -> int:
    """The seed of one rank's dropout stream: distinct per rank, fixed by the run's seed."""
    return seed * 1_000_003 + rank


class _Hold:
    """This process's hold on a run directory's lock, and whether a Trainer writes there now."""

    def __init__(self, key: Path, what: str, trainer: bool) -> None:
        self.key, self.what, self.trainer = key, what, trainer

    @property
    def current(self) -> bool:
        """Whether the lock is still held for a Trainer (a hold_run_directory block may have ended)."""
        return self.trainer and _holds.get(self.key) is self


_holds: dict[Path, _Hold] = {}  # by resolved path; a process must not take its own lock twice
_holds_guard = threading.Lock()


def _in_use_here(run_dir: Path, by: str) -> RuntimeError:
    return RuntimeError(
        f"run directory {run_dir} is already in use by {by} of this process (pid {os.getpid()}): let its "
        "train() finish or close() it before making another Trainer there, or choose another directory"
    )


@contextlib.contextmanager
def hold_run_directory(
    run_dir: str | os.PathLike[str], *, wait: bool = False, what: str = "run directory"
) -> Iterator[Path]:
    """Hold ``run_dir``'s lock for the ``with`` block; a Trainer made inside it (one at a time) writes
    there under this hold instead of locking again.

    ``wait=False`` fails at once with :class:`~workbench.core.locks.DirectoryLocked` naming the
    directory and the process that holds it; ``wait=True`` waits for that process to finish.
    """
    run_dir = Path(run_dir)
    key = run_dir.resolve()
    with _holds_guard:
        if key in _holds:
            raise _in_use_here(run_dir, f"a {_holds[key].what} hold")
    with directory_lock(run_dir, wait=wait, what=what):
        with _holds_guard:
            _holds[key] = _Hold(key, what, trainer=False)
        try:
            yield run_dir
        finally:
            with _holds_guard:
                _holds.pop(key, None)


def _claim_run_directory(run_dir: Path) -> tuple[_Hold, Callable[[], None]]:
    """Take ``run_dir`` for one Trainer: this process's :func:`hold_run_directory` of it, else the
    directory's lock (failing at once when another process holds it). Returns the hold and what
    gives it back."""
    key = run_dir.resolve()
    with _holds_guard:
        hold = _holds.get(key)
        if hold is not None:
            if hold.trainer:
                raise _in_use_here(run_dir, "another Trainer")
            hold.trainer = True

            def give_back() -> None:
                hold.trainer = False

            return hold, give_back
    stack = contextlib.ExitStack()
    stack.enter_context(directory_lock(run_dir, what="run directory"))
    hold = _Hold(key, "run directory", trainer=True)
    with _holds_guard:
        _holds[key] = hold

    def release() -> None:
        with _holds_guard:
            if _holds.get(key) is hold:
                del _holds[key]
        stack.close()

    return hold, release


class Checkpointer:
    """The checkpoints of one run directory (``None``: none are written) for one Trainer's state.

    Saving is collective: every rank's RNG state is gathered over ``control`` (a gloo group, None
    on one process), and rank 0 writes. Loading restores the model, optimizer, batch source, RNG
    and ``log`` in place. Rank 0 holds the run directory from creation until :meth:`release` (or
    garbage collection); :meth:`acquire` takes it again.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str] | None,
        *,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        batches: BatchSource,
        log: MetricsLog,
        config: TrainConfig,
        schedule: Schedule,
        model_config: dict[str, Any] | None,
        param_names: list[str],
        metadata: dict[str, Any],
        dist_context: DistributedContext,
        device: torch.device,
        control: dist.ProcessGroup | None,
    ) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.model, self.optimizer, self.batches, self.log = model, optimizer, batches, log
        self.config, self.schedule = config, schedule
        self.model_config, self.param_names, self.metadata = model_config, param_names, metadata
        self.dist, self.device, self.control = dist_context, device, control
        self._hold: _Hold | None = None
        self._release: weakref.finalize | None = None
        self.acquire()

    @property
    def writes(self) -> bool:
        """Whether this process writes the run directory (rank 0 of a run with one)."""
        return self.run_dir is not None and self.dist.is_main

    def acquire(self) -> None:
        """Take the run directory, failing at once if another process holds it, and delete what a
        killed run left half-written there (only under the lock: it may be another run's work)."""
        if not self.writes or self.holds:
            return
        self.release()
        self._hold, release = _claim_run_directory(self.run_dir)
        self._release = weakref.finalize(self, release)  # also when the Trainer is garbage-collected
        try:
            ckpt.remove_stale_temporaries(self.run_dir)
            for stale in self.run_dir.glob(f".{ckpt.HISTORY_FILE}.*.tmp"):
                stale.unlink(missing_ok=True)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Give the run directory back (a no-op when not held)."""
        if self._release is not None:
            self._release()
        self._hold = self._release = None

    @property
    def holds(self) -> bool:
        """Whether this Checkpointer holds its run directory's lock now."""
        return self._hold is not None and self._hold.current

    def _check_held(self) -> None:
        if not self.holds:
            raise RuntimeError(f"run directory {self.run_dir} would be written without holding its lock")

    def latest(self) -> Path | None:
        return ckpt.latest_checkpoint(self.run_dir) if self.run_dir is not None else None

    def resume_path(self, resume: bool | str | os.PathLike[str]) -> Path | None:
        """The checkpoint ``resume`` names (True: the latest), or None to start afresh.

        Starting afresh in a directory that holds checkpoints is an error: it would mix two runs.
        """
        latest = self.latest()
        if resume is False:
            if latest is not None:
                raise FileExistsError(
                    f"{self.run_dir} already holds checkpoints (latest {latest.name}); pass "
                    "resume=True to continue that run, or choose a new run_dir"
                )
            return None
        if resume is True:
            if latest is None:
                raise FileNotFoundError(
                    f"resume=True but {self.run_dir} has no checkpoint to resume from"
                    if self.run_dir
                    else "resume=True needs a run_dir"
                )
            return latest
        return Path(resume)

    def save(self, step: int, train_seconds: float) -> None:
        """Write the checkpoint of ``step``, drop rolling ones beyond ``keep_last``, write the history."""
        rng = self._gather_rng()  # collective: every rank takes part, rank 0 writes
        if not self.dist.is_main:
            return
        self._check_held()
        config = self.config
        state = {
            "format": CHECKPOINT_FORMAT,
            "step": step,
            "tokens": self.log.tokens,
            "train_seconds": train_seconds,
            "model_class": type(self.model).__name__,
            "model_config": self.model_config,
            "train_config": config.to_dict(),
            "schedule": self.schedule.to_dict(),
            "world_size": self.dist.world_size,
            "metadata": self.metadata,
            "batches": self.batches.state_dict(),
            "rng": rng,
            "param_names": self.param_names,
        }
        path = ckpt.checkpoint_path(self.run_dir, step)
        ckpt.write_checkpoint(
            path,
            model=self.model,
            optimizer=self.optimizer,
            state=state,
            history=self.log.history,
            model_config=self.model_config,
        )
        rolling = [
            p for p in ckpt.list_checkpoints(self.run_dir) if ckpt.checkpoint_step(p) not in config.checkpoint_steps
        ]
        for old in rolling[: -config.keep_last]:
            ckpt.remove_checkpoint(old)
        self.write_history()

    def write_history(self) -> None:
        """``history.csv`` of the run directory (rank 0), also between checkpoints."""
        if not self.writes:
            return
        self._check_held()
        with atomic_path(self.run_dir / ckpt.HISTORY_FILE) as tmp:
            self.log.history.to_csv(tmp, index=False)

    def load(self, path: str | os.PathLike[str]) -> tuple[int, float]:
        """Restore everything from the checkpoint at ``path``; returns its ``(step, train_seconds)``."""
        path = Path(path)
        state = ckpt.read_state(path)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path}: checkpoint format {state.get('format')!r}, expected {CHECKPOINT_FORMAT}")
        self._check_compatible(path, state)
        ckpt.load_weights(self.model, path)
        if state["param_names"] != self.param_names:
            raise ValueError(f"{path}: the optimizer's parameters differ from this model's")
        tensors, _ = ckpt.read_safetensors(path / ckpt.OPTIMIZER_FILE)
        ckpt.load_optimizer_tensors(self.optimizer, tensors)
        self.log.tokens = state["tokens"]
        self.batches.load_state_dict(state["batches"])
        self._restore_rng(state["rng"], state["step"])
        self.log.rows = ckpt.read_history(path).to_dict("records")
        return state["step"], state["train_seconds"]

    def _check_compatible(self, path: Path, state: dict) -> None:
        """A checkpoint from another model, data or recipe is an error that names the difference."""
        if state["model_class"] != type(self.model).__name__:
            raise ValueError(f"checkpoint {path} holds a {state['model_class']}, not a {type(self.model).__name__}")
        if self.model_config is not None and state["model_config"] is not None:
            ours, theirs = self.model_config, state["model_config"]
            diff = [f"{k}={theirs.get(k)!r} (this model: {v!r})" for k, v in ours.items() if theirs.get(k) != v]
            if diff:
                raise ValueError(f"checkpoint {path} is from a different model config: {', '.join(diff)}")
        theirs = state["metadata"]
        diff = [
            f"{k}={theirs[k]!r} (this run: {v!r})" for k, v in self.metadata.items() if k in theirs and theirs[k] != v
        ]
        if diff:
            raise ValueError(f"checkpoint {path} was trained with different data: {', '.join(diff)}")
        saved, ours = state["train_config"], self.config.to_dict()
        diff = [f"{k}={saved[k]!r} (this run: {ours[k]!r})" for k in RESUME_FIXED if saved[k] != ours[k]]
        if diff:
            raise ValueError(
                f"cannot resume from {path}: these options differ from the checkpoint's and would "
                f"change the run: {', '.join(diff)}"
            )

    def _gather_rng(self) -> list[str]:
        """Every rank's torch RNG states (CPU, then the accelerator's), base64, indexed by rank."""
        local = torch.get_rng_state()
        if self.device.type == "cuda":
            local = torch.cat([local, torch.cuda.get_rng_state(self.device)])
        elif self.device.type == "mps":
            local = torch.cat([local, torch.mps.get_rng_state()])
        states = [local]
        if self.control is not None:
            states = [torch.empty_like(local) for _ in range(self.dist.world_size)]
            dist.all_gather(states, local, group=self.control)
        return [base64.b64encode(s.numpy().tobytes()).decode("ascii") for s in states]

    def _restore_rng(self, states: list[str], step: int) -> None:
        if len(states) != self.dist.world_size:
            # Another number of ranks: dropout cannot continue the old streams, so start new ones.
            torch.manual_seed(rank_seed(self.config.seed, self.dist.rank) + 7919 * step)
            return
        raw = torch.frombuffer(bytearray(base64.b64decode(states[self.dist.rank])), dtype=torch.uint8)
        cpu_size = torch.get_rng_state().numel()
        torch.set_rng_state(raw[:cpu_size].clone())
        if self.device.type == "cuda":
            torch.cuda.set_rng_state(raw[cpu_size:].clone(), self.device)
        elif self.device.type == "mps":
            torch.mps.set_rng_state(raw[cpu_size:].clone())
