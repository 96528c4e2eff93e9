"""Pretraining runs on the books corpus, cached by their full config, with log-spaced checkpoints.

The notebooks share one pretrained model: a second call of :func:`pretrain` with the same spec
loads the finished run instead of training, and an interrupted run resumes from its checkpoint.
Checkpoints are kept at log-spaced steps because the zero-shot curves are read on a log axis.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from ..training import checkpoint as ckpt
from ..models.config import PRESETS, GPTConfig
from ..models.lstm import LSTMConfig, LSTMLanguageModel, matching_lstm_config
from ..models.gpt import GPT
from ..training.language_model import open_token_file
from ..training.language_model import train_language_model
from ..training.trainer import TrainConfig
from .cache import cache_root, entry_dir, is_done, mark_done

MODELS = ("gpt", "lstm")


@dataclass(frozen=True)
class PretrainSpec:
    """Everything that determines a pretraining run (and so its cache key)."""

    preset: str = "gpt2-slim"
    model: str = "gpt"            # "gpt", or "lstm": the baseline sized like the preset
    steps: int = 600
    batch_size: int = 16
    lr: float = 2e-3
    warmup_steps: int | None = None
    dropout: float = 0.1
    seed: int = 0                 # model init, data order and dropout
    data_seed: int = 0            # which documents are train / val / held out
    n_checkpoints: int = 8        # kept at log-spaced steps
    device: str = "auto"
    precision: str = "auto"
    extra: dict = field(default_factory=dict)  # further TrainConfig fields (e.g. micro_batch_size)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; valid presets: {', '.join(PRESETS)}")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.n_checkpoints < 1:
            raise ValueError(f"n_checkpoints must be >= 1, got {self.n_checkpoints}")
        self.train_config()  # validates steps, batch size, lr, device, precision

    @property
    def gpt_config(self) -> GPTConfig:
        return GPTConfig.from_preset(self.preset, dropout=self.dropout)

    def model_config(self) -> GPTConfig | LSTMConfig:
        if self.model == "gpt":
            return self.gpt_config
        return matching_lstm_config(self.gpt_config)

    def build_model(self) -> GPT | LSTMLanguageModel:
        torch.manual_seed(self.seed)
        config = self.model_config()
        return GPT(config) if self.model == "gpt" else LSTMLanguageModel(config)

    def checkpoint_steps(self) -> tuple[int, ...]:
        return ckpt.log_spaced_steps(self.steps, self.n_checkpoints)

    def train_config(self, progress: bool = True) -> TrainConfig:
        return TrainConfig(
            steps=self.steps, batch_size=self.batch_size, lr=self.lr, warmup_steps=self.warmup_steps,
            seed=self.seed, device=self.device, precision=self.precision,
            checkpoint_steps=self.checkpoint_steps(), checkpoint_every=0, keep_last=1,
            eval_every=max(1, self.steps // 10), progress=progress, **self.extra,
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


SCALES: dict[str, PretrainSpec] = {
    # About 2 minutes on a 2-core CPU: 600 updates of 16 x 128 tokens (1.2M tokens, a third of
    # an epoch of the corpus) for the 1.9M-parameter gpt2-slim (4 layers of width 128). It uses
    # GPT-2's pre-LN block: GPT-1's post-LN block stays on the unigram plateau at this budget
    # (measured with 4 x 256 at lr 1e-3: validation loss 6.75 after 600 updates, against 5.23
    # for pre-LN; 6.66 at lr 3e-4).
    "cpu": PretrainSpec(),
    # One GPU, minutes: GPT-1's architecture and recipe on this corpus (about 9 epochs).
    "gpu": PretrainSpec(preset="gpt1", steps=1000, batch_size=64, lr=2.5e-4, warmup_steps=200),
    # GPT-1's recipe as published (batch 64 x 512, lr 2.5e-4, 2000 warmup), run for 100 epochs
    # of this corpus as the paper ran 100 epochs of BooksCorpus.
    "paper": PretrainSpec(preset="gpt1", steps=11_300, batch_size=64, lr=2.5e-4, warmup_steps=2000),
}


@dataclass
class PretrainRun:
    """A finished pretraining run: its directory, history and checkpoints."""

    spec: PretrainSpec
    run_dir: Path

    @property
    def history(self) -> pd.DataFrame:
        return ckpt.read_history(self.run_dir)

    @property
    def steps(self) -> list[int]:
        """Steps with a kept checkpoint (log-spaced, the last one included)."""
        return [ckpt.checkpoint_step(p) for p in ckpt.list_checkpoints(self.run_dir)]

    @property
    def tokenizer(self):
        from ..data.prepare import corpus_tokenizer

        return corpus_tokenizer(self.spec.gpt_config.vocab_size, seed=self.spec.data_seed)

    def load(self, step: int | None = None) -> GPT | LSTMLanguageModel:
        """The model at a kept checkpoint (default: the last), in eval mode on the CPU."""
        steps = self.steps
        step = steps[-1] if step is None else step
        if step not in steps:
            raise ValueError(f"no checkpoint at step {step}; kept steps: {steps}")
        model = self.spec.build_model()
        ckpt.load_weights(model, ckpt.checkpoint_path(self.run_dir, step))
        return model.eval()


def pretrain(spec: PretrainSpec | None = None, *, progress: bool = True, **changes) -> PretrainRun:
    """Train (or load from the cache) the run described by ``spec`` with ``changes`` applied."""
    from ..data.prepare import packed_split

    spec = dataclasses.replace(spec or PretrainSpec(), **changes)
    vocab_size = spec.gpt_config.vocab_size
    train_path = packed_split("train", vocab_size, seed=spec.data_seed, progress=progress)
    val_path = packed_split("val", vocab_size, seed=spec.data_seed, progress=progress)
    train_tokens, metadata = open_token_file(train_path, vocab_size)
    run_dir = entry_dir("pretrain", {**spec.to_dict(), "data": metadata})
    run = PretrainRun(spec, run_dir)
    if is_done(run_dir):
        return run
    val_tokens, _ = open_token_file(val_path, vocab_size)
    resume = ckpt.latest_checkpoint(run_dir) is not None
    train_language_model(spec.build_model(), train_tokens, val_tokens, spec.train_config(progress),
                    run_dir=run_dir, resume=resume, metadata=metadata)
    mark_done(run_dir)
    return run


def cached_pretraining_runs() -> dict[str, PretrainRun]:
    """Every finished pretraining run in the cache (GPT and LSTM), by a readable name; entries
    written by another version of :class:`PretrainSpec` are skipped."""
    runs = {}
    for entry in sorted((cache_root() / "pretrain").glob("*/config.json")):
        if not is_done(entry.parent):
            continue
        config = json.loads(entry.read_text())
        config.pop("data", None)
        try:
            spec = PretrainSpec(**config)
        except (TypeError, ValueError):
            continue
        name = f"{spec.preset} {spec.model}, {spec.steps} x {spec.batch_size} (seed {spec.seed}, {entry.parent.name[:6]})"
        runs[name] = PretrainRun(spec, entry.parent)
    return runs
