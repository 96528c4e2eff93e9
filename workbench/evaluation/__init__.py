"""Evaluation without training: log-likelihood scoring, GPT-1's zero-shot heuristics and their
readouts, and the paired statistics that judge them."""

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
from .scoring import score
from .statistics import auc, paired_difference, trend

__all__ = [
    "HEURISTICS",
    "VERBALIZERS",
    "auc",
    "describe_heuristics",
    "describe_readouts",
    "evaluate",
    "paired_difference",
    "random_accuracy",
    "score",
    "score_outcomes",
    "single_token_verbalizer",
    "summarize_outcomes",
    "trend",
    "verbalizer_tokens",
]
