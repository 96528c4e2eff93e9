"""Pretraining runs on the books corpus, cached by their full spec, with log-spaced checkpoints.

The notebooks share one pretrained model: a second call of :func:`pretrain` with the same spec
loads the finished run instead of training, and an interrupted run resumes from its checkpoint.
Checkpoints are kept at log-spaced steps because the zero-shot curves are read on a log axis.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.distributed as dist

from ..core.checks import NON_NEGATIVE_INT, Check, check_fields
from ..core.device import init_distributed
from ..core.options import apply_overrides, from_dict, option
from ..data.tokenizer import Tokenizer
from ..models.gpt import GPT
from ..models.lstm import LSTMLanguageModel
from ..models.params import count_parameters
from ..training import checkpoint as ckpt
from ..training.checkpointer import hold_run_directory
from ..training.config import plan_batches
from ..training.language_model import default_token_files, open_token_file, train_language_model
from ..training.schedules import Schedule
from ..training.sinks import MetricsSink
from .cache import cache_root, claim_dir, entry_dir, entry_path, is_done, mark_done
from .pool import beside, cpu_workers
from .recipes import PretrainSpec, Recipe, load_recipe


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
        """Steps with a kept checkpoint (log-spaced, the last one included); a rolling checkpoint that
        an interrupted run left behind is not one of them."""
        kept = set(self.spec.checkpoint_steps())
        return [s for p in ckpt.list_checkpoints(self.run_dir) if (s := ckpt.checkpoint_step(p)) in kept]

    @property
    def tokenizer(self) -> Tokenizer:
        return self.spec.tokenizer()

    def machine(self) -> pd.DataFrame:
        """Where the run trained: one row per training session (device, precision, threads, CPU
        kernels and flags), from the ``machine.json`` the Trainer writes; empty for a run without one."""
        path = self.run_dir / "machine.json"
        return pd.DataFrame(json.loads(path.read_text()) if path.exists() else [])

    def load(self, step: int | None = None) -> GPT | LSTMLanguageModel:
        """The model at a kept checkpoint (default: the last), in eval mode on the CPU."""
        steps = self.steps
        step = steps[-1] if step is None else step
        if step not in steps:
            raise ValueError(f"no checkpoint at step {step}; kept steps: {steps}")
        model = self.spec.build_model()
        ckpt.load_weights(model, ckpt.checkpoint_path(self.run_dir, step))
        return model.eval()


def pretrain(
    spec: PretrainSpec,
    *,
    progress: bool = True,
    run_dir: str | os.PathLike[str] | None = None,
    tokens: tuple[Path, Path | None] | None = None,
    sink: MetricsSink | None = None,
) -> PretrainRun:
    """Train the run ``spec`` describes, or load it when finished; an interrupted run resumes.

    The run lives in the experiment cache under a hash of ``spec`` and its data, unless ``run_dir``
    is given. ``tokens`` (train, val or None) replaces the books corpus with other packed token
    files. Under torchrun every rank calls this; rank 0 prepares the data and marks the run done.
    ``sink`` (e.g. a :class:`~workbench.training.sinks.TensorBoardSink`) receives the history rows
    this call trains: none for a finished run; it is no part of the cache key.

    One process at a time trains a run: another process that wants the same cache entry (a second
    notebook) waits for it and then loads the finished run; another process in the same ``run_dir``
    fails at once with :class:`~workbench.core.locks.DirectoryLocked`, naming the directory and
    the process that holds it.
    """
    vocab_size = spec.gpt_config.vocab_size
    if tokens is None:
        tokens = default_token_files(vocab_size, seed=spec.data_seed, progress=progress)
    train_path, val_path = tokens
    train_tokens, metadata = open_token_file(train_path, vocab_size)
    config = {**spec.key(), "data": metadata}
    plan_batches(spec.train, init_distributed().world_size)  # a batch that does not split fails before any entry exists
    if run_dir is None:
        run_dir, wait, what = entry_dir("pretrain", config), True, "experiment cache entry"
    else:
        run_dir, wait, what = Path(run_dir), False, "run directory"
    context = init_distributed()  # only rank 0 writes, so only rank 0 holds the directory
    with hold_run_directory(run_dir, wait=wait, what=what) if context.is_main else contextlib.nullcontext():
        claim_dir(run_dir, config)
        run = PretrainRun(spec, run_dir)
        if _rank_zero_says(is_done(run_dir), context):  # also when another process finished it while rank 0 waited
            return run
        val_tokens = open_token_file(val_path, vocab_size)[0] if val_path is not None else None
        resume = ckpt.latest_checkpoint(run_dir) is not None
        train_language_model(
            spec.build_model(),
            train_tokens,
            val_tokens,
            spec.train_config(progress),
            run_dir=run_dir,
            resume=resume,
            metadata=metadata,
            sink=sink,
        )
        if context.is_main:
            mark_done(run_dir)
    return run


def _rank_zero_says(value: bool, context) -> bool:
    """Rank 0's ``value`` on every rank: it alone holds the directory's lock, so another rank that
    judged for itself could see a run finish that rank 0 is about to train, or the reverse, and
    leave the other ranks waiting in a collective that never comes."""
    if context.world_size == 1:
        return value
    decision = [value if context.is_main else None]
    dist.broadcast_object_list(decision, src=0)
    return bool(decision[0])


def pretrain_all(specs: list[PretrainSpec], progress: bool = True) -> list[PretrainRun]:
    """:func:`pretrain` for every spec, the missing runs at once on a CPU where each fixes its
    threads (the first in this process, with its progress bar; the others in worker processes)."""
    runs: list[PretrainRun | None] = [None] * len(specs)
    todo = []
    for i, spec in enumerate(specs):
        run_dir = cache_entry(spec)
        if is_done(run_dir):
            runs[i] = PretrainRun(spec, run_dir)
        else:
            todo.append(i)
    if todo:
        first, *others = todo
        threads, device = specs[first].train.threads, specs[first].train.device
        trained = beside(
            _pretrain, (specs[first], progress), [(specs[i], False) for i in others], cpu_workers(threads, device)
        )
        for i, run in zip(todo, trained):
            runs[i] = run
    return runs


def _pretrain(spec: PretrainSpec, progress: bool) -> PretrainRun:
    return pretrain(spec, progress=progress)


def cache_entry(spec: PretrainSpec, tokens: tuple[Path, Path | None] | None = None) -> Path:
    """Where :func:`pretrain` keeps the run of ``spec`` (on ``tokens``, default the books corpus) in the
    experiment cache; nothing is created."""
    vocab_size = spec.gpt_config.vocab_size
    train_path = tokens[0] if tokens else default_token_files(vocab_size, seed=spec.data_seed, progress=False)[0]
    return entry_path("pretrain", {**spec.key(), "data": open_token_file(train_path, vocab_size)[1]})


def find_runs(*paths: str | os.PathLike[str]) -> dict[str, Path]:
    """Run directories (those with a ``history.csv``) at or under ``paths``, by a short name.

    The one run discovery of the package. Checkpoint directories carry a copy of the history
    too; they are not runs of their own, and they are not walked: a run that is training replaces
    and removes them, and a directory that vanishes while it is walked is skipped, not an error
    (``Path.rglob`` raised ``FileNotFoundError`` for one, which the soak test found).
    """
    found: list[Path] = []
    for path in map(Path, paths):
        if (path / ckpt.HISTORY_FILE).is_file():
            found.append(path)
            continue
        runs = []
        for root, directories, files in os.walk(path):  # os.walk skips what it cannot list
            directories[:] = [d for d in directories if d != ckpt.CHECKPOINTS]
            if ckpt.HISTORY_FILE in files:
                runs.append(Path(root))
        found += sorted(runs, key=lambda run: run / ckpt.HISTORY_FILE)
    names: dict[str, Path] = {}
    for run in dict.fromkeys(found):
        names[run.name if run.name not in names else f"{run.parent.name}/{run.name}"] = run
    return names


def cached_pretraining_runs() -> dict[str, PretrainRun]:
    """Every finished pretraining run in the cache (GPT and LSTM), by a readable name; entries
    written by another version of :class:`PretrainSpec` are skipped."""
    runs = {}
    for run_dir in find_runs(cache_root() / "pretrain").values():
        if not is_done(run_dir):
            continue
        config = json.loads((run_dir / "config.json").read_text())
        config.pop("data", None)
        try:
            spec = from_dict(PretrainSpec, config)
        except (TypeError, ValueError):
            continue
        train = spec.train
        name = f"{spec.preset} {spec.model}, {train.steps} x {train.batch_size} (seed {train.seed}, {run_dir.name[:6]})"
        runs[name] = PretrainRun(spec, run_dir)
    return runs


SAMPLE_PROMPTS = (
    "To be, or not to be",
    "And the LORD said unto Moses,",
    "KING HENRY.\nOnce more unto the breach,",
    "O Romeo, Romeo,",
    "In the beginning",
)
"""Prompts in the style of each source, continued by :meth:`PretrainingExperiment.samples`."""


@dataclass(frozen=True)
class PretrainingExperiment:
    """The pretraining notebook's experiment: the recipe's shared run, and what to sample from it."""

    recipe: Recipe = option("the recipe of the scale, with the notebook's overrides")
    n_samples: int = option(
        "prompts to continue with the pretrained model",
        check=Check(
            f"an integer in 0..{len(SAMPLE_PROMPTS)} (at most one per prompt)",
            lambda n: NON_NEGATIVE_INT.test(n) and n <= len(SAMPLE_PROMPTS),
        ),
    )
    sample_tokens: int = option("tokens per continuation", check=NON_NEGATIVE_INT)

    def __post_init__(self) -> None:
        check_fields(self)

    @classmethod
    def from_params(
        cls,
        scale: str | Path | Recipe = "cpu",
        *,
        steps: int | None = None,
        device: str = "auto",
        precision: str | None = None,
        n_samples: int = 3,
        sample_tokens: int = 40,
    ) -> PretrainingExperiment:
        """The recipe of ``scale`` (a name, a YAML file or a Recipe); ``steps=None`` keeps its updates."""
        recipe = load_recipe(scale).with_device(device, precision)
        if steps is not None:
            recipe = apply_overrides(recipe, {"pretraining": {"train": {"steps": steps}}})
        return cls(recipe, n_samples, sample_tokens)

    @property
    def spec(self) -> PretrainSpec:
        return self.recipe.pretraining

    def setup(self) -> pd.DataFrame:
        """The run at a glance: model, data and optimisation."""
        spec, config, train = self.spec, self.spec.gpt_config, self.spec.train_config(progress=False)
        rows = {
            "preset": spec.preset,
            "parameters": f"{count_parameters(config):,}",
            "layers x width": f"{config.n_layer} x {config.d_model}, {config.n_head} heads",
            "vocabulary": f"{config.vocab_size:,} (corpus BPE)",
            "context": config.n_ctx,
            "updates": train.steps,
            "batch (sequences x tokens)": f"{train.batch_size} x {config.n_ctx}",
            "tokens seen": f"{train.steps * train.batch_size * config.n_ctx:,}",
            "peak learning rate": train.lr,
            "warmup updates": Schedule.create(train.schedule, train.steps, train.warmup_steps).warmup_steps,
            "dropout": spec.dropout,
            "seed": train.seed,
            "precision": train.precision,
            "threads": train.threads or "torch's default",
        }
        return pd.DataFrame({"value": list(rows.values())}, index=list(rows))

    def run(self, progress: bool = True) -> PretrainRun:
        """The shared run, trained here or read from the cache; the LSTM baseline of 03 and 04 (the
        same tokens, sized like it) trains beside it, on another core where the recipe fixes threads."""
        lstm = dataclasses.replace(self.spec, model="lstm")
        return pretrain_all([self.spec, lstm] if self.spec.model == "gpt" else [self.spec], progress)[0]

    def samples(self, run: PretrainRun) -> dict[str, str]:
        """Sampled continuations (temperature 0.8, top-k 40, seed i) of a prompt in each source's style."""
        prompts = SAMPLE_PROMPTS[: self.n_samples]
        model, tokenizer = run.load(), run.tokenizer
        outputs = [
            model.generate(
                torch.tensor([tokenizer.encode(prompt)]), self.sample_tokens, temperature=0.8, top_k=40, seed=i
            )
            for i, prompt in enumerate(prompts)
        ]
        return {prompt: tokenizer.decode(out[0].tolist()) for prompt, out in zip(prompts, outputs)}

    def findings(self, run: PretrainRun) -> str:
        """The validation loss from the first to the last evaluation, computed from the history."""
        val = run.history.dropna(subset=["val_loss"]).set_index("step")["val_loss"]
        uniform = math.log(self.spec.gpt_config.vocab_size)
        falling = (
            f"still falling over the last two evaluations: {bool(val.iloc[-1] < val.iloc[-2])}"
            if len(val) > 1
            else "one evaluation only (more updates than train.eval_every give a trend)"
        )
        return (
            f"validation loss: {val.iloc[0]:.2f} nats at update {val.index[0]} (a uniform guess scores "
            f"{uniform:.2f}) -> {val.iloc[-1]:.2f} at update {val.index[-1]} (perplexity "
            f"{math.exp(val.iloc[-1]):.0f}); {falling}"
        )
