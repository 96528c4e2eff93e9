"""The Trainer: one loop for pretraining and fine-tuning, on a CPU, a GPU, or several under torchrun.

What it trains is pluggable: a model, a factory of batch sources (told the per-rank batch size,
rank and world size, so that it can shard), and ``loss_fn(model, batch) -> (loss, metrics)``.
Pretraining plugs in :mod:`workbench.training.language_model`'s token windows and :func:`lm_loss`; fine-tuning
plugs in its own batches and objective. Everything else is shared: AdamW with GPT-1's weight
decay, the paper's schedules, bf16 autocast, gradient accumulation and clipping, DDP, checkpoints
that resume bit for bit, a progress bar with throughput and MFU, and a history DataFrame.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import math
import os
import signal
import threading
import time
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NamedTuple, Protocol

import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from . import checkpoint as ckpt
from ..core.device import (
    PRECISIONS,
    autocast,
    init_distributed,
    peak_flops,
    resolve_device,
    resolve_precision,
)
from ..core.io import atomic_path
from ..models.gpt import GPT
from .schedules import SCHEDULES, Schedule

CHECKPOINT_FORMAT = 1


def _help(text: str, choices: tuple[str, ...] | None = None, **kwargs: Any) -> Any:
    return field(metadata={"help": text, "choices": choices}, **kwargs)


@dataclass(frozen=True)
class TrainConfig:
    """Every training option; the ``pretrain`` command line is generated from these fields.

    The defaults are GPT-1's pretraining hyperparameters where the paper gives them (Adam with
    lr 2.5e-4, warmup then cosine, weight decay 0.01, gradient clipping at 1 as in its code).
    """

    steps: int = _help("optimizer updates to train for", default=1000)
    batch_size: int = _help(
        "global batch in sequences per update = micro_batch_size x ranks x accumulation", default=32)
    micro_batch_size: int | None = _help(
        "sequences per forward pass on each rank; default batch_size / ranks (no accumulation)",
        default=None)
    seq_len: int | None = _help("tokens per training sequence; default the model's n_ctx",
                                default=None)
    lr: float = _help("peak learning rate", default=2.5e-4)
    schedule: str = _help("learning-rate schedule", SCHEDULES, default="gpt1-pretrain")
    warmup_steps: int | None = _help(
        "linear warmup updates; default the paper's: 2000 (at most steps/10) for gpt1-pretrain, "
        "0.2%% of steps for gpt1-finetune, 0 for constant", default=None)
    weight_decay: float = _help(
        "decoupled weight decay on weight matrices (not biases, gains, position embeddings)",
        default=0.01)
    beta1: float = _help("Adam beta1", default=0.9)
    beta2: float = _help("Adam beta2", default=0.999)
    eps: float = _help("Adam epsilon", default=1e-8)
    grad_clip: float = _help("clip the global gradient norm to this; 0 disables", default=1.0)
    seed: int = _help("seed of data order and dropout (and of the model init in the CLI)",
                      default=0)
    device: str = _help("auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps",
                        default="auto")
    precision: str = _help(
        "auto: bf16 autocast where the device runs bf16 natively, else fp32", PRECISIONS,
        default="auto")
    compile: bool | None = _help("torch.compile the model; default on for CUDA, off elsewhere",
                                 default=None)
    deterministic: bool = _help("deterministic algorithms, so a seed reproduces a run exactly",
                                default=True)
    log_every: int = _help("updates between history rows and progress-bar refreshes",
                           default=10)
    eval_every: int = _help("updates between validation runs (also at step 0); 0 disables",
                            default=100)
    eval_sequences: int = _help("validation sequences per evaluation", default=128)
    checkpoint_every: int = _help("updates between rolling checkpoints; 0 saves only at the end",
                                  default=500)
    checkpoint_steps: tuple[int, ...] = _help(
        "steps whose checkpoints are kept for good (e.g. log-spaced, for zero-shot curves)",
        default=())
    keep_last: int = _help("rolling checkpoints kept besides checkpoint_steps", default=1)
    peak_flops: float | None = _help(
        "peak FLOP/s of one device for MFU; default from a table (GPUs) or a nominal CPU estimate",
        default=None)
    flops_per_token: float | None = _help(
        "training FLOPs per token for MFU; default 6N + 12 L T d from the model", default=None)
    progress: bool = _help("show a progress bar", default=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "checkpoint_steps", tuple(sorted(set(self.checkpoint_steps))))
        positive_ints = ["steps", "batch_size", "log_every", "eval_sequences", "keep_last"]
        optional_positive_ints = ["micro_batch_size", "seq_len"]
        for name in positive_ints + optional_positive_ints:
            value = getattr(self, name)
            if value is None and name in optional_positive_ints:
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}")
        for name in ("eval_every", "checkpoint_every", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"TrainConfig.{name} must be an integer >= 0, got {value!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"TrainConfig.lr must be a positive number, got {self.lr!r}")
        for name in ("weight_decay", "grad_clip"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"TrainConfig.{name} must be a number >= 0, got {value!r}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be in [0, 1), got {getattr(self, name)!r}")
        if not self.eps > 0:
            raise ValueError(f"TrainConfig.eps must be positive, got {self.eps!r}")
        for name in ("peak_flops", "flops_per_token"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"TrainConfig.{name} must be positive, got {value!r}")
        bad_steps = [s for s in self.checkpoint_steps if not 1 <= s <= self.steps]
        if bad_steps:
            raise ValueError(f"TrainConfig.checkpoint_steps {bad_steps} are outside 1..steps={self.steps}")
        Schedule.create(self.schedule, self.steps, self.warmup_steps)  # validates both
        resolve_device(self.device)  # validates the name and that this machine has the device
        resolve_precision(self.precision, torch.device("cpu"))  # validates the name

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["checkpoint_steps"] = list(self.checkpoint_steps)
        return data

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


# Options that change the numbers: a resumed run must use the checkpoint's values.
RESUME_FIXED = ("steps", "batch_size", "seq_len", "lr", "schedule", "warmup_steps",
                "weight_decay", "beta1", "beta2", "eps", "grad_clip", "seed")


def _config_fields() -> list[tuple[dataclasses.Field, Any]]:
    """``(field, type)`` of every TrainConfig option, ``X | None`` reduced to ``X``."""
    hints = typing.get_type_hints(TrainConfig)
    fields = []
    for f in dataclasses.fields(TrainConfig):
        hint = hints[f.name]
        if isinstance(hint, types.UnionType):
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        fields.append((f, hint))
    return fields


def add_train_config_arguments(parser: argparse.ArgumentParser,
                               defaults: TrainConfig | None = None) -> None:
    """One ``--option`` per TrainConfig field with its type, help and default (``defaults``'s
    value, so that a command such as ``finetune`` can show its own)."""
    defaults = defaults or TrainConfig()
    for f, kind in _config_fields():
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                                help=f.metadata["help"])
        elif typing.get_origin(kind) is tuple:
            parser.add_argument(flag, type=int, nargs="*", default=list(default), metavar="STEP",
                                help=f.metadata["help"])
        else:
            parser.add_argument(flag, type=kind, default=default, help=f.metadata["help"],
                                choices=f.metadata["choices"])


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of a command line built by :func:`add_train_config_arguments`."""
    values = {f.name: getattr(args, f.name) for f, _ in _config_fields()}
    values["checkpoint_steps"] = tuple(values["checkpoint_steps"])
    return TrainConfig(**values)


@dataclass(frozen=True)
class BatchPlan:
    """How the global batch is split: what a batch source needs to know to shard its data."""

    micro_batch_size: int
    accumulation: int
    seq_len: int | None
    seed: int
    rank: int = 0
    world_size: int = 1


def plan_batches(config: TrainConfig, world_size: int = 1, rank: int = 0,
                 seq_len: int | None = None) -> BatchPlan:
    """Split ``config.batch_size`` into micro-batches per rank and accumulation steps, or say why not."""
    batch = config.batch_size
    micro = config.micro_batch_size
    if micro is None:
        if batch % world_size:
            raise ValueError(
                f"batch_size={batch} is not divisible by the {world_size} ranks: the global batch "
                "is micro_batch_size x ranks x accumulation"
            )
        micro = batch // world_size
    if batch % (micro * world_size):
        raise ValueError(
            f"batch_size={batch} is not a multiple of micro_batch_size={micro} x {world_size} "
            f"rank(s) = {micro * world_size}: the global batch is micro_batch_size x ranks x "
            "accumulation"
        )
    return BatchPlan(micro, batch // (micro * world_size), config.seq_len or seq_len,
                     config.seed, rank, world_size)


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
    """Next-token cross-entropy of an ``(inputs, targets)`` batch: the pretraining objective."""
    inputs, targets = batch
    return model(inputs, targets).loss, {}


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
        {"params": [p for _, p in decay], "names": [n for n, _ in decay],
         "weight_decay": weight_decay},
        {"params": [p for _, p in rest], "names": [n for n, _ in rest], "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`, fused where this device has a fused kernel."""
    groups = [{k: v for k, v in g.items() if k != "names"}
              for g in param_groups(model, config.weight_decay)]
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


class _Update(NamedTuple):
    """What one update leaves for the next history row; tensors stay on the device until then."""

    step: int
    loss: torch.Tensor
    grad_norm: torch.Tensor
    metrics: dict[str, torch.Tensor]
    tokens: int
    lr: float


class TrainingDiverged(FloatingPointError):
    """The loss or gradient norm became NaN or infinite; nothing after the last good step was saved."""


class Trainer:
    """Trains ``model`` on batches from ``train_batches(plan)`` with ``loss_fn``.

    ``evaluate(model) -> {name: value}`` runs every ``eval_every`` updates in eval mode under
    ``no_grad`` and autocast; under DDP every rank calls it (it may shard and all-reduce).
    ``run_dir`` receives checkpoints and ``history.csv`` (rank 0 only); ``resume=True`` continues
    from its latest checkpoint, a path resumes from that checkpoint. ``metadata`` (e.g. the data
    and tokenizer used) is stored in checkpoints and must match on resume.
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
    ) -> None:
        self.config = config = config or TrainConfig()
        self.dist = init_distributed(config.device)
        self.device = resolve_device(config.device, self.dist.local_rank)
        self.dtype = resolve_precision(config.precision, self.device)
        self.model = unwrap_model(model).to(self.device)
        self.model_config = _model_config(self.model)
        self.plan = plan_batches(config, self.dist.world_size, self.dist.rank,
                                 (self.model_config or {}).get("n_ctx"))
        self.schedule = Schedule.create(config.schedule, config.steps, config.warmup_steps)
        self.optimizer = build_optimizer(self.model, config)
        self.param_names = [n for g in param_groups(self.model, 0.0) for n in g["names"]]
        self.batches = train_batches(self.plan)
        self.evaluate_fn = evaluate
        self.loss_fn = loss_fn
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.metadata = dict(metadata or {})
        self.flops_per_token = config.flops_per_token or flops_per_token(self.model, self.plan.seq_len)
        self.peak_flops = config.peak_flops or peak_flops(self.device, self.dtype)
        self.step = 0
        self.tokens = 0
        self.train_seconds = 0.0
        self._rows: list[dict[str, Any]] = []
        self._window: list[_Update] = []
        # A CPU side channel for stop requests and RNG states: no GPU sync, works beside NCCL.
        self._control = dist.new_group(backend="gloo") if self.dist.world_size > 1 else None
        if config.deterministic and self.device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

        latest = None
        if self.run_dir is not None:
            if self.dist.is_main:
                ckpt.remove_stale_temporaries(self.run_dir)
            latest = ckpt.latest_checkpoint(self.run_dir)
        if resume is not False:
            if resume is True:
                if latest is None:
                    raise FileNotFoundError(
                        f"resume=True but {self.run_dir} has no checkpoint to resume from"
                        if self.run_dir else "resume=True needs a run_dir"
                    )
                resume = latest
            self.load_checkpoint(resume)
        else:
            if latest is not None:
                raise FileExistsError(
                    f"{self.run_dir} already holds checkpoints (latest {latest.name}); pass "
                    "resume=True to continue that run, or choose a new run_dir"
                )
            torch.manual_seed(self._rank_seed())

        compile_model = self.device.type == "cuda" if config.compile is None else config.compile
        self._train_model: nn.Module = torch.compile(self.model) if compile_model else self.model
        self._ddp: DistributedDataParallel | None = None
        if self.dist.world_size > 1:
            self._ddp = DistributedDataParallel(
                self._train_model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                gradient_as_bucket_view=True)
            self._train_model = self._ddp

    # ----------------------------------------------------------------------------------- public

    @property
    def history(self) -> pd.DataFrame:
        """One row per logged step: training metrics, and validation metrics where evaluated."""
        # Columns in order of appearance, except that the evaluation-only row of step 0 goes
        # last, so validation columns follow the training ones.
        columns = dict.fromkeys(["step", "tokens", "lr", "loss", "grad_norm"])
        columns.update(dict.fromkeys(k for row in self._rows[1:] + self._rows[:1] for k in row))
        history = pd.DataFrame(self._rows)
        return history[[c for c in columns if c in history]]

    def train(self, until: int | None = None) -> pd.DataFrame:
        """Train up to ``config.steps`` updates (or stop after update ``until``); returns the history.

        Ends with a checkpoint. Ctrl-C (or SIGTERM, as torchrun sends) finishes the current
        update, saves a checkpoint there, then raises as usual; a second Ctrl-C stops at once.
        """
        config = self.config
        if until is None and self.step == config.steps:
            return self.history  # a finished run, e.g. resumed after its last checkpoint
        end = config.steps if until is None else until
        if not isinstance(end, int) or not self.step < end <= config.steps:
            raise ValueError(
                f"until must be an integer in ({self.step}, {config.steps}], got {until!r}"
            )
        bar = tqdm(total=config.steps, initial=self.step, desc="train", unit="step",
                   disable=not (config.progress and self.dist.is_main), dynamic_ncols=True)
        self._call_started = self._window_started = time.perf_counter()
        try:
            with _StopRequests() as stop, _deterministic(config.deterministic):
                if self.step == 0 and self._evaluates(0):
                    self._rows.append({"step": 0, "tokens": 0, **self._evaluate()})
                    self._window_started = time.perf_counter()
                while self.step < end:
                    self._window.append(self._update())
                    self.step += 1
                    bar.update(1)
                    stopping = self._stop_requested(stop)
                    self._end_of_step(bar, last=self.step == end or stopping)
                    if stopping:
                        stop.reraise()
        finally:
            self.train_seconds = self._elapsed()
            bar.close()
            self._write_history()
        if self._control is not None:
            dist.barrier(self._control)
        return self.history

    def load_checkpoint(self, path: str | os.PathLike[str]) -> None:
        """Restore weights, optimizer, step, data position, RNG and history from a checkpoint."""
        path = Path(path)
        state = ckpt.read_state(path)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(
                f"{path}: checkpoint format {state.get('format')!r}, expected {CHECKPOINT_FORMAT}")
        self._check_compatible(path, state)
        ckpt.load_weights(self.model, path)
        if state["param_names"] != self.param_names:
            raise ValueError(f"{path}: the optimizer's parameters differ from this model's")
        tensors, _ = ckpt.read_safetensors(path / ckpt.OPTIMIZER_FILE)
        ckpt.load_optimizer_tensors(self.optimizer, tensors)
        self.step = state["step"]
        self.tokens = state["tokens"]
        self.train_seconds = state["train_seconds"]
        self.batches.load_state_dict(state["batches"])
        self._restore_rng(state["rng"])
        self._rows = ckpt.read_history(path).to_dict("records")

    # -------------------------------------------------------------------------------- the loop

    def _update(self) -> _Update:
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
        return _Update(self.step + 1, loss_sum / accumulation, grad_norm.float(), metrics, tokens, lr)

    def _end_of_step(self, bar: tqdm, last: bool) -> None:
        config, step = self.config, self.step
        evaluate = self._evaluates(step)
        save = last or step in config.checkpoint_steps or (
            config.checkpoint_every and step % config.checkpoint_every == 0)
        if not (last or evaluate or save or step % config.log_every == 0):
            return
        row = self._flush()
        postfix = {"loss": f"{row['loss']:.3f}", "tok/s": f"{row['tokens_per_s']:,.0f}"}
        if not math.isnan(row["mfu"]):
            postfix["mfu"] = f"{row['mfu']:.1%}"
        if evaluate:
            row.update(self._evaluate())
            postfix.update({k: f"{v:.3f}" for k, v in row.items() if k.startswith("val_")})
        self._rows.append(row)
        bar.set_postfix(postfix, refresh=False)
        if save and self.run_dir is not None:
            self._save_checkpoint()
        elif evaluate:
            self._write_history()
        self._window_started = time.perf_counter()

    def _flush(self) -> dict[str, Any]:
        """Summarise the updates since the last row, across ranks; stop on a NaN or inf."""
        window, self._window = self._window, []
        names = sorted(window[0].metrics)
        table = torch.stack([torch.stack([u.loss, u.grad_norm, *(u.metrics[n] for n in names)])
                             for u in window]).double()
        tokens = sum(u.tokens for u in window)
        if self.dist.world_size > 1:
            dist.all_reduce(table)
            table /= self.dist.world_size
            tokens *= self.dist.world_size  # every rank runs the same micro-batch shapes
        values = table.tolist()  # the one host sync per logged row
        seconds = time.perf_counter() - self._window_started
        for update, (loss, norm, *_) in zip(window, values):
            if not (math.isfinite(loss) and math.isfinite(norm)):
                self._write_history()
                last = ckpt.latest_checkpoint(self.run_dir) if self.run_dir else None
                raise TrainingDiverged(
                    f"training diverged at step {update.step}: loss {loss}, gradient norm {norm} "
                    f"(lr {update.lr:.3g}); stopped without saving. Last good checkpoint: "
                    f"{last if last else 'none'}"
                )
        self.tokens += tokens
        tokens_per_s = tokens / seconds
        peak = self.peak_flops
        mfu = (self.flops_per_token * tokens_per_s / (peak * self.dist.world_size)
               if peak else math.nan)
        columns = list(zip(*values))
        row = {"step": self.step, "tokens": self.tokens, "lr": window[-1].lr,
               "loss": sum(columns[0]) / len(window), "grad_norm": sum(columns[1]) / len(window)}
        row.update({name: sum(col) / len(window) for name, col in zip(names, columns[2:])})
        row.update(tokens_per_s=tokens_per_s, mfu=mfu, seconds=self._elapsed())
        return row

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

    def _stop_requested(self, stop: "_StopRequests") -> bool:
        requested = stop.signum is not None
        if self._control is None:
            return requested
        flag = torch.tensor([int(requested)])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._control)
        return bool(flag.item())

    # ---------------------------------------------------------------------- checkpoints, state

    def _save_checkpoint(self) -> None:
        rng = self._gather_rng()  # collective: every rank takes part, rank 0 writes
        if not self.dist.is_main:
            return
        config = self.config
        state = {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "tokens": self.tokens,
            "train_seconds": self._elapsed(),
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
        path = ckpt.checkpoint_path(self.run_dir, self.step)
        ckpt.write_checkpoint(path, model=self.model, optimizer=self.optimizer, state=state,
                              history=self.history, model_config=state["model_config"])
        rolling = [p for p in ckpt.list_checkpoints(self.run_dir)
                   if ckpt.checkpoint_step(p) not in config.checkpoint_steps]
        for old in rolling[:-config.keep_last]:
            ckpt.remove_checkpoint(old)
        self._write_history()

    def _write_history(self) -> None:
        if self.run_dir is None or not self.dist.is_main:
            return
        with atomic_path(self.run_dir / ckpt.HISTORY_FILE) as tmp:
            self.history.to_csv(tmp, index=False)

    def _check_compatible(self, path: Path, state: dict) -> None:
        """A checkpoint from another model, data or recipe is an error that names the difference."""
        if state["model_class"] != type(self.model).__name__:
            raise ValueError(
                f"checkpoint {path} holds a {state['model_class']}, not a {type(self.model).__name__}")
        if self.model_config is not None and state["model_config"] is not None:
            ours, theirs = self.model_config, state["model_config"]
            diff = [f"{k}={theirs.get(k)!r} (this model: {v!r})" for k, v in ours.items()
                    if theirs.get(k) != v]
            if diff:
                raise ValueError(f"checkpoint {path} is from a different model config: {', '.join(diff)}")
        theirs = state["metadata"]
        diff = [f"{k}={theirs[k]!r} (this run: {v!r})" for k, v in self.metadata.items()
                if k in theirs and theirs[k] != v]
        if diff:
            raise ValueError(f"checkpoint {path} was trained with different data: {', '.join(diff)}")
        saved, ours = state["train_config"], self.config.to_dict()
        diff = [f"{k}={saved[k]!r} (this run: {ours[k]!r})" for k in RESUME_FIXED if saved[k] != ours[k]]
        if diff:
            raise ValueError(
                f"cannot resume from {path}: these options differ from the checkpoint's and would "
                f"change the run: {', '.join(diff)}"
            )

    def _rank_seed(self) -> int:
        return self.config.seed * 1_000_003 + self.dist.rank

    def _gather_rng(self) -> list[str]:
        """Every rank's torch RNG states (CPU, then the accelerator's), base64, indexed by rank."""
        local = torch.get_rng_state()
        if self.device.type == "cuda":
            local = torch.cat([local, torch.cuda.get_rng_state(self.device)])
        elif self.device.type == "mps":
            local = torch.cat([local, torch.mps.get_rng_state()])
        states = [local]
        if self._control is not None:
            states = [torch.empty_like(local) for _ in range(self.dist.world_size)]
            dist.all_gather(states, local, group=self._control)
        return [base64.b64encode(s.numpy().tobytes()).decode("ascii") for s in states]

    def _restore_rng(self, states: list[str]) -> None:
        if len(states) != self.dist.world_size:
            # Another number of ranks: dropout cannot continue the old streams, so start new ones.
            torch.manual_seed(self._rank_seed() + 7919 * self.step)
            return
        raw = torch.frombuffer(bytearray(base64.b64decode(states[self.dist.rank])), dtype=torch.uint8)
        cpu_size = torch.get_rng_state().numel()
        torch.set_rng_state(raw[:cpu_size].clone())
        if self.device.type == "cuda":
            torch.cuda.set_rng_state(raw[cpu_size:].clone(), self.device)
        elif self.device.type == "mps":
            torch.mps.set_rng_state(raw[cpu_size:].clone())


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

    def __enter__(self) -> "_StopRequests":
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
