"""GPT-1 fine-tuning: task heads on the ``[extract]`` state and the L3 = L2 + lambda * L1 objective
(GPT-1 section 3.2); the weights it starts from come from :mod:`workbench.training.surgery`.

Besides GPT-1's linear head, a multiple-choice task can be scored by the language model itself:
each choice's answer tokens' total log-probability under the LM head, times a learned scale, with
the softmax over choices (the "likelihood" head). Before any update it is the zero-shot
minimal-pairs readout; fine-tuning then trains every transferred weight discriminatively through it,
as prompt-based fine-tuning reuses a pretrained head instead of a fresh one (Gao et al. 2021,
LM-BFF). At the CPU scale GPT-1's fresh linear head on ``[extract]`` does not learn a paired
judgement in a few hundred updates (see 03's history cell); this head starts where zero-shot is.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import nn

from ..core.checks import NON_NEGATIVE_INT, NON_NEGATIVE_NUMBER, POSITIVE_INT, in_range, one_of
from ..data.transforms import KINDS, collate, lm_targets
from ..models.gpt import GPT
from ..models.linear_cross_entropy import IGNORE_INDEX, linear_cross_entropy
from ..models.lstm import LSTMLanguageModel
from .config import BatchPlan, TrainConfig
from .sinks import MetricsSink
from .trainer import Trainer

HEADS = ("linear", "likelihood")
"""Task heads: GPT-1's linear layer on the ``[extract]`` state, or each choice's log-likelihood."""

LM_WEIGHT = NON_NEGATIVE_NUMBER
"""lambda in L3 = L2 + lambda * L1: a finite number >= 0 (0 drops the auxiliary LM loss)."""

Encoded = Sequence[tuple[list[list[int]], int]]
"""Task examples as ``(token sequences, label)``, from :func:`workbench.data.transforms.encode_examples`."""


class TaskModel(nn.Module):
    """A pretrained body plus a linear head on its final hidden state at ``[extract]``.

    The body (``self.body``) is a :class:`~workbench.models.gpt.GPT`, whose final state is
    ``transformer(ids)[0]`` (after ``ln_f``), or a :class:`~workbench.models.lstm.LSTMLanguageModel`
    (GPT-1 Table 5's LSTM row), whose final state is ``hidden_states(ids)`` (the projected, normalised
    state its tied head reads). Either way the state is ``[batch, time, config.d_model]`` and the
    auxiliary LM logits are ``body.lm_head(state)``. An LSTM reads left to right, so its state at
    ``[extract]`` (the last real token; the padding after it is never read by either causal body) is
    "its final state at [extract]": the same input transformations serve both bodies.

    - classification / entailment: ``[batch, time]`` inputs, one state each, ``n_classes`` logits;
    - similarity: ``[batch, 2, time]`` (both orderings), the two states are added, then the head;
    - multiple choice: ``[batch, choices, time]``, one score per choice (softmax over choices).
    The head has dropout 0.1 before it, as in GPT-1.

    ``head="likelihood"`` (multiple choice only) scores a choice by ``scale x`` the total
    log-probability of its answer tokens under the body's LM head: the tokens after the last
    ``[delim]`` (``delim_id``), or after ``[start]`` when there is no context, up to ``[extract]``.
    ``scale`` is one learned number, 1 at first, so that the untrained head is the zero-shot readout.
    """

    def __init__(
        self,
        body: GPT | LSTMLanguageModel,
        kind: str,
        n_classes: int = 2,
        dropout: float = 0.1,
        head: str = "linear",
        delim_id: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(body, (GPT, LSTMLanguageModel)):
            raise ValueError(f"TaskModel needs a GPT body or an LSTMLanguageModel body, got {type(body).__name__}")
        if kind not in KINDS:
            raise ValueError(f"unknown task kind {kind!r}; expected one of {KINDS}")
        POSITIVE_INT(n_classes, "n_classes")
        if kind != "multiple_choice" and n_classes < 2:
            raise ValueError(f"a {kind} head needs n_classes >= 2, got {n_classes}")
        in_range(0, 1)(dropout, "dropout")
        one_of(HEADS)(head, "head")
        self.body, self.kind, self.n_classes, self.head_kind = body, kind, n_classes, head
        self.dropout = nn.Dropout(dropout)
        if head == "likelihood":
            if kind != "multiple_choice":
                raise ValueError(f"the likelihood head scores the choices of a multiple_choice task, not a {kind} task")
            if not NON_NEGATIVE_INT.test(delim_id):
                raise ValueError(f"the likelihood head needs delim_id, the [delim] token's id, got {delim_id!r}")
            self.delim_id = delim_id
            self.likelihood_scale = nn.Parameter(torch.ones(()))
            return
        self.head = nn.Linear(body.config.d_model, 1 if kind == "multiple_choice" else n_classes)
        nn.init.normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    @property
    def config(self):
        """The body's config (a GPTConfig or an LSTMConfig): what the Trainer records in checkpoints."""
        return self.body.config

    def hidden_states(self, ids: torch.Tensor) -> torch.Tensor:
        """The body's final hidden state ``[batch, time, d_model]`` for token ids ``[batch, time]``."""
        if isinstance(self.body, GPT):
            return self.body.transformer(ids)[0]
        return self.body.hidden_states(ids)

    def forward(
        self,
        input_ids: torch.Tensor,
        extract: torch.Tensor,
        with_lm: bool = False,
        lm_targets: torch.Tensor | None = None,
    ):
        """Return ``(task_logits, lm_logits or None)``; ``lm_logits`` has the shape of the inputs + vocab.

        With ``lm_targets`` (the shape of ``input_ids``), return ``(task_logits, lm_loss)`` instead:
        the auxiliary LM loss computed without the LM logits (what a training step wants;
        :func:`~workbench.models.linear_cross_entropy.linear_cross_entropy`)."""
        grouped = self.kind in ("similarity", "multiple_choice")
        expected_dim = 3 if grouped else 2
        if input_ids.dim() != expected_dim or extract.shape != input_ids.shape[:-1]:
            raise ValueError(
                f"{self.kind} inputs must be [batch{', group' if grouped else ''}, time] with extract "
                f"[batch{', group' if grouped else ''}], got {tuple(input_ids.shape)} and {tuple(extract.shape)}"
            )
        # Every sequence of a group (an example's choices, or both orderings) is a row of the body's batch.
        flat = rearrange(input_ids, "... time -> (...) time")
        flat_extract = rearrange(extract, "... -> (...)")
        hidden = self.hidden_states(flat)
        flat_targets = rearrange(lm_targets, "... time -> (...) time") if lm_targets is not None else None
        lm_loss = None
        if self.head_kind == "likelihood":
            scores, lm_loss = self._answer_logprob(flat, hidden, flat_extract, flat_targets)
            logits = self.likelihood_scale * scores
        else:
            state = hidden[torch.arange(flat.size(0), device=flat.device), flat_extract]
            if self.kind == "similarity":
                state = reduce(state, "(batch order) d -> batch d", "sum", order=input_ids.size(1))
            logits = self.head(self.dropout(state))
        if self.kind == "multiple_choice":  # one score per choice: the softmax runs over the choice axis
            logits = rearrange(logits, "(batch choice) ... -> batch (choice ...)", choice=input_ids.size(1))
        if lm_targets is not None:
            return logits, lm_loss if lm_loss is not None else linear_cross_entropy(
                hidden, self.body.lm_head.weight, flat_targets
            )
        lm_logits = self.body.lm_head(hidden).view(*input_ids.shape, -1) if with_lm else None
        return logits, lm_logits

    def _answer_logprob(
        self, ids: torch.Tensor, hidden: torch.Tensor, extract: torch.Tensor, lm_targets: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Each sequence's total log-probability of its answer tokens (see the class docstring), and
        with ``lm_targets`` the auxiliary LM loss from the same logits: only the rows of answer tokens
        and of LM targets get logits, once."""
        positions = torch.arange(ids.size(1), device=ids.device)
        answer_from = torch.where(ids == self.delim_id, positions, 0).amax(dim=1)  # last [delim], else [start]
        answer = (positions >= answer_from[:, None]) & (positions < extract[:, None] - 1)  # the state before each
        counted = answer if lm_targets is None else answer | (lm_targets != IGNORE_INDEX)
        rows, columns = counted.nonzero(as_tuple=True)
        logits = self.body.lm_head(hidden[rows, columns]).float()
        log_z = torch.logsumexp(logits, dim=1)
        following = ids[rows, (columns + 1).clamp(max=ids.size(1) - 1)]
        picked = logits.gather(1, following[:, None]).squeeze(1) - log_z
        scores = torch.zeros(ids.size(0), device=ids.device).index_add(0, rows, picked * answer[rows, columns])
        if lm_targets is None:
            return scores, None
        targets = lm_targets[rows, columns]
        on = targets != IGNORE_INDEX
        return scores, (log_z[on] - logits[on].gather(1, targets[on, None]).squeeze(1)).mean()


def task_loss(model: TaskModel, batch: dict[str, torch.Tensor], lm_weight: float = 0.5):
    """GPT-1's L3 = L2 + lambda * L1: task cross-entropy plus the LM loss on the same inputs.

    ``lm_weight`` is lambda (0.5 in GPT-1; 0 drops the auxiliary objective and skips the LM head).
    Returns ``(loss, metrics)`` with the task loss, the LM loss and the batch accuracy.
    """
    LM_WEIGHT(lm_weight, "lm_weight (lambda)")
    labels = batch["labels"]
    targets = lm_targets(batch["input_ids"], batch["extract"]) if lm_weight > 0 else None
    logits, lm = model(batch["input_ids"], batch["extract"], lm_targets=targets)
    task = F.cross_entropy(logits.float(), labels)
    # Detached tensors, not floats: the Trainer syncs with the device once per logged row.
    metrics = {"task_loss": task.detach(), "accuracy": (logits.argmax(-1) == labels).float().mean()}
    loss = task
    if lm_weight > 0:
        metrics["lm_loss"] = lm.detach()
        loss = task + lm_weight * lm
    return loss, metrics


def check_labels(model: TaskModel, encoded: Encoded) -> None:
    """Every label must index one of the head's outputs (a class, or one of the choices)."""
    for i, (sequences, label) in enumerate(encoded):
        if isinstance(label, bool) or not isinstance(label, numbers.Integral):
            raise ValueError(
                f"example {i}: label {label!r} is a {type(label).__name__}; expected an int class index "
                "(encode_examples maps a task's examples to them)"
            )
        n_outputs = len(sequences) if model.kind == "multiple_choice" else model.n_classes
        if not 0 <= label < n_outputs:
            raise ValueError(f"example {i}: label {label} does not fit a {model.kind} head with {n_outputs} outputs")


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
        ids = rearrange(ids, "(example group) time -> example group time", group=group)
        extract = rearrange(extract, "(example group) -> example group", group=group)
    labels = torch.tensor([label for _, label in items], dtype=torch.long)
    return dict(input_ids=ids, extract=extract, labels=labels)


LENGTH_GROUP_BATCHES = 32
"""Global micro-batches per group sorted by length when batches are grouped by length."""


class TaskBatches:
    """Shuffled epochs over encoded examples, sharded by rank, resumable (the Trainer's BatchSource).

    Epoch ``e`` visits the examples in the order of a permutation seeded by ``(seed, e)``; global
    micro-batch ``c`` takes the next ``micro_batch_size x world_size`` of them and rank ``r`` its
    ``r``-th share, so one process and several see the same examples per update.

    With ``group_by_length``, each run of :data:`LENGTH_GROUP_BATCHES` global micro-batches of the
    permutation is sorted by example length, cut into micro-batches, and those are shuffled (the
    "megabatch" grouping of Hugging Face's ``group_by_length``): a batch pads to lengths close to its
    own instead of the longest of a random draw. Each epoch still sees every example at most once
    (the ragged end is dropped, as without grouping).
    """

    def __init__(
        self, encoded: Encoded, kind: str, pad_id: int, plan: BatchPlan, group_by_length: bool = False
    ) -> None:
        per_step = plan.micro_batch_size * plan.world_size
        if len(encoded) < per_step:
            raise ValueError(f"{len(encoded)} training examples are fewer than one global micro-batch ({per_step})")
        self.encoded, self.kind, self.pad_id, self.plan = encoded, kind, pad_id, plan
        self.group_by_length = group_by_length
        self.lengths = np.array([max(map(len, sequences)) for sequences, _ in encoded])
        self.epoch, self.position = 0, 0
        self._epoch_order: tuple[int, np.ndarray] | None = None

    def _order(self) -> np.ndarray:
        if self._epoch_order is not None and self._epoch_order[0] == self.epoch:
            return self._epoch_order[1]
        rng = np.random.default_rng([self.plan.seed, self.epoch])
        order = rng.permutation(len(self.encoded))
        if self.group_by_length:
            per_step = self.plan.micro_batch_size * self.plan.world_size
            order = order[: len(order) - len(order) % per_step]
            group = per_step * LENGTH_GROUP_BATCHES
            batches = []
            for start in range(0, len(order), group):
                chunk = order[start : start + group]
                chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
                batches += [chunk[i : i + per_step] for i in rng.permutation(np.arange(0, len(chunk), per_step))]
            order = np.concatenate(batches)
        self._epoch_order = (self.epoch, order)
        return order

    def next_batch(self) -> dict[str, torch.Tensor]:
        plan = self.plan
        per_step = plan.micro_batch_size * plan.world_size
        if self.position + per_step > len(self.encoded):  # drop the ragged end of an epoch
            self.epoch, self.position = self.epoch + 1, 0
        order = self._order()
        mine = order[self.position + plan.rank * plan.micro_batch_size :][: plan.micro_batch_size]
        self.position += per_step
        return make_batch([self.encoded[i] for i in mine], self.kind, self.pad_id)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


@torch.no_grad()
def correct_predictions(model: TaskModel, encoded: Encoded, pad_id: int, batch_size: int = 64) -> np.ndarray:
    """Per example, in the order given, whether its highest-scoring label is the true one (eval mode,
    no dropout). Examples are batched by length, so that a batch pads little."""
    if not encoded:
        raise ValueError("no examples to evaluate")
    POSITIVE_INT(batch_size, "batch_size")
    check_labels(model, encoded)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    order = np.argsort([max(map(len, sequences)) for sequences, _ in encoded], kind="stable")
    correct = np.zeros(len(encoded), dtype=bool)
    try:
        for start in range(0, len(encoded), batch_size):
            chosen = order[start : start + batch_size]
            batch = make_batch([encoded[i] for i in chosen], model.kind, pad_id)
            logits, _ = model(batch["input_ids"].to(device), batch["extract"].to(device))
            correct[chosen] = (logits.argmax(-1).cpu() == batch["labels"]).numpy()
    finally:
        model.train(was_training)
    return correct


def accuracy(model: TaskModel, encoded: Encoded, pad_id: int, batch_size: int = 64) -> float:
    """Fraction of examples whose highest-scoring label is the true one (see :func:`correct_predictions`)."""
    return float(correct_predictions(model, encoded, pad_id, batch_size).mean())


def finetune(
    model: TaskModel,
    train: Encoded,
    config: TrainConfig,
    pad_id: int,
    *,
    dev: Encoded | None = None,
    lm_weight: float = 0.5,
    group_by_length: bool = False,
    run_dir: str | os.PathLike[str] | None = None,
    metadata: dict | None = None,
    sink: MetricsSink | None = None,
) -> Trainer:
    """Train ``model`` on encoded examples with L3 = L2 + lm_weight * L1; returns the Trainer.

    With ``dev``, dev accuracy is logged every ``config.eval_every`` updates; ``group_by_length``
    batches examples of similar lengths together (see :class:`TaskBatches`); ``sink`` receives the
    history rows too (see :class:`~workbench.training.trainer.Trainer`).
    """
    LM_WEIGHT(lm_weight, "lm_weight (lambda)")
    if not train:
        raise ValueError("no training examples; expected a non-empty list of encoded examples")
    check_labels(model, train)
    if dev is not None:
        check_labels(model, dev)
    evaluate = (lambda m: {"dev_accuracy": accuracy(m, dev, pad_id)}) if dev else None
    trainer = Trainer(
        model,
        lambda plan: TaskBatches(train, model.kind, pad_id, plan, group_by_length),
        config,
        evaluate=evaluate,
        loss_fn=lambda m, batch: task_loss(m, batch, lm_weight),
        run_dir=run_dir,
        metadata={**(metadata or {}), "lm_weight": lm_weight},
        sink=sink,
    )
    trainer.train()
    return trainer
