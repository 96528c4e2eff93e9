"""Sampling from a :class:`~workbench.models.gpt.GPT`: the key/value-cache decode loop and text in, text out.

Kept apart from the model, which only computes logits: ``GPT.generate`` and ``GPT.stream`` delegate
here, and :func:`generate_text` adds the tokenizer, stop strings and streaming callbacks. The LSTM
baseline decodes here too: a model with ``step(idx, state)`` (:meth:`LSTMLanguageModel.step
<workbench.models.lstm.LSTMLanguageModel.step>`) carries its recurrent state instead of a cache.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..core.checks import NON_NEGATIVE_INT, POSITIVE_INT, Check, optional
from .kv_cache import KVCache

if TYPE_CHECKING:
    from ..data.tokenizer import Tokenizer
    from .gpt import GPT


MAX_SEED = 2**64
"""Seeds are the non-negative integers ``torch.Generator.manual_seed`` takes: ``[0, 2**64)``."""


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_id(value, vocab_size: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < vocab_size


TEMPERATURE = Check(">= 0 and finite (0 is greedy)", lambda v: _is_number(v) and math.isfinite(v) and v >= 0)
TOP_P = Check("in (0, 1] or None (None keeps every token)", lambda v: v is None or (_is_number(v) and 0 < v <= 1))
TOP_K = Check("a positive integer or None", lambda v: v is None or POSITIVE_INT.test(v))
SEED = Check(
    "None or an integer in [0, 2**64)",
    lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and 0 <= v < MAX_SEED),
)


def generate(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    *,
    attention_mask: torch.Tensor | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    eos_token_id: int | None = None,
    use_cache: bool = True,
) -> torch.Tensor:
    """Continue each row of ``idx`` by up to ``max_new_tokens`` tokens; returns prompt + new tokens.

    ``temperature=0`` is greedy decoding; ``top_k`` keeps the k most likely tokens and ``top_p``
    the smallest set holding that much probability (nucleus sampling); ``seed`` makes sampling
    repeatable. With ``use_cache`` the prompt is run once and each step feeds only the new token (a
    recurrent model, the LSTM, always carries its state).
    Prompts of different lengths go in one batch left-padded, with ``attention_mask`` marking
    the padding (see :func:`left_pad`). A sequence longer than the context is cropped from the
    left: the model sees the last ``n_ctx`` tokens (the cache is rebuilt when the window moves,
    since positions are absolute). Rows that emit ``eos_token_id`` stop and are padded with it;
    generation ends when every row has stopped.
    """
    steps = stream(
        model,
        idx,
        max_new_tokens,
        attention_mask=attention_mask,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
        eos_token_id=eos_token_id,
        use_cache=use_cache,
    )
    return torch.cat([idx, *(token[:, None] for token in steps)], dim=1)


def stream(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    *,
    attention_mask: torch.Tensor | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    eos_token_id: int | None = None,
    use_cache: bool = True,
) -> Iterator[torch.Tensor]:
    """:func:`generate` one step at a time: yields each step's new token of every row, ``[batch]``.

    For streaming output (the playground shows text as it comes). The arguments are checked
    here, before the first step; leaving the loop early stops the computation.
    """
    recurrent = hasattr(model, "step")  # the LSTM: its (h, c) state is its cache, and it reads any length
    NON_NEGATIVE_INT(max_new_tokens, "max_new_tokens")
    TEMPERATURE(temperature, "temperature")
    TOP_K(top_k, "top_k")
    TOP_P(top_p, "top_p")
    SEED(seed, "seed")
    optional(Check(f"a token id in [0, {model.config.vocab_size})", lambda v: _is_id(v, model.config.vocab_size)))(
        eos_token_id, "eos_token_id"
    )
    if recurrent and not (isinstance(idx, torch.Tensor) and idx.dim() == 2):
        raise ValueError(f"expected token ids as an integer tensor [batch, time], got {idx!r:.80}")
    if not recurrent:
        if not isinstance(idx, torch.Tensor):
            model.check_input(idx, 0)  # refuses it, naming what it is
        model.check_input(idx[..., -model.config.n_ctx :], 0)  # longer prompts are cropped, not refused
    if idx.size(1) == 0:
        raise ValueError("the prompt is empty; start from <|endoftext|> for an unconditional sample")
    if attention_mask is not None:
        if attention_mask.shape != idx.shape:
            raise ValueError(
                f"attention_mask shape {tuple(attention_mask.shape)} must equal idx shape {tuple(idx.shape)}"
            )
        if not bool(attention_mask[:, -1].all()):
            raise ValueError(
                "attention_mask has padding in the last column: pad prompts on the left "
                "(left_pad does), so that every row ends with its own last token"
            )
        # A batch without padding takes the fast path.
        attention_mask = None if bool(attention_mask.all()) else attention_mask.bool()
    generator = None
    if seed is not None:
        generator = torch.Generator(device=idx.device).manual_seed(seed)
    choose = functools.partial(_pick_token, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
    if recurrent:
        return _recurrent_steps(model, idx, attention_mask, max_new_tokens, choose, eos_token_id)
    return _steps(model, idx, attention_mask, max_new_tokens, choose, eos_token_id, use_cache)


@torch.no_grad()
def _steps(model, idx, attention_mask, max_new_tokens, choose, eos_token_id, use_cache):
    """The decoding loop, as a generator so that tokens can be handed out as they come."""
    n_ctx = model.config.n_ctx
    sequence, mask = idx, attention_mask
    cache = KVCache(model.config.n_layer, n_ctx) if use_cache else None
    refill = True
    finished = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
    for _ in range(max_new_tokens):
        if refill:  # the prompt, or a refill after the window moved past the context
            model_input = sequence[:, -n_ctx:]
            if cache is not None:
                cache.reset()
        cached = cache.length if cache is not None else 0
        window = None if mask is None else mask[:, -(model_input.size(1) + cached) :]
        hidden = model.transformer(model_input, cache, use_cache=use_cache, attention_mask=window)[0]
        token = choose(_next_token_logits(model, hidden[:, -1]).float())
        if eos_token_id is not None:
            token = torch.where(finished, torch.full_like(token, eos_token_id), token)
            finished |= token == eos_token_id
        sequence = torch.cat([sequence, token[:, None]], dim=1)
        if mask is not None:
            mask = F.pad(mask, (0, 1), value=True)
        yield token
        if eos_token_id is not None and bool(finished.all()):
            return
        refill = cache is None or cache.length == n_ctx
        if not refill:
            model_input = token[:, None]


@torch.no_grad()
def _recurrent_steps(model, idx, attention_mask, max_new_tokens, choose, eos_token_id):
    """The decoding loop of a recurrent model (the LSTM), a generator like :func:`_steps`. Each prompt
    is read alone, without its padding (a recurrent state has no mask), its last ``n_ctx`` tokens as the
    scorer reads a context; then every row steps together, one token each, carrying its state."""
    n_ctx = model.config.n_ctx
    rows = list(idx) if attention_mask is None else [row[keep] for row, keep in zip(idx, attention_mask)]
    last, states = [], []
    for row in rows:
        hidden, state = model.step(row[None, -n_ctx:])
        last.append(hidden[:, -1])
        states.append(state)
    hidden = torch.cat(last)
    state = tuple(torch.cat(parts, dim=1) for parts in zip(*states))  # rows are dimension 1 of (h, c)
    finished = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
    for step in range(max_new_tokens):
        token = choose(_next_token_logits(model, hidden).float())
        if eos_token_id is not None:
            token = torch.where(finished, torch.full_like(token, eos_token_id), token)
            finished |= token == eos_token_id
        yield token
        if (eos_token_id is not None and bool(finished.all())) or step == max_new_tokens - 1:
            return
        hidden, state = model.step(token[:, None], state)
        hidden = hidden[:, -1]


def _next_token_logits(model: GPT, last_hidden: torch.Tensor) -> torch.Tensor:
    """The LM head at each row's last position, as ``(W @ h^T)^T``: with a batch's few rows, MKL
    packs the [vocab, d] weight afresh at every call of ``h @ W^T``, whereas here the weight streams
    through once (2x faster on a 2-core CPU with the 8 MiB head out of cache, bench_generate)."""
    return torch.mm(model.lm_head.weight.to(last_hidden.dtype), last_hidden.T).T


def _pick_token(logits, temperature, top_k, top_p, generator) -> torch.Tensor:
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # Drop a token when the tokens ranked above it already hold top_p of the mass.
        drop = probs.cumsum(dim=-1) - probs >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def left_pad(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists into ``(idx, attention_mask)`` for :func:`generate`.

    Left, not right: generation appends to the end of every row, so each row must end with its
    own last token. The pad value is never attended to; any valid id will do.
    """
    if not sequences or any(len(s) == 0 for s in sequences):
        lengths = [len(s) for s in sequences] if isinstance(sequences, (list, tuple)) else sequences
        raise ValueError(f"left_pad needs at least one sequence and no empty ones, got sequences of lengths {lengths}")
    width = max(len(s) for s in sequences)
    idx = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(sequences), width, dtype=torch.long)
    for row, seq in enumerate(sequences):
        idx[row, width - len(seq) :] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, width - len(seq) :] = 1
    return idx, mask


def generate_text(
    model: GPT,
    tokenizer: Tokenizer,
    prompts: str | Sequence[str],
    max_new_tokens: int = 64,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    stop: str | Sequence[str] | None = None,
    stop_at_eos: bool = True,
    use_cache: bool = True,
    on_update: Callable[[list[str]], None] | None = None,
) -> str | list[str]:
    """Continue text prompts; returns the new text of each (a ``str`` for a single prompt).

    An empty prompt starts from ``<|endoftext|>``, as GPT-2's unconditional samples do. A row ends
    at ``<|endoftext|>`` (unless ``stop_at_eos=False``; the token is not part of the text) or at
    the first of the ``stop`` strings, which is cut off with everything after it. Prompts of
    different lengths share one left-padded batch. ``on_update`` receives every row's text so far
    after each step, for streaming; sampling arguments are those of :func:`generate`.
    """
    single = isinstance(prompts, str)
    if not single and not isinstance(prompts, (list, tuple)):
        raise ValueError(f"prompts must be a string or a non-empty list of strings, got {prompts!r}")
    prompts = [prompts] if single else list(prompts)
    if not prompts or not all(isinstance(p, str) for p in prompts):
        raise ValueError(f"prompts must be a string or a non-empty list of strings, got {prompts!r}")
    if stop is not None and not isinstance(stop, (str, list, tuple)):
        raise ValueError(f"stop strings must be non-empty strings (one, or a list of them), got {stop!r}")
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if not all(isinstance(s, str) and s for s in stops):
        raise ValueError(f"stop strings must be non-empty strings, got {stop!r}")
    eos = tokenizer.eos_id
    idx, mask = left_pad([tokenizer.encode(p) if p else [eos] for p in prompts], pad_id=eos)
    device = next(model.parameters()).device
    steps = stream(
        model,
        idx.to(device),
        max_new_tokens,
        attention_mask=mask.to(device),
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
        eos_token_id=eos if stop_at_eos else None,
        use_cache=use_cache,
    )
    new: list[list[int]] = [[] for _ in prompts]
    texts = [""] * len(prompts)
    done = [False] * len(prompts)
    for token in steps:
        for row, token_id in enumerate(token.tolist()):
            if done[row]:
                continue
            if stop_at_eos and token_id == eos:
                done[row] = True
                continue
            new[row].append(token_id)
            texts[row] = tokenizer.decode(new[row])
            cut = min((i for i in (texts[row].find(s) for s in stops) if i >= 0), default=None)
            if cut is not None:
                texts[row], done[row] = texts[row][:cut], True
        if on_update is not None:
            on_update(list(texts))
        if all(done):
            break
    return texts[0] if single else texts
