"""Zero-shot behaviour: GPT-1 Figure 2 (right) over pretraining, and GPT-2's claim over model size.

Every readout of :mod:`workbench.evaluation.heuristics` is evaluated on every kept checkpoint of a
Transformer pretraining run and of the LSTM baseline trained on the same tokens, and on the last
checkpoint of a ladder of model sizes trained on the same tokens. Each checkpoint's per-example
outcomes and its validation loss are cached on their own (``cached_frame``), so a re-run recomputes
only what changed and an interrupted sweep resumes where it stopped.

The statistics are paired by example (:mod:`workbench.evaluation.statistics`): a readout *rises*
when the 95% bootstrap interval of its change from the first checkpoint (the untrained model)
to the last lies above 0 **and** that of its slope against log10(tokens seen) does too
(:data:`PROTOCOL`). Accuracy is also reported *relative* to chance (0) and to the fine-tuned
Transformer (1), where that reference is meaningfully above chance.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..core.checks import (
    NON_EMPTY_STRING,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    check_fields,
    distinct,
    one_of,
    optional,
    sequence_of,
)
from ..core.device import resolve_device, torch_threads
from ..core.options import apply_overrides, option
from ..data.tasks import TASKS_VERSION
from ..data.tokenizer import Tokenizer, gpt2_tokenizer
from ..data.tokens import unigram_entropy, unigram_log_probs
from ..evaluation.heuristics import (
    HEURISTICS,
    OUTCOME_COLUMNS,
    SUMMARY_COLUMNS,
    evaluate,
    outcomes_of,
    random_accuracy,
    score_outcomes,
    summarize_outcomes,
)
from ..evaluation.scaling_law import KAPLAN_ALPHA_N, ScalingFit, fit_scaling_law
from ..evaluation.statistics import (
    BOOTSTRAP_REPLICATES,
    CONFIDENCE,
    CONSTANT_SHARE,
    Outcomes,
    holm,
    interval,
    paired_difference,
    replicates,
    seed_trend,
)
from ..models.config import PRESETS
from ..models.gpt import GPT
from ..models.params import count_parameters, non_embedding_parameters
from ..training.language_model import TokenEvaluator, default_token_files, open_token_file
from .cache import cached_frame, entry_path, is_done
from .pool import cpu_workers, in_pool
from .pretraining import PretrainRun, pretrain, pretrain_all
from .recipes import RECIPES, EvaluationSettings, PretrainSpec, Recipe, load_recipe
from .transfer import check_task, finetune_all

EVALUATION_VERSION = 2
"""Bump when scoring or a readout changes its results, so that cached evaluations are redone."""

POINT_COLUMNS = ["tokens", "val_loss"]
READOUT_COLUMNS = SUMMARY_COLUMNS
CURVE_COLUMNS = ["model", "step", *POINT_COLUMNS, *READOUT_COLUMNS, "supervised", "relative"]
SCALING_COLUMNS = [
    "preset",
    "parameters",
    "non_embedding_params",
    "seed",
    "step",
    *POINT_COLUMNS,
    *READOUT_COLUMNS,
    "supervised",
    "relative",
]
TREND_COLUMNS = [
    "model",
    "task",
    "heuristic",
    "readout",
    "metric",
    "n",
    "first",
    "last",
    "change",
    "change_low",
    "change_high",
    "slope",
    "slope_low",
    "slope_high",
    "last_share",
    "p",
    "p_holm",
    "verdict",
]

PROTOCOL = (
    "A readout rises with pretraining when its change from the first kept checkpoint (update 1, the untrained "
    "baseline: chance is measured, not assumed) to the last and its least-squares slope against log10(tokens "
    "seen) over every kept checkpoint are both above 0, tested together (the larger of their two-sided p-values, "
    f"from {BOOTSTRAP_REPLICATES} bootstrap resamples of the examples, the same resample at every checkpoint: "
    "paired by example) and decided by Holm's correction over the family of one model's readouts at "
    f"{1 - CONFIDENCE:.2f}. It falls when both are below 0 under the same test, and is flat otherwise; a readout "
    f"that gives one answer to more than {CONSTANT_SHARE:.0%} of the examples at its last point is constant (no "
    f"information), never flat. The printed intervals are the uncorrected {CONFIDENCE:.0%} ones. The same rule "
    "over model sizes uses log10(non-embedding parameters), the ladder's readouts one family. The Transformer "
    "and the LSTM are compared paired by example, at equal tokens (both last checkpoints) and at equal "
    "validation loss (the last checkpoint of the model whose final loss is higher against the other's kept "
    "checkpoint nearest to it), all those comparisons one family under Holm; sentiment, the out-of-domain "
    "control, is reported apart. Relative performance is (accuracy - chance) / (supervised - chance), reported "
    "only where the fine-tuned reference beats chance by at least 5 points and the zero-shot accuracy does not "
    "exceed it."
)
"""What counts as a rise, written before any result is computed; :func:`findings` applies it."""


@dataclass(frozen=True)
class ZeroShotExperiment:
    """The zero-shot notebook's experiment: a recipe, the heuristics and the reference's seeds.

    Build it with :meth:`from_params` (the notebook's parameters, checked before any work); its
    methods do the work: :meth:`pretraining`, :meth:`supervised_reference`, :meth:`outcomes`,
    :meth:`curve`, :meth:`trends`, :meth:`scaling_outcomes`, :meth:`pretrained_table`, :meth:`findings`.
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
        pretraining_runs: int | None = None,
    ) -> ZeroShotExperiment:
        """The recipe of ``scale`` (a name, a YAML file or a Recipe) with the notebook's overrides.

        ``max_examples="recipe"`` and None elsewhere keep the recipe's value (``max_examples=None``
        evaluates every example); ``scaling_presets=[]`` skips the size ladder; ``pretraining_runs``
        (None: the recipe's) is how many seeds of each model the readouts are averaged over. ``pretrained`` must be
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
        if pretraining_runs is not None:
            overrides["pretraining_runs"] = pretraining_runs
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
    def tasks(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(HEURISTICS[name].task for name in self.heuristics))

    @property
    def tokenizer(self) -> Tokenizer:
        """The corpus BPE both runs are trained on."""
        return self.spec.tokenizer()

    def pretraining(self, progress: bool = True) -> tuple[PretrainRun, PretrainRun]:
        """The Transformer run (shared with 02 and 03) and the LSTM run, trained or read from the cache."""
        gpt_run, lstm_run = pretrain_all([self.spec, self.lstm_spec], progress)
        return gpt_run, lstm_run

    def models_table(self, gpt_run: PretrainRun, lstm_run: PretrainRun) -> pd.DataFrame:
        """Architecture, size, budget (in updates, tokens and epochs) and final validation loss of the two runs."""
        train_tokens = len(self._train_tokens())
        rows = []
        for label, run in (("transformer", gpt_run), ("lstm", lstm_run)):
            tokens = run.spec.tokens_seen(run.spec.train.steps)
            rows.append(
                dict(
                    model=label,
                    architecture=run.spec.preset if label == "transformer" else str(run.spec.model_config()),
                    parameters=run.load().num_parameters(),
                    updates=run.spec.train.steps,
                    tokens=tokens,
                    epochs=round(tokens / train_tokens, 2),
                    kept_checkpoints=run.steps,
                    final_val_loss=round(float(run.history["val_loss"].dropna().iloc[-1]), 3),
                )
            )
        return pd.DataFrame(rows).set_index("model")

    def _train_tokens(self) -> np.ndarray:
        vocab_size = self.spec.gpt_config.vocab_size
        train_path, _ = default_token_files(vocab_size, seed=self.spec.data_seed, progress=False)
        return open_token_file(train_path, vocab_size)[0]

    def unigram_entropy(self) -> float:
        """Entropy of the training tokens' frequencies: the loss of a model that learned nothing of context."""
        return unigram_entropy(self._train_tokens(), self.spec.gpt_config.vocab_size)

    def unigram_log_probs(self) -> np.ndarray:
        """The unigram model of the training tokens that SLOR subtracts."""
        return unigram_log_probs(self._train_tokens(), self.spec.gpt_config.vocab_size)

    def supervised_reference(self, gpt_run: PretrainRun, progress: bool = True) -> pd.DataFrame:
        """:func:`supervised_reference` for this experiment's tasks and seeds."""
        return supervised_reference(gpt_run, self.tasks, self.recipe, self.supervised_seeds, progress=progress)

    def outcomes(self, gpt_run: PretrainRun, lstm_run: PretrainRun | None, progress: bool = True) -> pd.DataFrame:
        """Per-example outcomes of every readout on every kept checkpoint of both runs
        (:func:`zero_shot_outcomes`), averaged over the recipe's pretraining runs (:func:`pool_runs`);
        runs of other seeds than the given ones are trained here when not cached."""
        unigram, frames = self.unigram_log_probs(), []
        for index in range(self.recipe.pretraining_runs):
            runs = [gpt_run, lstm_run]
            if index:
                runs = [run and pretrain(with_seed(run.spec, index), progress=progress) for run in runs]
            frames.append(
                zero_shot_outcomes(
                    *runs,
                    self.heuristics,
                    self.evaluation,
                    unigram=unigram,
                    device=self.spec.train.device,
                    progress=progress,
                    threads=self.spec.train.threads,
                )
            )
        return pool_runs(frames, ["model", "step", "tokens"])

    def curve(self, outcomes: pd.DataFrame, reference: Mapping[str, float] | None) -> pd.DataFrame:
        """One row per model, checkpoint and readout (:data:`CURVE_COLUMNS`)."""
        return summarize_readouts(outcomes, ["model", "step", *POINT_COLUMNS], reference)[CURVE_COLUMNS]

    def trends(self, outcomes: pd.DataFrame) -> pd.DataFrame:
        """Each model's change and slope per readout over its checkpoints (:func:`trends`)."""
        return trends(outcomes, "model", "step", "tokens")

    def loss_by_position(self, gpt_run: PretrainRun, lstm_run: PretrainRun) -> pd.DataFrame:
        """:func:`loss_by_position` of both language models at their last checkpoints."""
        return loss_by_position({"transformer": [gpt_run], "lstm": [lstm_run]})

    def position_gaps(self, gpt_run: PretrainRun, lstm_run: PretrainRun) -> pd.DataFrame:
        """:func:`position_gaps`: where in the context the Transformer pulls ahead of the LSTM."""
        return position_gaps({"transformer": gpt_run, "lstm": lstm_run})

    def lstm_comparison(self, outcomes: pd.DataFrame) -> pd.DataFrame:
        """:func:`lstm_comparison`: the Transformer against the LSTM at equal tokens and at equal loss."""
        return lstm_comparison(outcomes)

    def scaling_outcomes(self, progress: bool = True) -> pd.DataFrame | None:
        """Per-example outcomes of one checkpoint of each run of each size of the ladder, with a ``seed``
        column (the run's training seed); None when the ladder is empty."""
        if not self.recipe.ladder:
            return None
        return scaling_outcomes(
            self.spec,
            self.recipe.ladder,
            self.heuristics,
            self.evaluation,
            runs=self.recipe.rung_runs(),
            unigram=self.unigram_log_probs(),
            device=self.spec.train.device,
            progress=progress,
            threads=self.spec.train.threads,
        )

    def scaling(self, outcomes: pd.DataFrame, reference: Mapping[str, float] | None) -> pd.DataFrame:
        """One row per preset, run and readout (:data:`SCALING_COLUMNS`), smallest model first."""
        keys = ["preset", "parameters", "non_embedding_params", "seed", "step", *POINT_COLUMNS]
        table = summarize_readouts(outcomes, keys, reference)[SCALING_COLUMNS]
        return table.sort_values(["parameters", "seed"], kind="stable", ignore_index=True)

    def scaling_trends(self, outcomes: pd.DataFrame) -> pd.DataFrame:
        """Change and slope per readout from the smallest model to the largest, against log10(non-embedding
        parameters), the N of Kaplan et al. (2020), with intervals over seeds and examples together."""
        return trends(outcomes.assign(model="ladder"), "model", "non_embedding_params", "non_embedding_params")

    def scaling_fit(self, table: pd.DataFrame) -> ScalingFit:
        """Kaplan et al.'s L(N) fitted to the validation loss of every run of the ladder (a :meth:`scaling` table)."""
        runs = table.drop_duplicates(["preset", "seed"])
        return fit_scaling_law(runs["non_embedding_params"], runs["val_loss"])

    def audit_table(self, outcomes: pd.DataFrame, scaling_outcomes: pd.DataFrame | None) -> pd.DataFrame:
        """:func:`audit_table`: the per-example outcomes behind every verdict, compactly."""
        return audit_table(outcomes, scaling_outcomes)

    def pretrained_table(self, reference: Mapping[str, float] | None) -> pd.DataFrame | None:
        """The readouts on real Hugging Face weights (GPT-2 section) with GPT-2's tokenizer; None
        without ``pretrained``. SLOR is left out: it needs unigram counts of GPT-2's training text."""
        if self.pretrained is None:
            return None
        e = self.evaluation
        model = GPT.from_pretrained(self.pretrained).to(resolve_device(self.spec.train.device))
        table = evaluate(model, gpt2_tokenizer(), self.heuristics, e.split, e.max_examples, batch_size=e.batch_size)
        return add_relative(table, reference)

    def findings(
        self,
        trends_table: pd.DataFrame,
        outcomes: pd.DataFrame,
        scaling_trends: pd.DataFrame | None = None,
        reference: Mapping[str, float] | None = None,
        positions: pd.DataFrame | None = None,
        scaling_fit: ScalingFit | None = None,
    ) -> str:
        return "\n".join(findings(trends_table, outcomes, scaling_trends, reference, positions, scaling_fit))


def with_seed(spec: PretrainSpec, offset: int) -> PretrainSpec:
    """``spec`` with its training seed moved by ``offset``: another pretraining run of the same model."""
    return spec if offset == 0 else dataclasses.replace(spec, train=spec.train.replace(seed=spec.train.seed + offset))


def pool_runs(frames: list[pd.DataFrame], by: Sequence[str]) -> pd.DataFrame:
    """Per-example outcomes of several pretraining runs averaged per example within each group of
    ``by``: ``correct`` becomes the share of runs that got the example right, and ``score`` and the
    other numbers (``val_loss``, a chosen ``step``) their mean, so the statistics stay paired by
    example. One run's frame is returned as it is."""
    if len(frames) == 1:
        return frames[0]
    frame = pd.concat(frames, ignore_index=True)
    keys = [*by, "model", "task", "heuristic", "readout", "metric", "example", "label"]
    keys = list(dict.fromkeys(k for k in keys if k in frame))
    values = [c for c in frame.columns if c not in keys]
    return frame.groupby(keys, sort=False, as_index=False)[values].mean()[list(frame.columns)]


def checkpoint_val_loss(run: PretrainRun, step: int, device: str = "cpu") -> float:
    """Validation loss of one kept checkpoint on the windows the trainer evaluates (float32), cached."""
    target = resolve_device(device)
    vocab_size = run.spec.gpt_config.vocab_size
    config = dict(run=run.run_dir.name, spec=run.spec.key(), step=step, device=target.type)

    def compute() -> pd.DataFrame:
        _, val_path = default_token_files(vocab_size, seed=run.spec.data_seed, progress=False)
        train = run.spec.train
        evaluator = TokenEvaluator(
            open_token_file(val_path, vocab_size)[0],
            train.seq_len or run.spec.gpt_config.n_ctx,
            train.eval_sequences,
            train.micro_batch_size or train.batch_size,
        )
        with torch.no_grad():
            return pd.DataFrame([evaluator(run.load(step).to(target))])

    return float(cached_frame("val_loss", config, compute)["val_loss"].iloc[0])


LOSS_BY_POSITION_COLUMNS = ["model", "seed", "position", "n", "loss", "ci_low", "ci_high"]
POSITION_WINDOWS = 1024
"""Validation windows per model for the loss at each position: 1024 x 128 tokens, about a tenth of
the validation split, which puts a 95% band of about +-0.1 nats on each position's mean."""


def position_losses(run: PretrainRun, step: int | None = None, windows: int = POSITION_WINDOWS) -> np.ndarray:
    """Per-token validation loss ``[windows, n_ctx]`` of ``run`` at kept ``step`` (None: the last),
    on windows spread evenly over the validation tokens (the trainer's evaluation windows, more of
    them), position 1 being each window's first prediction; cached."""
    step = run.steps[-1] if step is None else step
    if step not in run.steps:
        raise ValueError(f"step={step!r} is not a kept checkpoint; kept steps: {run.steps}")
    POSITIVE_INT(windows, "windows")
    vocab_size = run.spec.gpt_config.vocab_size
    n_ctx = run.spec.train.seq_len or run.spec.gpt_config.n_ctx
    config = dict(run=run.run_dir.name, spec=run.spec.key(), step=step, windows=windows)

    def compute() -> pd.DataFrame:
        _, val_path = default_token_files(vocab_size, seed=run.spec.data_seed, progress=False)
        tokens = open_token_file(val_path, vocab_size)[0]
        starts = TokenEvaluator(tokens, n_ctx, windows, 64).starts
        model = run.load(step).eval()
        rows = []
        with torch.no_grad(), torch_threads(1):
            for i in range(0, len(starts), 64):
                chunk = starts[i : i + 64]
                ids = torch.from_numpy(tokens[chunk[:, None] + np.arange(n_ctx + 1)].astype(np.int64))
                logits = model(ids[:, :-1]).logits.float()
                rows.append(torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none"))
        return pd.DataFrame(torch.cat(rows).double().numpy(), columns=[str(p) for p in range(1, n_ctx + 1)])

    return cached_frame("loss_by_position", config, compute).to_numpy()


def loss_by_position(runs: Mapping[str, Sequence[PretrainRun]], windows: int = POSITION_WINDOWS) -> pd.DataFrame:
    """Each model's validation loss at every position of the context at its last checkpoint (Kaplan et
    al. 2020, Figure 7), per pretraining run (``seed``), with a 95% bootstrap interval over windows:
    :data:`LOSS_BY_POSITION_COLUMNS`. ``runs`` maps a model name to its runs."""
    rows = []
    for model, model_runs in runs.items():
        for run in model_runs:
            losses = position_losses(run, windows=windows)
            samples = losses[replicates(len(losses))].mean(axis=1)  # [replicates, positions]
            low, high = np.percentile(samples, [2.5, 97.5], axis=0)
            for position, (mean, lo, hi) in enumerate(zip(losses.mean(axis=0), low, high), start=1):
                rows.append(
                    dict(
                        model=model,
                        seed=run.spec.train.seed,
                        position=position,
                        n=len(losses),
                        loss=mean,
                        ci_low=lo,
                        ci_high=hi,
                    )
                )
    return pd.DataFrame(rows, columns=LOSS_BY_POSITION_COLUMNS)


POSITION_BUCKETS = ((1, 1), (2, 8), (9, 32), (33, 64), (65, 128))


def position_gaps(runs: Mapping[str, PretrainRun], windows: int = POSITION_WINDOWS) -> pd.DataFrame:
    """The LSTM's loss minus the Transformer's (above 0: the Transformer predicts better) in buckets of
    context position, paired by window, with a 95% bootstrap interval over windows: where in the
    context the Transformer pulls ahead, if it does."""
    transformer, lstm = (position_losses(runs[m], windows=windows) for m in ("transformer", "lstm"))
    indices = replicates(len(transformer))
    rows = []
    for first, last in POSITION_BUCKETS:
        if first > transformer.shape[1]:
            continue
        columns = slice(first - 1, min(last, transformer.shape[1]))
        per_window = lstm[:, columns].mean(axis=1) - transformer[:, columns].mean(axis=1)
        low, high = interval(per_window[indices].mean(axis=1))
        rows.append(
            dict(
                positions=f"{first}-{min(last, transformer.shape[1])}" if last > first else str(first),
                transformer=float(transformer[:, columns].mean()),
                lstm=float(lstm[:, columns].mean()),
                lstm_minus_transformer=float(per_window.mean()),
                low=low,
                high=high,
            )
        )
    return pd.DataFrame(rows)


def evaluate_checkpoint(
    run: PretrainRun,
    step: int,
    heuristics: Sequence[str],
    evaluation: EvaluationSettings,
    seed: int = 0,
    unigram: np.ndarray | None = None,
    device: str = "cpu",
    threads: int | None = None,
) -> pd.DataFrame:
    """Per-example outcomes of every readout on one kept checkpoint of ``run``
    (:func:`~workbench.evaluation.heuristics.score_outcomes`), with ``step``, ``tokens`` and
    ``val_loss`` columns; cached. ``threads`` fixes torch's threads while scoring (None: as they
    are); it is part of the cache key, since the thread count can change the last bits."""
    config = _evaluation_config(run, step, heuristics, evaluation, seed, unigram, device, threads)
    target = resolve_device(device)

    def compute() -> pd.DataFrame:
        model = run.load(step).to(target)
        with torch.inference_mode(), torch_threads(threads):
            return score_outcomes(
                model,
                run.tokenizer,
                heuristics,
                evaluation.split,
                evaluation.max_examples,
                seed,
                evaluation.batch_size,
                unigram,
            )

    frame = cached_frame("zero_shot", config, compute)
    return frame.assign(step=step, tokens=run.spec.tokens_seen(step), val_loss=checkpoint_val_loss(run, step, device))


def _evaluation_config(run, step, heuristics, evaluation, seed, unigram, device, threads) -> dict:
    if step not in run.steps:
        raise ValueError(f"no checkpoint at step {step} in {run.run_dir}; kept steps: {run.steps}")
    return dict(
        run=run.run_dir.name,
        spec=run.spec.key(),
        step=step,
        heuristics=list(heuristics),
        split=evaluation.split,
        max_examples=evaluation.max_examples,
        seed=seed,
        slor=unigram is not None,
        device=resolve_device(device).type,
        threads=threads,
        version=EVALUATION_VERSION,
        tasks_version=TASKS_VERSION,
    )


def _evaluate_in_worker(*call) -> None:
    """:func:`evaluate_checkpoint` in a pool worker, its validation loss with the same threads."""
    with torch_threads(call[-1]):
        evaluate_checkpoint(*call)


def evaluate_checkpoints(calls: list[tuple], desc: str, progress: bool = True) -> list[pd.DataFrame]:
    """:func:`evaluate_checkpoint` for each tuple of its arguments, the missing ones side by side on
    a CPU when they fix their threads (cores / threads at once, in worker processes that fill the
    cache), then read in order."""
    todo = [call for call in calls if not is_done(entry_path("zero_shot", _evaluation_config(*call)))]
    device, threads = calls[0][-2], calls[0][-1]
    in_pool(_evaluate_in_worker, todo, cpu_workers(threads, device), desc, progress, len(calls))
    return [evaluate_checkpoint(*call) for call in calls]


def _check_same_tokens(gpt_run: PretrainRun, lstm_run: PretrainRun) -> None:
    if lstm_run.spec.model != "lstm" or gpt_run.spec.model != "gpt":
        raise ValueError(
            f"expected a GPT run and an LSTM run, got model={gpt_run.spec.model!r} and model={lstm_run.spec.model!r}"
        )
    a, b = gpt_run.spec.gpt_config, lstm_run.spec.gpt_config
    same = ("vocab_size", "n_ctx")
    if any(getattr(a, f) != getattr(b, f) for f in same) or gpt_run.spec.data_seed != lstm_run.spec.data_seed:
        raise ValueError(
            "the LSTM must be trained on the same tokens as the Transformer (same vocabulary, window and data_seed)"
        )


def zero_shot_outcomes(
    gpt_run: PretrainRun,
    lstm_run: PretrainRun | None = None,
    heuristics: Sequence[str] | None = None,
    evaluation: EvaluationSettings | None = None,
    seed: int = 0,
    unigram: np.ndarray | None = None,
    steps: Sequence[int] | None = None,
    device: str = "cpu",
    progress: bool = True,
    threads: int | None = None,
) -> pd.DataFrame:
    """Per-example outcomes of every readout on every kept checkpoint of the Transformer and (if
    given) the LSTM: :func:`evaluate_checkpoint`'s columns plus ``model`` (``"transformer"`` or
    ``"lstm"``). ``steps`` restricts the checkpoints (default: every kept one); ``seed`` is the
    task-split seed; ``evaluation`` defaults to the CPU recipe's settings; ``threads`` (see
    :func:`evaluate_checkpoints`) lets a CPU score several checkpoints at once."""
    heuristics = _heuristics(heuristics)
    evaluation = evaluation or RECIPES["cpu"].evaluation
    runs = {"transformer": gpt_run}
    if lstm_run is not None:
        _check_same_tokens(gpt_run, lstm_run)
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
    labels = [label for label, (_, chosen) in plan.items() for _ in chosen]
    calls = [
        (run, step, heuristics, evaluation, seed, unigram, device, threads)
        for run, chosen in plan.values()
        for step in chosen
    ]
    frames = evaluate_checkpoints(calls, "zero-shot checkpoints", progress)
    return pd.concat([frame.assign(model=label) for frame, label in zip(frames, labels)], ignore_index=True)


def _heuristics(heuristics: Sequence[str] | None) -> tuple[str, ...]:
    names = tuple(HEURISTICS) if heuristics is None else tuple(dict.fromkeys(heuristics))
    if not names:
        raise ValueError("heuristics is empty; expected some of " + ", ".join(HEURISTICS))
    return sequence_of(one_of(HEURISTICS))(names, "heuristics")


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


def scaling_outcomes(
    spec: PretrainSpec,
    presets: Sequence[str] | None = None,
    heuristics: Sequence[str] | None = None,
    evaluation: EvaluationSettings | None = None,
    seed: int = 0,
    runs: Sequence[int] | None = None,
    unigram: np.ndarray | None = None,
    device: str = "cpu",
    progress: bool = True,
    threads: int | None = None,
) -> pd.DataFrame:
    """Per-example outcomes of one checkpoint of each run of each model size (GPT-2's scaling claim),
    with ``preset``, ``parameters``, ``non_embedding_params`` and ``seed`` (the run's training seed)
    columns: the last checkpoint, or with ``evaluation.checkpoint="best"`` the kept checkpoint of lowest
    validation loss (early stopping). ``runs`` is the number of pretraining runs of each preset (seeds
    ``spec.train.seed``, ``+ 1``, ...; default one each); every run is pretrained with ``spec`` (cached
    like any run: the shared run's preset and seed is that run), the largest first so that two at a
    time finish together; ``seed`` is the task-split seed and ``threads`` as in :func:`evaluate_checkpoints`."""
    heuristics = _heuristics(heuristics)
    evaluation = evaluation or RECIPES["cpu"].evaluation
    specs = scaling_specs(spec, RECIPES["cpu"].ladder if presets is None else presets)
    runs = sequence_of(POSITIVE_INT)(tuple(runs or (1,) * len(specs)), "runs")
    if len(runs) != len(specs):
        raise ValueError(f"runs has {len(runs)} counts {list(runs)} for {len(specs)} presets; expected one per preset")
    specs = [with_seed(s, i) for s, count in zip(specs, runs) for i in range(count)]
    by_cost = sorted(range(len(specs)), key=lambda i: -count_parameters(specs[i].gpt_config))
    trained = dict(zip(by_cost, pretrain_all([specs[i] for i in by_cost], progress)))
    calls = []
    for i, run_spec in enumerate(specs):
        run = trained[i]
        if not run.steps:
            raise ValueError(f"the {run_spec.preset} run {run.run_dir} has no checkpoints")
        step = run.steps[-1]
        if evaluation.checkpoint == "best":
            step = min(run.steps, key=lambda s: checkpoint_val_loss(run, s, device))
        calls.append((run, step, heuristics, evaluation, seed, unigram, device, threads))
    frames = evaluate_checkpoints(calls, "ladder checkpoints", progress)
    return pd.concat(
        [
            frame.assign(
                preset=run_spec.preset,
                parameters=count_parameters(run_spec.gpt_config),
                non_embedding_params=non_embedding_parameters(run_spec.gpt_config),
                seed=run_spec.train.seed,
            )
            for frame, run_spec in zip(frames, specs)
        ],
        ignore_index=True,
    )


AUDIT_COLUMNS = [
    "model",
    "preset",
    "seed",
    "step",
    "task",
    "heuristic",
    "readout",
    "metric",
    "n",
    "correct",
    "label",
    "score",
]


def audit_table(outcomes: pd.DataFrame, scaling_outcomes: pd.DataFrame | None = None) -> pd.DataFrame:
    """The per-example outcomes behind every verdict (:data:`AUDIT_COLUMNS`), one row per evaluated checkpoint
    (``model``, ``step``; the ladder's rows ``model="ladder"`` with ``preset`` and ``seed``) and readout:
    ``correct`` in example order as 0/1 digits (space-separated shares where pretraining runs were pooled),
    and for AUC readouts the ``label`` digits and each example's ``score`` (6 significant digits), from
    which every interval and paired comparison of the notebook can be recomputed."""
    frames = [outcomes.assign(preset="", seed=np.nan)]
    if scaling_outcomes is not None:
        frames.append(scaling_outcomes.assign(model="ladder"))
    keys = ["model", "preset", "seed", "step", "task", "heuristic", "readout", "metric"]
    rows = []
    for values, group in pd.concat(frames, ignore_index=True).groupby(keys, sort=False, dropna=False):
        group = group.sort_values("example")
        auc = values[-1] == "auc"
        rows.append(
            dict(
                zip(keys, values),
                n=len(group),
                correct=_digits(group["correct"].to_numpy()),
                label=_digits(group["label"].to_numpy()) if auc else "",
                score=" ".join(f"{v:.6g}" for v in group["score"]) if auc else "",
            )
        )
    return pd.DataFrame(rows, columns=AUDIT_COLUMNS)


def _digits(values: np.ndarray) -> str:
    if np.isin(values, (0, 1)).all():
        return "".join(str(int(v)) for v in values)
    return " ".join(f"{v:g}" for v in values)


MIN_SUPERVISED_MARGIN = 0.05
"""How far above chance the supervised reference must be for relative performance to be reported:
dividing by a gap of a point or two turns noise into ratios of 10 or more."""


def relative_performance(accuracy: float, random: float, supervised: float) -> float:
    """``(accuracy - random) / (supervised - random)``; NaN when there is no supervised reference,
    when it beats chance by less than :data:`MIN_SUPERVISED_MARGIN` (the ratio would mean nothing),
    or when the zero-shot accuracy exceeds it (GPT-1's axis ends at the fine-tuned model)."""
    if supervised is None or not math.isfinite(supervised) or supervised - random < MIN_SUPERVISED_MARGIN:
        return math.nan
    if accuracy > supervised:
        return math.nan
    return (accuracy - random) / (supervised - random)


def add_relative(table: pd.DataFrame, reference: Mapping[str, float] | None) -> pd.DataFrame:
    """``supervised`` and ``relative`` columns (relative only for accuracies, not AUC)."""
    reference = _check_reference(reference, table["task"])
    table = table.assign(supervised=table["task"].map(reference).astype(float))
    table["relative"] = [
        relative_performance(a, r, s) if m == "accuracy" else math.nan
        for a, r, s, m in zip(table["accuracy"], table["random"], table["supervised"], table["metric"])
    ]
    return table


def _check_reference(reference: Mapping[str, float] | None, tasks) -> dict[str, float]:
    if reference is None:
        return {}
    if not isinstance(reference, Mapping):
        raise TypeError(f"reference must be None or a mapping task -> accuracy, got {type(reference).__name__}")
    bad = {
        t: a for t, a in reference.items() if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0 <= a <= 1
    }
    if bad:
        raise ValueError(f"reference accuracies must be numbers in [0, 1], got {bad}")
    return {t: float(reference.get(t, math.nan)) for t in dict.fromkeys(tasks)}


def summarize_readouts(
    outcomes: pd.DataFrame, keys: Sequence[str], reference: Mapping[str, float] | None
) -> pd.DataFrame:
    """:func:`~workbench.evaluation.heuristics.summarize_outcomes` per group of ``keys`` (a checkpoint
    of a model, a preset), with relative performance against ``reference`` (task -> dev accuracy)."""
    frames = [
        summarize_outcomes(group[OUTCOME_COLUMNS]).assign(**dict(zip(keys, values)))
        for values, group in outcomes.groupby(list(keys), sort=False)
    ]
    return add_relative(pd.concat(frames, ignore_index=True), reference)


def accuracy_table(table: pd.DataFrame, index: Sequence[str]) -> pd.DataFrame:
    """A :func:`summarize_readouts` table with one column per ``(heuristic, readout)`` and each value
    written beside its band, the half-width of its 95% interval ("0.575 ±0.028")."""
    cells = table.assign(
        value=[
            f"{a:.3f} ±{(high - low) / 2:.3f}"
            for a, low, high in zip(table["accuracy"], table["ci_low"], table["ci_high"])
        ]
    )
    return cells.pivot_table(
        index=list(index), columns=["heuristic", "readout"], values="value", aggfunc="first", sort=False
    )


def trends(outcomes: pd.DataFrame, group: str, order: str, x: str) -> pd.DataFrame:
    """Per ``group`` (a model) and readout: the value at the first and last ``order`` (checkpoint,
    size), the paired change between them and the slope against log10(``x``), each with its
    bootstrap interval, and the verdict of :data:`PROTOCOL` (:class:`~workbench.evaluation.statistics.Trend`).
    With a ``seed`` column (several pretraining runs at a point), a point's value is the mean over its
    runs and the intervals hold seed variance too (:func:`~workbench.evaluation.statistics.seed_trend`)."""
    rows = []
    for label, frame in outcomes.groupby(group, sort=False):
        points = frame[list(dict.fromkeys([order, x]))].drop_duplicates().sort_values(order)
        per_point = [_runs(frame[frame[order] == value]) for value in points[order]]
        family = []
        for key, first in per_point[0][0].items():
            series = [[run[key] for run in runs] for runs in per_point]
            result = seed_trend(np.log10(points[x].to_numpy(dtype=float)), series)
            family.append(
                dict(
                    model=label,
                    **_readout_fields(key, first),
                    n=len(first.correct),
                    first=np.mean([o.value() for o in series[0]]),
                    last=np.mean([o.value() for o in series[-1]]),
                    **dataclasses.asdict(result),
                    last_share=np.mean([o.predicted_share() for o in series[-1]]),
                )
            )
        for row, adjusted in zip(family, holm([row["p"] for row in family])):
            rows.append(dict(row, p_holm=adjusted, verdict=_verdict(row, adjusted)))
    return pd.DataFrame(rows, columns=TREND_COLUMNS)


def _runs(frame: pd.DataFrame) -> list[dict]:
    """The :func:`outcomes_of` of each pretraining run (``seed``) in ``frame``; one when it has no seeds."""
    if "seed" not in frame:
        return [outcomes_of(frame)]
    return [outcomes_of(group) for _, group in frame.groupby("seed", sort=True)]


def _readout_fields(key: tuple[str, str], outcomes: Outcomes) -> dict:
    """The columns that name a readout: its task, heuristic, readout and metric."""
    return dict(task=HEURISTICS[key[0]].task, heuristic=key[0], readout=key[1], metric=outcomes.metric)


def _verdict(row: dict, p_holm: float) -> str:
    """:data:`PROTOCOL`'s verdict of one readout's trend, decided within its family by Holm."""
    if p_holm < 1 - CONFIDENCE and row["change"] > 0 and row["slope"] > 0:
        return "rises"
    if p_holm < 1 - CONFIDENCE and row["change"] < 0 and row["slope"] < 0:
        return "falls"
    return "constant" if row["last_share"] > CONSTANT_SHARE else "flat"


def supervised_reference(
    run: PretrainRun,
    tasks: Sequence[str],
    recipe: Recipe | None = None,
    seeds: Sequence[int] = (0,),
    progress: bool = True,
) -> pd.DataFrame:
    """The fine-tuned Transformer's dev accuracy on each task, one row per ``(task, seed)``.

    The runs are the layer-transfer experiments' (:func:`workbench.experiments.transfer.finetune_all`:
    all pretrained layers transferred, lambda = 0.5) with ``recipe``'s fine-tuning settings and label
    counts (default the CPU recipe), so the layer-transfer notebook's cached runs are reused.
    Columns: ``task, seed, n_labelled, dev_accuracy``.
    """
    recipe = recipe or RECIPES["cpu"]
    seeds = sequence_of(NON_NEGATIVE_INT)(distinct(seeds), "seeds")
    runs = [(check_task(t), seed, recipe.n_labelled(t)) for t in dict.fromkeys(tasks) for seed in seeds]
    results = finetune_all(run, runs, recipe.finetuning, progress, "supervised reference (fine-tuning)")
    return pd.DataFrame(
        [
            dict(task=task, seed=seed, n_labelled=n_labelled, dev_accuracy=float(result["dev_accuracy"]))
            for (task, seed, n_labelled), result in zip(runs, results)
        ]
    )


def reference_accuracy(table: pd.DataFrame) -> dict[str, float]:
    """A :func:`supervised_reference` table averaged over its seeds: ``{task: dev accuracy}``."""
    return table.groupby("task", sort=False)["dev_accuracy"].mean().to_dict()


def _named(row) -> str:
    return f"{row.heuristic} / {row.readout}"


def _interval(value: float, low: float, high: float, signed: bool = False) -> str:
    fmt = "+.3f" if signed else ".3f"
    return f"{value:{fmt}} [{low:{fmt}}, {high:{fmt}}]"


def findings(
    trends_table: pd.DataFrame,
    outcomes: pd.DataFrame,
    scaling_trends: pd.DataFrame | None = None,
    reference: Mapping[str, float] | None = None,
    positions: pd.DataFrame | None = None,
    scaling_fit: ScalingFit | None = None,
) -> list[str]:
    """What the numbers say, in sentences computed from them under :data:`PROTOCOL`, and how they
    compare with GPT-1 Figure 2 (right) and with GPT-2, point by point; with ``reference`` (task ->
    fine-tuned dev accuracy), whether relative performance, GPT-1's y axis, can be reported."""
    lines = []
    for model, rows in trends_table.groupby("model", sort=False):
        steps = outcomes.loc[outcomes["model"] == model, "step"]
        counts = rows["verdict"].value_counts()
        lines.append(
            f"{model}, update {steps.min()} -> {steps.max()}: {counts.get('rises', 0)} of {len(rows)} readouts rise, "
            f"{counts.get('falls', 0)} fall, {counts.get('flat', 0)} flat, {counts.get('constant', 0)} constant "
            f"(change and slope per decade of tokens, {CONFIDENCE:.0%} intervals; verdicts by Holm over these "
            f"{len(rows)}):"
        )
        for row in rows.itertuples():
            share = f", last answers {row.last_share:.0%} one class" if math.isfinite(row.last_share) else ""
            lines.append(
                f"  - {_named(row)} ({row.metric}, n={row.n}): {row.first:.3f} -> {row.last:.3f}{share}, change "
                f"{_interval(row.change, row.change_low, row.change_high, True)}, slope "
                f"{_interval(row.slope, row.slope_low, row.slope_high, True)}: {row.verdict} "
                f"(Holm p = {row.p_holm:.3g})"
            )
    transformer = trends_table[trends_table["model"] == "transformer"]
    paper = transformer[transformer["readout"] == "paper"]
    any_readout = transformer.groupby("heuristic", sort=False)["verdict"].apply(lambda v: (v == "rises").any())
    lines.append(
        f"GPT-1 Figure 2 (right), every heuristic rises with pretraining: here {(paper['verdict'] == 'rises').sum()} "
        f"of {len(paper)} heuristics rise under the paper's rule "
        f"({', '.join(paper.loc[paper['verdict'] == 'rises', 'heuristic']) or 'none'}), and {int(any_readout.sum())} "
        f"of {len(any_readout)} under at least one readout "
        f"({', '.join(any_readout[any_readout].index) or 'none'})."
    )
    if reference is not None:
        lines.append(_relative_scale(reference, trends_table))
    if "lstm" in set(outcomes["model"]):
        lines += _transformer_against_lstm(outcomes, trends_table)
    if positions is not None and len(positions):
        lines.append(_by_position(positions))
    if scaling_trends is not None and len(scaling_trends):
        counts = scaling_trends["verdict"].value_counts()
        rising = scaling_trends[scaling_trends["verdict"] == "rises"]
        lines.append(
            f"GPT-2, zero-shot performance grows with capacity (its Figure 1 and Table 3: every task improves "
            f"log-linearly from 117M to 1.5B parameters): over the size ladder, {counts.get('rises', 0)} of "
            f"{len(scaling_trends)} readouts rise with log10(non-embedding parameters), {counts.get('falls', 0)} fall, "
            f"{counts.get('constant', 0)} constant (rising: {', '.join(map(_named, rising.itertuples())) or 'none'}; "
            "intervals over pretraining runs and examples, Holm over the ladder's readouts)."
        )
    if scaling_fit is not None:
        lines.append(_scaling_law(scaling_fit))
    return lines


def _scaling_law(fit: ScalingFit) -> str:
    alpha, low, high = fit.alpha
    reading = (
        "an interval that holds 0, too wide to compare with"
        if low <= 0
        else "consistent with"
        if low <= KAPLAN_ALPHA_N <= high
        else "steeper than"
        if low > KAPLAN_ALPHA_N
        else "shallower than"
    )
    return (
        f"Kaplan et al. (2020), loss falls as a power of size: L(N) = (N_c / N)^alpha + L_inf fitted to the "
        f"validation loss of {fit.runs} runs of {fit.sizes} sizes gives alpha = {_interval(alpha, low, high)} "
        + (
            f"and L_inf = {_interval(*fit.l_inf)} nats"
            if fit.l_inf[0] > 0
            else "with L_inf at its bound 0 (the ladder identifies no floor: a pure power law, as Kaplan et al. fit it)"
        )
        + f", {reading} their alpha_N = {KAPLAN_ALPHA_N} (models trained to convergence over six decades of N; "
        "here one pass over half the corpus, under two decades)."
    )


def _by_position(gaps: pd.DataFrame) -> str:
    ahead = gaps.loc[gaps["low"] > 0, "positions"].tolist()
    behind = gaps.loc[gaps["high"] < 0, "positions"].tolist()
    buckets = "; ".join(
        f"{r.positions}: {_interval(r.lstm_minus_transformer, r.low, r.high, True)}" for r in gaps.itertuples()
    )
    return (
        f"Kaplan et al. (2020, Figure 7), the Transformer pulls ahead of the LSTM late in the context: the LSTM's "
        f"validation loss minus the Transformer's by position ({buckets}); the Transformer is ahead at positions "
        f"{', '.join(ahead) or 'none'} and behind at {', '.join(behind) or 'none'}."
    )


def _relative_scale(reference: Mapping[str, float], trends_table: pd.DataFrame) -> str:
    tasks = list(dict.fromkeys(trends_table["task"]))
    margins = {t: reference.get(t, math.nan) - random_accuracy(t) for t in tasks}
    usable = [t for t, m in margins.items() if m >= MIN_SUPERVISED_MARGIN]
    listed = ", ".join(f"{t} {reference.get(t, math.nan):.3f} (chance {random_accuracy(t):.2f})" for t in tasks)
    return (
        f"GPT-1 plots performance relative to the fine-tuned model: that needs a fine-tuned reference at least "
        f"{MIN_SUPERVISED_MARGIN:.2f} above chance, which {len(usable)} of {len(tasks)} tasks have here "
        f"(fine-tuned dev accuracy: {listed}), so the curves are read as accuracy against measured chance."
        if len(usable) < len(tasks)
        else f"Every task's fine-tuned reference beats chance by at least {MIN_SUPERVISED_MARGIN:.2f} ({listed})."
    )


def lstm_comparison(outcomes: pd.DataFrame) -> pd.DataFrame:
    """The Transformer minus the LSTM on every readout, paired by example, at equal tokens (both last
    checkpoints) and at equal validation loss (the last checkpoint of the model whose final loss is
    higher, against the other's kept checkpoint whose loss is nearest to it; one match, "equal tokens
    and validation loss", when that is the last one too), each with its interval and p-value; every
    verdict of the table is decided by Holm's correction over the whole table."""
    columns = ["match", "task", "heuristic", "readout", "metric", "transformer_step", "lstm_step"]
    columns += ["transformer_val_loss", "lstm_val_loss", "difference", "low", "high", "p", "p_holm", "verdict"]
    points = outcomes[["model", "step", "val_loss"]].drop_duplicates().sort_values("step")
    series = {model: points[points["model"] == model] for model in ("transformer", "lstm")}
    final = {model: rows.iloc[-1] for model, rows in series.items()}
    worse = max(final, key=lambda model: final[model]["val_loss"])
    better = "lstm" if worse == "transformer" else "transformer"
    candidates = series[better]
    nearest = candidates.iloc[int(np.argmin(np.abs(candidates["val_loss"].to_numpy() - final[worse]["val_loss"])))]
    matches = {"equal tokens": final, "equal validation loss": {worse: final[worse], better: nearest}}
    if nearest["step"] == final[better]["step"]:  # the nearest kept checkpoint in loss is the last one
        matches = {"equal tokens and validation loss": final}
    rows = []
    for match, chosen in matches.items():
        per_model = {
            model: outcomes_of(outcomes[(outcomes["model"] == model) & (outcomes["step"] == point["step"])])
            for model, point in chosen.items()
        }
        for key, lstm in per_model["lstm"].items():
            difference, low, high, p_value = paired_difference(lstm, per_model["transformer"][key])
            rows.append(
                dict(
                    match=match,
                    **_readout_fields(key, lstm),
                    transformer_step=int(chosen["transformer"]["step"]),
                    lstm_step=int(chosen["lstm"]["step"]),
                    transformer_val_loss=float(chosen["transformer"]["val_loss"]),
                    lstm_val_loss=float(chosen["lstm"]["val_loss"]),
                    difference=difference,
                    low=low,
                    high=high,
                    p=p_value,
                )
            )
    table = pd.DataFrame(rows, columns=columns[:-2])
    table["p_holm"] = holm(table["p"].to_numpy())
    significant = table["p_holm"] < 1 - CONFIDENCE
    table["verdict"] = np.where(
        significant, np.where(table["difference"] > 0, "transformer better", "lstm better"), "level"
    )
    return table[columns]


def _transformer_against_lstm(outcomes: pd.DataFrame, trends_table: pd.DataFrame) -> list[str]:
    table = lstm_comparison(outcomes)
    lstm_rises = (trends_table.loc[trends_table["model"] == "lstm", "verdict"] == "rises").sum()
    transformer_rises = (trends_table.loc[trends_table["model"] == "transformer", "verdict"] == "rises").sum()
    lines = [
        f"GPT-1, the LSTM does worse and less steadily: {transformer_rises} readouts rise for the Transformer, "
        f"{lstm_rises} for the LSTM. Transformer minus LSTM, paired by example (Holm over the {len(table)} "
        "comparisons below; sentiment, the out-of-domain control, apart):"
    ]
    if table["match"].nunique() == 1:
        first = table.iloc[0]
        lines.append(
            f"  - the kept checkpoint nearest in validation loss is the last one ({first['transformer_val_loss']:.3f} "
            f"against {first['lstm_val_loss']:.3f}), so the loss-matched comparison is the token-matched one (a "
            "finer match needs checkpoints between them)."
        )
    for match, rows in table.groupby("match", sort=False):
        first = rows.iloc[0]
        head = (
            f"  - at {match} (Transformer update {first['transformer_step']}, validation loss "
            f"{first['transformer_val_loss']:.3f}; LSTM update {first['lstm_step']}, {first['lstm_val_loss']:.3f}):"
        )
        parts = []
        domains = (("in-domain", rows[rows["task"] != "sentiment"]), ("sentiment", rows[rows["task"] == "sentiment"]))
        for label, part in domains:
            counts = part["verdict"].value_counts()
            named = "; ".join(
                f"{r.heuristic} / {r.readout} {_interval(r.difference, r.low, r.high, True)}"
                for r in part.itertuples()
                if r.verdict != "level"
            )
            parts.append(
                f"{label}: Transformer better on {counts.get('transformer better', 0)}, LSTM better on "
                f"{counts.get('lstm better', 0)}, level on {counts.get('level', 0)} of {len(part)}"
                + (f" ({named})" if named else "")
            )
        lines.append(head + " " + "; ".join(parts) + ".")
    return lines


__all__ = [
    "AUDIT_COLUMNS",
    "CURVE_COLUMNS",
    "LOSS_BY_POSITION_COLUMNS",
    "PROTOCOL",
    "SCALING_COLUMNS",
    "TREND_COLUMNS",
    "ZeroShotExperiment",
    "accuracy_table",
    "add_relative",
    "audit_table",
    "checkpoint_val_loss",
    "pool_runs",
    "evaluate_checkpoint",
    "findings",
    "loss_by_position",
    "lstm_comparison",
    "position_gaps",
    "position_losses",
    "reference_accuracy",
    "relative_performance",
    "scaling_outcomes",
    "scaling_specs",
    "summarize_readouts",
    "supervised_reference",
    "trends",
    "with_seed",
    "zero_shot_outcomes",
]
