"""The LM head's loss without its logits: linear layer and cross-entropy fused, chunk by chunk.

At a small GPT's scale the LM head's logits ``[tokens, vocab]`` are the largest tensors of a training
step (2048 tokens x 8192 words: 64 MiB in float32). The textbook path writes them, reads them in
``log_softmax``, writes its output, zero-fills ``nll_loss``'s gradient of the same size and reads all
of them again in the backward; on a CPU, every fresh 64 MiB buffer also page-faults in. Here each
chunk of rows computes its logits, its loss and both gradients (``softmax - one_hot`` times the hidden
states and the weight) in the forward pass, the approach of Liger Kernel's fused linear
cross-entropy: only one chunk of logits exists at a time, it stays in cache, and the backward only
scales the stored gradients. The matrix products are the same three as the textbook path's.

Under autocast the products run in the autocast dtype and the softmax in float32, as
``F.cross_entropy(F.linear(h, w).float(), t)`` would; the weight's gradient is summed in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

IGNORE_INDEX = -100
"""Targets equal to this are left out of the loss (padding, prompt positions)."""

CHUNK_ELEMENTS = {"cpu": 2**21, "cuda": 2**28}
"""Logits per chunk: 8 MiB of float32 on a CPU (within a core's share of cache), 1 GiB on a GPU
(a few chunks, so that kernel launches stay few). Other devices use the GPU's size."""


def linear_cross_entropy(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """Mean of ``F.cross_entropy(hidden @ weight.T, targets, ignore_index=ignore_index)`` over the
    counted targets, without the ``[rows, vocab]`` logits.

    ``hidden`` is ``[..., d]``, ``weight`` ``[vocab, d]`` (an ``nn.Linear`` without bias, e.g. the tied
    LM head), ``targets`` the matching ``[...]`` integer ids. Gradients flow to ``hidden`` and ``weight``.
    """
    if weight.dim() != 2 or hidden.size(-1) != weight.size(1):
        raise ValueError(
            f"hidden [..., {hidden.size(-1)}] and weight {tuple(weight.shape)} do not match: "
            "expected weight [vocab, d] with d the hidden size"
        )
    if targets.shape != hidden.shape[:-1]:
        raise ValueError(
            f"targets shape {tuple(targets.shape)} must equal hidden's leading shape {tuple(hidden.shape[:-1])}"
        )
    device = hidden.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype
    chunk_rows = max(1, CHUNK_ELEMENTS.get(device, CHUNK_ELEMENTS["cuda"]) // weight.size(0))
    return _LinearCrossEntropy.apply(hidden, weight, targets, ignore_index, dtype, chunk_rows)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, ignore_index, dtype, chunk_rows):
        flat_targets = rearrange(targets, "... -> (...)")  # every position is a row
        counted = flat_targets != ignore_index
        safe_targets = torch.where(counted, flat_targets, 0).long()[:, None]
        keep = counted.to(dtype)[:, None]
        with torch.autocast(hidden.device.type, enabled=False):
            h = rearrange(hidden, "... d -> (...) d").to(dtype)
            w = weight.to(dtype)
            needs_grad = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
            grad_h = torch.empty_like(h) if needs_grad else None
            grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if needs_grad else None
            masked_h = h * keep if needs_grad else None  # rows that do not count add nothing to grad_w
            loss = torch.zeros((), dtype=torch.float32, device=hidden.device)
            for start in range(0, h.size(0), chunk_rows):
                rows = slice(start, start + chunk_rows)
                log_probs = F.log_softmax((h[rows] @ w.T).float(), dim=1)
                loss -= (log_probs.gather(1, safe_targets[rows]) * keep[rows]).sum()
                if not needs_grad:
                    continue
                # d loss / d logits = softmax - one_hot, for the rows that count (the others are
                # masked out of both products below, on the d-sized side where it is cheap).
                probs = log_probs.exp_().scatter_add_(
                    1, safe_targets[rows], torch.full_like(keep[rows], -1.0, dtype=torch.float32)
                )
                grad_logits = probs.to(dtype)
                torch.mm(grad_logits, w, out=grad_h[rows])
                grad_h[rows] *= keep[rows]
                if dtype == torch.float32:
                    torch.addmm(grad_w, grad_logits.T, masked_h[rows], out=grad_w)  # counted by FlopCounterMode
                else:  # a low-precision product, summed in float32
                    grad_w += (grad_logits.T @ masked_h[rows]).float()
        n_counted = counted.sum()
        ctx.save_for_backward(grad_h, grad_w, n_counted)
        ctx.shapes = (hidden.shape, hidden.dtype, weight.dtype)
        return loss / n_counted

    @staticmethod
    def backward(ctx, grad_loss):
        grad_h, grad_w, n_counted = ctx.saved_tensors
        hidden_shape, hidden_dtype, weight_dtype = ctx.shapes
        scale = grad_loss / n_counted
        grad_hidden = (
            (grad_h * scale.to(grad_h.dtype)).to(hidden_dtype).view(hidden_shape) if ctx.needs_input_grad[0] else None
        )
        grad_weight = (grad_w * scale).to(weight_dtype) if ctx.needs_input_grad[1] else None
        return grad_hidden, grad_weight, None, None, None, None
