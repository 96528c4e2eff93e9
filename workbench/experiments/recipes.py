"""One recipe per scale: everything an experiment at that scale uses, in one frozen dataclass.

A :class:`Recipe` holds the pretraining run (:class:`PretrainSpec`, which holds its
:class:`~workbench.training.TrainConfig`), the fine-tuning settings (:class:`FinetuneSettings`, with
their own ``TrainConfig``), labelled examples per task, the size ladder and the zero-shot evaluation
settings. The notebooks, the experiment objects and the command line (``python -m workbench
pretrain --recipe cpu --train.steps 1200``) all start from :data:`RECIPES` and apply overrides with
:func:`workbench.core.options.apply_overrides`; every field is validated once, by its dataclass.
``python -m workbench recipes`` prints them side by side; ``--yaml`` writes one as an editable file
that ``--recipe-file`` (or :func:`load_recipe` with a path) reads back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import yaml

from ..core.checks import (
    NON_EMPTY_STRING,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    Check,
    check_fields,
    excerpt,
    in_range,
    one_of,
    optional,
    sequence_of,
)
from ..core.options import apply_overrides, from_dict, option, to_dict, to_flat_dict
from ..data.prepare import corpus_tokenizer
from ..data.tasks import TASKS, TaskSpec
from ..data.tokenizer import Tokenizer
from ..models.config import PRESETS, GPTConfig
from ..models.gpt import GPT
from ..models.lstm import LSTMConfig, LSTMLanguageModel, matching_lstm_config
from ..training.checkpoint import log_spaced_steps
from ..training.config import TrainConfig
from ..training.finetuning import HEADS, TaskModel, model_kind

MODELS = ("gpt", "lstm")
SPLITS = ("dev", "test")  # what zero-shot evaluation reads; train is what the supervised model saw


@dataclass(frozen=True)
class PretrainSpec:
    """Everything that determines a pretraining run, and so its cache key."""

    preset: str = option("model preset (workbench.models.PRESETS)", check=one_of(PRESETS))
    model: str = option("gpt, or lstm: the LSTM baseline sized like the preset", check=one_of(MODELS))
    dropout: float = option("dropout of the model (GPT-1 and GPT-2: 0.1)", check=in_range(0, 1))
    data_seed: int = option(
        "seed of the split of the corpus into train / val / held-out documents", check=NON_NEGATIVE_INT
    )
    n_checkpoints: int = option(
        "checkpoints kept at log-spaced steps (the zero-shot curves read them)", check=POSITIVE_INT
    )
    train: TrainConfig = option("the optimisation; train.seed also seeds the model's initial weights")

    def __post_init__(self) -> None:
        check_fields(self)
        if self.train.checkpoint_steps:
            raise ValueError(
                f"PretrainSpec.train.checkpoint_steps must be empty (got "
                f"{list(self.train.checkpoint_steps)}): set n_checkpoints, the kept steps are "
                "log-spaced from it"
            )

    @property
    def gpt_config(self) -> GPTConfig:
        return GPTConfig.from_preset(self.preset, dropout=self.dropout)

    def model_config(self) -> GPTConfig | LSTMConfig:
        return self.gpt_config if self.model == "gpt" else matching_lstm_config(self.gpt_config)

    def build_model(self) -> GPT | LSTMLanguageModel:
        torch.manual_seed(self.train.seed)
        config = self.model_config()
        return GPT(config) if self.model == "gpt" else LSTMLanguageModel(config)

    def tokenizer(self) -> Tokenizer:
        """The corpus BPE the run is trained on."""
        return corpus_tokenizer(self.gpt_config.vocab_size, seed=self.data_seed)

    def checkpoint_steps(self) -> tuple[int, ...]:
        return log_spaced_steps(self.train.steps, self.n_checkpoints)

    def tokens_seen(self, step: int) -> int:
        """Training tokens a run of this spec has seen after ``step`` updates."""
        return step * self.train.batch_size * (self.train.seq_len or self.gpt_config.n_ctx)

    def train_config(self, progress: bool = True) -> TrainConfig:
        """``train`` with the kept checkpoint steps filled in."""
        return self.train.replace(checkpoint_steps=self.checkpoint_steps(), progress=progress)

    def key(self) -> dict:
        """What identifies the run's results (progress bars do not). An LSTM run adds its architecture,
        which is derived from the preset by code that has changed (the LayerNorms of ``LSTMConfig.norm``)."""
        data = to_dict(self)
        del data["train"]["progress"]
        if self.model == "lstm":
            data["lstm"] = self.model_config().to_dict()
        return data


LOG_EVERY = 10
"""Updates per row of a fine-tuning run's learning curve (each row is the mean over its updates)."""


@dataclass(frozen=True)
class FinetuneSettings:
    """How each fine-tuning run trains and is evaluated (part of its cache key).

    ``epochs`` (when set) sizes the run: ``train.steps`` becomes ``ceil(epochs x labelled / batch)``;
    None trains for ``train.steps`` whatever the label count, so that every condition gets the same
    optimisation budget. ``threads`` (torch threads per run, None: torch's default) lets a sweep on
    a CPU run cores / threads runs at once, each in its own process; it is part of the cache key,
    since the number of threads can change the last bits.
    """

    train: TrainConfig = option("the optimisation of each run (its seed is the run's seed)")
    epochs: float | None = option(
        "passes over the labelled examples; None: train.steps updates",
        check=optional(
            Check(
                "a positive number",
                lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0,
            )
        ),
    )
    head_dropout: float = option("dropout before the task head", check=in_range(0, 1))
    n_ctx: int | None = option("tokens per example; None: the pretrained model's context", check=optional(POSITIVE_INT))
    max_eval_examples: int | None = option(
        "examples evaluated per dev / test split; None: all", check=optional(POSITIVE_INT)
    )
    threads: int | None = option("torch threads per run; None: torch's default", check=optional(POSITIVE_INT))
    warmup_fraction: float | None = option(
        "linear warmup over this fraction of each run's updates; None: the schedule's own (GPT-1: 0.2%)",
        default=None,
        check=optional(in_range(0, 1)),
    )
    group_by_length: bool = option(
        "batch training examples of similar lengths together (less padding; see TaskBatches)",
        default=False,
        check=Check("True or False", lambda v: isinstance(v, bool)),
    )
    head: str = option(
        "the task head: linear (GPT-1's, on the [extract] state) or likelihood (a multiple-choice task's "
        "choices scored by their log-likelihood under the LM head; see workbench.training.finetuning)",
        default="linear",
        check=one_of(HEADS),
    )

    def __post_init__(self) -> None:
        check_fields(self)

    def task_model(self, body, task: TaskSpec, tokenizer) -> TaskModel:
        """The model every fine-tuning run of ``task`` trains: ``body`` under this head (its dropout,
        its kind), one place for the sweep, Table 5 and the ``finetune`` command."""
        return TaskModel(
            body,
            model_kind(task.kind),
            n_classes=max(2, len(task.labels)),
            dropout=self.head_dropout,
            head=self.head,
            delim_id=tokenizer.delim_id,
        )

    def updates(self, n_train: int) -> int:
        """Optimizer updates for ``n_train`` labelled examples."""
        if self.epochs is None:
            return self.train.steps
        return max(1, math.ceil(self.epochs * n_train / self.train.batch_size))

    def train_config(self, n_train: int, seed: int) -> TrainConfig:
        """The optimisation of one run on ``n_train`` labelled examples with ``seed``."""
        steps = self.updates(n_train)
        warmup = None if self.warmup_fraction is None else math.ceil(self.warmup_fraction * steps)
        return self.train.replace(
            steps=steps,
            batch_size=min(self.train.batch_size, n_train),
            warmup_steps=warmup if warmup is not None else self.train.warmup_steps,
            seed=seed,
            log_every=min(LOG_EVERY, steps),
            progress=False,
        )

    def key(self) -> dict:
        data = to_dict(self)
        del data["train"]["progress"]
        if data["head"] == "linear":  # the head predates the option: GPT-1's runs keep their cache keys
            del data["head"]
        return data


CHECKPOINTS = ("last", "best")


@dataclass(frozen=True)
class EvaluationSettings:
    """How zero-shot heuristics are evaluated."""

    split: str = option("the task split scored", check=one_of(SPLITS))
    max_examples: int | None = option(
        "examples per split (the first of its fixed order); None: all", check=optional(POSITIVE_INT)
    )
    batch_size: int = option("continuations scored per forward pass", check=POSITIVE_INT)
    checkpoint: str = option(
        "the checkpoint of each size of the ladder: last, or best (lowest validation loss: early stopping)",
        default="last",
        check=one_of(CHECKPOINTS),
    )

    def __post_init__(self) -> None:
        check_fields(self)


def _labelled_counts(value) -> bool:
    return isinstance(value, dict) and all(t in TASKS and optional(POSITIVE_INT).test(n) for t, n in value.items())


@dataclass(frozen=True)
class Recipe:
    """Everything an experiment at one scale uses."""

    name: str = option("the recipe's name", check=NON_EMPTY_STRING)
    pretraining: PretrainSpec = option("the shared pretraining run")
    finetuning: FinetuneSettings = option("every fine-tuning run (layer transfer, ablation, references)")
    labelled: dict = option(
        "labelled training examples per task (None: the whole train split)",
        check=Check(f"a mapping from tasks {list(TASKS)} to a positive integer or None", _labelled_counts),
    )
    ladder: tuple[str, ...] = option(
        "model sizes trained on the same tokens (GPT-2's scaling claim)",
        check=sequence_of(one_of(PRESETS), non_empty=False),
    )
    evaluation: EvaluationSettings = option("zero-shot evaluation")
    pretraining_runs: int = option(
        "pretraining runs per model for the zero-shot readouts (train.seed, train.seed + 1, ...), averaged per example",
        default=1,
        check=POSITIVE_INT,
    )
    ladder_runs: dict = option(
        "pretraining runs (seeds train.seed, train.seed + 1, ...) of the rungs named here; every other rung: "
        "pretraining_runs",
        default_factory=dict,
        check=Check(
            f"a mapping from presets {list(PRESETS)} to a positive integer",
            lambda v: isinstance(v, dict) and all(p in PRESETS and POSITIVE_INT.test(n) for p, n in v.items()),
        ),
    )
    transfer_checkpoints: tuple[int, ...] = option(
        "kept pretraining steps the layer-transfer sweep and the probes start from, besides the last "
        "(checked by the experiment: a command line may change the pretraining steps)",
        default=(),
        check=sequence_of(POSITIVE_INT, non_empty=False),
    )

    def __post_init__(self) -> None:
        check_fields(self)

    def rung_runs(self) -> tuple[int, ...]:
        """Pretraining runs of each rung of the ladder, in its order."""
        return tuple(self.ladder_runs.get(preset, self.pretraining_runs) for preset in self.ladder)

    def n_labelled(self, task: str) -> int | None:
        """The task's label count; a task the recipe does not list gets the largest listed count
        (None when any listed task uses every label)."""
        if task in self.labelled:
            return self.labelled[task]
        counts = list(self.labelled.values())
        return None if not counts or None in counts else max(counts)

    def with_device(self, device: str = "auto", precision: str | None = None) -> Recipe:
        """The recipe with pretraining and fine-tuning on ``device``, in ``precision`` (None: the recipe's)."""
        where = {"train": {"device": device} | ({} if precision is None else {"precision": precision})}
        return apply_overrides(self, {"pretraining": where, "finetuning": where})


PAPER = Recipe(
    name="paper",
    pretraining=PretrainSpec(
        preset="gpt1",
        model="gpt",
        dropout=0.1,
        data_seed=0,
        n_checkpoints=8,
        train=TrainConfig(
            steps=11_300,
            batch_size=64,
            lr=2.5e-4,
            schedule="gpt1-pretrain",
            warmup_steps=2000,
            weight_decay=0.01,
            grad_clip=1.0,
            eval_every=1130,
            checkpoint_every=0,
            keep_last=1,
        ),
    ),
    finetuning=FinetuneSettings(
        train=TrainConfig(
            steps=100,
            batch_size=32,
            lr=6.25e-5,
            schedule="gpt1-finetune",
            weight_decay=0.01,
            eval_every=0,
            checkpoint_every=0,
        ),
        epochs=3.0,
        head_dropout=0.1,
        n_ctx=None,
        max_eval_examples=None,
        threads=None,
    ),
    labelled={"sentiment": None, "next_line": None},
    ladder=("gpt1-nano", "gpt1-tiny", "gpt1-slim", "gpt1-mini"),
    evaluation=EvaluationSettings(split="test", max_examples=None, batch_size=32),
    transfer_checkpoints=(1, 785),
)
"""GPT-1's published recipe (Radford et al. 2018, section 4.1), the one place it is written:

"We trained for 100 epochs on minibatches of 64 randomly sampled, contiguous sequences of 512 tokens.
[...] we used the Adam optimization scheme with a max learning rate of 2.5e-4. The learning rate was
increased linearly from zero over the first 2000 updates and annealed to 0 using a cosine schedule.
[...] residual, embedding, and attention dropouts with a rate of 0.1 for regularization. We also
employed a modified version of L2 regularization proposed in [37], with w = 0.01 on all non bias or
gain weights." Fine-tuning: "we add dropout to the classifier with a rate of 0.1. For most tasks, we
use a learning rate of 6.25e-5 and a batchsize of 32. Our model finetunes quickly and 3 epochs of
training was sufficient for most cases. We use a linear learning rate decay schedule with warmup
over 0.2% of training. lambda was set to 0.5."

100 epochs of this corpus (about 3M tokens in windows of 512, 64 per update) are 11,300 updates;
gradient clipping at 1 is from the paper's code. lambda lives with the experiments (it is varied by
the ablation), the warmup fraction in the ``gpt1-finetune`` schedule.
"""


def _recipes() -> dict[str, Recipe]:
    # CPU: 700 updates of 16 x 128 tokens (1.43M tokens, half an epoch of the 2.86M-token train
    # split) for the 1.9M-parameter gpt2-slim (4 layers of width 128): about 11 minutes at the
    # 2,100 tokens/s measured here in fp32 on one thread, beside its LSTM on the other core. A whole
    # epoch (1400 updates, 22 minutes, validation loss 4.934) put `make test` past CI's 90 minutes.
    # It uses GPT-2's pre-LN block: GPT-1's post-LN block stays on the unigram plateau at this
    # budget (measured with 4 x 256 at lr 1e-3: validation loss 6.75 after 600 updates, against
    # 5.23 for pre-LN; 6.66 at lr 3e-4). Fine-tuning (issue 14's pilot, in 03's history cell):
    # 2560 labels, one epoch of batch 16 (160 updates) with a 10% warmup, lr 1e-3 (the best mean dev
    # accuracy of 3e-4 / 1e-3 / 3e-3); batches grouped by length; 64 tokens hold a sentence, or two
    # lines and a choice; one thread per run, two runs at once. The layer-transfer sweep fine-tunes
    # the last checkpoint only, with five seeds, on 2048 pairs (issue 22: a two-choice run on every
    # one of the 8508 took about two minutes on one core, and 40 of them put CI past its limit; 4096
    # pairs, 67 s a run, made 03 24 minutes and CI about 83 of its 90); the logit lens, which needs no
    # fine-tuning, reads every kept checkpoint, and the GPU recipe fine-tunes three.
    # The zero-shot ladder is five sizes from 1 x 32 to slim (4 x 128): 12.8k, 51k, 100k, 200k and
    # 793k non-embedding parameters, 1.8 decades, each on the same tokens; the cheapest rung trains
    # twice (seeds 0 and 1), the others once (slim is the shared run). Measured on 2 cores from an
    # empty cache: 1 x 32 164 s a run, 4 x 32 267, 2 x 64 324, 4 x 64 362 (small models are slower per
    # FLOP than slim); a second run of 4 x 32 as well put CI's run of the notebooks near its limit.
    # mini (3.2M, 400 s an epoch) is the GPU recipe's top rung. Zero-shot evaluation uses every
    # example of each test split.
    # Precision and threads are fixed (issue 28), so that every CPU computes the same numbers: fp32,
    # since bf16 is not bit-stable across CPUs and runs 15x slower where it is emulated (measured
    # with AVX2 kernels: 414 against 6,087 tokens/s natively); one thread per run, since the thread
    # count changes the last bits and two threads on a shared 2-core machine trained 4-6x slower.
    cpu = Recipe(
        name="cpu",
        pretraining=PretrainSpec(
            preset="gpt2-slim",
            model="gpt",
            dropout=0.1,
            data_seed=0,
            n_checkpoints=8,
            train=TrainConfig(
                steps=700,
                batch_size=16,
                lr=2e-3,
                schedule="gpt1-pretrain",
                eval_every=70,
                checkpoint_every=0,
                keep_last=1,
                precision="fp32",
                threads=1,
            ),
        ),
        finetuning=FinetuneSettings(
            train=TrainConfig(
                steps=100,
                batch_size=16,
                lr=1e-3,
                schedule="gpt1-finetune",
                eval_every=0,
                checkpoint_every=0,
                precision="fp32",
                threads=1,
            ),
            epochs=1.0,
            head_dropout=0.1,
            n_ctx=64,
            max_eval_examples=None,
            threads=1,
            warmup_fraction=0.1,
            group_by_length=True,
        ),
        labelled={
            "corrupted_pair": 2048,  # a quarter of its 8508: 128 updates (see 03's history: the budget)
            "corrupted_sentence": 2560,
            "line_order": 2560,
            "sentiment": 2560,
            "next_line": 2560,
            "name_substitution": None,
        },
        ladder=("gpt2-1x32", "gpt2-4x32", "gpt2-2x64", "gpt2-4x64", "gpt2-slim"),
        ladder_runs={"gpt2-1x32": 2},
        evaluation=EvaluationSettings(split="test", max_examples=None, batch_size=32),
        transfer_checkpoints=(),
    )
    # GPU: sized to the data, not to the GPU. The corpus has about 3M training tokens: GPT-1's 117M
    # parameters would memorise it, so the GPU buys epochs, labels and sizes instead: the 5.3M
    # gpt2-mini for 6 epochs (2100 updates of 64 x 128 tokens), a ladder of five sizes on the same
    # tokens, every labelled example with three epochs of fine-tuning, the layer-transfer sweep
    # from updates 1, 273 and 2100, and the checkpoint of lowest validation loss (early stopping,
    # read off the kept checkpoints) for each size of the ladder, with three pretraining runs
    # (seeds) per model, their readouts averaged per example. Not yet run on
    # a GPU; at the CPU's measured speed for gpt2-mini it would take about 40 minutes per run.
    gpu = apply_overrides(
        cpu,
        {
            "name": "gpu",
            "pretraining": {
                "preset": "gpt2-mini",
                "n_checkpoints": 16,
                "train": {
                    "steps": 2100,
                    "batch_size": 64,
                    "lr": 1e-3,
                    "weight_decay": 0.01,
                    "grad_clip": 1.0,
                    "eval_every": 175,
                    "precision": "auto",
                    "threads": None,
                },
            },
            "finetuning": {
                "n_ctx": None,
                "threads": None,
                "epochs": 3.0,
                "train": {"precision": "auto", "threads": None},
            },
            "labelled": {task: None for task in TASKS},
            "transfer_checkpoints": (1, 273),
            "ladder": ("gpt2-1x32", "gpt2-nano", "gpt2-tiny", "gpt2-slim", "gpt2-mini"),
            "ladder_runs": {},
            "evaluation": {"checkpoint": "best"},
            "pretraining_runs": 3,
        },
    )
    return {"cpu": cpu, "gpu": gpu, "paper": PAPER}


RECIPES: dict[str, Recipe] = _recipes()


# Recipe files are a few kB; the limit is checked before parsing (see _yaml_without_aliases for the rest).
MAX_RECIPE_FILE_BYTES = 1_000_000


def load_recipe(recipe: str | Path | Recipe = "cpu") -> Recipe:
    """A recipe by name (:data:`RECIPES`), from a YAML file written by :func:`recipe_yaml`, or as given."""
    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, str) and recipe in RECIPES:
        return RECIPES[recipe]
    if not isinstance(recipe, (str, Path)):
        raise ValueError(
            f"recipe must be one of {list(RECIPES)}, the path of a .yaml file or a Recipe, "
            f"got {type(recipe).__name__} {excerpt(recipe)}"
        )
    path = Path(recipe)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        raise ValueError(
            f"unknown recipe {excerpt(recipe)}: expected one of {list(RECIPES)} or the path of an "
            "existing .yaml file (python -m workbench recipes --yaml NAME writes one)"
        )
    size = path.stat().st_size
    if size > MAX_RECIPE_FILE_BYTES:
        raise ValueError(
            f"{path}: {size:,} bytes; a recipe file is at most {MAX_RECIPE_FILE_BYTES:,} "
            "(the recipes --yaml writes are under 2,000)"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text: {error.reason} at byte {error.start}") from None
    try:
        data = _yaml_without_aliases(text)
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid YAML: {error}") from None
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    try:
        return from_dict(Recipe, data)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from None


def _yaml_without_aliases(text: str):
    """``yaml.safe_load(text)``, refusing aliases before any is expanded: a few lines of aliases can
    stand for billions of values (a "YAML bomb"), and a recipe needs none."""
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            line = event.start_mark.line + 1
            raise ValueError(f"line {line} uses a YAML alias (*{event.anchor}); a recipe file spells every value out")
    return yaml.safe_load(text)


class _DumperWithoutAliases(yaml.SafeDumper):
    def ignore_aliases(self, data) -> bool:
        return True


def recipe_yaml(recipe: Recipe) -> str:
    """The recipe as YAML, every option written out (no aliases), for a user to edit and pass back."""
    return yaml.dump(to_dict(recipe), Dumper=_DumperWithoutAliases, sort_keys=False)


def recipes_table(recipes: dict[str, Recipe] | None = None) -> pd.DataFrame:
    """Every option of every recipe side by side (dotted option names as the index), one value per
    cell, so that the table fits a terminal: a mapping (labels per task) gets a row per key, blank
    where a recipe does not list it, and so does a sequence (the ladder's rungs)."""
    recipes = recipes or RECIPES
    text = {name: dict(_cells(to_flat_dict(recipe))) for name, recipe in recipes.items()}
    return pd.DataFrame(text).fillna("").rename_axis("option")


def _cells(options: dict):
    for key, value in options.items():
        if isinstance(value, dict):
            yield from _cells({f"{key}.{k}": v for k, v in value.items()})
        elif isinstance(value, (tuple, list)) and value:
            yield from _cells({f"{key}[{i}]": v for i, v in enumerate(value)})
        else:
            yield key, value if isinstance(value, str) else str(value)
