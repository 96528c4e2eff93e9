"""Log-likelihood of a continuation given a context: the quantity zero-shot evaluation is built on.

For each ``(context, continuation)`` request the scorer returns the summed log-probability of the
continuation's tokens, its mean per token and per character (what evaluation harnesses report as
``acc`` and ``acc_norm``), and whether the continuation is the model's greedy choice at every step.

The context/continuation boundary is drawn at the token level: trailing whitespace of the context
moves to the continuation (``"very" + " positive"``, never ``"very " + "positive"``), and the two are
encoded separately, so a continuation's tokens never merge with the context's.

A context that, with its continuation, does not fit the model's window (``n_ctx``) is cut from the
left until it does, request by request (so a score never depends on which other requests share
its batch); the continuation itself is never cut: one that cannot fit in ``n_ctx - 1`` tokens is
an error, or with ``rolling=True`` is scored in pieces with a rolling window (every token counted,
each predicted from at least ``n_ctx // 2`` tokens before it). An empty context scores from
``<|endoftext|>``, as GPT-2 does. An empty continuation is an error.

Transformers take a fast path: each distinct context runs once (batched across examples, logits
only at its last token) and its key/value cache is shared by all of its continuations, which run
batched across contexts in order of length (an attention mask hides the padding; a model
without ``attention_mask`` batches continuations of contexts of one length). Any other model with
``model(idx).logits`` (the LSTM baseline) runs every full sequence, batched by length. Either way
the last token of a continuation is never fed to the model (nothing is predicted from it), and
scores equal those of one unbatched forward pass per request to float rounding.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import pandas as pd
import torch

from ..core.checks import POSITIVE_INT
from ..models.gpt import GPT

SCORE_COLUMNS = ["logprob", "n_tokens", "n_chars", "logprob_per_token", "logprob_per_char", "greedy"]


def split_boundary(context: str, continuation: str) -> tuple[str, str]:
    """Move the context's trailing whitespace to the start of the continuation."""
    stripped = context.rstrip()
    return stripped, context[len(stripped) :] + continuation


def _check_requests(requests, item_type: type | tuple[type, ...], what: str) -> None:
    """A non-empty list of ``(context, continuation)`` pairs whose parts are ``item_type``, else a ValueError."""
    if not isinstance(requests, (list, tuple)):
        raise ValueError(f"requests must be a list of {what}s, got {requests!r:.80}")
    if not requests:
        raise ValueError(f"no requests to score; expected a non-empty list of {what}s")
    for i, request in enumerate(requests):
        if (
            not isinstance(request, (list, tuple))
            or len(request) != 2
            or not all(isinstance(part, item_type) for part in request)
        ):
            raise ValueError(f"request {i} must be {what}, got {request!r:.80}")


def encode_requests(tokenizer, requests: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """Token ids of each ``(context, continuation)``, with the boundary rule of this module."""
    _check_requests(requests, str, "a (context, continuation) pair of strings")
    pairs = []
    for i, (context, continuation) in enumerate(requests):
        if not continuation.strip():
            raise ValueError(
                f"request {i}: empty continuation {continuation!r} (context {context[-40:]!r}); "
                "expected some text to score"
            )
        pairs.append(split_boundary(context, continuation))
    contexts = tokenizer.encode_batch([c for c, _ in pairs])
    continuations = tokenizer.encode_batch([k for _, k in pairs])
    return [(ctx or [tokenizer.eos_id], cont) for ctx, cont in zip(contexts, continuations)]


def _window(model) -> int:
    return model.config.n_ctx


def _fit_contexts(requests: Sequence[tuple[list[int], list[int]]], n_ctx: int):
    """Cut each context from the left so that it and its continuation fit the window, then group
    requests by (cut) context. Each request is cut on its own, so that its score never depends on
    the other requests scored with it."""
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
        groups.setdefault(tuple(context[-(n_ctx - len(continuation)) :]), []).append(i)
    return [(list(context), members) for context, members in groups.items()]


def _pad(rows: Sequence[Sequence[int]], device, width: int | None = None) -> torch.Tensor:
    width = max(len(r) for r in rows) if width is None else width
    out = torch.zeros(len(rows), max(width, 1), dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
    return out.to(device)


def _token_scores(logits: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each token under its row of logits ``[n, vocab]``, and whether it is the argmax."""
    logits = logits.float()
    picked = logits.gather(1, tokens[:, None]).squeeze(1) - torch.logsumexp(logits, 1)
    return picked, logits.argmax(1) == tokens


def _per_row(row_ids: torch.Tensor, logprob: torch.Tensor, hit: torch.Tensor, n_rows: int):
    """Sum of log-probabilities and "every token was the argmax" per row of flattened tokens."""
    sums = torch.zeros(n_rows, dtype=logprob.dtype, device=logprob.device).index_add_(0, row_ids, logprob)
    misses = torch.zeros(n_rows, dtype=torch.long, device=logprob.device).index_add_(0, row_ids, (~hit).long())
    return sums.tolist(), (misses == 0).tolist()


def rolling_windows(requests: Sequence[tuple[list[int], list[int]]], n_ctx: int):
    """Split each continuation longer than ``n_ctx - 1`` tokens into pieces of ``n_ctx // 2``
    tokens, each scored after everything before it (context and earlier pieces, cut from the left
    to fill the window). Returns the pieces and, for each, the index of its request."""
    pieces, owners = [], []
    size = max(1, n_ctx // 2)
    for i, (context, continuation) in enumerate(requests):
        if len(continuation) <= n_ctx - 1:
            pieces.append((context, continuation))
            owners.append(i)
            continue
        for start in range(0, len(continuation), size):
            pieces.append((list(context) + list(continuation[:start]), continuation[start : start + size]))
            owners.append(i)
    return pieces, owners


@torch.inference_mode()
def score_token_requests(
    model, requests: Sequence[tuple[list[int], list[int]]], batch_size: int = 32, rolling: bool = False
) -> pd.DataFrame:
    """Score token-level requests; one row per request, in order (see the module docstring).

    ``batch_size`` bounds the number of continuations (rows) scored per forward pass. A
    continuation longer than ``n_ctx - 1`` tokens is an error unless ``rolling``: then it is scored
    with a rolling window (:func:`rolling_windows`; every token still counts, each predicted from
    at least ``n_ctx // 2`` tokens before it), and the ``windows`` column says how many it took.
    """
    POSITIVE_INT(batch_size, "batch_size")
    _check_requests(requests, (list, tuple), "a (context, continuation) pair of token-id lists")
    n_ctx = _window(model)
    for i, (_, continuation) in enumerate(requests):
        if not continuation:
            raise ValueError(f"request {i}: continuation has no tokens")
    pieces, owners = rolling_windows(requests, n_ctx) if rolling else (list(requests), list(range(len(requests))))
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    groups = _fit_contexts(pieces, n_ctx)
    results: list[tuple[float, bool] | None] = [None] * len(pieces)
    try:
        if isinstance(model, GPT):
            _score_with_shared_prefix(model, pieces, groups, batch_size, device, results)
        else:
            _score_full_sequences(model, pieces, groups, batch_size, device, results)
    finally:
        model.train(was_training)
    logprob, greedy, windows = [0.0] * len(requests), [True] * len(requests), [0] * len(requests)
    for owner, (total, flag) in zip(owners, results):
        logprob[owner] += total
        greedy[owner] = greedy[owner] and flag
        windows[owner] += 1
    frame = pd.DataFrame({"logprob": logprob, "n_tokens": [len(c) for _, c in requests], "greedy": greedy})
    frame["logprob_per_token"] = frame["logprob"] / frame["n_tokens"]
    frame["windows"] = windows
    return frame


def _chunks(groups, batch_size: int):
    """Contexts in order of length, as many per forward pass as have at most ``batch_size``
    continuations between them (at least one), so that padding stays small."""
    chunk, rows = [], 0
    for group in sorted(groups, key=lambda g: len(g[0])):
        if chunk and rows + len(group[1]) > batch_size:
            yield chunk
            chunk, rows = [], 0
        chunk.append(group)
        rows += len(group[1])
    if chunk:
        yield chunk


def _accepts_attention_mask(model) -> bool:
    return "attention_mask" in inspect.signature(model.forward).parameters


def _row_batches(members, context_lengths, requests, batch_size: int, masked: bool, n_ctx: int):
    """Continuation rows ``(context row, request)`` in batches of at most ``batch_size``, in order of
    length (little padding). With a mask, a batch holds rows of any contexts as long as the longest
    context plus the longest continuation input fits the window; without one, rows of contexts of
    one length."""
    if not masked:
        by_length: dict[int, list] = {}
        for member in members:
            by_length.setdefault(context_lengths[member[0]], []).append(member)
        groups = list(by_length.values())
    else:
        groups = [members]
    for group in groups:
        group = sorted(group, key=lambda m: len(requests[m[1]][1]))
        batch, span, width = [], 0, 0
        for member in group:
            length, needed = context_lengths[member[0]], len(requests[member[1]][1]) - 1
            if batch and (len(batch) == batch_size or max(span, length) + max(width, needed) > n_ctx):
                yield batch
                batch, span, width = [], 0, 0
            batch.append(member)
            span, width = max(span, length), max(width, needed)
        if batch:
            yield batch


POOL_BATCHES = 8
"""Contexts are taken in pools of about ``POOL_BATCHES x batch_size`` continuations, so that the
continuations' batches, sorted by length across the pool, carry little padding."""


def _score_with_shared_prefix(model: GPT, requests, groups, batch_size, device, results) -> None:
    """Contexts run ``batch_size`` at a time in order of length (right-padded, logits only at each
    one's last token); each one's key/value cache is then shared by all of its continuations,
    which run sorted by length across a pool of contexts, in batches of ``batch_size`` rows (an
    attention mask hides the padding, and positions continue from each context's own length; a
    model without ``attention_mask`` batches only continuations of contexts of equal length).
    The last token of a continuation is never an input, so single-token continuations need no
    second pass at all."""
    masked = _accepts_attention_mask(model)
    n_ctx = _window(model)
    for pool in _chunks(groups, POOL_BATCHES * batch_size):
        lengths = [len(context) for context, _ in pool]
        last_logits, caches, where = [], [], []
        for start in range(0, len(pool), batch_size):
            contexts = [context for context, _ in pool[start : start + batch_size]]
            ends = torch.as_tensor([len(c) - 1 for c in contexts], device=device)
            hidden, _, _, cache = model.transformer(_pad(contexts, device), use_cache=True)
            last_logits.append(model.lm_head(hidden[torch.arange(len(contexts), device=device), ends]))
            where += [(len(caches), row) for row in range(len(contexts))]
            caches.append(cache)
        last_logits = torch.cat(last_logits).float()
        members = [(c, i) for c, (_, indices) in enumerate(pool) for i in indices]
        for batch in _row_batches(members, lengths, requests, batch_size, masked, n_ctx):
            batch.sort(key=lambda m: where[m[0]])  # rows of one context pass together
            conts = [requests[i][1] for _, i in batch]
            source = torch.as_tensor([c for c, _ in batch], device=device)
            # the first token of each continuation is predicted by its context's last position
            logprob, hit = _token_scores(last_logits[source], torch.as_tensor([k[0] for k in conts], device=device))
            row_ids = torch.arange(len(batch), device=device)
            inputs = [k[:-1] for k in conts]
            width = max(map(len, inputs))
            if width:
                span = max(lengths[c] for c, _ in batch)
                past = _gather_cache(caches, [where[c] for c, _ in batch], span, device)
                options = {}
                if min(lengths[c] for c, _ in batch) != span:  # (only possible with a mask)
                    # the contexts' padding is masked, so positions continue from each row's own
                    # length; a continuation's right padding is harmless under the causal mask
                    own = torch.as_tensor([lengths[c] for c, _ in batch], device=device)
                    in_context = torch.arange(span, device=device)[None, :] < own[:, None]
                    in_inputs = _pad([[1] * len(x) for x in inputs], device, width).bool()
                    options["attention_mask"] = torch.cat([in_context, in_inputs], 1)
                hidden = model.transformer(_pad(inputs, device), past_key_values=past, **options)[0]
                # logits only where a continuation token is predicted (not at padding)
                places = [(r, t) for r, x in enumerate(inputs) for t in range(len(x))]
                r_idx = torch.as_tensor([r for r, _ in places], device=device)
                t_idx = torch.as_tensor([t for _, t in places], device=device)
                targets = torch.as_tensor([conts[r][t + 1] for r, t in places], device=device)
                more_logprob, more_hit = _token_scores(model.lm_head(hidden[r_idx, t_idx]), targets)
                logprob, hit = torch.cat([logprob, more_logprob]), torch.cat([hit, more_hit])
                row_ids = torch.cat([row_ids, r_idx])
            sums, greedy = _per_row(row_ids, logprob, hit, len(batch))
            for (_, i), total, flag in zip(batch, sums, greedy):
                results[i] = (total, flag)


def _gather_cache(caches, places: list[tuple[int, int]], span: int, device):
    """The key/value cache of each row's context (``(context pass, row)`` in ``places``, grouped by
    pass), cut or zero-padded to ``span`` positions: one ``(key, value)`` per layer."""
    runs: dict[int, list[int]] = {}
    for pass_index, row in places:
        runs.setdefault(pass_index, []).append(row)
    layers = []
    for layer in range(len(caches[0])):
        keys, values = [], []
        for pass_index, rows in runs.items():
            index = torch.as_tensor(rows, device=device)
            for tensors, part in ((keys, 0), (values, 1)):
                cached = caches[pass_index][layer][part].index_select(0, index)[:, :, :span]
                if cached.size(2) < span:
                    cached = torch.nn.functional.pad(cached, (0, 0, 0, span - cached.size(2)))
                tensors.append(cached)
        layers.append((torch.cat(keys), torch.cat(values)))
    return layers


def _score_full_sequences(model, requests, groups, batch_size, device, results) -> None:
    """Models without a key/value cache (the LSTM): each full sequence (context + continuation,
    minus its last token), right-padded and batched in order of length."""
    rows = sorted(
        ((context, i) for context, members in groups for i in members), key=lambda r: len(r[0]) + len(requests[r[1]][1])
    )
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        conts = [requests[i][1] for _, i in chunk]
        sequences = [context + cont[:-1] for (context, _), cont in zip(chunk, conts)]
        logits = model(_pad(sequences, device)).logits
        places = [
            (r, len(context) - 1 + t)
            for r, ((context, _), cont) in enumerate(zip(chunk, conts))
            for t in range(len(cont))
        ]
        r_idx = torch.as_tensor([r for r, _ in places], device=device)
        p_idx = torch.as_tensor([p for _, p in places], device=device)
        targets = torch.as_tensor([t for cont in conts for t in cont], device=device)
        logprob, hit = _token_scores(logits[r_idx, p_idx], targets)
        sums, greedy = _per_row(r_idx, logprob, hit, len(chunk))
        for (_, i), total, flag in zip(chunk, sums, greedy):
            results[i] = (total, flag)


def score(
    model, tokenizer, requests: Sequence[tuple[str, str]], batch_size: int = 32, rolling: bool = False
) -> pd.DataFrame:
    """Score text requests: the columns of :data:`SCORE_COLUMNS` plus ``context`` and ``continuation``
    (``rolling`` as in :func:`score_token_requests`)."""
    POSITIVE_INT(batch_size, "batch_size")
    encoded = encode_requests(tokenizer, requests)
    frame = score_token_requests(model, encoded, batch_size, rolling)
    frame.insert(0, "context", [c for c, _ in requests])
    frame.insert(1, "continuation", [k for _, k in requests])
    frame["n_chars"] = [len(split_boundary(c, k)[1]) for c, k in requests]
    frame["logprob_per_char"] = frame["logprob"] / frame["n_chars"]
    return frame[["context", "continuation", *SCORE_COLUMNS]]
