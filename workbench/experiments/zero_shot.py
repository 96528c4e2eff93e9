"""Zero-shot behaviour: GPT-1 Figure 2 (right) over pretraining, and GPT-2's claim over model size.

:func:`zero_shot_curve` evaluates every heuristic of :mod:`workbench.evaluation.heuristics` on every kept
checkpoint of a Transformer pretraining run and of the LSTM baseline trained on the same tokens,
and reports accuracy and *relative performance* ``(accuracy - random) / (supervised - random)``:
0 is chance, 1 is the fine-tuned Transformer's dev accuracy on the same task (from
:func:`workbench.experiments.transfer.finetune_task`). :func:`zero_shot_scaling` evaluates the last
checkpoint of runs of several model sizes trained on the same tokens.

Every (run, checkpoint, evaluation settings) result is cached on its own (``cached_frame``), so a
re-run recomputes only what changed and an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..core.checks import NON_EMPTY_STRING, NON_NEGATIVE_INT, check_fields, distinct, one_of, optional, sequence_of
from ..core.device import resolve_device
from ..core.options import apply_overrides, option
from ..data.tokenizer import Tokenizer, gpt2_tokenizer
from ..data.tokens import unigram_entropy
from ..evaluation.heuristics import HEURISTICS, VERBALIZERS, evaluate, random_accuracy
from ..models.config import PRESETS
from ..models.gpt import GPT
from ..models.params import count_parameters
from ..training.language_model import default_token_files, open_token_file
from .cache import cached_frame
from .pretraining import PretrainRun, pretrain
from .recipes import RECIPES, EvaluationSettings, PretrainSpec, Recipe, load_recipe
from .transfer import check_task, finetune_task

EVALUATION_VERSION = 1
"""Bump when scoring or a heuristic changes its results, so that cached evaluations are redone."""

CURVE_COLUMNS = ["model", "step", "task", "heuristic", "accuracy", "relative", "random", "supervised", "n"]
SCALING_COLUMNS = [
    "preset",
    "parameters",
    "step",
    "val_loss",
    "task",
    "heuristic",
    "accuracy",
    "relative",
    "random",
    "supervised",
    "n",
]


@dataclass(frozen=True)
class ZeroShotExperiment:
    """The zero-shot notebook's experiment: a recipe, the heuristics and the reference's seeds.

    Build it with :meth:`from_params` (the notebook's parameters, checked before any work); its
    methods do the work: :meth:`pretraining`, :meth:`supervised_reference`, :meth:`curve`,
    :meth:`scaling`, :meth:`pretrained_table`, :meth:`findings`.
    """

    recipe: Recipe = option("the recipe of the scale, with the notebook's overrides")
    heuristics: tuple[str, ...] = option(
        "GPT-1 section 5's heuristics evaluated", check=sequence_of(one_of(HEURISTICS))
    )
    supervised_seeds: tuple[int, ...] = option(
        "fine-tuning seeds of the supervised reference", check=sequence_of(NON_NEGATIVE_INT)
    )
    pretrained: str | None = option(
        "Hugging Face directory or hub name for the GPT-2 section", check=optional(NON_EMPTY_STRING)
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.recipe.ladder:
            scaling_specs(self.spec, self.recipe.ladder)

    @classmethod
    def from_params(
        cls,
        scale: str | Path | Recipe = "cpu",
        *,
        heuristics: Sequence[str] | None = None,
        max_examples: int | None | str = "recipe",
        split: str | None = None,
        supervised_seeds: Sequence[int] = (0,),
        scaling_presets: Sequence[str] | None = None,
        pretrained: str | None = None,
        device: str = "auto",
        batch_size: int | None = None,
        pretrain_steps: int | None = None,
    ) -> ZeroShotExperiment:
        """The recipe of ``scale`` (a name, a YAML file or a Recipe) with the notebook's overrides.

        ``max_examples="recipe"`` and None elsewhere keep the recipe's value (``max_examples=None``
        evaluates every example); ``scaling_presets=[]`` skips the size ladder. ``pretrained`` must be
        a local Hugging Face directory (``config.json`` and its weights) or a hub name whose files the
        Hugging Face cache already holds: it is checked here, before any training.
        """
        if isinstance(pretrained, os.PathLike):
            pretrained = os.fspath(pretrained)
        optional(NON_EMPTY_STRING)(pretrained, "ZeroShotExperiment.pretrained")
        if pretrained is not None:
            weights = ("model.safetensors", "model.safetensors.index.json")
            expected = (
                "expected a local directory with config.json and model.safetensors, or a hub name such as "
                "'gpt2' whose files the Hugging Face cache holds (`huggingface-cli download gpt2` where the "
                "hub is reachable)"
            )
            local = Path(pretrained).expanduser()
            if local.is_dir():
                missing = [name for name in ("config.json",) if not (local / name).is_file()]
                if not any((local / name).is_file() for name in (*weights, "pytorch_model.bin")):
                    missing.append("model.safetensors")
                if missing:
                    raise ValueError(f"pretrained={pretrained!r} is a directory without {missing}; {expected}")
            else:
                try:
                    from huggingface_hub import try_to_load_from_cache
                except ImportError:
                    raise ValueError(
                        f"pretrained={pretrained!r} is not a local directory, and huggingface_hub (which "
                        f"resolves hub names) is not installed; {expected}"
                    ) from None

                def cached(filename: str) -> bool:
                    try:
                        return isinstance(try_to_load_from_cache(pretrained, filename), str)
                    except Exception:  # not a valid repo id: a path that does not exist
                        return False

                if not (cached("config.json") and any(cached(name) for name in weights)):
                    raise ValueError(
                        f"pretrained={pretrained!r} is neither an existing local directory nor a hub name "
                        f"whose files the Hugging Face cache holds; {expected}"
                    )
        recipe = load_recipe(scale).with_device(device)
        evaluation = {
            name: value for name, value in dict(split=split, batch_size=batch_size).items() if value is not None
        }
        if max_examples != "recipe":
            evaluation["max_examples"] = max_examples
        overrides: dict = {"evaluation": evaluation}
        if scaling_presets is not None:
            overrides["ladder"] = tuple(scaling_presets)
        if pretrain_steps is not None:
            overrides["pretraining"] = {"train": {"steps": pretrain_steps}}
        names = list(HEURISTICS) if heuristics is None else [heuristics] if isinstance(heuristics, str) else heuristics
        return cls(
            apply_overrides(recipe, overrides),
            distinct(names),
            distinct(supervised_seeds),
            pretrained,
        )

    @property
    def spec(self) -> PretrainSpec:
        """The shared Transformer run."""
        return self.recipe.pretraining

    @property
    def lstm_spec(self) -> PretrainSpec:
        """The LSTM baseline: the same tokens, steps and optimiser, sized like the Transformer."""
        return dataclasses.replace(self.spec, model="lstm")

    @property
    def evaluation(self) -> EvaluationSettings:
        return self.recipe.evaluation

    @property
    def variants(self) -> list[tuple[str, dict]]:
        return heuristic_variants(self.heuristics)

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(HEURISTICS[name].task for name in self.heuristics))

    @property
    def tokenizer(self) -> Tokenizer:
        """The corpus BPE both runs are trained on."""
        return self.spec.tokenizer()

    def pretraining(self, progress: bool = True) -> tuple[PretrainRun, PretrainRun]:
        """The Transformer run (shared with 02 and 03) and the LSTM run, trained or read from the cache."""
        return pretrain(self.spec, progress=progress), pretrain(self.lstm_spec, progress=progress)

    def models_table(self, gpt_run: PretrainRun, lstm_run: PretrainRun) -> pd.DataFrame:
        """Architecture, size, budget and final validation loss of the two runs."""
        return pd.DataFrame(
            [
                dict(
                    model=label,
                    architecture=run.spec.preset if label == "transformer" else str(run.spec.model_config()),
                    parameters=run.load().num_parameters(),
                    updates=run.spec.train.steps,
                    tokens=run.spec.train.steps * run.spec.train.batch_size * run.spec.gpt_config.n_ctx,
                    kept_checkpoints=run.steps,
                    final_val_loss=round(float(run.history["val_loss"].dropna().iloc[-1]), 3),
                )
                for label, run in (("transformer", gpt_run), ("lstm", lstm_run))
            ]
        ).set_index("model")

    def unigram_entropy(self) -> float:
        """Entropy of the training tokens' frequencies: the loss of a model that learned nothing of context."""
        vocab_size = self.spec.gpt_config.vocab_size
        train_path, _ = default_token_files(vocab_size, seed=self.spec.data_seed, progress=False)
        return unigram_entropy(open_token_file(train_path, vocab_size)[0], vocab_size)

    def supervised_reference(self, gpt_run: PretrainRun, progress: bool = True) -> pd.DataFrame:
        """:func:`supervised_reference` for this experiment's tasks and seeds."""
        return supervised_reference(gpt_run, self.tasks, self.recipe, self.supervised_seeds, progress=progress)

    def curve(
        self, gpt_run: PretrainRun, lstm_run: PretrainRun, reference: Mapping[str, float], progress: bool = True
    ) -> pd.DataFrame:
        """:func:`zero_shot_curve` over both runs' kept checkpoints."""
        e = self.evaluation
        return zero_shot_curve(
            gpt_run,
            lstm_run,
            self.heuristics,
            e.max_examples,
            e.split,
            batch_size=e.batch_size,
            supervised=reference,
            device=self.spec.train.device,
            progress=progress,
        )

    def scaling(self, reference: Mapping[str, float], progress: bool = True) -> pd.DataFrame | None:
        """:func:`zero_shot_scaling` over the recipe's ladder; None when the ladder is empty."""
        if not self.recipe.ladder:
            return None
        e = self.evaluation
        return zero_shot_scaling(
            self.spec,
            self.recipe.ladder,
            self.heuristics,
            e.max_examples,
            e.split,
            batch_size=e.batch_size,
            supervised=reference,
            device=self.spec.train.device,
            progress=progress,
        )

    def pretrained_table(self, reference: Mapping[str, float]) -> pd.DataFrame | None:
        """The heuristics on real Hugging Face weights (GPT-2 section) with GPT-2's tokenizer; None
        without ``pretrained``."""
        if self.pretrained is None:
            return None
        e = self.evaluation
        model = GPT.from_pretrained(self.pretrained).to(resolve_device(self.spec.train.device))
        table = evaluate_model(model, gpt2_tokenizer(), self.variants, e.split, e.max_examples, batch_size=e.batch_size)
        table["relative"] = [
            relative_performance(a, r, reference[t])
            for a, r, t in zip(table["accuracy"], table["random"], table["task"])
        ]
        return table

    def findings(self, curve: pd.DataFrame, scaling: pd.DataFrame | None = None) -> str:
        return "\n".join(findings(curve, scaling))


def heuristic_variants(heuristics: Sequence[str] | None = None, all_verbalizers: bool = True) -> list[tuple[str, dict]]:
    """``(heuristic, options)`` pairs to evaluate: every sentiment verbalizer pair, by default."""
    names = list(HEURISTICS) if heuristics is None else list(heuristics)
    if not names:
        raise ValueError("heuristics is empty; expected some of " + ", ".join(HEURISTICS))
    unknown = [h for h in names if h not in HEURISTICS]
    if unknown:
        raise ValueError(f"unknown heuristics {unknown}; expected some of {list(HEURISTICS)}")
    variants = []
    for name in dict.fromkeys(names):
        if name == "sentiment" and all_verbalizers:
            variants += [(name, {"verbalizer": v}) for v in VERBALIZERS]
        else:
            variants.append((name, {}))
    return variants


def evaluate_model(
    model,
    tokenizer,
    variants: Sequence[tuple[str, dict]],
    split: str = "test",
    max_examples: int | None = 200,
    seed: int = 0,
    batch_size: int = 32,
) -> pd.DataFrame:
    """Accuracy of each heuristic variant on one model: ``task, heuristic, n, accuracy, random``."""
    rows = [
        evaluate(model, tokenizer, name, split, max_examples, seed, batch_size, **options) for name, options in variants
    ]
    return pd.DataFrame(rows)[["task", "heuristic", "n", "accuracy", "random"]]


def evaluate_checkpoint(
    run: PretrainRun,
    step: int,
    variants: Sequence[tuple[str, dict]],
    split: str = "test",
    max_examples: int | None = 200,
    seed: int = 0,
    batch_size: int = 32,
    device: str = "cpu",
) -> pd.DataFrame:
    """:func:`evaluate_model` on one kept checkpoint of ``run``, cached."""
    EvaluationSettings(split, max_examples, batch_size)  # validates them
    if step not in run.steps:
        raise ValueError(f"no checkpoint at step {step} in {run.run_dir}; kept steps: {run.steps}")
    target = resolve_device(device)
    config = dict(
        run=run.run_dir.name,
        spec=run.spec.key(),
        step=step,
        variants=[[name, options] for name, options in variants],
        split=split,
        max_examples=max_examples,
        seed=seed,
        device=target.type,
        version=EVALUATION_VERSION,
    )

    def compute() -> pd.DataFrame:
        model = run.load(step).to(target)
        with torch.inference_mode():
            return evaluate_model(model, run.tokenizer, variants, split, max_examples, seed, batch_size)

    return cached_frame("zero_shot", config, compute)


MIN_SUPERVISED_MARGIN = 0.05
"""How far above chance the supervised reference must be for relative performance to be reported:
dividing by a gap of a point or two turns noise into ratios of 10 or more."""


def relative_performance(accuracy: float, random: float, supervised: float) -> float:
    """``(accuracy - random) / (supervised - random)``; NaN when there is no supervised reference
    or it beats chance by less than :data:`MIN_SUPERVISED_MARGIN` (the ratio would mean nothing)."""
    if supervised is None or not math.isfinite(supervised) or supervised - random < MIN_SUPERVISED_MARGIN:
        return math.nan
    return (accuracy - random) / (supervised - random)


def supervised_reference(
    run: PretrainRun,
    tasks: Sequence[str],
    recipe: Recipe | None = None,
    seeds: Sequence[int] = (0,),
    progress: bool = True,
    finetune: Callable | None = None,
) -> pd.DataFrame:
    """The fine-tuned Transformer's dev accuracy on each task, one row per ``(task, seed)``.

    The runs are the layer-transfer experiments' (:func:`workbench.experiments.transfer.finetune_task`,
    all pretrained layers transferred, lambda = 0.5) with ``recipe``'s fine-tuning settings and label
    counts (default the CPU recipe), so the layer-transfer notebook's cached runs are reused.
    Columns: ``task, seed, n_labelled, dev_accuracy``.
    """
    finetune = finetune or finetune_task
    recipe = recipe or RECIPES["cpu"]
    seeds = sequence_of(NON_NEGATIVE_INT)(distinct(seeds), "seeds")
    tasks = [check_task(t) for t in dict.fromkeys(tasks)]
    rows = []
    with tqdm(total=len(tasks) * len(seeds), desc="supervised reference (fine-tuning)", disable=not progress) as bar:
        for task in tasks:
            for seed in seeds:
                bar.set_postfix_str(f"{task} seed {seed}")
                n_labelled = recipe.n_labelled(task)
                result = finetune(run, task, seed=seed, n_labelled=n_labelled, settings=recipe.finetuning)
                rows.append(
                    dict(task=task, seed=seed, n_labelled=n_labelled, dev_accuracy=float(result["dev_accuracy"]))
                )
                bar.update()
    return pd.DataFrame(rows)


def reference_accuracy(table: pd.DataFrame) -> dict[str, float]:
    """A :func:`supervised_reference` table averaged over its seeds: ``{task: dev accuracy}``."""
    return table.groupby("task", sort=False)["dev_accuracy"].mean().to_dict()


def supervised_accuracy(run: PretrainRun, tasks: Sequence[str], **options) -> dict[str, float]:
    """:func:`supervised_reference` averaged over its seeds: ``{task: dev accuracy}``."""
    return reference_accuracy(supervised_reference(run, tasks, **options))


def _supervised(gpt_run, variants, supervised, progress) -> dict[str, float]:
    tasks = [HEURISTICS[name].task for name, _ in variants]
    if supervised is False:
        return {task: math.nan for task in tasks}
    if supervised is None:
        return supervised_accuracy(gpt_run, tasks, progress=progress)
    if not isinstance(supervised, Mapping):
        raise TypeError(
            f"supervised must be None, False or a mapping task -> accuracy, got {type(supervised).__name__}"
        )
    missing = [t for t in dict.fromkeys(tasks) if t not in supervised]
    if missing:
        raise ValueError(f"supervised has no accuracy for tasks {missing}; it has {sorted(supervised)}")
    bad = {
        t: a for t, a in supervised.items() if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 <= a <= 1
    }
    if bad:
        raise ValueError(f"supervised accuracies must be numbers in [0, 1], got {bad}")
    return {t: float(supervised[t]) for t in tasks}


def _add_relative(frame: pd.DataFrame, supervised: dict[str, float]) -> pd.DataFrame:
    frame["supervised"] = frame["task"].map(supervised)
    frame["relative"] = [
        relative_performance(a, r, s) for a, r, s in zip(frame["accuracy"], frame["random"], frame["supervised"])
    ]
    return frame


def zero_shot_curve(
    gpt_run: PretrainRun,
    lstm_run: PretrainRun | None = None,
    heuristics: Sequence[str] | None = None,
    max_examples: int | None = 200,
    split: str = "test",
    seed: int = 0,
    batch_size: int = 32,
    supervised: Mapping[str, float] | bool | None = None,
    steps: Sequence[int] | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> pd.DataFrame:
    """Every heuristic on every kept checkpoint of the Transformer and (if given) the LSTM.

    One row per ``(model, step, heuristic)`` with the columns of :data:`CURVE_COLUMNS`; ``model``
    is ``"transformer"`` or ``"lstm"``. ``supervised``: None computes the reference with
    :func:`supervised_accuracy`; a mapping gives it; False leaves ``relative`` NaN. ``steps``
    restricts the checkpoints (default: every kept one). ``max_examples`` caps each split (the
    dev split the acceptability threshold is chosen on included); ``seed`` is the task-split seed.
    """
    EvaluationSettings(split, max_examples, batch_size)  # validates them
    variants = heuristic_variants(heuristics)
    runs = {"transformer": gpt_run}
    if lstm_run is not None:
        if lstm_run.spec.model != "lstm" or gpt_run.spec.model != "gpt":
            raise ValueError(
                f"expected a GPT run and an LSTM run, got model={gpt_run.spec.model!r} "
                f"and model={lstm_run.spec.model!r}"
            )
        same = ("vocab_size", "n_ctx")
        a, b = gpt_run.spec.gpt_config, lstm_run.spec.gpt_config
        if any(getattr(a, f) != getattr(b, f) for f in same) or gpt_run.spec.data_seed != lstm_run.spec.data_seed:
            raise ValueError(
                "the LSTM must be trained on the same tokens as the Transformer (same vocabulary, window and data_seed)"
            )
        runs["lstm"] = lstm_run
    plan = {}
    for label, run in runs.items():
        kept = run.steps
        if not kept:
            raise ValueError(f"the {label} run {run.run_dir} has no checkpoints; train it first with pretrain()")
        chosen = kept if steps is None else list(steps)
        if not chosen:
            raise ValueError("steps is empty: give at least one checkpoint step (or None for all kept steps)")
        missing = [s for s in chosen if s not in kept]
        if missing:
            raise ValueError(f"the {label} run has no checkpoint at steps {missing}; kept steps: {kept}")
        plan[label] = (run, chosen)
    reference = _supervised(gpt_run, variants, supervised, progress)
    frames = []
    bar = tqdm(
        total=sum(len(chosen) for _, chosen in plan.values()), desc="zero-shot checkpoints", disable=not progress
    )
    with bar:
        for label, (run, chosen) in plan.items():
            for step in chosen:
                bar.set_postfix_str(f"{label} step {step}")
                frame = evaluate_checkpoint(run, step, variants, split, max_examples, seed, batch_size, device)
                frames.append(frame.assign(model=label, step=step))
                bar.update()
    curve = _add_relative(pd.concat(frames, ignore_index=True), reference)
    return curve[CURVE_COLUMNS]


def scaling_specs(spec: PretrainSpec, presets: Sequence[str]) -> list[PretrainSpec]:
    """``spec`` with each preset in turn: same tokens, steps, batch and learning rate."""
    if not presets:
        raise ValueError("presets is empty; expected model-size presets such as " + ", ".join(RECIPES["cpu"].ladder))
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        raise ValueError(f"unknown presets {unknown}; valid presets: {', '.join(PRESETS)}")
    if spec.model != "gpt":
        raise ValueError(f"the scaling runs are Transformers; got a spec with model={spec.model!r}")
    vocab = {p: PRESETS[p].vocab_size for p in presets}
    if len(set(vocab.values())) != 1:
        raise ValueError(f"presets must share a vocabulary to be trained on the same tokens, got {vocab}")
    return [dataclasses.replace(spec, preset=p) for p in presets]


def zero_shot_scaling(
    spec: PretrainSpec,
    presets: Sequence[str] | None = None,
    heuristics: Sequence[str] | None = None,
    max_examples: int | None = 200,
    split: str = "test",
    seed: int = 0,
    batch_size: int = 32,
    supervised: Mapping[str, float] | bool = False,
    device: str = "cpu",
    progress: bool = True,
) -> pd.DataFrame:
    """Zero-shot accuracy of the last checkpoint of one run per model size (GPT-2's scaling claim).

    Each preset is pretrained with ``spec`` (cached like any run: the preset of the shared run is
    that run). One row per ``(preset, heuristic)`` with the columns of :data:`SCALING_COLUMNS`;
    ``supervised`` as in :func:`zero_shot_curve`, but off by default (a mapping reuses the curve's).
    """
    EvaluationSettings(split, max_examples, batch_size)  # validates them
    variants = heuristic_variants(heuristics)
    specs = scaling_specs(spec, RECIPES["cpu"].ladder if presets is None else presets)
    if supervised is None or supervised is True:
        raise ValueError(
            "zero_shot_scaling: supervised must be False or a mapping task -> accuracy "
            "(for example the reference zero_shot_curve used)"
        )
    reference = _supervised(None, variants, supervised, progress)
    frames = []
    for run_spec in specs:
        run = pretrain(run_spec, progress=progress)
        if not run.steps:
            raise ValueError(f"the {run_spec.preset} run {run.run_dir} has no checkpoints")
        step = run.steps[-1]
        history = run.history
        val = history["val_loss"].dropna() if "val_loss" in history else pd.Series(dtype=float)
        frame = evaluate_checkpoint(run, step, variants, split, max_examples, seed, batch_size, device)
        frames.append(
            frame.assign(
                preset=run_spec.preset,
                parameters=count_parameters(run_spec.gpt_config),
                step=step,
                val_loss=float(val.iloc[-1]) if len(val) else math.nan,
            )
        )
    table = pd.concat(frames, ignore_index=True)
    table = _add_relative(table, reference)
    return table[SCALING_COLUMNS]


def summarise_curve(curve: pd.DataFrame) -> pd.DataFrame:
    """Per model and heuristic: accuracy at the first and last checkpoint and the change."""
    rows = []
    for (model, task, heuristic), group in curve.groupby(["model", "task", "heuristic"], sort=False):
        group = group.sort_values("step")
        first, last = group.iloc[0], group.iloc[-1]
        rows.append(
            dict(
                model=model,
                task=task,
                heuristic=heuristic,
                random=first["random"],
                supervised=first["supervised"],
                first_step=int(first["step"]),
                first_accuracy=first["accuracy"],
                last_step=int(last["step"]),
                last_accuracy=last["accuracy"],
                change=last["accuracy"] - first["accuracy"],
                last_relative=last["relative"],
                n=int(last["n"]),
            )
        )
    return pd.DataFrame(rows)


def _standard_error(accuracy: float, n: int) -> float:
    return math.sqrt(max(accuracy * (1 - accuracy), 1e-12) / max(n, 1))


def findings(curve: pd.DataFrame, scaling: pd.DataFrame | None = None) -> list[str]:
    """What the numbers say, in sentences computed from them (no number is typed by hand).

    A change counts as a rise or a fall only when it exceeds two standard errors of the
    difference of two accuracies on ``n`` examples; anything smaller is called noise.
    """
    lines = []
    summary = summarise_curve(curve)
    for model, rows in summary.groupby("model", sort=False):
        first, last = int(rows["first_step"].iloc[0]), int(rows["last_step"].iloc[0])
        verdicts = []
        for row in rows.itertuples():
            error = 2 * math.hypot(
                _standard_error(row.first_accuracy, row.n), _standard_error(row.last_accuracy, row.n)
            )
            verdict = "rose" if row.change > error else "fell" if row.change < -error else "did not move beyond noise"
            verdicts.append((row.heuristic, verdict, row.first_accuracy, row.last_accuracy, row.random, error))
        rose = sum(v == "rose" for _, v, *_ in verdicts)
        lines.append(
            f"{model}: from update {first} to update {last}, zero-shot accuracy rose on {rose} of "
            f"{len(verdicts)} heuristics (a change counts when it exceeds two standard errors)."
        )
        for heuristic, verdict, a, b, random, error in verdicts:
            lines.append(f"  - {heuristic}: {a:.3f} -> {b:.3f} (chance {random:.2f}, +/- {error:.3f}): {verdict}")
    last_step = curve.groupby("model")["step"].transform("max") == curve["step"]
    final = curve[last_step].groupby("model")[["accuracy", "relative"]].mean()
    if {"transformer", "lstm"} <= set(final.index):
        ours, lstm = final.loc["transformer"], final.loc["lstm"]
        better = (
            "above"
            if ours["accuracy"] > lstm["accuracy"]
            else "below"
            if ours["accuracy"] < lstm["accuracy"]
            else "level with"
        )
        text = (
            f"At the last checkpoint the Transformer's mean zero-shot accuracy over the heuristics is "
            f"{ours['accuracy']:.3f}, {better} the LSTM's {lstm['accuracy']:.3f}"
        )
        if not (math.isnan(ours["relative"]) or math.isnan(lstm["relative"])):
            text += f" (mean relative performance {ours['relative']:.2f} vs {lstm['relative']:.2f})"
        lines.append(text + ".")
    if scaling is not None and len(scaling):
        order = scaling.drop_duplicates("preset").sort_values("parameters")
        small, large = order.iloc[0], order.iloc[-1]
        rose = 0
        heuristics = list(dict.fromkeys(scaling["heuristic"]))
        for heuristic in heuristics:
            rows = scaling[scaling["heuristic"] == heuristic].set_index("preset")
            a, b, n = (
                rows.loc[small["preset"], "accuracy"],
                rows.loc[large["preset"], "accuracy"],
                int(rows["n"].iloc[0]),
            )
            rose += (b - a) > 2 * math.hypot(_standard_error(a, n), _standard_error(b, n))
        lines.append(
            f"Model size: from {small['preset']} ({small['parameters'] / 1e6:.2f}M parameters, validation loss "
            f"{small['val_loss']:.2f}) to {large['preset']} ({large['parameters'] / 1e6:.2f}M, "
            f"{large['val_loss']:.2f}), zero-shot accuracy rose beyond noise on {rose} of {len(heuristics)} "
            f"heuristics."
        )
    return lines


__all__ = [
    "CURVE_COLUMNS",
    "SCALING_COLUMNS",
    "evaluate_checkpoint",
    "evaluate_model",
    "findings",
    "heuristic_variants",
    "random_accuracy",
    "relative_performance",
    "scaling_specs",
    "summarise_curve",
    "reference_accuracy",
    "supervised_accuracy",
    "supervised_reference",
    "zero_shot_curve",
    "zero_shot_scaling",
    "ZeroShotExperiment",
]
