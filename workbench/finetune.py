"""GPT-1 fine-tuning: task heads on the ``[extract]`` state, the L3 = L2 + lambda * L1 objective,
and the transfer of the first k pretrained layers (GPT-1 section 3.2 and Figure 2, left).
"""

from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .model import GPT, IGNORE_INDEX
from .transforms import KINDS, lm_targets


class TaskModel(nn.Module):
    """A GPT body plus a linear head on the final hidden state at ``[extract]``.

    - classification / entailment: ``[batch, time]`` inputs, one state each, ``n_classes`` logits;
    - similarity: ``[batch, 2, time]`` (both orderings), the two states are added, then the head;
    - multiple choice: ``[batch, choices, time]``, one score per choice (softmax over choices).
    The head has dropout 0.1 before it, as in GPT-1.
    """

    def __init__(self, gpt: GPT, kind: str, n_classes: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown task kind {kind!r}; expected one of {KINDS}")
        if kind != "multiple_choice" and n_classes < 2:
            raise ValueError(f"a {kind} head needs n_classes >= 2, got {n_classes}")
        self.gpt, self.kind, self.n_classes = gpt, kind, n_classes
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(gpt.config.d_model, 1 if kind == "multiple_choice" else n_classes)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, input_ids: torch.Tensor, extract: torch.Tensor, with_lm: bool = False):
        """Return ``(task_logits, lm_logits or None)``; ``lm_logits`` has the shape of the inputs + vocab."""
        grouped = self.kind in ("similarity", "multiple_choice")
        expected_dim = 3 if grouped else 2
        if input_ids.dim() != expected_dim or extract.shape != input_ids.shape[:-1]:
            raise ValueError(
                f"{self.kind} inputs must be [batch{', group' if grouped else ''}, time] with extract "
                f"[batch{', group' if grouped else ''}], got {tuple(input_ids.shape)} and {tuple(extract.shape)}"
            )
        flat = input_ids.reshape(-1, input_ids.size(-1))
        hidden = self.gpt.transformer(flat)[0]
        state = hidden[torch.arange(flat.size(0), device=flat.device), extract.reshape(-1)]
        if self.kind == "similarity":
            state = state.view(*input_ids.shape[:2], -1).sum(dim=1)
        logits = self.head(self.dropout(state))
        if self.kind == "multiple_choice":
            logits = logits.view(input_ids.shape[:2])
        lm_logits = self.gpt.lm_head(hidden).view(*input_ids.shape, -1) if with_lm else None
        return logits, lm_logits


def task_loss(model: TaskModel, batch: dict[str, torch.Tensor], lm_weight: float = 0.5):
    """GPT-1's L3 = L2 + lambda * L1: task cross-entropy plus the LM loss on the same inputs.

    ``lm_weight`` is lambda (0.5 in GPT-1; 0 drops the auxiliary objective and skips the LM head).
    Returns ``(loss, metrics)`` with the task loss, the LM loss and the batch accuracy.
    """
    if lm_weight < 0:
        raise ValueError(f"lm_weight (lambda) must be >= 0, got {lm_weight}")
    labels = batch["labels"]
    logits, lm_logits = model(batch["input_ids"], batch["extract"], with_lm=lm_weight > 0)
    n_outputs = logits.size(-1)
    if labels.min() < 0 or labels.max() >= n_outputs:
        raise ValueError(f"labels must be in [0, {n_outputs}), got values from {int(labels.min())} to {int(labels.max())}")
    task = F.cross_entropy(logits.float(), labels)
    metrics = {"task_loss": task.item(), "accuracy": (logits.argmax(-1) == labels).float().mean().item()}
    loss = task
    if lm_weight > 0:
        targets = lm_targets(batch["input_ids"], batch["extract"])
        lm = F.cross_entropy(lm_logits.flatten(0, -2).float(), targets.flatten(), ignore_index=IGNORE_INDEX)
        metrics["lm_loss"] = lm.item()
        loss = task + lm_weight * lm
    return loss, metrics


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
