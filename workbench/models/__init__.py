"""The models: GPT-1 and GPT-2 (one class, two configs), the LSTM baseline, sampling and loading.

``config`` holds the sizes and presets, ``gpt`` the transformer, ``hooks`` its named hook points and
the activation cache read through them, ``generation`` the decode loop, ``kv_cache`` the key/value
cache it writes in place, ``linear_cross_entropy`` the LM head's loss without its logits (what
training steps use), ``params`` exact parameter counts, ``lstm`` the baseline of GPT-1's Figure 2,
``huggingface`` the checkpoint converter and ``weights`` the checked state-dict loader both loading
paths use.
"""

from .config import PRESETS, GPTConfig
from .generation import generate_text, left_pad
from .gpt import GPT, IGNORE_INDEX, GPTOutput
from .hooks import ActivationCache, hook_names, residual_stream_names
from .lstm import LSTMConfig, LSTMLanguageModel, matching_lstm_config
from .params import (
    count_parameters,
    family_table,
    parameter_breakdown,
    per_block_parameters,
    quoted_gpt1_approximation,
    reconcile_gpt1,
    reconcile_gpt2_paper,
)
from .weights import load_state_checked

__all__ = [
    "ActivationCache",
    "GPT",
    "GPTConfig",
    "GPTOutput",
    "IGNORE_INDEX",
    "LSTMConfig",
    "LSTMLanguageModel",
    "PRESETS",
    "count_parameters",
    "family_table",
    "generate_text",
    "hook_names",
    "left_pad",
    "load_state_checked",
    "matching_lstm_config",
    "parameter_breakdown",
    "per_block_parameters",
    "quoted_gpt1_approximation",
    "reconcile_gpt1",
    "reconcile_gpt2_paper",
    "residual_stream_names",
]
