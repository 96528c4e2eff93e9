"""Experiments: one recipe per scale, the cache, and the experiment objects the notebooks call.

- :mod:`.recipes`: :class:`Recipe` per scale (``cpu``, ``gpu``, ``paper``), the one source of truth.
- :mod:`.cache`: where results live, keyed by a hash of their full config.
- :mod:`.pretraining`: cached language-model pretraining runs with log-spaced checkpoints.
- :mod:`.transfer`: fine-tuning, the layer-transfer sweep, probes and GPT-1 Table 5 (:class:`TransferExperiment`).
- :mod:`.transfer_statistics`: what they show, paired by seed and example, against GPT-1.
- :mod:`.zero_shot`: GPT-1 Figure 2 (right) and GPT-2's scaling claim (:class:`ZeroShotExperiment`).
- :mod:`.explorer`: which model the explorer notebook shows (:class:`Explorer`).
"""

from .cache import cache_root, config_key
from .explorer import Explorer
from .pretraining import PretrainingExperiment, PretrainRun, cached_pretraining_runs, pretrain
from .recipes import RECIPES, EvaluationSettings, FinetuneSettings, PretrainSpec, Recipe, load_recipe, recipes_table
from .transfer import (
    ABLATION_COLUMNS,
    LENS_COLUMNS,
    PROBE_COLUMNS,
    SWEEP_COLUMNS,
    VARIANTS,
    TransferExperiment,
    ablation,
    finetune_task,
    layer_lens,
    layer_probes,
    layer_transfer_sweep,
)
from .transfer_statistics import (
    TRANSFER_PROTOCOL,
    ablation_differences,
    banded,
    gain_growth,
    layer_slopes,
    probe_gaps,
    probe_table,
    seed_summary,
    transfer_gains,
    zero_shot_comparison,
)
from .zero_shot import (
    PROTOCOL,
    ZeroShotExperiment,
    accuracy_table,
    reference_accuracy,
    relative_performance,
    scaling_outcomes,
    zero_shot_outcomes,
)

__all__ = [
    "ABLATION_COLUMNS",
    "LENS_COLUMNS",
    "PROBE_COLUMNS",
    "SWEEP_COLUMNS",
    "TRANSFER_PROTOCOL",
    "ablation_differences",
    "banded",
    "gain_growth",
    "layer_slopes",
    "probe_gaps",
    "probe_table",
    "seed_summary",
    "transfer_gains",
    "zero_shot_comparison",
    "PROTOCOL",
    "accuracy_table",
    "RECIPES",
    "VARIANTS",
    "EvaluationSettings",
    "Explorer",
    "FinetuneSettings",
    "PretrainRun",
    "PretrainingExperiment",
    "PretrainSpec",
    "Recipe",
    "TransferExperiment",
    "ZeroShotExperiment",
    "ablation",
    "cache_root",
    "cached_pretraining_runs",
    "config_key",
    "finetune_task",
    "layer_lens",
    "layer_probes",
    "layer_transfer_sweep",
    "load_recipe",
    "pretrain",
    "recipes_table",
    "reference_accuracy",
    "relative_performance",
    "scaling_outcomes",
    "zero_shot_outcomes",
]
