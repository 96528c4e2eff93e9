"""Evaluation without training: log-likelihood scoring and GPT-1's zero-shot heuristics."""

from .heuristics import (
    HEURISTICS,
    VERBALIZERS,
    describe_heuristics,
    evaluate,
    evaluate_all,
    random_accuracy,
    verbalizer_tokens,
)
from .scoring import score

__all__ = [
    "HEURISTICS",
    "VERBALIZERS",
    "describe_heuristics",
    "evaluate",
    "evaluate_all",
    "random_accuracy",
    "score",
    "verbalizer_tokens",
]
