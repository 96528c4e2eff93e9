"""GPT-1 fine-tuning: task heads on the ``[extract]`` state, the L3 = L2 + lambda * L1 objective,
and the transfer of the first k pretrained layers (GPT-1 section 3.2 and Figure 2, left).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..models.gpt import GPT, IGNORE_INDEX
from .trainer import BatchPlan, Trainer, TrainConfig
from ..data.transforms import KINDS, collate, lm_targets

Encoded = Sequence[tuple[list[list[int]], int]]
"""Task examples as ``(token sequences, label)``, from :func:`workbench.data.transforms.encode_examples`."""


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
    task = F.cross_entropy(logits.float(), labels)
    # Detached tensors, not floats: the Trainer syncs with the device once per logged row.
    metrics = {"task_loss": task.detach(), "accuracy": (logits.argmax(-1) == labels).float().mean()}
    loss = task
    if lm_weight > 0:
        targets = lm_targets(batch["input_ids"], batch["extract"])
        lm = F.cross_entropy(lm_logits.flatten(0, -2).float(), targets.flatten(), ignore_index=IGNORE_INDEX)
        metrics["lm_loss"] = lm.detach()
        loss = task + lm_weight * lm
    return loss, metrics


def check_labels(model: TaskModel, encoded: Encoded) -> None:
    """Every label must index one of the head's outputs (a class, or one of the choices)."""
    for i, (sequences, label) in enumerate(encoded):
        n_outputs = len(sequences) if model.kind == "multiple_choice" else model.n_classes
        if not 0 <= label < n_outputs:
            raise ValueError(
                f"example {i}: label {label} does not fit a {model.kind} head with {n_outputs} outputs"
            )


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


def model_kind(task_kind: str) -> str:
    """The head a task kind needs: a substitution task is scored as a multiple choice."""
    return "multiple_choice" if task_kind == "substitution" else task_kind


def make_batch(items: Encoded, kind: str, pad_id: int) -> dict[str, torch.Tensor]:
    """Collate examples into ``input_ids`` ``[B, T]`` (or ``[B, group, T]``), ``extract`` and ``labels``."""
    sizes = {len(sequences) for sequences, _ in items}
    if len(sizes) != 1:
        raise ValueError(f"examples in one batch must have the same number of sequences, got {sorted(sizes)}")
    group = sizes.pop()
    ids, extract = collate([s for sequences, _ in items for s in sequences], pad_id)
    if kind in ("similarity", "multiple_choice"):
        ids, extract = ids.view(len(items), group, -1), extract.view(len(items), group)
    labels = torch.tensor([label for _, label in items], dtype=torch.long)
    return dict(input_ids=ids, extract=extract, labels=labels)


class TaskBatches:
    """Shuffled epochs over encoded examples, sharded by rank, resumable (the Trainer's BatchSource).

    Epoch ``e`` visits the examples in the order of a permutation seeded by ``(seed, e)``; global
    micro-batch ``c`` takes the next ``micro_batch_size x world_size`` of them and rank ``r`` its
    ``r``-th share, so one process and several see the same examples per update.
    """

    def __init__(self, encoded: Encoded, kind: str, pad_id: int, plan: BatchPlan) -> None:
        per_step = plan.micro_batch_size * plan.world_size
        if len(encoded) < per_step:
            raise ValueError(f"{len(encoded)} training examples are fewer than one global micro-batch ({per_step})")
        self.encoded, self.kind, self.pad_id, self.plan = encoded, kind, pad_id, plan
        self.epoch, self.position = 0, 0

    def _order(self) -> np.ndarray:
        return np.random.default_rng([self.plan.seed, self.epoch]).permutation(len(self.encoded))

    def next_batch(self) -> dict[str, torch.Tensor]:
        plan = self.plan
        per_step = plan.micro_batch_size * plan.world_size
        if self.position + per_step > len(self.encoded):  # drop the ragged end of an epoch
            self.epoch, self.position = self.epoch + 1, 0
        order = self._order()
        mine = order[self.position + plan.rank * plan.micro_batch_size:][: plan.micro_batch_size]
        self.position += per_step
        return make_batch([self.encoded[i] for i in mine], self.kind, self.pad_id)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


@torch.no_grad()
def accuracy(model: TaskModel, encoded: Encoded, pad_id: int, batch_size: int = 64) -> float:
    """Fraction of examples whose highest-scoring label is the true one (eval mode, no dropout)."""
    if not encoded:
        raise ValueError("no examples to evaluate")
    check_labels(model, encoded)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    try:
        for start in range(0, len(encoded), batch_size):
            batch = make_batch(encoded[start: start + batch_size], model.kind, pad_id)
            logits, _ = model(batch["input_ids"].to(device), batch["extract"].to(device))
            correct += int((logits.argmax(-1).cpu() == batch["labels"]).sum())
    finally:
        model.train(was_training)
    return correct / len(encoded)


def finetune(model: TaskModel, train: Encoded, config: TrainConfig, pad_id: int, *,
             dev: Encoded | None = None, lm_weight: float = 0.5,
             run_dir: str | os.PathLike[str] | None = None, metadata: dict | None = None) -> Trainer:
    """Train ``model`` on encoded examples with L3 = L2 + lm_weight * L1; returns the Trainer.

    With ``dev``, dev accuracy is logged every ``config.eval_every`` updates.
    """
    if lm_weight < 0:
        raise ValueError(f"lm_weight (lambda) must be >= 0, got {lm_weight}")
    check_labels(model, train)
    evaluate = (lambda m: {"dev_accuracy": accuracy(m, dev, pad_id)}) if dev else None
    trainer = Trainer(
        model, lambda plan: TaskBatches(train, model.kind, pad_id, plan), config,
        evaluate=evaluate, loss_fn=lambda m, batch: task_loss(m, batch, lm_weight),
        run_dir=run_dir, metadata={**(metadata or {}), "lm_weight": lm_weight},
    )
    trainer.train()
    return trainer
