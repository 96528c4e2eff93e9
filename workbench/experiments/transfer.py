"""Fine-tuning a pretrained run on a task, and the experiments built on it: the layer-transfer
sweep over pretraining checkpoints (GPT-1 Figure 2, left) and the ablation of GPT-1 Table 5.

Every fine-tuning run is cached by everything that made it (the pretraining run and checkpoint,
task, layers, seed, labels, lambda, settings), so a sweep and an ablation that share runs train
them once and a notebook re-run reads them back. Each run keeps its per-example outcomes on the
dev and test splits, so that conditions are compared paired by seed and by example. Tasks are
split with the pretraining run's ``data_seed``: their examples come from the documents that run
held out.

Given a ``tensorboard`` directory, each run trained (not read from the cache) also logs its history
rows there as TensorBoard scalars, in a subdirectory named after the run (``TASK/``, what it starts
from, layers, lambda, head, seed, then its cache entry's hash). Runs may train in worker processes,
so they are given a directory rather than a sink; the directory is no part of any cache key.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

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
from ..core.device import autocast, torch_threads
from ..core.io import write_text_atomic
from ..core.options import apply_overrides, option, to_flat_dict
from ..data.tasks import TASKS, TASKS_VERSION, load_task
from ..data.transforms import encode_examples
from ..evaluation.baselines import has_baselines, task_baselines
from ..evaluation.lens import minimal_pair_lens
from ..evaluation.probes import PROBED_KINDS, SOLVER, layer_features, probe_layers
from ..evaluation.statistics import bootstrap_mean
from ..models.gpt import GPT
from ..training.finetuning import correct_predictions, finetune
from ..training.sinks import MetricsSink, TensorBoardSink, require_tensorboard
from ..training.surgery import transfer
from .cache import entry_dir, entry_lock, is_done, mark_done
from .pool import cpu_workers, in_pool
from .pretraining import PretrainRun, pretrain, pretrain_all
from .recipes import RECIPES, FinetuneSettings, PretrainSpec, Recipe, load_recipe
from .transfer_statistics import CONSTANT_SHARE, findings

VARIANTS = {
    "full": "all pretrained layers transferred, auxiliary LM objective (lambda = 0.5)",
    "no_aux_lm": "all pretrained layers transferred, no auxiliary LM objective (lambda = 0)",
    "no_pretraining": "the same transformer freshly initialised, lambda = 0.5",
    "lstm": "the LSTM language model pretrained on the same tokens, read by the same head, lambda = 0.5",
    "linear_head": "the full method with GPT-1's linear head on the [extract] state instead of the likelihood head",
}
"""GPT-1 Table 5's four rows, and (when the settings use the likelihood head) GPT-1's own head."""

EVAL_SPLITS = ("dev", "test")
SWEEP_COLUMNS = [
    "task",
    "variant",
    "checkpoint_step",
    "tokens",
    "layers_transferred",
    "seed",
    "split",
    "n",
    "accuracy",
    "predicted_share",
    "constant",
]
ABLATION_COLUMNS = ["task", "variant", "seed", "split", "n", "accuracy", "predicted_share", "constant"]
PROBE_COLUMNS = ["task", "checkpoint_step", "tokens", "layer", "features", "split", "n", "accuracy"]
LENS_COLUMNS = ["task", "checkpoint_step", "layer", "n", "accuracy", "ci_low", "ci_high"]
OUTCOME_KEYS = ["task", "variant", "checkpoint_step", "layers_transferred", "features", "layer", "baseline", "seed"]
"""The columns written to CSV; the frames also carry ``correct``, each example's 0/1 outcome as a
string, for the paired statistics of :mod:`workbench.experiments.transfer_statistics`, and the
run's task loss over its first and its last :data:`~workbench.experiments.recipes.LOG_EVERY`
updates (``first_task_loss``, ``final_task_loss``: the ends of its learning curve).
``predicted_share`` is the share of examples given the run's most frequent answer, and ``constant``
flags a run whose share exceeds :data:`CONSTANT_SHARE`: such a run carries no information about its
features and is never read as "flat"."""


@functools.cache
def _labels(task: str, split: str, data_seed: int) -> np.ndarray:
    return np.array([example["label"] for example in load_task(task, split, seed=data_seed)])


def predicted_share(task: str, split: str, data_seed: int, correct: str) -> float:
    """The share of the most frequent answer of a run whose per-example outcomes are ``correct`` (a
    0/1 string in the split's order). On a two-class task a wrong answer is the other class; with
    more classes the answers are not recoverable from the outcomes, and the share is NaN."""
    if len(TASKS[task].labels) != 2:
        return math.nan
    right = np.frombuffer(correct.encode(), dtype=np.uint8) == ord("1")
    labels = _labels(task, split, data_seed)[: len(right)]
    first_class = np.where(right, labels == 0, labels == 1).mean()
    return float(max(first_class, 1 - first_class))


def _threaded_probes(run: PretrainRun, task: str, step: int, settings: FinetuneSettings) -> pd.DataFrame:
    """:func:`layer_probes` with ``settings.threads`` threads (run in a worker process)."""
    with torch_threads(settings.threads):
        return layer_probes(run, task, step, settings)


def _probes_entry(run: PretrainRun, task: str, step: int, settings: FinetuneSettings) -> Path:
    if TASKS[check_task(task)].kind not in PROBED_KINDS:
        raise ValueError(f"task {task!r} is a {TASKS[task].kind} task; probes need one of {PROBED_KINDS}")
    if step != 0 and step not in run.steps:
        raise ValueError(f"step={step!r} is neither 0 (untrained) nor a kept checkpoint; kept steps: {run.steps}")
    n_ctx = settings.n_ctx or run.spec.gpt_config.n_ctx
    return entry_dir(
        "probes",
        dict(
            pretraining=run.run_dir.name,
            spec=run.spec.key(),
            step=step,
            task=task,
            n_ctx=n_ctx,
            tasks=TASKS_VERSION,
            probe=dict(model="logistic regression", solver=SOLVER, C=1.0),
        ),
    )


def layer_probes(run: PretrainRun, task: str, step: int, settings: FinetuneSettings | None = None) -> pd.DataFrame:
    """Linear probes (:func:`workbench.evaluation.probes.probe_layers`) on the frozen ``[extract]``
    state after every layer of ``run`` at kept ``step``, fit on every labelled train example of
    ``task`` and scored on its dev and test splits (cached).

    ``step=0`` probes the untrained model: the run's own initial weights. Examples are encoded as
    fine-tuning encodes them (``settings.n_ctx``). Rows: :data:`PROBE_COLUMNS` and ``correct``,
    with ``features`` "pretrained" or "untrained".
    """
    settings = settings or RECIPES["cpu"].finetuning
    path = _probes_entry(run, task, step, settings)
    n_ctx = settings.n_ctx or run.spec.gpt_config.n_ctx
    with entry_lock(path):
        if not is_done(path):
            tokenizer = run.spec.tokenizer()
            model = run.load(step) if step else run.spec.build_model()
            features, labels = {}, {}
            for split in ("train", *EVAL_SPLITS):
                encoded = encode_examples(
                    TASKS[task].kind, load_task(task, split, seed=run.spec.data_seed), tokenizer, n_ctx
                )
                features[split] = layer_features(model, encoded, tokenizer.pad_id)
                labels[split] = np.array([label for _, label in encoded])
            table = probe_layers(features, labels)
            write_text_atomic(path / "probes.json", table.to_json(orient="records"))
            mark_done(path)
    table = pd.DataFrame(json.loads((path / "probes.json").read_text()))
    return table.assign(
        task=task,
        checkpoint_step=step,
        tokens=run.spec.tokens_seen(step),
        features="pretrained" if step else "untrained",
    )[[*PROBE_COLUMNS, "correct"]]


def _lens_entry(run: PretrainRun, task: str, step: int, split: str) -> Path:
    if step != 0 and step not in run.steps:
        raise ValueError(f"step={step!r} is neither 0 (untrained) nor a kept checkpoint; kept steps: {run.steps}")
    if TASKS[check_task(task)].kind != "multiple_choice" or TASKS[task].n_choices != 2:
        raise ValueError(f"task {task!r} is not a two-choice task; the logit lens scores minimal pairs")
    return entry_dir(
        "lens",
        dict(pretraining=run.run_dir.name, spec=run.spec.key(), step=step, task=task, split=split, tasks=TASKS_VERSION),
    )


def layer_lens(run: PretrainRun, task: str, step: int, split: str = "test") -> pd.DataFrame:
    """The logit lens (:func:`workbench.evaluation.lens.minimal_pair_lens`) of ``run`` at kept
    ``step`` (0: the untrained model) on the pairs of a two-choice ``task`` (cached): the accuracy
    of every layer with a 95% bootstrap interval over examples. Rows: :data:`LENS_COLUMNS`, ``split``
    and ``correct``."""
    path = _lens_entry(run, task, step, split)
    with entry_lock(path):
        if not is_done(path):
            examples = load_task(task, split, seed=run.spec.data_seed)
            pairs = [(e["choices"][e["label"]], e["choices"][1 - e["label"]]) for e in examples]
            model = run.load(step) if step else run.spec.build_model()
            correct = minimal_pair_lens(model, run.spec.tokenizer(), pairs)
            write_text_atomic(path / "lens.json", json.dumps(["".join(map(str, row)) for row in correct]))
            mark_done(path)
    rows = []
    for layer, outcomes in enumerate(json.loads((path / "lens.json").read_text())):
        values = np.frombuffer(outcomes.encode(), dtype=np.uint8) - ord("0")
        accuracy, low, high = bootstrap_mean(values)
        rows.append(
            dict(
                task=task,
                checkpoint_step=step,
                layer=layer,
                n=len(values),
                accuracy=accuracy,
                ci_low=low,
                ci_high=high,
                split=split,
                correct=outcomes,
            )
        )
    return pd.DataFrame(rows)


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
    """The layer-transfer notebook's experiment: a recipe, the tasks, seeds, layer counts and the
    pretraining checkpoints fine-tuned from.

    Build it with :meth:`from_params` (the notebook's parameters, checked before any work); its
    methods do the work: :meth:`pretraining`, :meth:`probes`, :meth:`sweep`, :meth:`ablation`,
    :meth:`findings`.
    """

    recipe: Recipe = option("the recipe of the scale, with the notebook's overrides")
    tasks: tuple[str, ...] = option("tasks fine-tuned on", check=sequence_of(one_of(TASKS)))
    control_tasks: tuple[str, ...] = option(
        "tasks probed but not fine-tuned (in-domain views and out-of-domain controls)",
        check=sequence_of(one_of(TASKS), non_empty=False),
    )
    seeds: tuple[int, ...] = option(
        "fine-tuning seeds (head, fresh layers, data order, dropout)", check=sequence_of(NON_NEGATIVE_INT)
    )
    layers: tuple[int, ...] = option(
        "pretrained layer counts transferred (0 = embeddings only)", check=sequence_of(NON_NEGATIVE_INT)
    )
    linear_head: FinetuneSettings | None = option(
        "the settings of Table 5's GPT-1-head row (the recipe's, with the linear head); None: "
        "the recipe's fine-tuning with head linear",
        default=None,
    )

    def __post_init__(self) -> None:
        check_fields(self)
        check_layers(self.layers, self.recipe.pretraining.gpt_config.n_layer)
        if self.recipe.pretraining.model != "gpt":
            raise ValueError(f"fine-tuning needs a GPT run, got model={self.recipe.pretraining.model!r}")
        kept = self.recipe.pretraining.checkpoint_steps()
        unknown = [s for s in self.recipe.transfer_checkpoints if s not in kept]
        if unknown:
            raise ValueError(
                f"Recipe.transfer_checkpoints {list(self.recipe.transfer_checkpoints)}: steps {unknown} are not "
                f"kept checkpoints of the pretraining run; kept steps: {list(kept)}"
            )
        for task in self.control_tasks:
            if TASKS[task].kind not in PROBED_KINDS:
                raise ValueError(f"task {task!r} is a {TASKS[task].kind} task; probes need one of {PROBED_KINDS}")

    @classmethod
    def from_params(
        cls,
        scale: str | Path | Recipe = "cpu",
        *,
        tasks: Iterable[str] = ("corrupted_pair",),
        control_tasks: Iterable[str] = ("corrupted_sentence", "sentiment"),
        seeds: Iterable[int] = (0, 1, 2, 3, 4),
        layers: Iterable[int] | None = None,
        checkpoints: Iterable[int] | None = None,
        n_labelled: int | Mapping[str, int | None] | None = None,
        pretrain_steps: int | None = None,
        finetune_steps: int | None = None,
        head: str | None = None,
        finetune_lr: float | None = None,
        device: str = "auto",
        precision: str | None = None,
    ) -> TransferExperiment:
        """The recipe of ``scale`` (a name, a YAML file or a Recipe) with the notebook's overrides.

        None keeps the recipe's value: ``n_labelled`` is one count for every task or ``{task: count}``;
        ``finetune_steps`` trains every run for that many updates instead of the recipe's epochs;
        ``checkpoints`` are kept pretraining steps to fine-tune from (with ``pretrain_steps`` and no
        ``checkpoints``, the first and the last kept steps of that run); ``head`` is the task head
        of every run (:data:`~workbench.training.finetuning.HEADS`) and ``finetune_lr`` its peak
        learning rate. Table 5's GPT-1-head row keeps the recipe's head and learning rate.
        """
        recipe = load_recipe(scale).with_device(device, precision)
        tasks = distinct([tasks] if isinstance(tasks, str) else tasks)
        control_tasks = distinct([control_tasks] if isinstance(control_tasks, str) else control_tasks)
        overrides: dict = {}
        if pretrain_steps is not None:
            overrides["pretraining"] = {"train": {"steps": pretrain_steps}}
            kept = apply_overrides(recipe.pretraining, overrides["pretraining"]).checkpoint_steps()
            overrides["transfer_checkpoints"] = tuple(dict.fromkeys((kept[0], kept[-1])))
        if checkpoints is not None:
            overrides["transfer_checkpoints"] = tuple(checkpoints)
        if finetune_steps is not None:
            overrides["finetuning"] = {"epochs": None, "train": {"steps": finetune_steps}}
        if n_labelled is not None:
            overrides["labelled"] = {**recipe.labelled, **_labelled_overrides(n_labelled, tasks)}
        recipe = apply_overrides(recipe, overrides)
        linear_head = apply_overrides(recipe.finetuning, {"head": "linear"})
        head_overrides = {"head": head} if head is not None else {}
        if finetune_lr is not None:
            head_overrides["train"] = {"lr": finetune_lr}
        recipe = apply_overrides(recipe, {"finetuning": head_overrides})
        n_layer = recipe.pretraining.gpt_config.n_layer
        layers = range(n_layer + 1) if layers is None else layers
        return cls(recipe, tasks, control_tasks, distinct(seeds), check_layers(layers, n_layer), linear_head)

    @property
    def checkpoints(self) -> tuple[int, ...]:
        """The pretraining steps fine-tuned and probed from, the last one included."""
        last = self.recipe.pretraining.train.steps
        return tuple(sorted({*self.recipe.transfer_checkpoints, last}))

    @property
    def lstm_spec(self) -> PretrainSpec:
        """The LSTM of Table 5: the zero-shot notebook's, pretrained on the same tokens."""
        return dataclasses.replace(self.recipe.pretraining, model="lstm")

    def n_labelled(self, task: str) -> int | None:
        return self.recipe.n_labelled(task)

    @property
    def probed_tasks(self) -> tuple[str, ...]:
        """The tasks whose examples are one sequence (probes read one ``[extract]`` state each)."""
        return tuple(t for t in (*self.tasks, *self.control_tasks) if TASKS[t].kind in PROBED_KINDS)

    @property
    def in_domain_tasks(self) -> tuple[str, ...]:
        """The tasks built from the held-out books, each of which must pass its no-model baselines."""
        return tuple(t for t in (*self.tasks, *self.control_tasks) if "sources" in TASKS[t].options)

    def baselines(self) -> pd.DataFrame:
        """:func:`workbench.evaluation.baselines.task_baselines` of every in-domain task on its test split."""
        tasks = [t for t in self.in_domain_tasks if has_baselines(t)]
        return task_baselines(tasks, seed=self.recipe.pretraining.data_seed)

    @property
    def lens_tasks(self) -> tuple[str, ...]:
        """The two-choice tasks, whose pairs the logit lens scores."""
        return tuple(t for t in self.tasks if TASKS[t].kind == "multiple_choice" and TASKS[t].n_choices == 2)

    def lens(self, run: PretrainRun) -> pd.DataFrame:
        """:func:`layer_lens` on the test split of every two-choice task, at every kept checkpoint of
        ``run`` and on the untrained model (step 0): a curve over pretraining compute."""
        frames = [layer_lens(run, task, step) for task in self.lens_tasks for step in (0, *run.steps)]
        table = pd.concat(frames, ignore_index=True)
        return table.assign(tokens=table["checkpoint_step"].map(run.spec.tokens_seen))

    def setup(self) -> pd.DataFrame:
        """What will run, one row per task: its kind, labelled examples, updates per run, and the
        examples evaluated with the half-width of a 95% interval at 50% accuracy."""
        settings = self.recipe.finetuning
        rows = []
        for task in (*self.tasks, *self.control_tasks):
            labelled = self.n_labelled(task)
            sizes = {
                split: len(load_task(task, split, seed=self.recipe.pretraining.data_seed)) for split in EVAL_SPLITS
            }
            rows.append(
                dict(
                    task=task,
                    role=("fine-tuned" + (" and probed" if task in self.probed_tasks else ""))
                    if task in self.tasks
                    else "probed only",
                    kind=TASKS[task].kind,
                    labelled=labelled,
                    updates_per_run=settings.updates(labelled)
                    if labelled is not None
                    else f"{settings.epochs:g} epochs",
                    **{f"{split}_examples": n for split, n in sizes.items()},
                    **{f"{split}_band": round(1.96 * math.sqrt(0.25 / n), 3) for split, n in sizes.items()},
                )
            )
        return pd.DataFrame(rows).set_index("task")

    def finetuning_table(self) -> pd.DataFrame:
        """The fine-tuning settings every run shares (device and precision aside)."""
        flat = to_flat_dict(self.recipe.finetuning)
        shown = {k: v for k, v in flat.items() if k.split(".")[-1] not in ("device", "precision", "progress")}
        return pd.Series({k: str(v) for k, v in shown.items()}, name="fine-tuning").to_frame()

    def pretraining(self, progress: bool = True) -> PretrainRun:
        """The shared pretraining run (cached; 02_pretraining trains the same one, and the LSTM beside it)."""
        return pretrain_all([self.recipe.pretraining, self.lstm_spec], progress)[0]

    def lstm_pretraining(self, progress: bool = True) -> PretrainRun:
        """The LSTM run of Table 5 (cached; 04_zero_shot trains the same one)."""
        return pretrain(self.lstm_spec, progress=progress)

    def checkpoints_table(self, run: PretrainRun) -> pd.DataFrame:
        """The checkpoints fine-tuned from: step, tokens seen and the run's validation loss there."""
        history = run.history.dropna(subset=["val_loss"]).set_index("step")["val_loss"]
        return pd.DataFrame(
            [
                dict(
                    step=step,
                    tokens=run.spec.tokens_seen(step),
                    val_loss_nearest_eval=float(history.iloc[abs(history.index - step).argmin()]),
                )
                for step in self.checkpoints
            ]
        ).set_index("step")

    def probes(self, run: PretrainRun, progress: bool = True) -> pd.DataFrame:
        """:func:`layer_probes` for every task and control at every checkpoint, and on the
        untrained model (``checkpoint_step`` 0: the run's own initial weights), as many probe sets
        at once as the fine-tuning settings run fine-tuning runs."""
        settings = self.recipe.finetuning
        calls = [(run, task, step, settings) for task in self.probed_tasks for step in (0, *self.checkpoints)]
        todo = [call for call in calls if not is_done(_probes_entry(*call))]  # a warm re-run spawns no workers
        in_pool(
            _threaded_probes,
            todo,
            cpu_workers(settings.threads, settings.train.device),
            "probe sets",
            progress,
            len(calls),
        )
        return pd.concat([layer_probes(*call) for call in calls], ignore_index=True)

    def sweep(
        self, run: PretrainRun, progress: bool = True, tensorboard: str | os.PathLike[str] | None = None
    ) -> pd.DataFrame:
        """GPT-1 Figure 2 (left) at every checkpoint, for every task, in one pool of runs:
        :func:`layer_transfer_sweep` rows (``tensorboard``: see the module's docstring)."""
        labelled = [
            (job, variant, layers)
            for task in self.tasks
            for job, variant, layers in _sweep_jobs(
                run, task, self.layers, self.seeds, self.n_labelled(task), self.recipe.finetuning, 0.5, self.checkpoints
            )
        ]
        return _frame(labelled, "fine-tuning runs (layer transfer)", progress, tensorboard)

    def ablation(
        self,
        run: PretrainRun,
        lstm_run: PretrainRun | None,
        progress: bool = True,
        tensorboard: str | os.PathLike[str] | None = None,
    ) -> pd.DataFrame:
        """GPT-1 Table 5 for every task: :func:`ablation` rows (``tensorboard``: see the module's docstring)."""
        return ablation(
            run,
            self.tasks,
            self.seeds,
            {t: self.n_labelled(t) for t in self.tasks},
            self.recipe.finetuning,
            lstm_run=lstm_run,
            linear_head=self.linear_head,
            progress=progress,
            tensorboard=tensorboard,
        )

    def findings(
        self,
        sweep: pd.DataFrame,
        ablation_table: pd.DataFrame | None = None,
        probes: pd.DataFrame | None = None,
        splits: Iterable[str] = EVAL_SPLITS,
        lens: pd.DataFrame | None = None,
    ) -> str:
        """The computed sentences of :func:`workbench.experiments.transfer_statistics.findings` per split."""
        return "\n\n".join("\n".join(findings(sweep, ablation_table, probes, split, lens)) for split in splits)

    @staticmethod
    def outcomes(**tables: pd.DataFrame) -> pd.DataFrame:
        """The per-example outcomes behind every claim, one row per run (or probe, lens layer,
        baseline) and split: ``table`` names where the row comes from (the keyword), the other
        columns say which run it is, and ``correct`` is its 0/1 outcome per example, in the split's
        order. Saved beside the figures, it lets any interval be recomputed from the repository."""
        keys = [*OUTCOME_KEYS, "split", "n", "correct"]
        frames = [table.assign(table=name).reindex(columns=["table", *keys]) for name, table in tables.items()]
        return pd.concat(frames, ignore_index=True)


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
    worker process. ``checkpoint_step`` is the pretraining step it starts from (None without
    pretraining)."""

    run: PretrainRun | None
    spec: PretrainSpec
    task: str
    n_layers: int | None
    seed: int
    n_labelled: int | None
    lm_weight: float
    settings: FinetuneSettings
    checkpoint_step: int | None

    def entry(self) -> Path:
        return entry_dir(
            "finetune",
            dict(
                pretraining=self.run.run_dir.name if self.run is not None else None,
                spec=self.spec.key(),
                checkpoint_step=self.checkpoint_step,
                task=self.task,
                tasks=TASKS_VERSION,
                layers_transferred=self.n_layers,
                seed=self.seed,
                n_labelled=self.n_labelled,
                lm_weight=self.lm_weight,
                settings=self.settings.key(),
            ),
        )

    @property
    def run_name(self) -> str:
        """A readable name that is unique to the run: what it is, then its cache entry's hash."""
        start = f"{self.spec.model}-step-{self.checkpoint_step}" if self.run is not None else "no-pretraining"
        layers = [f"layers-{self.n_layers}"] if self.n_layers is not None else []
        parts = [start, *layers, f"lambda-{self.lm_weight:g}", f"{self.settings.head}-head", f"seed-{self.seed}"]
        return f"{self.task}/{'_'.join(parts)}_{self.entry().name}"


def _job(
    run: PretrainRun | None,
    task: str,
    n_layers: int | None,
    seed: int,
    n_labelled: int | None,
    lm_weight: float,
    settings: FinetuneSettings | None,
    spec: PretrainSpec | None,
    checkpoint_step: int | None = None,
) -> _Job:
    settings = settings or RECIPES["cpu"].finetuning
    if run is not None:
        if spec is not None and spec != run.spec:
            raise ValueError("pass spec only with run=None: a run fixes its own architecture")
        spec = run.spec
        steps = run.steps
        checkpoint_step = steps[-1] if checkpoint_step is None else checkpoint_step
        if checkpoint_step not in steps:
            raise ValueError(f"checkpoint_step={checkpoint_step!r} is not a kept checkpoint; kept steps: {steps}")
    elif checkpoint_step is not None:
        raise ValueError(
            f"run=None fine-tunes without pretraining; checkpoint_step must be None, got {checkpoint_step!r}"
        )
    spec = spec or RECIPES["cpu"].pretraining
    check_task(task)
    if spec.model == "lstm":
        if run is None:
            raise ValueError("an LSTM fine-tunes from its pretraining run; run=None trains a fresh transformer")
        if n_layers is not None:
            raise ValueError(f"an LSTM run transfers as a whole; n_layers must be None, got {n_layers!r}")
    elif run is None and n_layers is not None:
        raise ValueError(
            f"run=None fine-tunes without pretraining, so nothing is transferred; "
            f"n_layers must be None, got {n_layers!r}"
        )
    elif run is not None:
        n_layer = spec.gpt_config.n_layer
        n_layers = n_layer if n_layers is None else check_layers([n_layers], n_layer)[0]
    NON_NEGATIVE_INT(seed, "seed")
    optional(POSITIVE_INT)(n_labelled, f"n_labelled of task {task!r}")
    NON_NEGATIVE_NUMBER(lm_weight, "lm_weight (lambda)")
    return _Job(run, spec, task, n_layers, seed, n_labelled, float(lm_weight), settings, checkpoint_step)


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
    checkpoint_step: int | None = None,
    tensorboard: str | os.PathLike[str] | None = None,
) -> dict:
    """Fine-tune on ``task`` from a checkpoint of ``run`` (cached); return accuracies and settings.

    ``checkpoint_step`` is a kept step of ``run`` (None: its last). ``n_layers`` pretrained blocks
    are transferred with the embeddings (None: all; 0: embeddings only); an LSTM run transfers as a
    whole. ``run=None`` fine-tunes the same transformer freshly initialised (no pretraining): that
    of ``spec``, default the CPU recipe's. ``n_labelled`` keeps the first labelled examples of the
    train split (None: all). ``lm_weight`` is lambda in L3 = L2 + lambda L1. The result holds each
    evaluated split's accuracy, size and per-example outcomes (``{split}_correct``, a 0/1 string).
    ``tensorboard``: see the module's docstring.
    """
    job = _job(run, task, n_layers, seed, n_labelled, lm_weight, settings, spec, checkpoint_step)
    tensorboard = _tensorboard_root(tensorboard)
    return _cached(job) or _compute(job, tensorboard)


def finetune_all(
    run: PretrainRun,
    runs: Sequence[tuple[str, int, int | None]],
    settings: FinetuneSettings | None = None,
    progress: bool = True,
    desc: str = "fine-tuning runs",
    tensorboard: str | os.PathLike[str] | None = None,
) -> list[dict]:
    """:func:`finetune_task` with every layer transferred and lambda = 0.5 for each ``(task, seed,
    n_labelled)`` of ``runs``, as many at once as the cores allow (cached runs are read)."""
    jobs = [_job(run, task, None, seed, n_labelled, 0.5, settings, None) for task, seed, n_labelled in runs]
    return _run_jobs(jobs, desc, progress, tensorboard)


def _cached(job: _Job) -> dict | None:
    path = job.entry()
    return json.loads((path / "result.json").read_text()) if is_done(path) else None


def _tensorboard_root(tensorboard: str | os.PathLike[str] | None) -> Path | None:
    """The directory of the runs' TensorBoard logs, once TensorBoard is known to be installed."""
    if tensorboard is None:
        return None
    require_tensorboard()
    return Path(tensorboard)


def _compute(job: _Job, tensorboard: Path | None = None) -> dict:
    """Train and evaluate one run with ``settings.threads`` torch threads, then cache its result;
    if another process is computing the same run, wait for it and read its result instead. With
    ``tensorboard``, the run logs its history to ``tensorboard / job.run_name`` as it trains."""
    path = job.entry()
    with entry_lock(path):
        if (cached := _cached(job)) is not None:
            return cached
        log = TensorBoardSink(tensorboard / job.run_name) if tensorboard is not None else contextlib.nullcontext()
        with torch_threads(job.settings.threads), log as sink:
            result = _finetune(job, sink)
        write_text_atomic(path / "result.json", json.dumps(result, indent=1))
        mark_done(path)
    return result


def _run_jobs(
    jobs: list[_Job], desc: str, progress: bool, tensorboard: str | os.PathLike[str] | None = None
) -> list[dict]:
    """Every job's result, read from the cache or computed; on a CPU with ``settings.threads``
    set, as many runs at once as the cores allow (each in its own process), longest first."""
    tensorboard = _tensorboard_root(tensorboard)
    results = [_cached(job) for job in jobs]
    todo = sorted((i for i, result in enumerate(results) if result is None), key=lambda i: -_cost(jobs[i]))
    computed = in_pool(
        _compute,
        [(jobs[i], tensorboard) for i in todo],
        cpu_workers(jobs[0].settings.threads, jobs[0].settings.train.device),
        desc,
        progress,
        len(jobs),
    )
    for i, result in zip(todo, computed):
        results[i] = result
    return results


def _cost(job: _Job) -> float:
    """A rough relative cost, to start the longest runs first: sequences per example and the LM head."""
    sequences = {"multiple_choice": 4, "substitution": 2, "similarity": 2}.get(TASKS[job.task].kind, 1)
    return sequences * (1 + (job.lm_weight > 0) + (job.settings.head == "likelihood"))


def _finetune(job: _Job, sink: MetricsSink | None = None) -> dict:
    start = time.perf_counter()
    spec, settings, task_spec = job.spec, job.settings, TASKS[job.task]
    tokenizer = spec.tokenizer()
    n_ctx = settings.n_ctx or spec.gpt_config.n_ctx
    if n_ctx > spec.gpt_config.n_ctx:
        raise ValueError(f"settings.n_ctx={n_ctx} exceeds the model's context {spec.gpt_config.n_ctx}")
    encoded = {}
    for split in ("train", *EVAL_SPLITS):
        examples = load_task(job.task, split, seed=spec.data_seed, n_train=job.n_labelled if split == "train" else None)
        if split != "train":
            examples = examples[: settings.max_eval_examples]
        encoded[split] = encode_examples(task_spec.kind, examples, tokenizer, n_ctx)
    # Loading a checkpoint seeds the global generator with the pretraining seed, so it comes first:
    # the fresh layers and the head then depend on the fine-tuning seed alone, the same for every
    # layer count and checkpoint (paired by seed).
    pretrained = job.run.load(job.checkpoint_step) if job.run is not None else None
    torch.manual_seed(job.seed)
    if spec.model == "lstm":
        body = pretrained
    else:
        body = GPT(spec.gpt_config.replace(n_ctx=n_ctx))
        if pretrained is not None:
            transfer(pretrained, body, job.n_layers)
    model = settings.task_model(body, task_spec, tokenizer)
    train_config = settings.train_config(len(encoded["train"]), job.seed)
    trainer = finetune(
        model,
        encoded["train"],
        train_config,
        tokenizer.pad_id,
        lm_weight=job.lm_weight,
        group_by_length=settings.group_by_length,
        sink=sink,
    )
    curve = trainer.history.dropna(subset=["loss"])
    result = dict(
        task=job.task,
        kind=task_spec.kind,
        model=spec.model,
        pretrained=job.run is not None,
        checkpoint_step=job.checkpoint_step,
        layers_transferred=job.n_layers,
        seed=job.seed,
        n_labelled=len(encoded["train"]),
        lm_weight=job.lm_weight,
        steps=train_config.steps,
        final_task_loss=float(curve["task_loss"].iloc[-1]),
        curve=curve[["step", "loss", "task_loss"]].to_dict(orient="list"),
    )
    with autocast(trainer.device, trainer.dtype):
        for split in EVAL_SPLITS:
            correct = correct_predictions(model, encoded[split], tokenizer.pad_id)
            result[f"{split}_accuracy"] = float(correct.mean())
            result[f"{split}_examples"] = len(correct)
            result[f"{split}_correct"] = "".join("01"[int(c)] for c in correct)
    result.update(seconds=round(time.perf_counter() - start, 2), settings=settings.key(), pretraining=spec.key())
    return result


def _long_rows(job: _Job, result: dict, **keys) -> list[dict]:
    """One row per evaluated split of a run: the CSV columns and the per-example outcomes."""
    step = job.checkpoint_step
    rows = []
    for split in EVAL_SPLITS:
        share = predicted_share(job.task, split, job.spec.data_seed, result[f"{split}_correct"])
        rows.append(
            dict(
                task=job.task,
                **keys,
                checkpoint_step=step,
                tokens=job.spec.tokens_seen(step) if step is not None else 0,
                seed=job.seed,
                split=split,
                n=result[f"{split}_examples"],
                accuracy=result[f"{split}_accuracy"],
                predicted_share=share,
                constant=share > CONSTANT_SHARE,
                first_task_loss=result["curve"]["task_loss"][0],
                final_task_loss=result["curve"]["task_loss"][-1],
                correct=result[f"{split}_correct"],
            )
        )
    return rows


def _sweep_jobs(run, task, layers, seeds, n_labelled, settings, lm_weight, checkpoints):
    """``(job, variant, layers_transferred)`` for every checkpoint, seed and layer count, and the
    no-pretraining run of every seed."""
    n_layer = run.spec.gpt_config.n_layer
    layers = check_layers(range(n_layer + 1) if layers is None else layers, n_layer)
    seeds = sequence_of(NON_NEGATIVE_INT)(distinct(seeds), "seeds")
    checkpoints = (None,) if checkpoints is None else tuple(checkpoints)
    jobs = [
        (_job(run, task, n, seed, n_labelled, lm_weight, settings, None, step), "transfer", n)
        for step in checkpoints
        for seed in seeds
        for n in layers
    ]
    jobs += [
        (_job(None, task, None, seed, n_labelled, lm_weight, settings, run.spec), "no_pretraining", pd.NA)
        for seed in seeds
    ]
    return jobs


def _frame(
    labelled_jobs: list, desc: str, progress: bool, tensorboard: str | os.PathLike[str] | None = None
) -> pd.DataFrame:
    """The long frame (:data:`SWEEP_COLUMNS` and ``correct``) of ``(job, variant, layers)`` runs."""
    results = _run_jobs([job for job, _, _ in labelled_jobs], desc, progress, tensorboard)
    rows = []
    for (job, variant, layers), result in zip(labelled_jobs, results):
        rows += _long_rows(job, result, variant=variant, layers_transferred=layers)
    frame = pd.DataFrame(rows, columns=[*SWEEP_COLUMNS, "first_task_loss", "final_task_loss", "correct"])
    frame["layers_transferred"] = frame["layers_transferred"].astype("Int64")
    frame["checkpoint_step"] = frame["checkpoint_step"].astype("Int64")
    return frame


def layer_transfer_sweep(
    run: PretrainRun,
    task: str,
    layers: Iterable[int] | None = None,
    seeds: Iterable[int] = (0, 1, 2),
    n_labelled: int | None = None,
    settings: FinetuneSettings | None = None,
    lm_weight: float = 0.5,
    checkpoints: Iterable[int] | None = None,
    *,
    progress: bool = True,
    tensorboard: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """Accuracy against the number of pretrained layers transferred (GPT-1 Figure 2, left), from
    each kept checkpoint step of ``checkpoints`` (None: the last); ``tensorboard``: see the module's
    docstring.

    One row per run and split (:data:`SWEEP_COLUMNS`, plus ``correct``): ``variant`` is
    ``"transfer"`` (``layers_transferred`` 0..L, 0 = embeddings only) or ``"no_pretraining"`` (the
    reference: nothing transferred, not even the embeddings; ``layers_transferred`` and
    ``checkpoint_step`` empty, ``tokens`` 0).
    """
    if run is None:
        raise ValueError("layer_transfer_sweep needs a pretraining run to transfer layers from")
    check_task(task)
    jobs = _sweep_jobs(run, task, layers, seeds, n_labelled, settings, lm_weight, checkpoints)
    return _frame(jobs, f"{task}: fine-tuning runs", progress, tensorboard)


def ablation(
    run: PretrainRun,
    tasks: Iterable[str],
    seeds: Iterable[int] = (0, 1, 2),
    n_labelled: int | Mapping[str, int | None] | None = None,
    settings: FinetuneSettings | None = None,
    *,
    lstm_run: PretrainRun | None = None,
    linear_head: FinetuneSettings | None = None,
    progress: bool = True,
    tensorboard: str | os.PathLike[str] | None = None,
) -> pd.DataFrame:
    """GPT-1 Table 5 (see :data:`VARIANTS`) for each task and seed, from the last checkpoints; with
    ``settings.head`` "likelihood", also the full method with GPT-1's linear head, trained with
    ``linear_head`` (None: ``settings`` with the linear head).

    ``n_labelled`` is one count for every task or a ``{task: count}`` mapping. The ``lstm`` row
    needs ``lstm_run``, an LSTM pretrained on the same tokens (left out without it). Runs shared
    with a layer-transfer sweep of the same settings (all layers, lambda 0.5; no pretraining) are
    read from the cache. ``tensorboard``: see the module's docstring.
    """
    if run is None:
        raise ValueError("ablation needs a pretraining run: its variants are measured against it")
    if lstm_run is not None and (lstm_run.spec.model != "lstm" or lstm_run.spec.train != run.spec.train):
        raise ValueError("lstm_run must be an LSTM run pretrained with the transformer's training settings")
    tasks = tuple(check_task(t) for t in dict.fromkeys([tasks] if isinstance(tasks, str) else tasks))
    labelled = {t: None for t in tasks} if n_labelled is None else _labelled_overrides(n_labelled, tasks)
    labelled = {t: labelled.get(t) for t in tasks}
    seeds = sequence_of(NON_NEGATIVE_INT)(distinct(seeds), "seeds")
    settings = settings or RECIPES["cpu"].finetuning
    variants = [
        v
        for v in VARIANTS
        if (v != "lstm" or lstm_run is not None) and (v != "linear_head" or settings.head != "linear")
    ]
    jobs = []
    for task in labelled:
        for variant in variants:
            for seed in seeds:
                if variant == "no_pretraining":
                    job = _job(None, task, None, seed, labelled[task], 0.5, settings, run.spec)
                elif variant == "lstm":
                    job = _job(lstm_run, task, None, seed, labelled[task], 0.5, settings, None)
                elif variant == "linear_head":
                    linear = linear_head or dataclasses.replace(settings, head="linear")
                    job = _job(run, task, None, seed, labelled[task], 0.5, linear, None)
                else:
                    job = _job(
                        run, task, None, seed, labelled[task], 0.0 if variant == "no_aux_lm" else 0.5, settings, None
                    )
                jobs.append((job, variant, pd.NA))
    frame = _frame(jobs, "ablation runs", progress, tensorboard)
    return frame[[*ABLATION_COLUMNS, "first_task_loss", "final_task_loss", "correct"]]
