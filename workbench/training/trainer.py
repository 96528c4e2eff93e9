"""The Trainer: one loop for pretraining and fine-tuning, on a CPU, a GPU, or several under torchrun.

What it trains is pluggable: a model, a factory of batch sources (told the per-rank batch size,
rank and world size, so that it can shard), and ``loss_fn(model, batch) -> (loss, metrics)``.
Pretraining plugs in :mod:`workbench.training.language_model`'s token windows and :func:`lm_loss`; fine-tuning
plugs in its own batches and objective. Everything else is shared: AdamW with GPT-1's weight
decay, the paper's schedules, bf16 autocast, gradient accumulation and clipping, DDP, checkpoints
that resume bit for bit, a progress bar with throughput and MFU, and a history DataFrame.
This module is the loop; the options are in :mod:`.config`, checkpoints in :mod:`.checkpointer`
and the history in :mod:`.metrics`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..core.device import (
    autocast,
    init_distributed,
    machine_info,
    peak_flops,
    resolve_device,
    resolve_precision,
    torch_threads,
)
from ..core.io import write_text_atomic
from ..core.progress import tqdm
from ..models.gpt import GPT
from .checkpointer import Checkpointer, rank_seed
from .config import BatchPlan, TrainConfig, plan_batches
from .metrics import MetricsLog, TrainingDiverged, Update
from .schedules import Schedule
from .sinks import MetricsSink


class BatchSource(Protocol):
    """An endless stream of micro-batches for one rank, whose position can be saved and restored.

    A batch is a tensor or a tuple/list/dict of tensors whose first tensor holds the input token
    ids (it is what throughput counts). ``state_dict()`` must be JSON-serialisable.
    """

    def next_batch(self) -> Any: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


LossFn = Callable[[nn.Module, Any], "tuple[torch.Tensor, dict[str, Any]]"]


def lm_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]):
    """Next-token cross-entropy of an ``(inputs, targets)`` batch: the pretraining objective,
    computed without the logits (the model's ``return_logits=False``)."""
    inputs, targets = batch
    return model(inputs, targets, return_logits=False).loss, {}


def find_gpt(model: nn.Module) -> GPT | None:
    """The GPT inside ``model`` (itself, or the body of a fine-tuning model), if any."""
    return next((m for m in model.modules() if isinstance(m, GPT)), None)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module under DDP and torch.compile wrappers, whose names carry no prefixes."""
    while True:
        if isinstance(model, DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay on weight matrices, none on biases, LayerNorm gains, position embeddings.

    GPT-1 uses "a modified version of L2 regularization ... w = 0.01 on all non bias or gain
    weights", which its code applies decoupled from the gradient and scaled by the learning
    rate, as AdamW does. Position embeddings are not decayed: they are per-position offsets
    rather than a map from inputs. The tied token embedding *is* decayed: the one tensor is also
    the LM head's weight matrix, the role the paper's rule covers (GPT-1's code decayed its
    embedding matrix as well). Rows of rare tokens then shrink by ``lr x 0.01`` per update
    between their gradient updates: about 2.5e-6 at GPT-1's learning rate.
    """
    no_decay = {id(m.wpe.weight) for m in model.modules() if isinstance(m, GPT)}
    decay, rest = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.dim() >= 2 and id(p) not in no_decay else rest).append((name, p))
    return [
        {"params": [p for _, p in decay], "names": [n for n, _ in decay], "weight_decay": weight_decay},
        {"params": [p for _, p in rest], "names": [n for n, _ in rest], "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`, fused where this device has a fused kernel."""
    groups = [{k: v for k, v in g.items() if k != "names"} for g in param_groups(model, config.weight_decay)]
    kwargs = dict(lr=config.lr, betas=(config.beta1, config.beta2), eps=config.eps)
    try:
        return torch.optim.AdamW(groups, fused=True, **kwargs)
    except RuntimeError:  # no fused kernel for this device or dtype
        return torch.optim.AdamW(groups, **kwargs)


def flops_per_token(model: nn.Module, seq_len: int | None) -> float:
    """Training FLOPs per token, 6N + 12 L T d (PaLM appendix B; nanoGPT's MFU).

    N counts parameters that do matrix multiplications: all but position embeddings (a lookup);
    the tied token embedding counts once, as the LM head. 12 L T d is attention's score and
    value products. A model without a GPT inside gets 6N.
    """
    gpt = find_gpt(model)
    skip = {id(m.wpe.weight) for m in model.modules() if isinstance(m, GPT)}
    n = sum(p.numel() for p in model.parameters() if id(p) not in skip)
    if gpt is None:
        return 6.0 * n
    c = gpt.config
    return 6.0 * n + 12.0 * c.n_layer * (seq_len or c.n_ctx) * c.d_model


class Trainer:
    """Trains ``model`` on batches from ``train_batches(plan)`` with ``loss_fn``.

    ``evaluate(model) -> {name: value}`` runs every ``eval_every`` updates in eval mode under
    ``no_grad`` and autocast; under DDP every rank calls it (it may shard and all-reduce).
    ``run_dir`` receives checkpoints and ``history.csv`` (rank 0 only); ``resume=True`` continues
    from its latest checkpoint, a path resumes from that checkpoint. ``metadata`` (e.g. the data
    and tokenizer used) is stored in checkpoints and must match on resume. ``sink`` (rank 0's) receives
    every history row as it is logged, with no extra host sync; the caller closes it.

    One process at a time trains in a run directory: the Trainer takes its lock on creation
    (another process's Trainer there fails at once, naming the directory and the holder's pid) and
    gives it back when :meth:`train` returns or raises, on :meth:`close` or when it is garbage
    collected; a later :meth:`train` takes it again.
    """

    def __init__(
        self,
        model: nn.Module,
        train_batches: Callable[[BatchPlan], BatchSource],
        config: TrainConfig | None = None,
        *,
        evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
        loss_fn: LossFn = lm_loss,
        run_dir: str | os.PathLike[str] | None = None,
        resume: bool | str | os.PathLike[str] = False,
        metadata: dict[str, Any] | None = None,
        sink: MetricsSink | None = None,
    ) -> None:
        self.config = config = config or TrainConfig()
        self.dist = init_distributed(config.device)
        self.device = resolve_device(config.device, self.dist.local_rank)
        self.dtype = resolve_precision(config.precision, self.device)
        self.model = unwrap_model(model).to(self.device)
        self.model_config = _model_config(self.model)
        self.plan = plan_batches(config, self.dist.world_size, self.dist.rank, (self.model_config or {}).get("n_ctx"))
        self.schedule = Schedule.create(config.schedule, config.steps, config.warmup_steps)
        self.optimizer = build_optimizer(self.model, config)
        self.batches = train_batches(self.plan)
        self.evaluate_fn = evaluate
        self.loss_fn = loss_fn
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.flops_per_token = config.flops_per_token or flops_per_token(self.model, self.plan.seq_len)
        self.peak_flops = config.peak_flops or peak_flops(self.device, self.dtype)
        self.step = 0
        self.train_seconds = 0.0
        self.log = MetricsLog(
            self.flops_per_token,
            self.peak_flops,
            self.dist.world_size,
            clock=self._elapsed,
            sink=sink if self.dist.is_main else None,  # every rank's rows are the same averages
        )
        # A CPU side channel for stop requests and RNG states: no GPU sync, works beside NCCL.
        self._control = dist.new_group(backend="gloo") if self.dist.world_size > 1 else None
        if config.deterministic and self.device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

        self.checkpointer = Checkpointer(
            self.run_dir,
            model=self.model,
            optimizer=self.optimizer,
            batches=self.batches,
            log=self.log,
            config=config,
            schedule=self.schedule,
            model_config=self.model_config,
            param_names=[n for g in param_groups(self.model, 0.0) for n in g["names"]],
            metadata=dict(metadata or {}),
            dist_context=self.dist,
            device=self.device,
            control=self._control,
        )  # holds the run directory from here on
        try:
            checkpoint = self.checkpointer.resume_path(resume)
            if checkpoint is None:
                torch.manual_seed(rank_seed(config.seed, self.dist.rank))
            else:
                self.load_checkpoint(checkpoint)

            compile_model = self.device.type == "cuda" if config.compile is None else config.compile
            self._train_model: nn.Module = torch.compile(self.model) if compile_model else self.model
            self._ddp: DistributedDataParallel | None = None
            if self.dist.world_size > 1:
                self._ddp = DistributedDataParallel(
                    self._train_model,
                    device_ids=[self.device.index] if self.device.type == "cuda" else None,
                    gradient_as_bucket_view=True,
                )
                self._train_model = self._ddp
        except BaseException:
            self.checkpointer.release()
            raise

    # ----------------------------------------------------------------------------------- public

    @property
    def history(self) -> pd.DataFrame:
        """One row per logged step: training metrics, and validation metrics where evaluated."""
        return self.log.history

    @property
    def tokens(self) -> int:
        """Tokens trained on over the whole run, all ranks together, as of the last logged row."""
        return self.log.tokens

    def train(self, until: int | None = None) -> pd.DataFrame:
        """Train up to ``config.steps`` updates (or stop after update ``until``); returns the history.

        Ends with a checkpoint. Ctrl-C (or SIGTERM, as torchrun sends) finishes the current
        update, saves a checkpoint there, then raises as usual; a second Ctrl-C stops at once.
        The run directory is held for the call (taken again if an earlier call gave it back).
        """
        self.checkpointer.acquire()
        try:
            with torch_threads(self.config.threads):
                if self.run_dir is not None and self.dist.is_main:
                    self._record_machine()
                return self._train(until)
        finally:
            self.checkpointer.release()

    def _record_machine(self) -> None:
        """Append where this call trains (device, precision, threads, CPU kernels and flags) to
        ``machine.json``: a run resumed elsewhere lists each machine with the step it started at."""
        path = self.run_dir / "machine.json"
        sessions = json.loads(path.read_text()) if path.exists() else []
        sessions.append({"from_step": self.step, **machine_info(self.device, self.dtype)})
        write_text_atomic(path, json.dumps(sessions, indent=1))

    def close(self) -> None:
        """Give the run directory back without training (a no-op if not held); :meth:`train` takes it again."""
        self.checkpointer.release()

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _train(self, until: int | None) -> pd.DataFrame:
        config = self.config
        if until is None and self.step == config.steps:
            return self.history  # a finished run, e.g. resumed after its last checkpoint
        end = config.steps if until is None else until
        if not isinstance(end, int) or not self.step < end <= config.steps:
            raise ValueError(f"until must be an integer in ({self.step}, {config.steps}], got {until!r}")
        bar = tqdm(
            total=config.steps,
            initial=self.step,
            desc="train",
            unit="step",
            disable=not (config.progress and self.dist.is_main),
            dynamic_ncols=True,
        )
        self._call_started = time.perf_counter()
        self.log.restart_window()
        try:
            with _StopRequests() as stop, _deterministic(config.deterministic):
                if self.step == 0 and self._evaluates(0):
                    self.log.add({"step": 0, "tokens": 0, **self._evaluate()})
                    self.log.restart_window()
                while self.step < end:
                    self.log.record(self._update())
                    self.step += 1
                    bar.update(1)
                    stopping = self._stop_requested(stop)
                    self._end_of_step(bar, last=self.step == end or stopping)
                    if stopping:
                        stop.reraise()
        finally:
            self.train_seconds = self._elapsed()
            bar.close()
            self.checkpointer.write_history()
        if self._control is not None:
            dist.barrier(self._control)
        return self.history

    def load_checkpoint(self, path: str | os.PathLike[str]) -> None:
        """Restore weights, optimizer, step, data position, RNG and history from a checkpoint."""
        self.step, self.train_seconds = self.checkpointer.load(path)

    # -------------------------------------------------------------------------------- the loop

    def _update(self) -> Update:
        """One optimizer update over ``accumulation`` micro-batches."""
        accumulation = self.plan.accumulation
        lr = self.config.lr * self.schedule(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self._train_model.train()
        loss_sum = torch.zeros((), device=self.device)
        metric_sums: dict[str, torch.Tensor] = {}
        tokens = 0
        for micro in range(accumulation):
            batch = _to_device(self.batches.next_batch(), self.device)
            tokens += _first_tensor(batch).numel()
            sync = self._ddp is None or micro == accumulation - 1
            with contextlib.nullcontext() if sync else self._ddp.no_sync():
                with autocast(self.device, self.dtype):
                    loss, metrics = self.loss_fn(self._train_model, batch)
                (loss / accumulation).backward()
            loss_sum += loss.detach().float()
            for name, value in metrics.items():
                value = torch.as_tensor(value, device=self.device).detach().float()
                metric_sums[name] = metric_sums.get(name, 0) + value
        max_norm = self.config.grad_clip or math.inf
        grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        metrics = {name: value / accumulation for name, value in metric_sums.items()}
        return Update(self.step + 1, loss_sum / accumulation, grad_norm.float(), metrics, tokens, lr)

    def _end_of_step(self, bar: tqdm, last: bool) -> None:
        config, step = self.config, self.step
        evaluate = self._evaluates(step)
        save = (
            last or step in config.checkpoint_steps or (config.checkpoint_every and step % config.checkpoint_every == 0)
        )
        if not (last or evaluate or save or step % config.log_every == 0):
            return
        row = self._flush()
        postfix = {"loss": f"{row['loss']:.3f}", "tok/s": f"{row['tokens_per_s']:,.0f}"}
        if not math.isnan(row["mfu"]):
            postfix["mfu"] = f"{row['mfu']:.1%}"
        if evaluate:
            row.update(self._evaluate())
            postfix.update({k: f"{v:.3f}" for k, v in row.items() if k.startswith("val_")})
            if not bar.disable:  # a line per evaluation stays readable in a log, where the bar is overwritten
                bar.write(f"step {step}: " + ", ".join(f"{k} {v}" for k, v in postfix.items()), file=bar.fp)
        self.log.add(row)
        bar.set_postfix(postfix, refresh=False)
        if save and self.run_dir is not None:
            self.checkpointer.save(self.step, self._elapsed())
        elif evaluate:
            self.checkpointer.write_history()
        self.log.restart_window()

    def _flush(self) -> dict[str, Any]:
        """The log's next row; on divergence, the history so far is written and the error names
        the checkpoint to go back to."""
        try:
            return self.log.flush(self.step)
        except TrainingDiverged as error:
            self.checkpointer.write_history()
            last = self.checkpointer.latest()
            raise TrainingDiverged(
                f"{error}; stopped without saving. Last good checkpoint: {last if last else 'none'}"
            ) from None

    def _elapsed(self) -> float:
        """Seconds spent in :meth:`train` over the whole run, resumes included."""
        return self.train_seconds + time.perf_counter() - self._call_started

    def _evaluates(self, step: int) -> bool:
        every = self.config.eval_every
        return self.evaluate_fn is not None and every > 0 and step % every == 0

    def _evaluate(self) -> dict[str, float]:
        self.model.eval()
        try:
            with torch.no_grad(), autocast(self.device, self.dtype):
                metrics = self.evaluate_fn(self.model)
        finally:
            self.model.train()
        return {name: float(value) for name, value in metrics.items()}

    def _stop_requested(self, stop: _StopRequests) -> bool:
        requested = stop.signum is not None
        if self._control is None:
            return requested
        flag = torch.tensor([int(requested)])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._control)
        return bool(flag.item())


def _model_config(model: nn.Module) -> dict[str, Any] | None:
    """The model's config as a dict (its own, else that of the GPT inside it), if it has one."""
    config = getattr(model, "config", None)
    if config is None:
        gpt = find_gpt(model)
        config = gpt.config if gpt is not None else None
    return config.to_dict() if hasattr(config, "to_dict") else None


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        if device.type == "cuda":
            return batch.pin_memory().to(device, non_blocking=True)
        return batch.to(device)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def _first_tensor(batch: Any) -> torch.Tensor:
    if isinstance(batch, torch.Tensor):
        return batch
    values = batch.values() if isinstance(batch, dict) else batch
    for value in values:
        if isinstance(value, (torch.Tensor, tuple, list, dict)):
            return _first_tensor(value)
    raise TypeError(f"a batch must hold at least one tensor, got {type(batch).__name__}")


@contextlib.contextmanager
def _deterministic(enabled: bool):
    """Deterministic algorithms for the duration of training, then the caller's setting back."""
    before = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    if enabled:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)


class _StopRequests:
    """Turns SIGINT and SIGTERM into a request to stop at the next update boundary.

    The loop then saves a checkpoint and calls :meth:`reraise`, which restores the previous
    handlers and delivers the first signal again (KeyboardInterrupt for Ctrl-C). The same signal
    a second time stops at once; a different one does not, because Ctrl-C under torchrun brings
    SIGINT from the terminal and then SIGTERM from the launcher (which waits 30 s before
    SIGKILL). Outside the main thread, signals cannot be caught and nothing changes.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequests:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum
        elif signum == self.signum:
            self._restore()
            raise KeyboardInterrupt

    def _restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def reraise(self) -> None:
        self._restore()
        signal.raise_signal(self.signum)

    def __exit__(self, *exc: Any) -> None:
        self._restore()
