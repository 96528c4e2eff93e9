"""Language-model pretraining: random token windows, validation loss, and the ``pretrain`` command.

``python -m workbench pretrain`` trains the ``gpt1-mini`` preset on the books corpus into
``runs/gpt1-mini``; ``--train-tokens``, ``--val-tokens``, ``--preset``, ``--out`` and every
:class:`~workbench.training.config.TrainConfig` option change that. ``torchrun --nproc_per_node=N -m
workbench pretrain ...`` runs the same command as N DDP processes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..core.device import init_distributed
from ..data.prepare import packed_split
from ..data.tokens import open_tokens, read_manifest
from .config import BatchPlan, TrainConfig
from .sinks import MetricsSink
from .trainer import Trainer

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's output function: a well-mixed 64-bit hash of each element of ``x``."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _check_tokens(tokens: np.ndarray, seq_len: int | None, what: str) -> None:
    if not isinstance(seq_len, int) or seq_len <= 0:
        raise ValueError(
            f"seq_len must be a positive integer, got {seq_len!r} (set "
            "TrainConfig.seq_len for a model whose config has no n_ctx)"
        )
    if not isinstance(tokens, np.ndarray) or tokens.ndim != 1 or tokens.dtype.kind not in "iu":
        kind = (
            f"{tokens.dtype} array of shape {tokens.shape}" if isinstance(tokens, np.ndarray) else type(tokens).__name__
        )
        raise ValueError(f"{what} must be a 1-D integer numpy array (or memmap), got a {kind}")
    if len(tokens) < seq_len + 1:
        raise ValueError(f"{what} holds {len(tokens)} tokens, fewer than one window of seq_len + 1 = {seq_len + 1}")


class TokenSampler:
    """Random windows of ``seq_len + 1`` tokens (inputs and shifted targets) from a 1-D token array.

    A memmap stays on disk: each batch reads only its windows. Window ``j`` of the run starts at
    a hash of ``(seed, j)``, so the stream is deterministic, its state is one integer, and it does
    not depend on how the global batch is split: rank ``r``'s ``c``-th micro-batch holds windows
    ``(c * world_size + r) * batch_size ...``, the same windows one process would draw in order.
    """

    def __init__(
        self, tokens: np.ndarray, seq_len: int, batch_size: int, *, seed: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        _check_tokens(tokens, seq_len, "training tokens")
        self.tokens, self.seq_len, self.batch_size = tokens, seq_len, batch_size
        self.rank, self.world_size = rank, world_size
        self._key = _splitmix64(np.array([seed], dtype=np.uint64))[0]
        self.next_window = 0  # index of the first window of the next global micro-batch

    @classmethod
    def from_plan(cls, tokens: np.ndarray, plan: BatchPlan) -> TokenSampler:
        return cls(
            tokens, plan.seq_len, plan.micro_batch_size, seed=plan.seed, rank=plan.rank, world_size=plan.world_size
        )

    def window_starts(self, first: int, count: int) -> np.ndarray:
        """Start offsets of windows ``first .. first + count - 1``."""
        index = np.arange(first, first + count, dtype=np.uint64)
        with np.errstate(over="ignore"):
            hashed = _splitmix64(self._key + (index + np.uint64(1)) * _GOLDEN)
        return (hashed % np.uint64(len(self.tokens) - self.seq_len)).astype(np.int64)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        first = self.next_window + self.rank * self.batch_size
        self.next_window += self.batch_size * self.world_size
        starts = self.window_starts(first, self.batch_size)
        windows = self.tokens[starts[:, None] + np.arange(self.seq_len + 1)].astype(np.int64)
        windows = torch.from_numpy(windows)
        return windows[:, :-1], windows[:, 1:]

    def state_dict(self) -> dict:
        return {"next_window": self.next_window}

    def load_state_dict(self, state: dict) -> None:
        self.next_window = int(state["next_window"])


class TokenEvaluator:
    """Validation loss on a fixed set of windows spread evenly over a token array.

    The same windows every time, so successive evaluations are comparable; under DDP each rank
    scores a share and the sums are all-reduced.
    """

    def __init__(self, tokens: np.ndarray, seq_len: int, sequences: int, batch_size: int) -> None:
        _check_tokens(tokens, seq_len, "validation tokens")
        self.tokens, self.seq_len, self.batch_size = tokens, seq_len, batch_size
        count = min(sequences, len(tokens) - seq_len)
        self.starts = np.linspace(0, len(tokens) - seq_len - 1, count).round().astype(np.int64)

    def __call__(self, model: nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        totals = torch.zeros(2, dtype=torch.float64, device=device)  # loss sum, token count
        mine = self.starts[rank::world]
        for i in range(0, len(mine), self.batch_size):
            starts = mine[i : i + self.batch_size]
            windows = self.tokens[starts[:, None] + np.arange(self.seq_len + 1)].astype(np.int64)
            windows = torch.from_numpy(windows).to(device)
            loss = model(windows[:, :-1], windows[:, 1:]).loss
            totals += torch.stack(
                [loss.double() * windows[:, 1:].numel(), torch.tensor(windows[:, 1:].numel(), device=device)]
            )
        if world > 1:
            dist.all_reduce(totals)
        loss = (totals[0] / totals[1]).item()
        return {"val_loss": loss, "val_ppl": math.exp(min(loss, 700.0))}


def train_language_model(
    model: nn.Module,
    train_tokens: np.ndarray,
    val_tokens: np.ndarray | None = None,
    config: TrainConfig | None = None,
    *,
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool | str | os.PathLike[str] = False,
    metadata: dict[str, Any] | None = None,
    sink: MetricsSink | None = None,
) -> Trainer:
    """Train ``model`` as a language model on random windows of ``train_tokens``; returns the Trainer.

    Validation loss on ``val_tokens`` is logged every ``config.eval_every`` updates; ``sink`` receives
    the history rows too (see :class:`~workbench.training.trainer.Trainer`).
    """
    config = config or TrainConfig()
    evaluate = None
    if val_tokens is not None:
        seq_len = config.seq_len or model.config.n_ctx
        micro = config.micro_batch_size or config.batch_size
        evaluate = TokenEvaluator(val_tokens, seq_len, config.eval_sequences, micro)
    trainer = Trainer(
        model,
        lambda plan: TokenSampler.from_plan(train_tokens, plan),
        config,
        evaluate=evaluate,
        run_dir=run_dir,
        resume=resume,
        metadata=metadata,
        sink=sink,
    )
    trainer.train()
    return trainer


def open_token_file(path: str | os.PathLike[str], vocab_size: int) -> tuple[np.ndarray, dict]:
    """A packed token file as a read-only 1-D array that stays on disk, and what identifies it.

    ``.npy`` files are memory-mapped directly. Other files are packed corpora of
    :mod:`workbench.data.tokens`: their manifest is checked, and its tokenizer hash goes into the
    returned description, so that a checkpoint cannot be resumed on another tokenizer's data.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"token file {path} does not exist")
    if path.suffix == ".npy":
        tokens = np.load(path, mmap_mode="r")
        return tokens, {"train_tokens": path.name, "train_token_count": int(len(tokens))}
    manifest = read_manifest(path)
    if manifest["vocab_size"] > vocab_size:
        raise ValueError(
            f"{path} was encoded with a vocabulary of {manifest['vocab_size']} ids, more than the "
            f"model's vocab_size={vocab_size}"
        )
    tokens = open_tokens(path)
    return tokens, {
        "train_tokens": path.name,
        "train_token_count": int(len(tokens)),
        "tokenizer_sha256": manifest["tokenizer_sha256"],
    }


def default_token_files(vocab_size: int, seed: int = 0, progress: bool = True) -> tuple[Path, Path]:
    """The books corpus's packed train and val splits for this vocabulary and split ``seed``,
    prepared on first use. Under torchrun rank 0 prepares them while the other ranks wait.
    """
    context = init_distributed()
    if not context.is_main:
        dist.barrier()
    paths = tuple(
        packed_split(split, vocab_size, seed=seed, progress=progress and context.is_main) for split in ("train", "val")
    )
    if context.is_main and context.world_size > 1:
        dist.barrier()
    return paths
