"""Fine-tuning a pretrained run on a task, and the experiments built on it: the layer-transfer
sweep (GPT-1 Figure 2, left) and the ablation of GPT-1 Table 5.

Every fine-tuning run is cached by everything that made it (the pretraining run, task, layers,
seed, labels, lambda, settings), so a sweep and an ablation that share runs train them once and a
notebook re-run reads them back. Tasks are split with the pretraining run's ``data_seed``: their
examples come from the documents that run held out.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..core.checks import (
    NON_NEGATIVE_INT,
    NON_NEGATIVE_NUMBER,
    POSITIVE_INT,
    Check,
    check_fields,
    distinct,
    one_of,
    optional,
    sequence_of,
)
from ..core.device import autocast, resolve_device
from ..core.io import write_text_atomic
from ..core.options import apply_overrides, option, to_flat_dict
from ..data.tasks import TASK_SPLITS, TASKS, load_task
from ..data.transforms import encode_examples
from ..evaluation.heuristics import random_accuracy
from ..models.gpt import GPT
from ..training.finetuning import TaskModel, accuracy, finetune, model_kind
from ..training.surgery import transfer
from .cache import entry_dir, entry_lock, is_done, mark_done
from .pretraining import PretrainRun, pretrain
from .recipes import RECIPES, FinetuneSettings, PretrainSpec, Recipe, load_recipe

VARIANTS = {
    "full": "all pretrained layers transferred, auxiliary LM objective (lambda = 0.5)",
    "no_aux_lm": "all pretrained layers transferred, no auxiliary LM objective (lambda = 0)",
    "no_pretraining": "the same model freshly initialised, lambda = 0.5",
}
"""GPT-1 Table 5's transformer rows (its LSTM row needs an LSTM task head, which is not built)."""

SWEEP_COLUMNS = ["task", "variant", "layers_transferred", "seed", "split", "accuracy"]
ABLATION_COLUMNS = ["task", "variant", "seed", "split", "accuracy"]


def check_task(task: str) -> str:
    return one_of(TASKS)(task, "task")


def check_layers(layers: Iterable[int], n_layer: int) -> tuple[int, ...]:
    """Layer counts to transfer, each in 0..n_layer, without repeats."""
    return sequence_of(in_layers(n_layer))(distinct(layers), "layers")


def in_layers(n_layer: int) -> Check:
    return Check(
        f"an integer in 0..{n_layer} (the model has {n_layer} layers)",
        lambda n: NON_NEGATIVE_INT.test(n) and n <= n_layer,
    )


@dataclass(frozen=True)
class TransferExperiment:
    """The layer-transfer notebook's experiment: a recipe, the tasks, seeds and layer counts.

    Build it with :meth:`from_params` (the notebook's parameters, checked before any work); its
    methods do the work: :meth:`pretraining`, :meth:`sweep`, :meth:`ablation`, :meth:`findings`.
    """

    recipe: Recipe = option("the recipe of the scale, with the notebook's overrides")
    tasks: tuple[str, ...] = option("tasks fine-tuned on", check=sequence_of(one_of(TASKS)))
    seeds: tuple[int, ...] = option(
        "fine-tuning seeds (head, fresh layers, data order, dropout)", check=sequence_of(NON_NEGATIVE_INT)
    )
    layers: tuple[int, ...] = option(
        "pretrained layer counts transferred (0 = embeddings only)", check=sequence_of(NON_NEGATIVE_INT)
    )

    def __post_init__(self) -> None:
        check_fields(self)
        check_layers(self.layers, self.recipe.pretraining.gpt_config.n_layer)
        if self.recipe.pretraining.model != "gpt":
            raise ValueError(f"fine-tuning needs a GPT run, got model={self.recipe.pretraining.model!r}")

    @classmethod
    def from_params(
        cls,
        scale: str | Path | Recipe = "cpu",
        *,
        tasks: Iterable[str] = ("sentiment", "next_line"),
        seeds: Iterable[int] = (0, 1, 2),
        layers: Iterable[int] | None = None,
        n_labelled: int | Mapping[str, int | None] | None = None,
        pretrain_steps: int | None = None,
        finetune_steps: int | None = None,
        device: str = "auto",
        precision: str = "auto",
    ) -> TransferExperiment:
        """The recipe of ``scale`` (a name, a YAML file or a Recipe) with the notebook's overrides.

        None keeps the recipe's value: ``n_labelled`` is one count for every task or ``{task: count}``;
        ``finetune_steps`` trains every run for that many updates instead of the recipe's epochs.
        """
        recipe = load_recipe(scale).with_device(device, precision)
        tasks = distinct([tasks] if isinstance(tasks, str) else tasks)
        overrides: dict = {}
        if pretrain_steps is not None:
            overrides["pretraining"] = {"train": {"steps": pretrain_steps}}
        if finetune_steps is not None:
            overrides["finetuning"] = {"epochs": None, "train": {"steps": finetune_steps}}
        if n_labelled is not None:
            overrides["labelled"] = {**recipe.labelled, **_labelled_overrides(n_labelled, tasks)}
        recipe = apply_overrides(recipe, overrides)
        n_layer = recipe.pretraining.gpt_config.n_layer
        layers = range(n_layer + 1) if layers is None else layers
        return cls(recipe, tasks, distinct(seeds), check_layers(layers, n_layer))

    def n_labelled(self, task: str) -> int | None:
        return self.recipe.n_labelled(task)

    def setup(self) -> pd.DataFrame:
        """What will run, one row per task: its kind, labelled examples, updates per run."""
        settings = self.recipe.finetuning
        return pd.DataFrame(
            [
                dict(
                    task=t,
                    kind=TASKS[t].kind,
                    labelled=self.n_labelled(t),
                    updates_per_run=settings.updates(self.n_labelled(t))
                    if self.n_labelled(t) is not None or settings.epochs is None
                    else f"{settings.epochs:g} epochs",
                )
                for t in self.tasks
            ]
        ).set_index("task")

    def finetuning_table(self) -> pd.DataFrame:
        """The fine-tuning settings every run shares (device and precision aside)."""
        flat = to_flat_dict(self.recipe.finetuning)
        shown = {k: v for k, v in flat.items() if k.split(".")[-1] not in ("device", "precision", "progress")}
        return pd.Series({k: str(v) for k, v in shown.items()}, name="fine-tuning").to_frame()

    def pretraining(self, progress: bool = True) -> PretrainRun:
        """The shared pretraining run (cached; 02_pretraining trains the same one)."""
        return pretrain(self.recipe.pretraining, progress=progress)

    def sweep(self, progress: bool = True) -> pd.DataFrame:
        """GPT-1 Figure 2 (left) for every task: :func:`layer_transfer_sweep` rows."""
        run = self.pretraining(progress)
        return pd.concat(
            [
                layer_transfer_sweep(
                    run, task, self.layers, self.seeds, self.n_labelled(task), self.recipe.finetuning, progress=progress
                )
                for task in self.tasks
            ],
            ignore_index=True,
        )

    def ablation(self, progress: bool = True) -> pd.DataFrame:
        """GPT-1 Table 5's transformer rows for every task: :func:`ablation` rows."""
        return ablation(
            self.pretraining(progress),
            self.tasks,
            self.seeds,
            {t: self.n_labelled(t) for t in self.tasks},
            self.recipe.finetuning,
            progress=progress,
        )

    def findings(
        self, sweep: pd.DataFrame, ablation_table: pd.DataFrame | None = None, splits: Iterable[str] = ("dev", "test")
    ) -> str:
        """The computed sentences of :func:`findings` for each split."""
        return "\n\n".join("\n".join(findings(sweep, ablation_table, split)) for split in splits)


def _labelled_overrides(n_labelled: int | Mapping[str, int | None], tasks: tuple[str, ...]) -> dict:
    if isinstance(n_labelled, Mapping):
        extra = sorted(set(n_labelled) - set(tasks))
        if extra:
            raise ValueError(f"n_labelled names tasks {extra} that are not run; tasks: {list(tasks)}")
        return dict(n_labelled)
    return {t: n_labelled for t in tasks}


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
        return entry_dir(
            "finetune",
            dict(
                pretraining=self.run.run_dir.name if self.run is not None else None,
                spec=self.spec.key(),
                task=self.task,
                layers_transferred=self.n_layers,
                seed=self.seed,
                n_labelled=self.n_labelled,
                lm_weight=self.lm_weight,
                settings=self.settings.key(),
            ),
        )


def _job(
    run: PretrainRun | None,
    task: str,
    n_layers: int | None,
    seed: int,
    n_labelled: int | None,
    lm_weight: float,
    settings: FinetuneSettings | None,
    spec: PretrainSpec | None,
) -> _Job:
    settings = settings or RECIPES["cpu"].finetuning
    if run is not None:
        if spec is not None and spec != run.spec:
            raise ValueError("pass spec only with run=None: a run fixes its own architecture")
        spec = run.spec
    spec = spec or RECIPES["cpu"].pretraining
    if spec.model != "gpt":
        raise ValueError(f"fine-tuning needs a GPT run, got a {spec.model!r} run")
    check_task(task)
    if run is None and n_layers is not None:
        raise ValueError(
            f"run=None fine-tunes without pretraining, so nothing is transferred; "
            f"n_layers must be None, got {n_layers!r}"
        )
    n_layer = spec.gpt_config.n_layer
    if run is not None:
        n_layers = n_layer if n_layers is None else check_layers([n_layers], n_layer)[0]
    NON_NEGATIVE_INT(seed, "seed")
    optional(POSITIVE_INT)(n_labelled, f"n_labelled of task {task!r}")
    NON_NEGATIVE_NUMBER(lm_weight, "lm_weight (lambda)")
    return _Job(run, spec, task, n_layers, seed, n_labelled, float(lm_weight), settings)


def finetune_task(
    run: PretrainRun | None,
    task: str,
    n_layers: int | None = None,
    seed: int = 0,
    n_labelled: int | None = None,
    lm_weight: float = 0.5,
    settings: FinetuneSettings | None = None,
    *,
    spec: PretrainSpec | None = None,
) -> dict:
    """Fine-tune on ``task`` from ``run``'s last checkpoint (cached); return accuracies and settings.

    ``n_layers`` pretrained blocks are transferred with the embeddings (None: all; 0: embeddings
    only). ``run=None`` fine-tunes the same architecture freshly initialised (no pretraining):
    that of ``spec``, default the CPU recipe's. ``n_labelled`` keeps the first labelled
    examples of the train split (None: all). ``lm_weight`` is lambda in L3 = L2 + lambda L1.
    """
    job = _job(run, task, n_layers, seed, n_labelled, lm_weight, settings, spec)
    return _cached(job) or _compute(job)


def finetune_all(
    run: PretrainRun,
    runs: Sequence[tuple[str, int, int | None]],
    settings: FinetuneSettings | None = None,
    progress: bool = True,
    desc: str = "fine-tuning runs",
) -> list[dict]:
    """:func:`finetune_task` with every layer transferred and lambda = 0.5 for each ``(task, seed,
    n_labelled)`` of ``runs``, as many at once as the cores allow (cached runs are read)."""
    jobs = [_job(run, task, None, seed, n_labelled, 0.5, settings, None) for task, seed, n_labelled in runs]
    return _run_jobs(jobs, desc, progress)


def _cached(job: _Job) -> dict | None:
    path = job.entry()
    return json.loads((path / "result.json").read_text()) if is_done(path) else None


def _compute(job: _Job) -> dict:
    """Train and evaluate one run with ``settings.threads`` torch threads, then cache its result;
    if another process is computing the same run, wait for it and read its result instead."""
    path = job.entry()
    with entry_lock(path):
        if (cached := _cached(job)) is not None:
            return cached
        threads = torch.get_num_threads()
        if job.settings.threads is not None:
            torch.set_num_threads(job.settings.threads)
        try:
            result = _finetune(
                job.run, job.spec, job.task, job.n_layers, job.seed, job.n_labelled, job.lm_weight, job.settings
            )
        finally:
            torch.set_num_threads(threads)
        write_text_atomic(path / "result.json", json.dumps(result, indent=1))
        mark_done(path)
    return result


def _run_jobs(jobs: list[_Job], desc: str, progress: bool) -> list[dict]:
    """Every job's result, read from the cache or computed; on a CPU with ``settings.threads``
    set, as many runs at once as the cores allow (each in its own process)."""
    results = [_cached(job) for job in jobs]
    todo = [i for i, result in enumerate(results) if result is None]
    with tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc=desc, unit="run", disable=not progress) as bar:
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
    if settings.threads is None or resolve_device(settings.train.device).type != "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // settings.threads)


def _finetune(run, spec, task, n_layers, seed, n_labelled, lm_weight, settings) -> dict:
    start = time.perf_counter()
    task_spec = TASKS[task]
    tokenizer = spec.tokenizer()
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
    model = TaskModel(
        gpt, model_kind(task_spec.kind), n_classes=max(2, len(task_spec.labels)), dropout=settings.head_dropout
    )
    steps = settings.updates(len(encoded["train"]))
    train_config = settings.train.replace(
        steps=steps,
        batch_size=min(settings.train.batch_size, len(encoded["train"])),
        seed=seed,
        log_every=steps,
        progress=False,
    )
    trainer = finetune(model, encoded["train"], train_config, tokenizer.pad_id, lm_weight=lm_weight)
    last = trainer.history.dropna(subset=["loss"]).iloc[-1]
    result = dict(
        task=task,
        kind=task_spec.kind,
        pretrained=run is not None,
        layers_transferred=n_layers,
        seed=seed,
        n_labelled=len(encoded["train"]),
        lm_weight=lm_weight,
        steps=steps,
        final_task_loss=float(last["task_loss"]),
    )
    with autocast(trainer.device, trainer.dtype):
        for split in TASK_SPLITS:
            evaluated = encoded[split][: settings.max_eval_examples]
            by_length = sorted(evaluated, key=lambda example: max(map(len, example[0])))  # less padding
            result[f"{split}_accuracy"] = accuracy(model, by_length, tokenizer.pad_id)
            result[f"{split}_examples"] = len(evaluated)
    result.update(seconds=round(time.perf_counter() - start, 2), settings=settings.key(), pretraining=spec.key())
    return result


def _long_rows(result: dict, **keys) -> list[dict]:
    return [
        dict(task=result["task"], **keys, seed=result["seed"], split=split, accuracy=result[f"{split}_accuracy"])
        for split in TASK_SPLITS
    ]


def layer_transfer_sweep(
    run: PretrainRun,
    task: str,
    layers: Iterable[int] | None = None,
    seeds: Iterable[int] = (0, 1, 2),
    n_labelled: int | None = None,
    settings: FinetuneSettings | None = None,
    lm_weight: float = 0.5,
    *,
    progress: bool = True,
) -> pd.DataFrame:
    """Accuracy against the number of pretrained layers transferred (GPT-1 Figure 2, left).

    One row per run and split: ``variant`` is ``"transfer"`` (``layers_transferred`` 0..L, 0 =
    embeddings only) or ``"no_pretraining"`` (the reference line: nothing transferred, not even
    the embeddings; ``layers_transferred`` empty).
    """
    if run is None:
        raise ValueError("layer_transfer_sweep needs a pretraining run to transfer layers from")
    check_task(task)
    n_layer = run.spec.gpt_config.n_layer
    layers = check_layers(range(n_layer + 1) if layers is None else layers, n_layer)
    seeds = sequence_of(NON_NEGATIVE_INT)(distinct(seeds), "seeds")
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


def ablation(
    run: PretrainRun,
    tasks: Iterable[str],
    seeds: Iterable[int] = (0, 1, 2),
    n_labelled: int | Mapping[str, int | None] | None = None,
    settings: FinetuneSettings | None = None,
    *,
    progress: bool = True,
) -> pd.DataFrame:
    """GPT-1 Table 5's transformer rows (see :data:`VARIANTS`) for each task and seed.

    ``n_labelled`` is one count for every task or a ``{task: count}`` mapping. Runs shared with a
    layer-transfer sweep of the same settings (all layers, lambda 0.5; no pretraining) are read
    from the cache.
    """
    if run is None:
        raise ValueError("ablation needs a pretraining run: its variants are measured against it")
    tasks = tuple(check_task(t) for t in dict.fromkeys([tasks] if isinstance(tasks, str) else tasks))
    labelled = {t: None for t in tasks} if n_labelled is None else _labelled_overrides(n_labelled, tasks)
    labelled = {t: labelled.get(t) for t in tasks}
    seeds = sequence_of(NON_NEGATIVE_INT)(distinct(seeds), "seeds")
    keys = [(task, variant, seed) for task in labelled for variant in VARIANTS for seed in seeds]
    jobs = [
        _job(None, task, None, seed, labelled[task], 0.5, settings, run.spec)
        if variant == "no_pretraining"
        else _job(run, task, None, seed, labelled[task], 0.0 if variant == "no_aux_lm" else 0.5, settings, None)
        for task, variant, seed in keys
    ]
    rows = []
    for (_, variant, _), result in zip(keys, _run_jobs(jobs, "ablation runs", progress)):
        rows += _long_rows(result, variant=variant)
    return pd.DataFrame(rows, columns=ABLATION_COLUMNS)


def summarize(frame: pd.DataFrame, by: Iterable[str]) -> pd.DataFrame:
    """Mean, standard deviation, min and max of ``accuracy`` over seeds, per group of ``by``."""
    by = list(by)
    table = (
        frame.groupby(by, sort=False, dropna=False)["accuracy"]
        .agg(["mean", "std", "min", "max", "count"])
        .rename(columns={"count": "seeds"})
    )
    return table.reset_index()


def _differs(a: pd.Series, b: pd.Series) -> str:
    """ "above" / "below" when the means of two sets of seeds differ by more than two standard
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
        lines.append(
            f"{task} ({split}, chance {random_accuracy(task):.2f}, {len(baseline)} seeds): no pretraining "
            f"{baseline.mean():.3f}; by layers transferred {means}."
        )
        lines.append(
            f"  - all {most} layers are {_differs(by_layers[most], baseline)} no pretraining, and "
            f"{_differs(by_layers[most], by_layers[fewest])} {fewest} layers; "
            f"{fewest} layers are {_differs(by_layers[fewest], baseline)} no pretraining."
        )
    if ablation_table is not None and len(ablation_table):
        rows = ablation_table[ablation_table["split"] == split]
        for task, group in rows.groupby("task", sort=False):
            variant = {v: g["accuracy"] for v, g in group.groupby("variant", sort=False)}
            lines.append(
                f"ablation, {task}: full {variant['full'].mean():.3f} is "
                f"{_differs(variant['full'], variant['no_aux_lm'])} no auxiliary LM "
                f"({variant['no_aux_lm'].mean():.3f}) and {_differs(variant['full'], variant['no_pretraining'])} "
                f"no pretraining ({variant['no_pretraining'].mean():.3f})."
            )
    return lines
