"""Loading a state dict into a model, checked: the one loader of checkpoints and Hugging Face weights.

``load_state_dict`` reports a mismatch as a wall of text, or not at all with ``strict=False``; this
names every missing, unexpected or misshapen tensor, and where the weights came from. A tensor
holding NaN or inf (a damaged file, or a run that diverged) is refused too: loaded, it would only
show up later as a NaN loss or garbage samples.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

_SHOWN = 8  # names listed per kind of problem; a whole wrong model would list hundreds


def tied_parameters(model: nn.Module) -> dict[str, str]:
    """Each parameter name that shares its tensor with an earlier one, mapped to that one's name
    (for GPT: ``{"lm_head.weight": "wte.weight"}``)."""
    first: dict[int, str] = {}
    tied = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        tied_to = first.setdefault(id(parameter), name)
        if tied_to != name:
            tied[name] = tied_to
    return tied


def non_finite(tensor: torch.Tensor) -> str:
    """``""`` when every value of ``tensor`` is finite, else what it holds (``"3 NaN and 1 inf of 64 values"``)."""
    if not tensor.is_floating_point() and not tensor.is_complex():
        return ""
    if bool(torch.isfinite(tensor).all()):
        return ""
    nan = int(torch.isnan(tensor).sum())
    inf = int(torch.isinf(tensor).sum())
    return f"{nan} NaN and {inf} inf of {tensor.numel()} values"


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal tensors, NaN equal to NaN (a tied tensor with a NaN is reported as not finite, not as untied)."""
    if a is b or torch.equal(a, b):
        return True
    return a.shape == b.shape and a.dtype == b.dtype and torch.allclose(a, b, rtol=0, atol=0, equal_nan=True)


def _names(names: list[str]) -> str:
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    return f"{names[:_SHOWN]}{more}"


def load_state_checked(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model``, refusing missing, unexpected and misshapen tensors by name.

    A tied tensor (the LM head is the token embedding) may be given under any of its names; given
    under several, the copies must be equal. A NaN or inf value anywhere is refused, naming the
    tensor. ``source`` says where the weights came from.
    """
    expected = model.state_dict()
    state = dict(state)
    where = f"weights in {source} do not fit this {type(model).__name__}"
    tied = tied_parameters(model)
    for name, tied_to in tied.items():
        if name in state and tied_to in state and not _same(state[name], state[tied_to]):
            raise ValueError(
                f"{where}: {name} differs from {tied_to}, and this model holds one tensor for both (they are tied)"
            )
        if tied_to in state:
            state.setdefault(name, state[tied_to])
        elif name in state:
            state[tied_to] = state[name]
    missing = sorted(name for name in set(expected) - set(state) if name not in tied)  # named once
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        problems = [f"missing {_names(missing)}"] if missing else []
        problems += [f"unexpected {_names(unexpected)}"] if unexpected else []
        raise ValueError(f"{where}: {', '.join(problems)}")
    misshapen = [
        f"{name} has shape {tuple(tensor.shape)}, this model expects {tuple(expected[name].shape)}"
        for name, tensor in state.items()
        if tensor.shape != expected[name].shape
    ]
    if misshapen:
        more = f"; and {len(misshapen) - _SHOWN} more" if len(misshapen) > _SHOWN else ""
        raise ValueError(f"{where}: {'; '.join(misshapen[:_SHOWN])}{more}")
    aliases = {name for name, tied_to in tied.items() if state[name] is state[tied_to]}  # checked once
    broken = [
        f"{name} holds {problem}"
        for name, tensor in state.items()
        if name not in aliases and (problem := non_finite(tensor))
    ]
    if broken:
        more = f"; and {len(broken) - _SHOWN} more" if len(broken) > _SHOWN else ""
        raise ValueError(
            f"weights in {source} are not finite: {'; '.join(broken[:_SHOWN])}{more} "
            "(the file is damaged, or the run that wrote it diverged)"
        )
    model.load_state_dict(state)
