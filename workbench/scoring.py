"""Log-likelihood of a continuation given a context: the quantity zero-shot evaluation is built on.

For each ``(context, continuation)`` request the scorer returns the summed log-probability of the
continuation's tokens, its mean per token and per character (what evaluation harnesses report as
``acc`` and ``acc_norm``), and whether the continuation is the model's greedy choice at every step.

The context/continuation boundary is drawn at the token level: trailing whitespace of the context
moves to the continuation (``"very" + " positive"``, never ``"very " + "positive"``), and the two are
encoded separately, so a continuation's tokens never merge with the context's.

A context longer than the window is cut from the left so that the longest continuation that shares
it still fits; a continuation that cannot fit in ``n_ctx - 1`` tokens is an error (nothing is
truncated silently). An empty context scores from ``<|endoftext|>``, as GPT-2 does.

Transformers take a fast path: each distinct context runs once (batched across examples) and its
key/value cache is shared by all of its continuations. Any other model with ``model(idx).logits``
(the LSTM baseline) runs every full sequence, batched.
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import torch

from .model import GPT

SCORE_COLUMNS = ["logprob", "n_tokens", "n_chars", "logprob_per_token", "logprob_per_char", "greedy"]


def split_boundary(context: str, continuation: str) -> tuple[str, str]:
    """Move the context's trailing whitespace to the start of the continuation."""
    stripped = context.rstrip()
    return stripped, context[len(stripped):] + continuation


def encode_requests(tokenizer, requests: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """Token ids of each ``(context, continuation)``, with the boundary rule of this module."""
    pairs = []
    for i, (context, continuation) in enumerate(requests):
        if not continuation.strip():
            raise ValueError(f"request {i}: empty continuation {continuation!r} (context {context[-40:]!r})")
        pairs.append(split_boundary(context, continuation))
    contexts = tokenizer.encode_batch([c for c, _ in pairs])
    continuations = tokenizer.encode_batch([k for _, k in pairs])
    return [(ctx or [tokenizer.eos_id], cont) for ctx, cont in zip(contexts, continuations)]


def _window(model) -> int:
    return model.config.n_ctx


def _fit_contexts(requests: Sequence[tuple[list[int], list[int]]], n_ctx: int):
    """Group requests by context; cut each context so its longest continuation fits the window."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, (context, continuation) in enumerate(requests):
        if not continuation:
            raise ValueError(f"request {i}: continuation has no tokens")
        if len(continuation) > n_ctx - 1:
            raise ValueError(
                f"request {i}: continuation of {len(continuation)} tokens does not fit the window "
                f"n_ctx={n_ctx} (at most {n_ctx - 1} with one context token)"
            )
        if not context:
            raise ValueError(f"request {i}: context has no tokens (use <|endoftext|> for none)")
        groups.setdefault(tuple(context), []).append(i)
    fitted = []
    for context, members in groups.items():
        longest = max(len(requests[i][1]) for i in members)
        fitted.append((list(context[-(n_ctx - longest):]), members))
    return fitted


def _pad(rows: Sequence[Sequence[int]], device) -> torch.Tensor:
    width = max(len(r) for r in rows)
    out = torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
    return out.to(device)


def _summarise(logprobs: torch.Tensor, predicted_logits: torch.Tensor, tokens: torch.Tensor):
    """Sum of the tokens' log-probabilities and whether every token was the argmax."""
    picked = logprobs.gather(-1, tokens[:, None]).squeeze(-1)
    greedy = bool((predicted_logits.argmax(-1) == tokens).all())
    return float(picked.sum()), greedy


@torch.inference_mode()
def score_token_requests(model, requests: Sequence[tuple[list[int], list[int]]], batch_size: int = 32) -> pd.DataFrame:
    """Score token-level requests; one row per request, in order (see the module docstring)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not requests:
        raise ValueError("no requests to score")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    groups = _fit_contexts(requests, _window(model))
    results: list[tuple[float, bool] | None] = [None] * len(requests)
    try:
        if isinstance(model, GPT):
            _score_with_shared_prefix(model, requests, groups, batch_size, device, results)
        else:
            _score_full_sequences(model, requests, groups, batch_size, device, results)
    finally:
        model.train(was_training)
    frame = pd.DataFrame(
        {"logprob": [r[0] for r in results], "n_tokens": [len(c) for _, c in requests],
         "greedy": [r[1] for r in results]}
    )
    frame["logprob_per_token"] = frame["logprob"] / frame["n_tokens"]
    return frame


def _score_with_shared_prefix(model: GPT, requests, groups, batch_size, device, results) -> None:
    for start in range(0, len(groups), batch_size):
        chunk = groups[start: start + batch_size]
        contexts = [context for context, _ in chunk]
        out = model(_pad(contexts, device), use_cache=True)
        for row, (context, members) in enumerate(chunk):
            length = len(context)
            last = out.logits[row, length - 1].float()
            conts = [requests[i][1] for i in members]
            k = len(conts)
            past = [(key[row: row + 1, :, :length].expand(k, -1, -1, -1),
                     value[row: row + 1, :, :length].expand(k, -1, -1, -1))
                    for key, value in out.past_key_values]
            cont_logits = model(_pad(conts, device), past_key_values=past).logits.float()
            for j, (i, cont) in enumerate(zip(members, conts)):
                predicted = torch.cat([last[None], cont_logits[j, : len(cont) - 1]])
                tokens = torch.as_tensor(cont, device=device)
                results[i] = _summarise(predicted.log_softmax(-1), predicted, tokens)


def _score_full_sequences(model, requests, groups, batch_size, device, results) -> None:
    rows = [(context, i) for context, members in groups for i in members]
    for start in range(0, len(rows), batch_size):
        chunk = rows[start: start + batch_size]
        sequences = [context + requests[i][1] for context, i in chunk]
        logits = model(_pad(sequences, device)).logits.float()
        for row, (context, i) in enumerate(chunk):
            cont = requests[i][1]
            predicted = logits[row, len(context) - 1: len(context) - 1 + len(cont)]
            tokens = torch.as_tensor(cont, device=device)
            results[i] = _summarise(predicted.log_softmax(-1), predicted, tokens)


def score(model, tokenizer, requests: Sequence[tuple[str, str]], batch_size: int = 32) -> pd.DataFrame:
    """Score text requests: the columns of :data:`SCORE_COLUMNS` plus ``context`` and ``continuation``."""
    encoded = encode_requests(tokenizer, requests)
    frame = score_token_requests(model, encoded, batch_size)
    frame.insert(0, "context", [c for c, _ in requests])
    frame.insert(1, "continuation", [k for _, k in requests])
    frame["n_chars"] = [len(split_boundary(c, k)[1]) for c, k in requests]
    frame["logprob_per_char"] = frame["logprob"] / frame["n_chars"]
    return frame[["context", "continuation", *SCORE_COLUMNS]]
