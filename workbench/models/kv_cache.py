"""A key/value cache preallocated for the whole context and written in place: what decoding reuses.

The simplest cache, a ``(key, value)`` pair per layer grown with ``torch.cat`` at every step, copies
all of itself every step: at a small model's size that copy was a quarter of a decoding step. Here
each layer's keys and values live in one buffer of ``n_ctx`` positions, allocated at the first
write (with the batch, heads and dtype of what is written), and a step writes only its new positions.
"""

from __future__ import annotations

import torch


class KVCache:
    """Every layer's keys and values, ``[batch, heads, n_ctx, head_dim]`` each, of which the first
    :attr:`length` positions are filled. Pass it as ``past_key_values`` with ``use_cache=True``:
    the model writes the new positions of every layer, then :meth:`advance` counts them."""

    def __init__(self, n_layer: int, n_ctx: int) -> None:
        self.n_ctx = n_ctx
        self.length = 0
        self.layers = [LayerCache(self) for _ in range(n_layer)]

    def advance(self, n_positions: int) -> None:
        self.length += n_positions

    def reset(self) -> None:
        """Empty it (the buffers are kept), e.g. when a sliding window moves and positions change."""
        self.length = 0


class LayerCache:
    """One layer's part of a :class:`KVCache`."""

    def __init__(self, cache: KVCache) -> None:
        self.cache = cache
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    def update(self, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new positions ``[batch, heads, new, head_dim]``; return the keys and values of
        every position so far (views of the buffers)."""
        start = self.cache.length
        end = start + key.size(2)
        if end > self.cache.n_ctx:
            raise ValueError(f"the cache holds {self.cache.n_ctx} positions; {start} + {key.size(2)} do not fit")
        if self.keys is None or self.keys.shape[:2] != key.shape[:2] or self.keys.dtype != key.dtype:
            shape = (*key.shape[:2], self.cache.n_ctx, key.size(3))
            self.keys = key.new_empty(shape)
            self.values = value.new_empty(shape)
        self.keys[:, :, start:end] = key
        self.values[:, :, start:end] = value
        return self.keys[:, :, :end], self.values[:, :, :end]
