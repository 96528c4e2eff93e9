"""Fine-tuning a pretrained run on a task, and the experiments built on it: the layer-transfer
sweep (GPT-1 Figure 2, left) and the ablation of GPT-1 Table 5.

Every fine-tuning run is cached by everything that made it (the pretraining run, task, layers,
seed, labels, lambda, settings), so a sweep and an ablation that share runs train them once and a
notebook re-run reads them back. Tasks are split with the pretraining run's ``data_seed``: their
examples come from the documents that run held out.
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..data.tasks import TASK_SPLITS, TASKS, load_task
from ..core.device import PRECISIONS, autocast, resolve_device
from ..training.finetuning import TaskModel, accuracy, finetune, model_kind, transfer
from ..core.io import write_text_atomic
from ..models.gpt import GPT
from ..training.schedules import SCHEDULES
from ..training.trainer import TrainConfig
from ..data.transforms import encode_examples
from ..evaluation.heuristics import random_accuracy
from .cache import entry_dir, is_done, mark_done
from .pretraining import SCALES, PretrainRun, PretrainSpec

VARIANTS = {
    "full": "all pretrained layers transferred, auxiliary LM objective (lambda = 0.5)",
    "no_aux_lm": "all pretrained layers transferred, no auxiliary LM objective (lambda = 0)",
    "no_pretraining": "the same model freshly initialised, lambda = 0.5",
}
"""GPT-1 Table 5's transformer rows (its LSTM row needs an LSTM task head, which is not built)."""

SWEEP_COLUMNS = ["task", "variant", "layers_transferred", "seed", "split", "accuracy"]
ABLATION_COLUMNS = ["task", "variant", "seed", "split", "accuracy"]


@dataclass(frozen=True)
class FinetuneSettings:
    """How each fine-tuning run trains and is evaluated (part of its cache key).

    GPT-1 fine-tunes for 3 epochs at batch 32 with lr 6.25e-5, a quarter of its pretraining lr,
    linear decay after a 0.2% warmup, and dropout 0.1 before the head. The default lr keeps that
    quarter of the CPU pretraining lr (1e-3). ``steps`` (if set) replaces ``epochs``: with few
    labels, a fixed number of updates gives every layer count the same optimisation budget.
    ``max_eval_examples`` caps each evaluated split (the first examples of its fixed order).
    ``threads`` (torch threads per run, None: torch's default) lets a sweep on a CPU run
    cores / threads runs at once, each in its own process: small models use one core better than
    two. It is part of the cache key, since the number of threads can change the last bits.
    """

    epochs: float = 3.0
    steps: int | None = None
    batch_size: int = 32
    lr: float = 2.5e-4
    schedule: str = "gpt1-finetune"
    warmup_steps: int | None = None
    head_dropout: float = 0.1
    n_ctx: int | None = None            # None: the pretrained model's context
    max_eval_examples: int | None = 500
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.epochs, (int, float)) and math.isfinite(self.epochs) and self.epochs > 0):
            raise ValueError(f"FinetuneSettings.epochs must be a positive number, got {self.epochs!r}")
        for name in ("steps", "n_ctx", "max_eval_examples", "threads"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"FinetuneSettings.{name} must be a positive integer or None, got {value!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"FinetuneSettings.batch_size must be a positive integer, got {self.batch_size!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"FinetuneSettings.lr must be a positive number, got {self.lr!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"FinetuneSettings.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not 0 <= self.head_dropout < 1:
            raise ValueError(f"FinetuneSettings.head_dropout must be in [0, 1), got {self.head_dropout!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"FinetuneSettings.precision must be one of {PRECISIONS}, got {self.precision!r}")
        resolve_device(self.device)  # names the device and whether this machine has it

    def updates(self, n_train: int) -> int:
        """Optimizer updates for ``n_train`` labelled examples."""
        return self.steps or max(1, math.ceil(self.epochs * n_train / self.batch_size))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


FINETUNE_SCALES: dict[str, FinetuneSettings] = {
    # Few updates (15-30 per run) need more than GPT-1's quarter of the pretraining lr (probes in
    # notebook 03). 64 tokens hold a sentence, or two lines and a choice; one thread per run, two
    # runs at once, is how two cores train these small models best.
    "cpu": FinetuneSettings(lr=1e-3, n_ctx=64, max_eval_examples=200, threads=1),
    "gpu": FinetuneSettings(lr=6.25e-5, max_eval_examples=None),
    # GPT-1's recipe as published.
    "paper": FinetuneSettings(lr=6.25e-5, max_eval_examples=None),
}

N_LABELLED: dict[str, dict[str, int | None]] = {
    "cpu": {"sentiment": 300, "next_line": 150},
    "gpu": {"sentiment": 500, "next_line": 500},
    "paper": {"sentiment": None, "next_line": None},
}
"""Labelled training examples per task at each scale (None: the whole train split)."""


@dataclass(frozen=True)
class TransferExperiment:
    """The validated parameters of the layer-transfer notebook: what to pretrain and fine-tune."""

    scale: str
    spec: PretrainSpec
    settings: FinetuneSettings
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    layers: tuple[int, ...]
    n_labelled: dict[str, int | None]


def check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; valid scales: {list(SCALES)}")
    return scale


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid tasks: {list(TASKS)}")
    return task


def check_layers(layers: Iterable[int] | None, n_layer: int) -> tuple[int, ...]:
    """Layer counts to transfer, each in 0..n_layer; None means all of them."""
    if layers is None:
        return tuple(range(n_layer + 1))
    layers = tuple(layers)
    bad = [n for n in layers if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= n_layer]
    if bad or not layers:
        raise ValueError(f"layers must be integers in 0..{n_layer} (the model has {n_layer} layers), "
                         f"got {list(layers)}")
    return tuple(dict.fromkeys(layers))


def check_seeds(seeds: Iterable[int]) -> tuple[int, ...]:
    seeds = tuple(seeds)
    if not seeds or any(not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in seeds):
        raise ValueError(f"seeds must be a non-empty list of integers >= 0, got {list(seeds)}")
    return tuple(dict.fromkeys(seeds))


def check_n_labelled(n_labelled: int | None, task: str) -> int | None:
    if n_labelled is not None and (not isinstance(n_labelled, int) or isinstance(n_labelled, bool)
                                   or n_labelled < 1):
        raise ValueError(f"n_labelled for task {task!r} must be a positive integer or None, got {n_labelled!r}")
    return n_labelled


def labelled_per_task(n_labelled: int | Mapping[str, int | None] | None,
                      tasks: Iterable[str]) -> dict[str, int | None]:
    """One count for every task, a count per task, or None (every labelled example)."""
    tasks = [check_task(t) for t in tasks]
    if isinstance(n_labelled, Mapping):
        extra = sorted(set(n_labelled) - set(tasks))
        if extra:
            raise ValueError(f"n_labelled names tasks {extra} that are not run; tasks: {tasks}")
        return {t: check_n_labelled(n_labelled.get(t), t) for t in tasks}
    return {t: check_n_labelled(n_labelled, t) for t in tasks}


def pretrain_spec(scale: str = "cpu", steps: int | None = None, device: str = "auto",
                  precision: str = "auto") -> PretrainSpec:
    """The pretraining of a named scale, with its steps (None: the scale's), device and precision."""
    check_scale(scale)
    changes = {} if steps is None else {"steps": steps}
    return dataclasses.replace(SCALES[scale], device=device, precision=precision, **changes)


def transfer_experiment(scale: str = "cpu", *, tasks: Iterable[str] = ("sentiment", "next_line"),
                        seeds: Iterable[int] = (0, 1, 2), layers: Iterable[int] | None = None,
                        n_labelled: int | Mapping[str, int | None] | None = None,
                        pretrain_steps: int | None = None, finetune_steps: int | None = None,
                        device: str = "auto", precision: str = "auto") -> TransferExperiment:
    """Validate the notebook's parameters before any work, filling in the scale's defaults.

    ``n_labelled=None`` and ``*_steps=None`` take the scale's values.
    """
    check_scale(scale)
    tasks = tuple(dict.fromkeys(check_task(t) for t in ([tasks] if isinstance(tasks, str) else tasks)))
    if not tasks:
        raise ValueError(f"tasks must name at least one task; valid tasks: {list(TASKS)}")
    spec = pretrain_spec(scale, pretrain_steps, device, precision)
    settings = dataclasses.replace(FINETUNE_SCALES[scale], device=device, precision=precision,
                                   **({} if finetune_steps is None else {"steps": finetune_steps}))
    labelled = labelled_per_task(N_LABELLED[scale] if n_labelled is None else n_labelled, tasks)
    return TransferExperiment(scale, spec, settings, tasks, check_seeds(seeds),
                              check_layers(layers, spec.gpt_config.n_layer), labelled)


def _tokenizer(spec: PretrainSpec):
    from ..data.prepare import corpus_tokenizer

    return corpus_tokenizer(spec.gpt_config.vocab_size, seed=spec.data_seed)


@dataclass(frozen=True)
class _Job:
    """One validated fine-tuning run: what :func:`finetune_task` was asked for, picklable for a
    worker process."""

    run: PretrainRun | None
    spec: PretrainSpec
    task: str
    n_layers: int | None
    seed: int
    n_labelled: int | None
    lm_weight: float
    settings: FinetuneSettings

    def entry(self) -> Path:
        return entry_dir("finetune", dict(
            pretraining=self.run.run_dir.name if self.run is not None else None, spec=self.spec.to_dict(),
            task=self.task, layers_transferred=self.n_layers, seed=self.seed, n_labelled=self.n_labelled,
            lm_weight=self.lm_weight, settings=self.settings.to_dict()))


def _job(run: PretrainRun | None, task: str, n_layers: int | None, seed: int, n_labelled: int | None,
         lm_weight: float, settings: FinetuneSettings | None, spec: PretrainSpec | None) -> _Job:
    settings = settings or FinetuneSettings()
    if run is not None:
        if spec is not None and spec != run.spec:
            raise ValueError("pass spec only with run=None: a run fixes its own architecture")
        spec = run.spec
    spec = spec or SCALES["cpu"]
    if spec.model != "gpt":
        raise ValueError(f"fine-tuning needs a GPT run, got a {spec.model!r} run")
    check_task(task)
    if run is None and n_layers is not None:
        raise ValueError(f"run=None fine-tunes without pretraining, so nothing is transferred; "
                         f"n_layers must be None, got {n_layers!r}")
    n_layer = spec.gpt_config.n_layer
    if run is not None:
        n_layers = n_layer if n_layers is None else check_layers([n_layers], n_layer)[0]
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    check_n_labelled(n_labelled, task)
    if not (isinstance(lm_weight, (int, float)) and lm_weight >= 0):
        raise ValueError(f"lm_weight (lambda) must be a number >= 0, got {lm_weight!r}")
    return _Job(run, spec, task, n_layers, seed, n_labelled, float(lm_weight), settings)


def finetune_task(run: PretrainRun | None, task: str, n_layers: int | None = None, seed: int = 0,
                  n_labelled: int | None = None, lm_weight: float = 0.5,
                  settings: FinetuneSettings | None = None, *, spec: PretrainSpec | None = None) -> dict:
    """Fine-tune on ``task`` from ``run``'s last checkpoint (cached); return accuracies and settings.

    ``n_layers`` pretrained blocks are transferred with the embeddings (None: all; 0: embeddings
    only). ``run=None`` fine-tunes the same architecture freshly initialised (no pretraining):
    that of ``spec``, default ``SCALES["cpu"]``. ``n_labelled`` keeps the first labelled
    examples of the train split (None: all). ``lm_weight`` is lambda in L3 = L2 + lambda L1.
    """
    job = _job(run, task, n_layers, seed, n_labelled, lm_weight, settings, spec)
    return _cached(job) or _compute(job)


def _cached(job: _Job) -> dict | None:
    path = job.entry()
    return json.loads((path / "result.json").read_text()) if is_done(path) else None


def _compute(job: _Job) -> dict:
    """Train and evaluate one run with ``settings.threads`` torch threads, then cache its result."""
    threads = torch.get_num_threads()
    if job.settings.threads is not None:
        torch.set_num_threads(job.settings.threads)
    try:
        result = _finetune(job.run, job.spec, job.task, job.n_layers, job.seed, job.n_labelled,
                           job.lm_weight, job.settings)
    finally:
        torch.set_num_threads(threads)
    path = job.entry()
    write_text_atomic(path / "result.json", json.dumps(result, indent=1))
    mark_done(path)
    return result


def _run_jobs(jobs: list[_Job], desc: str, progress: bool) -> list[dict]:
    """Every job's result, read from the cache or computed; on a CPU with ``settings.threads``
    set, as many runs at once as the cores allow (each in its own process)."""
    results = [_cached(job) for job in jobs]
    todo = [i for i, result in enumerate(results) if result is None]
    with tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=desc, unit="run",
              disable=not progress) as bar:
        workers = min(len(todo), _workers(jobs[0].settings)) if todo else 0
        if workers <= 1:
            for i in todo:
                results[i] = _compute(jobs[i])
                bar.update()
        else:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = {pool.submit(_compute, jobs[i]): i for i in todo}
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    bar.update()
    return results


def _workers(settings: FinetuneSettings) -> int:
    if settings.threads is None or resolve_device(settings.device).type != "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // settings.threads)


def _finetune(run, spec, task, n_layers, seed, n_labelled, lm_weight, settings) -> dict:
    start = time.perf_counter()
    task_spec = TASKS[task]
    tokenizer = _tokenizer(spec)
    model_config = spec.gpt_config
    n_ctx = settings.n_ctx or model_config.n_ctx
    if n_ctx > model_config.n_ctx:
        raise ValueError(f"settings.n_ctx={n_ctx} exceeds the model's context {model_config.n_ctx}")
    model_config = model_config.replace(n_ctx=n_ctx)
    encoded = {}
    for split in TASK_SPLITS:
        examples = load_task(task, split, seed=spec.data_seed, n_train=n_labelled if split == "train" else None)
        if split != "train":
            examples = examples[: settings.max_eval_examples]
        encoded[split] = encode_examples(task_spec.kind, examples, tokenizer, n_ctx)
    torch.manual_seed(seed)  # the fresh layers and the head: the same for every layer count
    gpt = GPT(model_config)
    if run is not None:
        transfer(run.load(), gpt, n_layers)
    model = TaskModel(gpt, model_kind(task_spec.kind), n_classes=max(2, len(task_spec.labels)),
                      dropout=settings.head_dropout)
    steps = settings.updates(len(encoded["train"]))
    train_config = TrainConfig(
        steps=steps, batch_size=min(settings.batch_size, len(encoded["train"])), lr=settings.lr,
        schedule=settings.schedule, warmup_steps=settings.warmup_steps, seed=seed,
        device=settings.device, precision=settings.precision, eval_every=0, checkpoint_every=0,
        log_every=steps, progress=False,
    )
    trainer = finetune(model, encoded["train"], train_config, tokenizer.pad_id, lm_weight=lm_weight)
    last = trainer.history.dropna(subset=["loss"]).iloc[-1]
    result = dict(task=task, kind=task_spec.kind, pretrained=run is not None,
                  layers_transferred=n_layers, seed=seed, n_labelled=len(encoded["train"]),
                  lm_weight=lm_weight, steps=steps, final_task_loss=float(last["task_loss"]))
    with autocast(trainer.device, trainer.dtype):
        for split in TASK_SPLITS:
            evaluated = encoded[split][: settings.max_eval_examples]
            by_length = sorted(evaluated, key=lambda example: max(map(len, example[0])))  # less padding
            result[f"{split}_accuracy"] = accuracy(model, by_length, tokenizer.pad_id)
            result[f"{split}_examples"] = len(evaluated)
    result.update(seconds=round(time.perf_counter() - start, 2), settings=settings.to_dict(),
                  pretraining=spec.to_dict())
    return result


def _long_rows(result: dict, **keys) -> list[dict]:
    return [dict(task=result["task"], **keys, seed=result["seed"], split=split,
                 accuracy=result[f"{split}_accuracy"]) for split in TASK_SPLITS]


def layer_transfer_sweep(run: PretrainRun, task: str, layers: Iterable[int] | None = None,
                         seeds: Iterable[int] = (0, 1, 2), n_labelled: int | None = None,
                         settings: FinetuneSettings | None = None, lm_weight: float = 0.5, *,
                         progress: bool = True) -> pd.DataFrame:
    """Accuracy against the number of pretrained layers transferred (GPT-1 Figure 2, left).

    One row per run and split: ``variant`` is ``"transfer"`` (``layers_transferred`` 0..L, 0 =
    embeddings only) or ``"no_pretraining"`` (the reference line: nothing transferred, not even
    the embeddings; ``layers_transferred`` empty).
    """
    if run is None:
        raise ValueError("layer_transfer_sweep needs a pretraining run to transfer layers from")
    check_task(task)
    layers = check_layers(layers, run.spec.gpt_config.n_layer)
    seeds = check_seeds(seeds)
    jobs = [_job(run, task, n, seed, n_labelled, lm_weight, settings, None) for seed in seeds for n in layers]
    jobs += [_job(None, task, None, seed, n_labelled, lm_weight, settings, run.spec) for seed in seeds]
    rows = []
    for job, result in zip(jobs, _run_jobs(jobs, f"{task}: fine-tuning runs", progress)):
        if job.run is None:
            rows += _long_rows(result, variant="no_pretraining", layers_transferred=pd.NA)
        else:
            rows += _long_rows(result, variant="transfer", layers_transferred=job.n_layers)
    frame = pd.DataFrame(rows, columns=SWEEP_COLUMNS)
    frame["layers_transferred"] = frame["layers_transferred"].astype("Int64")
    return frame


def ablation(run: PretrainRun, tasks: Iterable[str], seeds: Iterable[int] = (0, 1, 2),
             n_labelled: int | Mapping[str, int | None] | None = None,
             settings: FinetuneSettings | None = None, *, progress: bool = True) -> pd.DataFrame:
    """GPT-1 Table 5's transformer rows (see :data:`VARIANTS`) for each task and seed.

    ``n_labelled`` is one count for every task or a ``{task: count}`` mapping. Runs shared with a
    layer-transfer sweep of the same settings (all layers, lambda 0.5; no pretraining) are read
    from the cache.
    """
    if run is None:
        raise ValueError("ablation needs a pretraining run: its variants are measured against it")
    labelled = labelled_per_task(n_labelled, [tasks] if isinstance(tasks, str) else tasks)
    seeds = check_seeds(seeds)
    keys = [(task, variant, seed) for task in labelled for variant in VARIANTS for seed in seeds]
    jobs = [_job(None, task, None, seed, labelled[task], 0.5, settings, run.spec) if variant == "no_pretraining"
            else _job(run, task, None, seed, labelled[task], 0.0 if variant == "no_aux_lm" else 0.5, settings, None)
            for task, variant, seed in keys]
    rows = []
    for (_, variant, _), result in zip(keys, _run_jobs(jobs, "ablation runs", progress)):
        rows += _long_rows(result, variant=variant)
    return pd.DataFrame(rows, columns=ABLATION_COLUMNS)


def summarize(frame: pd.DataFrame, by: Iterable[str]) -> pd.DataFrame:
    """Mean, standard deviation, min and max of ``accuracy`` over seeds, per group of ``by``."""
    by = list(by)
    table = frame.groupby(by, sort=False, dropna=False)["accuracy"].agg(
        ["mean", "std", "min", "max", "count"]).rename(columns={"count": "seeds"})
    return table.reset_index()


def _differs(a: pd.Series, b: pd.Series) -> str:
    """"above" / "below" when the means of two sets of seeds differ by more than two standard
    errors of the difference, else "level with" (the spread between seeds is the noise)."""
    error = 2 * math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)) if len(a) > 1 and len(b) > 1 else 0.0
    change = a.mean() - b.mean()
    return "above" if change > error else "below" if change < -error else "level with"


def findings(sweep: pd.DataFrame, ablation_table: pd.DataFrame | None = None, split: str = "dev") -> list[str]:
    """What the sweep and the ablation say on ``split``, in sentences computed from them.

    A difference counts only when it exceeds two standard errors of the difference of the means
    over seeds; the chance level is one over the number of labels or choices.
    """
    lines = []
    rows = sweep[sweep["split"] == split]
    for task, group in rows.groupby("task", sort=False):
        transfer_rows = group[group["variant"] == "transfer"]
        by_layers = {int(n): g["accuracy"] for n, g in transfer_rows.groupby("layers_transferred")}
        baseline = group[group["variant"] == "no_pretraining"]["accuracy"]
        means = ", ".join(f"{n}: {a.mean():.3f}" for n, a in by_layers.items())
        fewest, most = min(by_layers), max(by_layers)
        lines.append(f"{task} ({split}, chance {random_accuracy(task):.2f}, {len(baseline)} seeds): no pretraining "
                     f"{baseline.mean():.3f}; by layers transferred {means}.")
        lines.append(f"  - all {most} layers are {_differs(by_layers[most], baseline)} no pretraining, and "
                     f"{_differs(by_layers[most], by_layers[fewest])} {fewest} layers; "
                     f"{fewest} layers are {_differs(by_layers[fewest], baseline)} no pretraining.")
    if ablation_table is not None and len(ablation_table):
        rows = ablation_table[ablation_table["split"] == split]
        for task, group in rows.groupby("task", sort=False):
            variant = {v: g["accuracy"] for v, g in group.groupby("variant", sort=False)}
            lines.append(f"ablation, {task}: full {variant['full'].mean():.3f} is "
                         f"{_differs(variant['full'], variant['no_aux_lm'])} no auxiliary LM "
                         f"({variant['no_aux_lm'].mean():.3f}) and {_differs(variant['full'], variant['no_pretraining'])} "
                         f"no pretraining ({variant['no_pretraining'].mean():.3f}).")
    return lines
