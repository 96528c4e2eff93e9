"""The logit lens: each layer's residual stream read through the final LayerNorm and the LM head.

A view of layer-by-layer knowledge that needs no fine-tuning (nostalgebraist, 2020): the state
after block ``l`` (``l = 0`` is the embeddings), read from the activation cache
(:meth:`~workbench.models.hooks.ActivationCache.accumulated_resid`), is decoded as if it were the last
one, and the line's tokens are scored under it. On minimal pairs (a line as written against its corrupted twin), the
accuracy per layer says which layer already holds what the language model knows; at the last
layer it is the zero-shot minimal-pairs readout itself. Tokens are encoded as the scorer of
:mod:`workbench.evaluation.scoring` encodes a line with no context: ``<|endoftext|>`` then ``" " + line``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..models.gpt import GPT
from ..models.hooks import residual_stream_names
from .scoring import encode_requests


@torch.no_grad()
def lens_logprobs(model: GPT, tokenizer, lines: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Total log-probability of each line read at every layer, ``[len(lines), n_layer + 1]``."""
    if not isinstance(model, GPT):
        raise ValueError(f"the logit lens reads a GPT's residual stream, got {type(model).__name__}")
    requests = encode_requests(tokenizer, [("", " " + line) for line in lines])
    sequences = [context + continuation for context, continuation in requests]
    longest = max(len(s) for s in sequences)
    if longest > model.config.n_ctx:
        raise ValueError(f"a line of {longest - 1} tokens does not fit the model's context {model.config.n_ctx}")
    was_training = model.training
    model.eval()
    totals = []
    try:
        for start in range(0, len(sequences), batch_size):
            batch = sequences[start : start + batch_size]
            width = max(len(s) for s in batch)
            ids = torch.zeros(len(batch), width, dtype=torch.long)
            scored = torch.zeros(len(batch), width - 1, dtype=torch.bool)  # positions predicting a line token
            for i, ((context, _), sequence) in enumerate(zip(requests[start : start + batch_size], batch)):
                ids[i, : len(sequence)] = torch.as_tensor(sequence)
                scored[i, len(context) - 1 : len(sequence) - 1] = True
            _, cache = model.run_with_cache(ids, residual_stream_names(model.config), return_logits=False)
            rows = scored.nonzero()[:, 0]  # the line of each scored position
            targets = ids[:, 1:][scored]
            per_layer = []
            for normed in cache.accumulated_resid(apply_ln=True):
                logits = model.lm_head(normed[:, :-1][scored]).float()
                picked = logits.gather(1, targets[:, None]).squeeze(1) - torch.logsumexp(logits, 1)
                per_layer.append(torch.zeros(len(batch), dtype=picked.dtype).index_add_(0, rows, picked))
            totals.append(torch.stack(per_layer, dim=1))
    finally:
        model.train(was_training)
    return torch.cat(totals).double().numpy()


def minimal_pair_lens(model: GPT, tokenizer, pairs: Sequence[tuple[str, str]], batch_size: int = 64) -> np.ndarray:
    """Whether each layer's lens gives the original of each ``(original, corrupted)`` pair the higher
    total log-probability: ``[n_layer + 1, len(pairs)]`` of 0/1 (a tie counts as wrong)."""
    scores = lens_logprobs(model, tokenizer, [line for pair in pairs for line in pair], batch_size)
    original, corrupted = scores[0::2], scores[1::2]
    return (original > corrupted).astype(np.int8).T
