"""The numerics fingerprint: a few updates of tiny models whose losses and final weights are pinned.

Any change that alters a trained model's floating-point results (the loss, attention, initialisation,
data order, a kernel, the pinned CPU kernels, the thread count) changes this fingerprint, and the
cached experiments and committed notebooks computed with the old numerics no longer hold.
``tests/test_numerics.py`` pins it next to the experiment cache's version, so that such a change
cannot land without a version bump and a cold regeneration of the notebooks.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from ..models.config import GPTConfig
from ..models.gpt import GPT
from ..models.lstm import LSTMLanguageModel, matching_lstm_config
from .config import TrainConfig
from .language_model import train_language_model

FINGERPRINT_CONFIG = TrainConfig(
    steps=6,
    batch_size=4,
    lr=3e-3,
    schedule="gpt1-pretrain",
    warmup_steps=2,
    eval_every=3,
    eval_sequences=4,
    log_every=1,
    checkpoint_every=0,
    precision="fp32",
    threads=1,
    progress=False,
)
"""The CPU recipe's numerics (fp32, one thread) with the pretraining schedule, weight decay, clipping
and dropout, on a model small enough to train in a second."""


def numerics_fingerprint() -> dict[str, object]:
    """Train ``gpt2-micro`` and its matching LSTM for a few updates on fixed token ids (CPU, fp32).

    Returns each model's logged training and validation losses (exact float32 values, as Python
    floats) and the SHA-256 of its final weights: equal across machines and runs exactly when the
    numerics are equal.
    """
    config = GPTConfig.from_preset("gpt2-micro", dropout=0.1)
    tokens = np.random.default_rng(0).integers(0, config.vocab_size, size=4096).astype(np.uint16)
    result = {}
    for name, build in (("gpt", GPT), ("lstm", LSTMLanguageModel)):
        torch.manual_seed(0)
        model = build(config if name == "gpt" else matching_lstm_config(config))
        history = train_language_model(model, tokens[:3072], tokens[3072:], FINGERPRINT_CONFIG).history
        weights = b"".join(t.detach().contiguous().numpy().tobytes() for t in model.state_dict().values())
        result[name] = {
            "loss": [float(v) for v in history["loss"].dropna()],
            "val_loss": [float(v) for v in history["val_loss"].dropna()],
            "weights_sha256": hashlib.sha256(weights).hexdigest(),
        }
    return result
