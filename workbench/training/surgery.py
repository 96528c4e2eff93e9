"""Weight surgery before fine-tuning: grow the vocabulary for new special tokens, and copy the
embeddings and the first k pretrained blocks into a fresh model (GPT-1 Figure 2, left).
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from ..models.gpt import GPT


def extend_vocabulary(gpt: GPT, vocab_size: int) -> GPT:
    """Grow the token embedding (and the tied LM head) to ``vocab_size`` rows for new special tokens.

    Existing rows are kept; new rows are initialised like the rest (normal, std 0.02). These rows are
    GPT-1's only new parameters besides the task head.
    """
    old = gpt.wte.weight
    if vocab_size < old.size(0):
        raise ValueError(f"vocab_size {vocab_size} is smaller than the model's {old.size(0)}")
    if vocab_size == old.size(0):
        return gpt
    grown = nn.Embedding(vocab_size, old.size(1), device=old.device, dtype=old.dtype)
    with torch.no_grad():
        nn.init.normal_(grown.weight, std=0.02)
        grown.weight[: old.size(0)] = old
    gpt.wte = grown
    gpt.lm_head = nn.Linear(old.size(1), vocab_size, bias=False, device=old.device, dtype=old.dtype)
    gpt.lm_head.weight = gpt.wte.weight
    gpt.config = gpt.config.replace(vocab_size=vocab_size)
    return gpt


_SHARED_SHAPE = ("d_model", "n_head", "d_ff", "norm", "activation")


def transfer(pretrained: GPT, target: GPT, n_layers: int) -> pd.DataFrame:
    """Copy the embeddings and the first ``n_layers`` blocks of ``pretrained`` into ``target``.

    ``n_layers=0`` copies the token and position embeddings only (the original code's
    ``--n_transfer 0``); the remaining blocks keep their fresh initialisation. The final LayerNorm
    (GPT-2) is copied only with all layers, since it was trained to follow the last block. A target
    with a larger vocabulary (added special tokens) receives the pretrained rows and keeps its new
    ones. Returns one row per target parameter with ``copied`` True or False.
    """
    source_config, target_config = pretrained.config, target.config
    for field in _SHARED_SHAPE:
        if getattr(source_config, field) != getattr(target_config, field):
            raise ValueError(
                f"cannot transfer: {field} differs (pretrained {getattr(source_config, field)!r}, "
                f"target {getattr(target_config, field)!r})"
            )
    if not 0 <= n_layers <= min(source_config.n_layer, target_config.n_layer):
        raise ValueError(
            f"n_layers must be in [0, {min(source_config.n_layer, target_config.n_layer)}], got {n_layers}"
        )
    if target_config.vocab_size < source_config.vocab_size or target_config.n_ctx > source_config.n_ctx:
        raise ValueError(
            f"cannot transfer embeddings: target vocab {target_config.vocab_size} / context "
            f"{target_config.n_ctx} vs pretrained vocab {source_config.vocab_size} / context {source_config.n_ctx}"
        )
    copied = set()
    with torch.no_grad():
        target.wte.weight[: source_config.vocab_size] = pretrained.wte.weight
        target.wpe.weight.copy_(pretrained.wpe.weight[: target_config.n_ctx])
        copied |= {"wte.weight", "wpe.weight"}
        for i in range(n_layers):
            target.blocks[i].load_state_dict(pretrained.blocks[i].state_dict())
            copied |= {f"blocks.{i}.{name}" for name, _ in target.blocks[i].named_parameters()}
        if n_layers == target_config.n_layer == source_config.n_layer and target.ln_f is not None:
            target.ln_f.load_state_dict(pretrained.ln_f.state_dict())
            copied |= {f"ln_f.{name}" for name, _ in target.ln_f.named_parameters()}
    return pd.DataFrame(
        [dict(parameter=name, shape=tuple(p.shape), copied=name in copied) for name, p in target.named_parameters()]
    )
