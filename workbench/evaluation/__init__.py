"""Evaluation without fine-tuning: log-likelihood scoring, GPT-1's zero-shot heuristics and their
readouts, linear probes on frozen features, the logit lens, the baselines that use no language model,
and the paired statistics that judge them. ``harness`` (the lm-evaluation-harness model) is not imported
here: it needs the optional lm_eval, and importing it registers the model with the harness."""

from .baselines import BASELINE_COLUMNS, task_baselines
from .heuristics import (
    HEURISTICS,
    VERBALIZERS,
    describe_heuristics,
    describe_readouts,
    evaluate,
    random_accuracy,
    score_outcomes,
    single_token_verbalizer,
    summarize_outcomes,
    verbalizer_tokens,
)
from .lens import lens_logprobs, minimal_pair_lens
from .probes import fit_probe, layer_features, probe_layers
from .scaling_law import KAPLAN_ALPHA_N, SCALING_FIT_COLUMNS, ScalingFit, fit_scaling_law
from .scoring import score
from .statistics import (
    auc,
    bootstrap_mean,
    fixed_effects_slope,
    holm,
    paired_difference,
    seed_example_bootstrap,
    seed_trend,
    trend,
)

__all__ = [
    "KAPLAN_ALPHA_N",
    "SCALING_FIT_COLUMNS",
    "ScalingFit",
    "BASELINE_COLUMNS",
    "HEURISTICS",
    "VERBALIZERS",
    "auc",
    "bootstrap_mean",
    "describe_heuristics",
    "describe_readouts",
    "evaluate",
    "fit_probe",
    "fit_scaling_law",
    "fixed_effects_slope",
    "holm",
    "layer_features",
    "lens_logprobs",
    "minimal_pair_lens",
    "paired_difference",
    "probe_layers",
    "random_accuracy",
    "score",
    "score_outcomes",
    "seed_example_bootstrap",
    "seed_trend",
    "single_token_verbalizer",
    "summarize_outcomes",
    "task_baselines",
    "trend",
    "verbalizer_tokens",
]
