"""Evaluation without fine-tuning: log-likelihood scoring, GPT-1's zero-shot heuristics and their
readouts, linear probes on frozen features, and the paired statistics that judge them."""

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
from .probes import fit_probe, layer_features, probe_layers
from .scoring import score
from .statistics import auc, bootstrap_mean, fixed_effects_slope, paired_difference, trend

__all__ = [
    "HEURISTICS",
    "VERBALIZERS",
    "auc",
    "bootstrap_mean",
    "describe_heuristics",
    "describe_readouts",
    "evaluate",
    "fit_probe",
    "fixed_effects_slope",
    "layer_features",
    "paired_difference",
    "probe_layers",
    "random_accuracy",
    "score",
    "score_outcomes",
    "single_token_verbalizer",
    "summarize_outcomes",
    "trend",
    "verbalizer_tokens",
]
