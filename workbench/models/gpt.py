"""The GPT model: one decoder-only transformer that is GPT-1 or GPT-2 depending on its config.

Weights are stored as ``nn.Linear`` (out, in); Hugging Face's ``Conv1D`` (in, out) layout is
transposed by :mod:`workbench.models.huggingface` when a checkpoint is loaded.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from . import generation, huggingface
from .config import GPTConfig
from .hooks import ActivationCache, HookFunction, HookPoints, at, at_heads, run_with_cache, run_with_hooks, scope
from .kv_cache import KVCache, LayerCache
from .linear_cross_entropy import IGNORE_INDEX, linear_cross_entropy
from .weights import load_state_checked

if TYPE_CHECKING:
    from os import PathLike
    from pathlib import Path

    from ..data.tokenizer import Tokenizer

PastKeyValues = list[tuple[torch.Tensor, torch.Tensor]] | KVCache
"""One ``(key, value)`` pair per layer, each ``[batch, heads, time, head_dim]`` (Hugging Face's
legacy format, grown by concatenation), or a :class:`KVCache` written in place (what decoding uses)."""


@dataclass
class GPTOutput:
    """What :meth:`GPT.forward` returns; optional fields are ``None`` unless requested (``logits``
    too, with ``return_logits=False``)."""

    logits: torch.Tensor | None
    loss: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    past_key_values: PastKeyValues | None = None


def check_targets(targets: torch.Tensor, idx: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """``targets`` as int64 if the next-token loss can be computed from them, else a ValueError saying why.

    Refused: a shape other than ``idx``'s, a non-integer tensor, no position at all (an empty batch
    or sequence), every position ``IGNORE_INDEX`` (both would give a NaN loss), and an id outside
    the vocabulary. Like the input check, the value checks read back to the host once and are
    skipped inside a compiled graph.
    """
    if not isinstance(targets, torch.Tensor) or targets.shape != idx.shape:
        shape = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise ValueError(f"targets shape {shape} must equal idx shape {tuple(idx.shape)}")
    if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool:
        raise ValueError(f"targets must be an integer tensor of token ids, got {targets.dtype}")
    if targets.numel() == 0:
        raise ValueError(
            f"targets of shape {tuple(targets.shape)} hold no position; expected at least one token to "
            "compute the loss on (the loss of nothing is NaN)"
        )
    targets = targets.long()
    if not torch.compiler.is_compiling():
        counted = targets != IGNORE_INDEX
        kept = torch.where(counted, targets, 0)
        n_counted, low, high = torch.stack([counted.sum(), kept.min(), kept.max()]).tolist()
        if n_counted == 0:
            raise ValueError(
                f"every target is IGNORE_INDEX ({IGNORE_INDEX}); expected at least one position to compute "
                "the loss on (the loss of nothing is NaN)"
            )
        if low < 0 or high >= vocab_size:
            raise ValueError(
                f"target id {low if low < 0 else high} is outside the vocabulary [0, {vocab_size}) "
                f"(IGNORE_INDEX={IGNORE_INDEX} marks a position to skip)"
            )
    return targets


LOSS_ALONE_NEEDS_TARGETS = "return_logits=False returns the loss alone, so it needs targets; got targets=None"


def lm_head_and_loss(
    lm_head: nn.Linear, hidden: torch.Tensor, targets: torch.Tensor | None, return_logits: bool = True
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``(logits, loss)`` of a tied LM head over the final hidden states: the loss (mean next-token
    cross-entropy) only with ``targets``; with ``return_logits=False``, ``(None, loss)`` computed by
    :func:`~workbench.models.linear_cross_entropy.linear_cross_entropy` without the logits."""
    if not return_logits:
        return None, linear_cross_entropy(hidden, lm_head.weight, targets)
    logits = lm_head(hidden)
    if targets is None:
        return logits, None
    return logits, F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.dropout = config.dropout
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        past: tuple[torch.Tensor, torch.Tensor] | LayerCache | None = None,
        mask: torch.Tensor | None = None,
        hooks: HookPoints | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``mask`` (True = attend, ``[batch, 1, query, key]``, causality included) is only given
        for padded batches; without it the causal structure alone decides. ``hooks``: the ``attn.``
        hook points of this layer (:mod:`workbench.models.hooks`)."""
        q, k, v = split_heads(self.qkv(x), self.n_head)
        if hooks is not None:
            q, k, v = (at_heads(hooks, f"hook_{name}", heads) for name, heads in zip("qkv", (q, k, v)))
        if isinstance(past, LayerCache):
            k, v = past.update(k, v)
        elif past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        n_query, n_key = q.size(2), k.size(2)
        dropout = self.dropout if self.training else 0.0
        if (hooks is not None and hooks.reads_pattern()) or (dropout and q.device.type == "cpu"):
            # The explicit path: when a hook reads the attention matrix, and for attention dropout on
            # a CPU, where SDPA falls back to its math path and that path's extra masking and checks
            # cost a quarter of attention's time in bf16. It draws the same dropout mask as SDPA.
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))
            allowed = _causal_mask(n_query, n_key, q.device) if mask is None else mask
            scores = at(hooks, "hook_attn_scores", scores.masked_fill(~allowed, float("-inf")))
            attention = at(hooks, "hook_pattern", scores.softmax(dim=-1))
            y = F.dropout(attention, dropout, self.training) @ v
        elif mask is not None:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        elif n_query == n_key:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        elif n_query == 1:
            # One new token with a cache attends to every cached position: no mask needed.
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        else:
            causal = _causal_mask(n_query, n_key, q.device)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=causal, dropout_p=dropout)
        return self.resid_dropout(self.proj(merge_heads(at_heads(hooks, "hook_z", y)))), (k, v)


SPLIT_HEADS = "batch time (three head d) -> three batch head time d"
MERGE_HEADS = "batch head time d -> batch time (head d)"
"""The attention's head split and merge in einops' notation. :func:`split_heads` and :func:`merge_heads`
compute them with plain views instead, which a test holds equal to these: einops' own work per call
adds about 12 microseconds per layer and decoding step on a CPU (``bench/bench_hooks.py``: 0.63x the
views' calls per second), a few percent of a small model's step (1.5 ms for gpt2-mini, batch 1)."""


def split_heads(qkv: torch.Tensor, n_head: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Queries, keys and values ``[batch, head, time, head_dim]`` from the fused projection: :data:`SPLIT_HEADS`."""
    n_batch, n_time, _ = qkv.shape
    return qkv.view(n_batch, n_time, 3, n_head, -1).permute(2, 0, 3, 1, 4).unbind(0)


def merge_heads(y: torch.Tensor) -> torch.Tensor:
    """The heads' outputs side by side, ``[batch, time, d_model]``: :data:`MERGE_HEADS`."""
    n_batch, n_head, n_time, head_dim = y.shape
    return y.transpose(1, 2).reshape(n_batch, n_time, n_head * head_dim)


def _causal_mask(n_query: int, n_key: int, device: torch.device) -> torch.Tensor:
    """Boolean mask (True = attend) for queries that are the last ``n_query`` of ``n_key`` positions."""
    return torch.ones(n_query, n_key, dtype=torch.bool, device=device).tril(n_key - n_query)


def _padding_mask(
    attention_mask: torch.Tensor, idx: torch.Tensor, past_length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions ``[batch, time]`` and the attention mask ``[batch, 1, time, past + time]``.

    Every query may attend to itself, so that a padding query (whose keys are all padding) gets a
    finite softmax instead of NaNs that would leak through the cache into later layers.
    """
    n_batch, n_query = idx.shape
    n_key = past_length + n_query
    if attention_mask.shape != (n_batch, n_key):
        raise ValueError(
            f"attention_mask shape {tuple(attention_mask.shape)} must be (batch, past + time) = {(n_batch, n_key)}"
        )
    keep = attention_mask.to(device=idx.device, dtype=torch.bool)
    positions = (keep.long().cumsum(dim=1) - 1).clamp(min=0)[:, past_length:]
    keys = torch.arange(n_key, device=idx.device)
    itself = keys == keys[past_length:, None]
    allowed = _causal_mask(n_query, n_key, idx.device) & (keep[:, None, :] | itself)
    return positions, allowed[:, None]


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.d_model, config.d_ff)
        self.proj = nn.Linear(config.d_ff, config.d_model)
        self.approximate = "tanh" if config.activation == "gelu_tanh" else "none"
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, hooks: HookPoints | None = None) -> torch.Tensor:
        activation = at(hooks, "hook_pre", self.fc(x))
        return self.dropout(self.proj(at(hooks, "hook_post", F.gelu(activation, approximate=self.approximate))))


def layer_norm(norm: nn.LayerNorm, x: torch.Tensor, hooks: HookPoints | None) -> torch.Tensor:
    """``norm(x)``; with hooks at its ``hook_scale`` or ``hook_normalized`` point, computed in the steps
    those points name (the same values up to rounding)."""
    if hooks is None:
        return norm(x)
    centred = x - x.mean(dim=-1, keepdim=True)
    scale = hooks("hook_scale", (centred.pow(2).mean(dim=-1, keepdim=True) + norm.eps).sqrt())
    return hooks("hook_normalized", centred / scale) * norm.weight + norm.bias


class Block(nn.Module):
    """One transformer layer; ``norm`` decides post-LN (GPT-1) or pre-LN (GPT-2)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.pre_norm = config.norm == "pre"
        self.ln_1 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x, past=None, mask=None, hooks: HookPoints | None = None):
        """``(output, present keys and values)``; ``hooks``: this block's hook points (``blocks.{i}.``)."""
        x = at(hooks, "hook_resid_pre", x)
        attn_hooks, mlp_hooks = scope(hooks, "attn."), scope(hooks, "mlp.")
        if self.pre_norm:
            a, present = self.attn(layer_norm(self.ln_1, x, scope(hooks, "ln1.")), past, mask, attn_hooks)
            x = at(hooks, "hook_resid_mid", x + at(hooks, "hook_attn_out", a))
            m = self.mlp(layer_norm(self.ln_2, x, scope(hooks, "ln2.")), mlp_hooks)
            x = at(hooks, "hook_resid_post", x + at(hooks, "hook_mlp_out", m))
        else:
            a, present = self.attn(x, past, mask, attn_hooks)
            x = layer_norm(self.ln_1, x + at(hooks, "hook_attn_out", a), scope(hooks, "ln1."))
            x = at(hooks, "hook_resid_mid", x)
            m = at(hooks, "hook_mlp_out", self.mlp(x, mlp_hooks))
            x = at(hooks, "hook_resid_post", layer_norm(self.ln_2, x + m, scope(hooks, "ln2.")))
        return x, present


class GPT(nn.Module):
    """Decoder-only transformer with learned positions and an LM head tied to the token embedding."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"GPT expects a GPTConfig, got {type(config).__name__}")
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.d_model)
        self.wpe = nn.Embedding(config.n_ctx, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps) if config.final_norm else None
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)
        if config.norm == "pre":
            # GPT-2: scale the init of layers that write into the residual stream by 1/sqrt(2L),
            # since each block adds two such contributions.
            std = 0.02 / math.sqrt(2 * config.n_layer)
            for block in self.blocks:
                nn.init.normal_(block.attn.proj.weight, mean=0.0, std=std)
                nn.init.normal_(block.mlp.proj.weight, mean=0.0, std=std)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    @classmethod
    def from_pretrained(cls, path_or_name: str | PathLike[str]) -> GPT:
        """Load a Hugging Face ``openai-gpt`` or ``gpt2`` checkpoint (a directory or hub name) exactly."""
        config, state, directory = huggingface.read_pretrained(path_or_name)
        model = cls(config)
        load_state_checked(model, state, str(directory))
        return model.eval()

    def save_pretrained(self, directory: str | PathLike[str], tokenizer: Tokenizer) -> Path:
        """Write this model and its ``tokenizer`` as a Hugging Face checkpoint that ``transformers`` and
        :meth:`from_pretrained` load exactly (:func:`~workbench.models.huggingface.write_pretrained`)."""
        return huggingface.write_pretrained(self, tokenizer, directory)

    def num_parameters(self) -> int:
        """Unique parameters (the tied LM head is counted once)."""
        return sum(p.numel() for p in self.parameters())

    def check_input(self, idx: torch.Tensor, past_length: int) -> None:
        """Refuse token ids this model cannot read, saying why (public: generation checks prompts eagerly)."""
        if not isinstance(idx, torch.Tensor):
            raise ValueError(f"expected token ids as an integer tensor [batch, time], got a {type(idx).__name__}")
        if idx.dim() != 2 or idx.dtype not in (torch.int64, torch.int32):
            raise ValueError(
                f"expected token ids as an integer tensor [batch, time], got {idx.dtype} of shape {tuple(idx.shape)}"
            )
        length = past_length + idx.size(1)
        if length > self.config.n_ctx:
            raise ValueError(
                f"sequence length {length} exceeds the context n_ctx={self.config.n_ctx}; "
                "crop or split the input (nothing is truncated silently)"
            )
        # The value check reads the ids back to the host; a compiled graph skips it (the Trainer
        # checks nothing per step there), eager calls always run it.
        if idx.numel() and not torch.compiler.is_compiling():
            low, high = (int(v) for v in torch.aminmax(idx))
            if low < 0 or high >= self.config.vocab_size:
                bad = low if low < 0 else high
                raise ValueError(f"token id {bad} is outside the vocabulary [0, {self.config.vocab_size})")

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        past_key_values: PastKeyValues | None = None,
        use_cache: bool = False,
        attention_mask: torch.Tensor | None = None,
        return_logits: bool = True,
    ) -> GPTOutput:
        """Logits for every position and, with ``targets``, the mean next-token cross-entropy.

        ``return_logits=False`` (with ``targets``) returns the loss alone, computed by
        :func:`~workbench.models.linear_cross_entropy.linear_cross_entropy` without the
        ``[batch, time, vocab]`` logits: what a training step wants (faster, less memory).

        ``targets`` has the shape of ``idx`` (already shifted: ``targets[:, t]`` is the token after
        ``idx[:, t]``); positions equal to ``IGNORE_INDEX`` are skipped. ``hidden_states`` follows
        Hugging Face: the embedding output, then each block's output, the last one after the final
        LayerNorm where the model has one (GPT-2), i.e. what the LM head and task heads read.

        ``attention_mask`` (``[batch, past + time]``, 1 = token, 0 = padding) is for padded batches,
        as in Hugging Face: padding is never attended to, and positions count real tokens only,
        so a left-padded row computes what it would alone. Outputs at padding are meaningless.
        """
        if targets is not None:
            if not isinstance(idx, torch.Tensor):
                self.check_input(idx, 0)  # refuses it, naming what it is
            # before the body, so that its read-back to the host never waits for the forward pass
            targets = check_targets(targets, idx, self.config.vocab_size)
        elif not return_logits:
            raise ValueError(LOSS_ALONE_NEEDS_TARGETS)
        hidden, hidden_states, attentions, presents = self.transformer(
            idx, past_key_values, output_hidden_states, output_attentions, use_cache, attention_mask
        )
        logits, loss = lm_head_and_loss(self.lm_head, hidden, targets, return_logits)
        return GPTOutput(logits, loss, hidden_states, attentions, presents)

    def transformer(
        self,
        idx: torch.Tensor,
        past_key_values: PastKeyValues | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
        use_cache: bool = False,
        attention_mask: torch.Tensor | None = None,
        hooks: HookPoints | None = None,
    ):
        """The body without the LM head: final hidden state ``[batch, time, d_model]`` and extras.

        With a :class:`KVCache` as ``past_key_values`` (and ``use_cache``), the new positions are
        written into it and the cache itself is returned as the presents. ``hooks`` are run at the
        hook points of :mod:`workbench.models.hooks` (:meth:`run_with_cache`, :meth:`run_with_hooks`)."""
        in_place = isinstance(past_key_values, KVCache)
        if in_place and not use_cache:
            raise ValueError("a KVCache is written in place, so it needs use_cache=True")
        if in_place:
            past_length, pasts = past_key_values.length, past_key_values.layers
        else:
            past_length = past_key_values[0][0].size(2) if past_key_values else 0
            pasts = past_key_values or [None] * len(self.blocks)
        self.check_input(idx, past_length)
        mask = None
        if attention_mask is None:
            positions = torch.arange(past_length, past_length + idx.size(1), device=idx.device)
        else:
            positions, mask = _padding_mask(attention_mask, idx, past_length)
        attentions = [] if output_attentions else None
        if output_attentions:  # the attention patterns, as a hook reads them
            pattern_names = [f"blocks.{i}.attn.hook_pattern" for i in range(len(self.blocks))]
            record = {name: [lambda pattern, _: attentions.append(pattern)] for name in pattern_names}
            hooks = (hooks or HookPoints({})).with_functions(record)
        embedding, position = self.wte(idx), self.wpe(positions)
        if hooks is not None:
            embedding = hooks("hook_embed", embedding)
            position = hooks("hook_pos_embed", position.expand_as(embedding))
        x = self.drop(embedding + position)
        hidden_states = [x] if output_hidden_states else None
        presents = [] if use_cache else None
        for i, (block, past) in enumerate(zip(self.blocks, pasts, strict=True)):
            x, present = block(x, past, mask, scope(hooks, f"blocks.{i}."))
            if use_cache and not in_place:
                presents.append(present)
            if output_hidden_states and i < len(self.blocks) - 1:
                hidden_states.append(x)
        if in_place:
            past_key_values.advance(idx.size(1))
            presents = past_key_values
        if self.ln_f is not None:
            x = layer_norm(self.ln_f, x, scope(hooks, "ln_final."))
        if output_hidden_states:
            hidden_states.append(x)
        return (
            x,
            tuple(hidden_states) if output_hidden_states else None,
            tuple(attentions) if output_attentions else None,
            presents,
        )

    def run_with_cache(
        self, idx: torch.Tensor, names: Sequence[str] | None = None, **options
    ) -> tuple[torch.Tensor | None, ActivationCache]:
        """``(logits, activations at the named hook points)``: :func:`workbench.models.hooks.run_with_cache`."""
        return run_with_cache(self, idx, names, **options)

    def run_with_hooks(self, idx: torch.Tensor, functions: Mapping[str, HookFunction], **options) -> torch.Tensor:
        """The logits with ``functions`` set at hook points: :func:`workbench.models.hooks.run_with_hooks`."""
        return run_with_hooks(self, idx, functions, **options)

    def generate(self, idx: torch.Tensor, max_new_tokens: int, **options) -> torch.Tensor:
        """Continue each row of ``idx``; options and behaviour: :func:`workbench.models.generation.generate`."""
        return generation.generate(self, idx, max_new_tokens, **options)

    def stream(self, idx: torch.Tensor, max_new_tokens: int, **options) -> Iterator[torch.Tensor]:
        """:meth:`generate` one step at a time (:func:`workbench.models.generation.stream`)."""
        return generation.stream(self, idx, max_new_tokens, **options)
