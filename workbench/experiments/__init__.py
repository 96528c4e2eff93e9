"""Cached experiment runners the notebooks call (one module per experiment family).

- :mod:`.cache`: where results live, keyed by a hash of their full config.
- :mod:`.pretraining`: language-model pretraining runs with log-spaced checkpoints.
"""

from .cache import cache_root, config_key
from .pretraining import SCALES, PretrainRun, PretrainSpec, pretrain

__all__ = ["SCALES", "PretrainRun", "PretrainSpec", "cache_root", "config_key", "pretrain"]
