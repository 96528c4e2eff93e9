"""Named hook points in a GPT's forward pass: read what flows through them (the activation cache), or
change it (patching, ablation), by name.

Interpretability work reads and edits a transformer at named points. The names are
TransformerLens's (``hook_embed``, ``blocks.{i}.hook_resid_pre``, ``blocks.{i}.attn.hook_pattern``,
``blocks.{i}.attn.hook_z``, ``ln_final.hook_normalized`` ...), with the meaning its
``HookedTransformer`` gives them on weights loaded without processing
(``from_pretrained_no_processing``: no LayerNorm folding, no centring), so that code and intuitions
written for it carry over to GPT-2 here. A post-LN block (GPT-1), which TransformerLens cannot build
(its issue 773), has the same names at the same places: ``hook_resid_mid`` is LayerNorm 1's output
there, ``hook_resid_post`` LayerNorm 2's, each the stream the next sublayer reads and adds to
(:func:`hook_names` lists both orders).

A hook function takes ``(tensor, name)`` and returns a tensor of the same shape to put in its place,
or ``None`` to leave it (after editing it in place, or only reading it). The model calls hook points
only where a function is set: a forward pass without hooks computes exactly what it computes without
this module, on the fused attention path. A function at ``attn.hook_attn_scores`` or
``attn.hook_pattern`` needs the attention matrix, so that layer runs the explicit attention path (the
one ``output_attentions`` takes); one at an ``ln*.hook_scale`` or ``ln*.hook_normalized`` point
computes that LayerNorm in steps. Both give the same values as the fused ops up to rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import torch
from einops import einsum, rearrange

from .config import GPTConfig

if TYPE_CHECKING:
    from .gpt import GPT

HookFunction = Callable[[torch.Tensor, str], "torch.Tensor | None"]
"""``function(tensor, name)``: a tensor of the same shape to use instead, or ``None`` to keep it."""

ATTENTION_POINTS = (
    "attn.hook_q",  # [batch, pos, head, head_dim], as are k, v and z
    "attn.hook_k",
    "attn.hook_v",
    "attn.hook_attn_scores",  # [batch, head, query, key]: scaled, masked with -inf, before the softmax
    "attn.hook_pattern",  # [batch, head, query, key]: the softmax
    "attn.hook_z",  # each head's output, pattern @ v, before the output projection
    "hook_attn_out",  # [batch, pos, d_model]: the attention sublayer's output, projection and bias included
)
MLP_POINTS = ("mlp.hook_pre", "mlp.hook_post", "hook_mlp_out")  # [batch, pos, d_ff] before / after GELU; output


def _layer_norm_points(name: str) -> tuple[str, str]:
    # hook_scale [batch, pos, 1]: sqrt(variance + eps); hook_normalized: the centred input over it,
    # before the LayerNorm's gain and bias (TransformerLens's meaning).
    return f"{name}.hook_scale", f"{name}.hook_normalized"


BLOCK_POINTS = {
    "pre": (
        "hook_resid_pre",
        *_layer_norm_points("ln1"),
        *ATTENTION_POINTS,
        "hook_resid_mid",  # resid_pre + attn_out
        *_layer_norm_points("ln2"),
        *MLP_POINTS,
        "hook_resid_post",  # resid_mid + mlp_out
    ),
    "post": (
        "hook_resid_pre",
        *ATTENTION_POINTS,
        *_layer_norm_points("ln1"),
        "hook_resid_mid",  # LN1(resid_pre + attn_out)
        *MLP_POINTS,
        *_layer_norm_points("ln2"),
        "hook_resid_post",  # LN2(resid_mid + mlp_out)
    ),
}
"""Each block's hook points in the order a forward pass meets them, by ``GPTConfig.norm``."""

PATTERN_POINTS = ("hook_attn_scores", "hook_pattern")
"""Attention points that need the attention matrix, which the fused path never forms."""


def hook_names(config: GPTConfig) -> list[str]:
    """Every hook point of a model with this config, in the order a forward pass meets them."""
    blocks = [f"blocks.{i}.{point}" for i in range(config.n_layer) for point in BLOCK_POINTS[config.norm]]
    final = list(_layer_norm_points("ln_final")) if config.final_norm else []
    return ["hook_embed", "hook_pos_embed", *blocks, *final]


def residual_stream_names(config: GPTConfig) -> list[str]:
    """The residual stream after each layer, ``n_layer + 1`` names: the embeddings' sum
    (``blocks.0.hook_resid_pre``), then each block's output (``hook_resid_post``)."""
    return ["blocks.0.hook_resid_pre", *(f"blocks.{i}.hook_resid_post" for i in range(config.n_layer))]


def _describe(config: GPTConfig) -> str:
    """The valid names in one line: the block points once, with the range of block indices."""
    final = ", ".join(_layer_norm_points("ln_final")) if config.final_norm else "(no final LayerNorm)"
    return (
        f"hook_embed, hook_pos_embed; blocks.{{0..{config.n_layer - 1}}}. + one of "
        f"{', '.join(BLOCK_POINTS[config.norm])}; {final}"
    )


class HookPoints:
    """The functions one forward pass runs at its hook points, by name; a block reads its own part
    through :meth:`scope` (``blocks.2.`` -> its attention's ``attn.``), where names are relative."""

    def __init__(self, functions: Mapping[str, Sequence[HookFunction]], prefix: str = "") -> None:
        self.functions = {name: list(fs) for name, fs in functions.items() if fs}
        self.prefix = prefix

    def __contains__(self, name: str) -> bool:
        return name in self.functions

    def scope(self, prefix: str) -> HookPoints | None:
        """The hook points under ``prefix`` (names relative to it), or ``None`` when none has a function:
        the caller's signal to take its plain path."""
        inner = {name[len(prefix) :]: fs for name, fs in self.functions.items() if name.startswith(prefix)}
        return HookPoints(inner, self.prefix + prefix) if inner else None

    def reads_pattern(self) -> bool:
        """Whether a function is set where only the explicit attention path has a tensor to give."""
        return any(point in self.functions for point in PATTERN_POINTS)

    def with_functions(self, functions: Mapping[str, Sequence[HookFunction]]) -> HookPoints:
        """These hook points and ``functions`` too (run after the ones already set at the same point)."""
        merged = {name: list(fs) for name, fs in self.functions.items()}
        for name, fs in functions.items():
            merged.setdefault(name, []).extend(fs)
        return HookPoints(merged, self.prefix)

    def __call__(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` passed through the functions at ``name`` in turn."""
        full_name = self.prefix + name
        for function in self.functions.get(name, ()):
            replaced = function(tensor, full_name)
            if replaced is not None:
                if not isinstance(replaced, torch.Tensor) or replaced.shape != tensor.shape:
                    shape = tuple(replaced.shape) if isinstance(replaced, torch.Tensor) else type(replaced).__name__
                    raise ValueError(
                        f"the hook at {full_name} returned {shape}; expected a tensor of shape "
                        f"{tuple(tensor.shape)} (or None to keep the tensor it was given)"
                    )
                tensor = replaced
        return tensor


def at(hooks: HookPoints | None, name: str, tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` through the hook point ``name``, where there are hooks; the forward pass's call site."""
    return tensor if hooks is None else hooks(name, tensor)


def scope(hooks: HookPoints | None, prefix: str) -> HookPoints | None:
    """:meth:`HookPoints.scope` of ``hooks``, where there are hooks."""
    return None if hooks is None else hooks.scope(prefix)


def at_heads(hooks: HookPoints | None, name: str, heads: torch.Tensor) -> torch.Tensor:
    """A ``[batch, head, pos, head_dim]`` tensor through the hook point ``name``, which shows it in
    TransformerLens's ``[batch, pos, head, head_dim]`` layout (views both ways: no copy)."""
    if hooks is None or name not in hooks:
        return heads
    shown = hooks(name, rearrange(heads, "batch head pos d -> batch pos head d"))
    return rearrange(shown, "batch pos head d -> batch head pos d")


def hook_points(config: GPTConfig, functions: Mapping[str, HookFunction | Sequence[HookFunction]]) -> HookPoints:
    """:class:`HookPoints` from ``{name: function or [functions]}``, refusing a name this model does not
    have (listing those it has) and a function that is not callable."""
    if not isinstance(functions, Mapping):
        raise ValueError(f"hooks must be a mapping {{hook name: function}}, got {type(functions).__name__}")
    valid = set(hook_names(config))
    checked = {}
    for name, fs in functions.items():
        if name not in valid:
            raise ValueError(f"unknown hook point {name!r} for this model; its hook points are: {_describe(config)}")
        fs = [fs] if callable(fs) else fs
        if not isinstance(fs, (list, tuple)) or not all(callable(f) for f in fs):
            raise ValueError(
                f"the hook at {name} must be a function (tensor, name) -> tensor or None, or a list of them; got {fs!r}"
            )
        checked[name] = fs
    return HookPoints(checked)


class ActivationCache(Mapping[str, torch.Tensor]):
    """What :func:`run_with_cache` recorded: hook name -> tensor, in the order the forward pass met them."""

    def __init__(self, activations: dict[str, torch.Tensor], model: GPT) -> None:
        self.activations = activations
        self.model = model

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self.activations:
            raise KeyError(
                f"{name!r} was not cached; cached: {list(self.activations) or 'nothing'} "
                "(run_with_cache's names choose what is kept)"
            )
        return self.activations[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.activations)

    def __len__(self) -> int:
        return len(self.activations)

    def accumulated_resid(self, apply_ln: bool = False) -> torch.Tensor:
        """The residual stream after each layer, ``[n_layer + 1, batch, pos, d_model]``: layer 0 the
        embeddings, layer ``l`` block ``l``'s output (:func:`residual_stream_names`, which must be cached).

        With ``apply_ln``, each is read through the final LayerNorm, where the model has one: what the
        LM head would read if the network ended there (the logit lens). A post-LN model's blocks end
        in a LayerNorm of their own, and it has no final one.
        """
        states = [self[name] for name in residual_stream_names(self.model.config)]
        if apply_ln and self.model.ln_f is not None:
            states = [self.model.ln_f(state) for state in states]
        return torch.stack(states)

    def head_results(self, layer: int) -> torch.Tensor:
        """Each head's contribution to the residual stream at ``layer``, ``[batch, pos, head, d_model]``:
        its ``hook_z`` through its slice of the output projection. Summed over heads, plus the projection's
        bias, it is ``hook_attn_out`` (TransformerLens's ``attn.hook_result``, computed from the cache)."""
        z = self[f"blocks.{layer}.attn.hook_z"]
        weight = rearrange(self.model.blocks[layer].attn.proj.weight, "model (head d) -> head d model", d=z.size(-1))
        return einsum(z, weight, "batch pos head d, head d model -> batch pos head model")


def run_with_hooks(
    model: GPT,
    idx: torch.Tensor,
    hooks: Mapping[str, HookFunction | Sequence[HookFunction]],
    *,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The logits ``[batch, time, vocab]`` of a forward pass with ``hooks`` ``{name: function}`` set:
    what patching and ablation run, e.g. ``{"blocks.1.attn.hook_z": zero_head_3}``."""
    return run_with_cache(model, idx, names=[], hooks=hooks, attention_mask=attention_mask)[0]


def run_with_cache(
    model: GPT,
    idx: torch.Tensor,
    names: Sequence[str] | None = None,
    *,
    hooks: Mapping[str, HookFunction | Sequence[HookFunction]] | None = None,
    attention_mask: torch.Tensor | None = None,
    return_logits: bool = True,
) -> tuple[torch.Tensor | None, ActivationCache]:
    """``(logits, cache)``: the forward pass's logits and the activations at ``names`` (every hook
    point if ``None``), as they flowed on, after any of ``hooks`` at the same point.

    ``return_logits=False`` skips the LM head (logits ``None``) when only the cache is wanted.
    Gradients are not stopped: call it under ``torch.no_grad()`` to inspect.
    """
    if names is None:
        names = hook_names(model.config)
    elif isinstance(names, str) or not all(isinstance(name, str) for name in names):
        raise ValueError(f"names must be a list of hook names (or None for all), got {names!r}")
    activations: dict[str, torch.Tensor] = {}

    def record(tensor: torch.Tensor, name: str) -> None:
        activations[name] = tensor

    points = hook_points(model.config, hooks or {}).with_functions(
        hook_points(model.config, {name: record for name in names}).functions
    )
    hidden = model.transformer(idx, attention_mask=attention_mask, hooks=points)[0]
    logits = model.lm_head(hidden) if return_logits else None
    return logits, ActivationCache(activations, model)
