"""Convert Hugging Face-format GPT-1 (``openai-gpt``) and GPT-2 (``gpt2``) checkpoints, both ways.

A checkpoint is a directory with ``config.json`` and ``model.safetensors`` (or a sharded
``model.safetensors.index.json``, or ``pytorch_model.bin`` or its sharded ``pytorch_model.bin.index.json``,
read with ``weights_only=True``). A checkpoint is data from elsewhere, so it is read defensively: a
weights file must be inside the checkpoint directory (an index naming an absolute path, a ``../``
path, or a weights file or shard that is a symlink out of the directory is refused; the Hugging Face
cache's own links into its ``blobs`` folder are allowed), and a damaged ``config.json``, index or
weights file is an error naming the file and what is wrong.
Hugging Face stores the attention and MLP weights as ``Conv1D`` (in, out); this model uses
``nn.Linear`` (out, in), so those matrices are transposed on the way in. This module only converts
(a :class:`GPTConfig` and a state dict under our names); ``GPT.from_pretrained`` builds the model.

Export (:func:`write_pretrained`, ``GPT.save_pretrained``) is the inverse, through the same name maps:
a pre-LN model is written in the ``gpt2`` layout (``GPT2LMHeadModel``), a post-LN one in the
``openai-gpt`` layout (``OpenAIGPTLMHeadModel``), with the tokenizer's files beside the weights, so
that ``transformers`` loads the directory as it loads the released checkpoints, and reading it back
gives every tensor bit for bit. What a layout cannot hold is refused, saying what and why.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..core.io import atomic_directory, disk_full_error, is_disk_full
from .config import GPTConfig
from .weights import non_finite, tied_parameters

if TYPE_CHECKING:
    from ..data.tokenizer import Tokenizer

MODEL_TYPES = ("openai-gpt", "gpt2")

# Hugging Face name (after the "transformer." prefix) -> this model's name, per block.
_BLOCK_NAMES = {
    "attn.c_attn": "attn.qkv",
    "attn.c_proj": "attn.proj",
    "mlp.c_fc": "mlp.fc",
    "mlp.c_proj": "mlp.proj",
    "ln_1": "ln_1",
    "ln_2": "ln_2",
}
_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
_TOP_NAMES = {
    "openai-gpt": {"tokens_embed": "wte", "positions_embed": "wpe"},
    "gpt2": {"wte": "wte", "wpe": "wpe", "ln_f": "ln_f"},
}
# Buffers Hugging Face has saved in some versions: causal masks, not weights.
_BUFFERS = ("attn.bias", "attn.masked_bias")

# Hugging Face activation names -> GPTConfig.activation. The two ports disagree on "gelu":
# modeling_openai maps it to the tanh approximation (as the original GPT-1 code), while GPT-2's
# ACT2FN maps it to the exact erf form.
_ACTIVATIONS = {
    "openai-gpt": {"gelu": "gelu_tanh"},
    "gpt2": {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu"},
}


# config.json fields without a default here: (name, what it is).
_REQUIRED = (
    ("n_layer", "the number of blocks"),
    ("n_embd", "the width d_model"),
    ("n_head", "the number of attention heads"),
    ("vocab_size", "the vocabulary size"),
    ("n_positions", "the context length"),
)


def config_from_hf(hf: dict, source: str = "config.json") -> GPTConfig:
    """Translate a Hugging Face ``config.json`` dict into a :class:`GPTConfig` (``source`` names it in errors)."""
    if not isinstance(hf, dict):
        raise ValueError(f"{source} holds a JSON {type(hf).__name__}; expected an object of config fields")
    if "model_type" not in hf:
        raise ValueError(f"{source} has no 'model_type' field; expected one of {MODEL_TYPES}")
    model_type = hf["model_type"]
    if model_type not in MODEL_TYPES:
        raise ValueError(f"unknown model type {model_type!r}; expected one of {MODEL_TYPES}")
    for field, meaning in _REQUIRED:
        value = hf.get(field)
        if field not in hf:
            raise ValueError(f"{source} has no {field!r} field ({meaning}), which a {model_type} config needs")
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{source}: {field}={value!r}; expected a positive int ({meaning})")
    activation_key = "afn" if model_type == "openai-gpt" else "activation_function"
    activation = hf.get(activation_key, "gelu" if model_type == "openai-gpt" else "gelu_new")
    activations = _ACTIVATIONS[model_type]
    if activation not in activations:
        raise ValueError(f"unsupported {activation_key}={activation!r}; expected one of {sorted(activations)}")
    for flag in ("scale_attn_by_inverse_layer_idx", "add_cross_attention"):
        if hf.get(flag):
            raise ValueError(f"unsupported Hugging Face option {flag}=True (this GPT has no such variant)")
    if hf.get("scale_attn_weights") is False:
        raise ValueError("unsupported Hugging Face option scale_attn_weights=False")
    d_model = hf["n_embd"]
    return GPTConfig(
        n_layer=hf["n_layer"],
        d_model=d_model,
        n_head=hf["n_head"],
        d_ff=hf.get("n_inner") or 4 * d_model,
        vocab_size=hf["vocab_size"],
        n_ctx=hf["n_positions"],
        norm="post" if model_type == "openai-gpt" else "pre",
        activation=activations[activation],
        dropout=hf.get("resid_pdrop", 0.1),
        layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5),
    )


def convert_state_dict(hf_state: dict[str, torch.Tensor], model_type: str) -> dict[str, torch.Tensor]:
    """Rename (and transpose) Hugging Face tensors into this model's state dict."""
    top = _TOP_NAMES[model_type]
    state: dict[str, torch.Tensor] = {}
    for name, tensor in hf_state.items():
        key = name.removeprefix("transformer.")
        if key == "lm_head.weight":  # the same name here; the loader checks it equals wte.weight
            state[key] = tensor
            continue
        if key.startswith("h."):
            _, layer, rest = key.split(".", 2)
            if rest in _BUFFERS:
                continue
            module, _, param = rest.rpartition(".")
            if module not in _BLOCK_NAMES:
                raise ValueError(f"unexpected tensor {name!r} in the checkpoint")
            if rest in _CONV1D:
                tensor = tensor.t()
            state[f"blocks.{layer}.{_BLOCK_NAMES[module]}.{param}"] = tensor.contiguous()
            continue
        module, _, param = key.partition(".")
        if module not in top:
            raise ValueError(f"unexpected tensor {name!r} in the checkpoint")
        state[f"{top[module]}.{param}"] = tensor
    return state


def _read_json(path: Path, what: str) -> dict:
    """A JSON object from ``path``; anything else is a ``ValueError`` naming the file."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        raise ValueError(f"{path} is not valid JSON ({error}); expected {what}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a JSON {type(data).__name__}; expected {what}")
    return data


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """One weights file (safetensors, or a PyTorch ``.bin`` unpickled with ``weights_only``), errors named."""
    try:
        if path.suffix == ".safetensors":
            return load_file(path)
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise ValueError(f"{path} is not a readable weights file ({type(error).__name__}: {error})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors (got a {type(state).__name__})")
    return state


def _allowed_roots(directory: Path) -> list[Path]:
    """Where a shard may really live: the checkpoint directory, and for a Hugging Face cache snapshot
    (``models--org--name/snapshots/REVISION``) the ``blobs`` folder its files link into."""
    root = directory.resolve()
    roots = [root]
    if root.parent.name == "snapshots":
        roots.append(root.parent.parent / "blobs")
    return roots


def _shard_path(directory: Path, shard: object, index: Path) -> Path:
    """The file of a shard named by ``index``, refused unless it is a plain relative name of a file that
    is (also after following symlinks) inside ``directory``."""
    where = f"{index} names the shard {shard!r}"
    if not isinstance(shard, str) or not shard:
        raise ValueError(f"{where}; expected a file name relative to {directory}")
    name = Path(shard)
    if name.is_absolute() or name.drive or ".." in name.parts or "\\" in shard:
        raise ValueError(f"{where}, which is outside the checkpoint directory; expected a file name inside {directory}")
    path = _inside(directory, directory / name, f"{where},")
    if not path.resolve().is_file():
        raise FileNotFoundError(f"{where}, which does not exist in {directory}")
    return path


def _inside(directory: Path, path: Path, where: str) -> Path:
    """``path``, refused when it is a symlink out of the checkpoint directory (and its allowed roots)."""
    real = path.resolve()
    if not any(real.is_relative_to(root) for root in _allowed_roots(directory)):
        raise ValueError(
            f"{where} a symlink to {real}, outside the checkpoint directory; expected a file inside {directory}"
        )
    return path


def _read_sharded(directory: Path, index: Path) -> dict[str, torch.Tensor]:
    weight_map = _read_json(index, "a sharded checkpoint index").get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise ValueError(f"{index} has no 'weight_map' object (tensor name -> shard file)")
    unique = {repr(shard): shard for shard in weight_map.values()}  # any JSON value: a non-string is named below
    shards = [_shard_path(directory, unique[key], index) for key in sorted(unique)]
    state: dict[str, torch.Tensor] = {}
    for shard in shards:
        state.update(_load_tensors(shard))
    return state


def _read_weights(directory: Path) -> dict[str, torch.Tensor]:
    single = directory / "model.safetensors"
    index = directory / "model.safetensors.index.json"
    legacy = directory / "pytorch_model.bin"
    legacy_index = directory / "pytorch_model.bin.index.json"
    if single.exists():
        return _load_tensors(_inside(directory, single, f"{single} is"))
    if index.exists():
        return _read_sharded(directory, index)
    if legacy.exists():
        return _load_tensors(_inside(directory, legacy, f"{legacy} is"))
    if legacy_index.exists():
        return _read_sharded(directory, legacy_index)
    raise FileNotFoundError(
        f"{directory} has no model.safetensors, model.safetensors.index.json, pytorch_model.bin "
        "or pytorch_model.bin.index.json"
    )


def resolve_checkpoint(path_or_name: str | os.PathLike[str]) -> Path:
    """A local directory as is; a hub name (``"gpt2"``) through the Hugging Face cache or hub."""
    path = Path(path_or_name).expanduser()
    if path.is_dir():
        return path
    name = str(path_or_name)
    how = (
        f"{name!r} is not a local directory and could not be fetched from the Hugging Face hub. "
        "Provide a local directory with config.json and model.safetensors, e.g. one written by "
        "transformers' `AutoModelForCausalLM.from_pretrained(name).save_pretrained(directory)` "
        "on a machine with network access."
    )
    try:
        from huggingface_hub import snapshot_download
    except ImportError as error:
        raise FileNotFoundError(how + " (huggingface_hub is not installed)") from error
    patterns = ["config.json", "*.safetensors", "model.safetensors.index.json"]
    try:
        return Path(snapshot_download(name, allow_patterns=patterns, local_files_only=True))
    except Exception:
        pass
    try:
        return Path(snapshot_download(name, allow_patterns=patterns))
    except Exception as error:
        raise FileNotFoundError(how + f" ({type(error).__name__}: {error})") from error


class PretrainedWeights(NamedTuple):
    """What :func:`read_pretrained` returns: everything ``GPT.from_pretrained`` needs."""

    config: GPTConfig
    state: dict[str, torch.Tensor]  # under this model's names, not yet checked against a model
    directory: Path


def read_pretrained(path_or_name: str | os.PathLike[str]) -> PretrainedWeights:
    """The config and converted weights of a Hugging Face-format checkpoint (a directory or hub name)."""
    directory = resolve_checkpoint(path_or_name)
    config_path = directory / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{directory} has no config.json")
    hf_config = _read_json(config_path, "a Hugging Face model config (an object with model_type, n_layer, ...)")
    config = config_from_hf(hf_config, str(config_path))
    state = convert_state_dict(_read_weights(directory), hf_config["model_type"])
    return PretrainedWeights(config, state, directory)


# What an export writes: a directory holding these files and nothing else may be replaced by another export.
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
_ARCHITECTURES = {"gpt2": "GPT2LMHeadModel", "openai-gpt": "OpenAIGPTLMHeadModel"}


def hf_model_type(config: GPTConfig) -> str:
    """The Hugging Face layout that holds ``config`` exactly (``gpt2`` for pre-LN, ``openai-gpt`` for
    post-LN), or a ``ValueError`` saying what that layout lacks."""
    if config.norm == "pre":
        return "gpt2"
    why = "a post-LN (GPT-1) model goes to the openai-gpt layout (OpenAIGPTLMHeadModel), "
    if config.d_ff != 4 * config.d_model:
        raise ValueError(
            f"d_ff={config.d_ff} cannot be exported: {why}whose MLP width is fixed at 4 x n_embd "
            f"= {4 * config.d_model} (it has no n_inner)"
        )
    if config.activation not in _ACTIVATIONS["openai-gpt"].values():
        raise ValueError(
            f"activation={config.activation!r} cannot be exported: {why}whose 'gelu' is the tanh "
            "approximation (activation='gelu_tanh'); it has no exact erf GELU"
        )
    return "openai-gpt"


def config_to_hf(config: GPTConfig, eos_id: int) -> dict:
    """The ``config.json`` of ``config`` (the inverse of :func:`config_from_hf`); ``eos_id`` is the
    tokenizer's ``<|endoftext|>``, which Hugging Face's generation stops at."""
    model_type = hf_model_type(config)
    activation = next(hf for hf, ours in _ACTIVATIONS[model_type].items() if ours == config.activation)
    hf = {
        "architectures": [_ARCHITECTURES[model_type]],
        "model_type": model_type,
        "n_layer": config.n_layer,
        "n_embd": config.d_model,
        "n_head": config.n_head,
        "vocab_size": config.vocab_size,
        "n_positions": config.n_ctx,
        "resid_pdrop": config.dropout,  # one dropout rate here, three there
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "layer_norm_epsilon": config.layer_norm_eps,
        "bos_token_id": eos_id,
        "eos_token_id": eos_id,
        "tie_word_embeddings": True,
    }
    if model_type == "gpt2":
        return hf | {"n_inner": config.d_ff, "activation_function": activation}
    return hf | {"afn": activation}


def export_state_dict(state: dict[str, torch.Tensor], model_type: str) -> dict[str, torch.Tensor]:
    """Rename (and transpose) this model's tensors into Hugging Face's (the inverse of
    :func:`convert_state_dict`); the tied ``lm_head.weight`` must not be in ``state``."""
    blocks = {ours: theirs for theirs, ours in _BLOCK_NAMES.items()}
    top = {ours: theirs for theirs, ours in _TOP_NAMES[model_type].items()}
    hf_state: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if name.startswith("blocks."):
            _, layer, rest = name.split(".", 2)
            module, _, param = rest.rpartition(".")
            if module not in blocks:
                raise ValueError(f"tensor {name!r} has no place in the {model_type} layout")
            key = f"{blocks[module]}.{param}"
            if key in _CONV1D:
                tensor = tensor.t()
            hf_state[f"transformer.h.{layer}.{key}"] = tensor.contiguous()
            continue
        module, _, param = name.partition(".")
        if module not in top:
            raise ValueError(f"tensor {name!r} has no place in the {model_type} layout")
        hf_state[f"transformer.{top[module]}.{param}"] = tensor.contiguous()
    return hf_state


def _exportable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's tensors without the tied head, on the CPU; an untied head or a NaN/inf is refused."""
    tied = tied_parameters(model)
    if tied != {"lm_head.weight": "wte.weight"}:
        raise ValueError(
            f"the LM head is not tied to the token embedding (tied tensors: {tied}); the gpt2 and openai-gpt "
            "layouts hold one matrix for both, so an untied head cannot be exported"
        )
    state = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items() if name not in tied}
    broken = [f"{name} holds {problem}" for name, t in state.items() if (problem := non_finite(t))]
    if broken:
        raise ValueError(f"the weights are not finite ({'; '.join(broken[:4])}): a diverged model is not exported")
    return state


def _check_target(directory: Path, ours: set[str]) -> None:
    """Refuse a ``directory`` that holds anything but an earlier export's files (it is replaced whole)."""
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{directory} is a file; expected a directory to export into (new, empty or an export)")
    if directory.is_dir():
        others = sorted(p.name for p in directory.iterdir() if p.name not in ours)
        if others:
            shown = others[:5] + ([f"and {len(others) - 5} more"] if len(others) > 5 else [])
            raise ValueError(
                f"{directory} holds files an export does not write ({', '.join(shown)}); expected a new or empty "
                "directory, or one an earlier export wrote (it is replaced whole)"
            )


def write_pretrained(model: nn.Module, tokenizer: Tokenizer, directory: str | os.PathLike[str]) -> Path:
    """Write ``model`` and ``tokenizer`` as a Hugging Face checkpoint directory, atomically.

    ``config.json``, ``model.safetensors`` and the tokenizer's files; ``transformers`` loads it with
    ``GPT2LMHeadModel`` (pre-LN) or ``OpenAIGPTLMHeadModel`` (post-LN), :func:`read_pretrained` reads
    back every tensor exactly. Refused, saying why: a model the layout cannot hold (see
    :func:`hf_model_type`), an untied head, non-finite weights, and a tokenizer whose ids the model
    cannot read. The directory is assembled next to its target and renamed into place.
    """
    config = getattr(model, "config", None)
    if not isinstance(config, GPTConfig):
        raise ValueError(
            f"a {type(model).__name__} cannot be exported: the Hugging Face gpt2 and openai-gpt layouts hold "
            "the GPT transformer only (evaluate the LSTM baseline with lm_eval's `workbench` model instead)"
        )
    model_type = hf_model_type(config)
    if tokenizer.vocab_size > config.vocab_size:
        raise ValueError(
            f"the tokenizer has {tokenizer.vocab_size} ids but the model's vocabulary only {config.vocab_size}; "
            "expected the tokenizer the model was trained with"
        )
    hf_config = config_to_hf(config, tokenizer.eos_id)
    tensors = export_state_dict(_exportable_state(model), model_type)
    files = tokenizer.transformers_files(config.n_ctx)
    directory = Path(directory)
    _check_target(directory, {CONFIG_FILE, WEIGHTS_FILE, *files})
    try:
        with atomic_directory(directory) as tmp:
            (tmp / CONFIG_FILE).write_text(json.dumps(hf_config, indent=2))
            save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})  # transformers requires it
            for name, text in files.items():
                (tmp / name).write_text(text)
    except (OSError, SafetensorError) as error:
        if not is_disk_full(error):
            raise
        size = sum(t.numel() * t.element_size() for t in tensors.values())
        raise disk_full_error(directory, size, f"cannot export to {directory}", "Nothing was written.") from error
    return directory
