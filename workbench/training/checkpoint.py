"""Checkpoints: a directory per step, written whole or not at all, with no pickle anywhere.

Layout of ``RUN_DIR/checkpoints/step-00001000/``:

- ``model.safetensors``: the weights, under the model's own parameter names (never ``module.`` or
  ``_orig_mod.``); a tied tensor is stored once and its other names are listed in the metadata.
- ``optimizer.safetensors``: the optimizer's per-parameter tensors, keyed ``INDEX.NAME``.
- ``trainer.json``: everything else (model and train config, step, schedule, sampler and RNG
  states, the optimizer's parameter names and hyperparameters).
- ``history.csv``: the logged metrics up to this step, so a resumed run continues its history.
- ``hashes.json``: the size and SHA-256 of each file above, recorded as it is written. A bit flipped
  on disk inside tensor data leaves a readable file of finite values, which only a hash can tell from
  the one written; each file is checked against it when read (hashed once per process while its size
  and mtime stay the same), and ``python -m workbench verify RUN_DIR`` checks every checkpoint of a
  run. A checkpoint written before hashes were recorded has no ``hashes.json`` and is read unchecked.

The directory is assembled under a hidden temporary name, flushed to disk and renamed into place:
a crash or Ctrl-C at any moment leaves either the previous set of checkpoints or the new one; a full
disk is reported with the space the checkpoint needs. Reading is checked just as strictly: a
damaged or truncated file, a file whose hash is not the one recorded, a missing field or a NaN/inf
weight is a :class:`CheckpointError` that names the file and what is wrong with it, never a parser's
traceback or a silently broken model.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from ..core.io import atomic_directory, disk_full_error, is_disk_full
from ..data.sources import file_sha256, sha256_file
from ..data.tokenizer import Tokenizer
from ..data.vocabulary import trained_tokenizer
from ..models.config import GPTConfig
from ..models.gpt import GPT
from ..models.lstm import LSTMConfig, LSTMLanguageModel
from ..models.weights import load_state_checked, non_finite

CHECKPOINTS = "checkpoints"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
STATE_FILE = "trainer.json"
HISTORY_FILE = "history.csv"
HASHES_FILE = "hashes.json"
_STEP_DIR = re.compile(r"step-(\d+)")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: damaged, truncated, missing a field, or holding NaN/inf."""


class MissingFieldError(CheckpointError, KeyError):
    """A field absent from ``trainer.json`` (a ``KeyError`` too, for code that falls back on one)."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


class CheckpointState(dict):
    """``trainer.json`` as a dict whose missing fields are named, with the file, when looked up."""

    def __init__(self, data: dict, path: Path):
        super().__init__(data)
        self.path = path

    def __missing__(self, key):
        raise MissingFieldError(
            f"{self.path} has no {key!r} field (fields present: {sorted(self)}); the checkpoint is damaged "
            "or was written by another version of the workbench"
        )


def checkpoint_path(run_dir: str | os.PathLike[str], step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"step-{step:08d}"


def checkpoint_step(path: str | os.PathLike[str]) -> int:
    match = _STEP_DIR.fullmatch(Path(path).name)
    if not match:
        raise ValueError(f"{path} is not a checkpoint directory (expected a name like step-00001000)")
    return int(match.group(1))


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary directories are never listed)."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _STEP_DIR.fullmatch(p.name) and (p / STATE_FILE).is_file()]
    return sorted(found, key=checkpoint_step)


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    checkpoints = list_checkpoints(run_dir)
    return checkpoints[-1] if checkpoints else None


def remove_stale_temporaries(run_dir: str | os.PathLike[str]) -> None:
    """Delete half-written checkpoint directories left by a killed process."""
    root = Path(run_dir) / CHECKPOINTS
    if root.is_dir():
        for path in root.glob(".step-*.tmp"):  # also matches removals cut short
            shutil.rmtree(path, ignore_errors=True)


def remove_checkpoint(path: Path) -> None:
    """Delete a checkpoint; it is renamed to a temporary name first so it never appears half-deleted."""
    doomed = path.with_name(f".{path.name}.deleted.tmp")
    os.replace(path, doomed)
    shutil.rmtree(doomed)


def log_spaced_steps(steps: int, count: int) -> tuple[int, ...]:
    """About ``count`` distinct steps from 1 to ``steps``, evenly spaced on a log axis.

    For keeping checkpoints along pretraining whose evaluation is plotted against log(updates).
    """
    if steps < 1 or count < 1:
        raise ValueError(f"steps and count must be positive, got steps={steps}, count={count}")
    return tuple(int(s) for s in np.unique(np.round(np.geomspace(1, steps, count)).astype(int)))


def unique_state_dict(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The state dict with each shared tensor once (the tied LM head is ``wte.weight``'s alias).

    Returns ``(tensors, aliases)``, ``aliases`` mapping each dropped name to the kept one.
    """
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[int, int], str] = {}
    for name, tensor in model.state_dict().items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset())
        if key in seen and tensor.shape == tensors[seen[key]].shape:
            aliases[name] = seen[key]
        else:
            seen[key] = name
            tensors[name] = tensor.detach().contiguous().cpu()
    return tensors, aliases


def save_weights(model: nn.Module, path: Path, config: dict | None = None) -> None:
    """Write ``model``'s weights to a safetensors file (not atomic by itself: write into a temp dir)."""
    tensors, aliases = unique_state_dict(model)
    metadata = {"aliases": json.dumps(aliases, sort_keys=True)}
    if config is not None:
        metadata["config"] = json.dumps(config, sort_keys=True)
    save_file(tensors, str(path), metadata=metadata)


def load_weights(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load a checkpoint's weights (its directory or its ``model.safetensors``) into ``model``,
    checked by :func:`~workbench.models.weights.load_state_checked` (names, shapes, finite values)."""
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    tensors, metadata = read_safetensors(path, check_finite=False)  # load_state_checked checks them
    try:
        aliases = json.loads(metadata.get("aliases", "{}"))
        if not isinstance(aliases, dict):
            raise ValueError(f"expected a JSON object, got {type(aliases).__name__}")
    except ValueError as error:
        raise CheckpointError(f"{path} is damaged: its 'aliases' metadata is not a JSON object ({error})") from None
    for alias, name in aliases.items():
        if name not in tensors:
            raise CheckpointError(
                f"{path} is damaged: the alias {alias!r} names {name!r}, which the file does not hold"
            )
        tensors[alias] = tensors[name]
    load_state_checked(model, tensors, str(path))


def read_safetensors(path: Path, check_finite: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a safetensors file; a damaged file or a NaN/inf tensor is a
    :class:`CheckpointError` naming the file (and the tensor)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; the checkpoint is incomplete")
    try:
        with safe_open(str(path), framework="pt") as handle:
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
            metadata = handle.metadata() or {}
    except SafetensorError as error:
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({error}; {path.stat().st_size} bytes): "
            "it is truncated or damaged"
        ) from None
    check_hash(path)
    broken = [
        f"{name!r} holds {problem}"
        for name, tensor in tensors.items()
        if check_finite and (problem := non_finite(tensor))
    ]
    if broken:
        more = f"; and {len(broken) - 4} more" if len(broken) > 4 else ""
        raise CheckpointError(
            f"{path}: tensor {'; '.join(broken[:4])}{more}: not finite (the file is damaged, or the run diverged)"
        )
    return tensors, metadata


def read_state(path: str | os.PathLike[str]) -> CheckpointState:
    """The ``trainer.json`` of a checkpoint directory (a missing field is named when looked up)."""
    state_file = Path(path) / STATE_FILE
    if not state_file.is_file():
        raise FileNotFoundError(f"{path} is not a checkpoint: {STATE_FILE} is missing")
    text = state_file.read_bytes()
    try:
        state = json.loads(text.decode("utf-8"))
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError both are
        raise CheckpointError(
            f"{state_file} is not valid JSON ({error}; {len(text)} bytes): it is truncated or damaged"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{state_file} holds a JSON {type(state).__name__}; expected an object of fields")
    check_hash(state_file)
    return CheckpointState(state, state_file)


def write_checkpoint(
    path: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict,
    history: pd.DataFrame,
    model_config: dict | None,
) -> None:
    """Write a whole checkpoint directory atomically (see the module docstring for its files).

    A full disk raises an ``OSError`` (``ENOSPC``) that names ``path`` and the space needed; like
    any failure, it leaves the checkpoints already written as they were and no partial directory.
    """
    try:
        with atomic_directory(path) as tmp:
            save_weights(model, tmp / MODEL_FILE, model_config)
            tensors, groups = optimizer_tensors(optimizer)
            save_file(tensors, str(tmp / OPTIMIZER_FILE))
            (tmp / STATE_FILE).write_text(json.dumps(state | {"optimizer_groups": groups}, indent=1))
            history.to_csv(tmp / HISTORY_FILE, index=False)
            _record_hashes(tmp)
    except (OSError, SafetensorError) as error:
        if not is_disk_full(error):
            raise
        raise disk_full_error(
            path,
            _bytes_needed(model, optimizer),
            f"cannot write checkpoint {path}",
            "A checkpoint holds the weights and the optimizer state. Nothing was written and the earlier "
            "checkpoints are intact; free some space (or lower keep_last) and resume",
        ) from error


def _bytes_needed(model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """About the size of a checkpoint: the unique weights plus the optimizer's tensors."""
    seen = set()
    total = 0
    for tensor in model.state_dict().values():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if key not in seen:
            seen.add(key)
            total += tensor.numel() * tensor.element_size()
    for entries in optimizer.state.values():
        total += sum(v.numel() * v.element_size() for v in entries.values() if isinstance(v, torch.Tensor))
    return total


def _record_hashes(directory: Path) -> None:
    """Write ``hashes.json``: the size and SHA-256 of every other file of ``directory``."""
    files = sorted(p for p in directory.iterdir() if p.name != HASHES_FILE)
    hashes = {p.name: {"size": p.stat().st_size, "sha256": sha256_file(p)} for p in files}
    (directory / HASHES_FILE).write_text(json.dumps(hashes, indent=1))


def recorded_hashes(checkpoint: str | os.PathLike[str]) -> dict[str, dict] | None:
    """A checkpoint directory's ``hashes.json``: file name -> ``{"size", "sha256"}``, or None for a
    checkpoint written before hashes were recorded."""
    path = Path(checkpoint) / HASHES_FILE
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        hashes = json.loads(text.decode("utf-8"))
    except ValueError:
        hashes = None
    entry = {"size": int, "sha256": str}
    if not isinstance(hashes, dict) or not all(
        isinstance(v, dict) and all(isinstance(v.get(k), t) for k, t in entry.items()) for v in hashes.values()
    ):
        raise CheckpointError(
            f"{path} is damaged ({len(text)} bytes): expected a JSON object mapping each file name to its "
            "size and sha256"
        )
    return hashes


def _hash_problem(path: Path, recorded: dict, cached: bool) -> str | None:
    """What differs between ``path`` and its recorded size and hash (None: nothing). ``cached``:
    reuse this process's hash of an unchanged file; else read every byte again."""
    if not path.is_file():
        return f"{path.name} is missing, but the checkpoint's {HASHES_FILE} lists it"
    size = path.stat().st_size
    if size != recorded["size"]:
        return (
            f"{path.name} has {size} bytes, but the checkpoint's {HASHES_FILE} recorded {recorded['size']} "
            "when it was written"
        )
    actual = file_sha256(path) if cached else sha256_file(path)
    if actual != recorded["sha256"]:
        return (
            f"{path.name} has SHA-256 {actual}, but the checkpoint's {HASHES_FILE} recorded {recorded['sha256']} "
            "when it was written"
        )
    return None


def check_hash(path: Path) -> None:
    """Refuse a checkpoint file whose bytes are not those recorded when it was written.

    A file with no recorded hash (of an older checkpoint, or outside any checkpoint) is not checked.
    """
    hashes = recorded_hashes(path.parent)
    if hashes is None or path.name not in hashes:
        return
    problem = _hash_problem(path, hashes[path.name], cached=True)
    if problem:
        run = path.parent.parent.parent if path.parent.parent.name == CHECKPOINTS else path.parent
        raise CheckpointError(
            f"{path} is damaged: {problem}. Check the run's checkpoints with `python -m workbench verify {run}`"
        )


def verify_checkpoint(path: str | os.PathLike[str]) -> dict[str, str] | None:
    """Each file a checkpoint directory records and what is wrong with it ("": nothing), every byte
    read again; None for a checkpoint written before hashes were recorded."""
    path = Path(path)
    try:
        hashes = recorded_hashes(path)
    except CheckpointError as error:
        return {HASHES_FILE: str(error)}
    if hashes is None:
        return None
    return {name: _hash_problem(path / name, recorded, cached=False) or "" for name, recorded in hashes.items()}


def read_history(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A checkpoint's (or a run directory's) ``history.csv``, floats read back bit for bit."""
    path = Path(path)
    if path.is_dir():
        path = path / HISTORY_FILE
    size = path.stat().st_size
    check_hash(path)
    if size <= 1:
        return pd.DataFrame()
    try:
        return pd.read_csv(path, engine="python")  # Python's float(): exact on every pandas version
    except ValueError as error:  # pandas' ParserError and EmptyDataError, UnicodeDecodeError
        raise CheckpointError(f"{path} is not a readable history CSV ({error}): it is damaged") from None


RUN_OR_CHECKPOINT = (
    f"a pretraining run directory (holding {CHECKPOINTS}/; its latest checkpoint is used) or one of its "
    f"checkpoints ({CHECKPOINTS}/step-N, holding {STATE_FILE})"
)


def checkpoint_of(path: str | os.PathLike[str], what: str) -> Path:
    """The checkpoint ``path`` names: itself, or the latest of a run directory (a pretraining run's, or a
    cached one under the experiment cache); anything else is an error naming ``what`` and ``path``."""
    path = Path(path)
    if (path / STATE_FILE).is_file():
        return path
    if (path / CHECKPOINTS).is_dir():
        latest = latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(
                f"{what} {path} holds no checkpoint in {CHECKPOINTS}/; expected a run directory written by "
                "`python -m workbench pretrain`"
            )
        return latest
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist; expected {RUN_OR_CHECKPOINT}")
    raise ValueError(f"{what} {path} is neither a run directory nor a checkpoint; expected {RUN_OR_CHECKPOINT}")


# The language models a checkpoint's model_class may name, and how each is built from its model_config.
_LANGUAGE_MODELS = {
    "GPT": (GPT, GPTConfig.from_dict),
    "LSTMLanguageModel": (LSTMLanguageModel, lambda config: LSTMConfig(**config)),
}


def load_language_model(path: str | os.PathLike[str]) -> GPT | LSTMLanguageModel:
    """The language model (GPT or the LSTM baseline) stored in a checkpoint directory, built from its
    own config, in eval mode; a fine-tuned task model or a damaged config is an error naming the file."""
    state = read_state(path)
    kind = state["model_class"]
    if kind not in _LANGUAGE_MODELS:
        raise ValueError(
            f"checkpoint {path} holds a {kind}; expected a language model ({' or '.join(_LANGUAGE_MODELS)}), "
            "as a pretraining run writes"
        )
    model_class, build_config = _LANGUAGE_MODELS[kind]
    try:
        config = build_config(state["model_config"])
    except (TypeError, ValueError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"{state.path}: model_config is not a valid {kind} config: {error}") from None
    model = model_class(config)
    load_weights(model, path)
    return model.eval()


def load_model(path: str | os.PathLike[str]) -> GPT:
    """The GPT stored in a checkpoint directory, built from its own config, in eval mode."""
    state = read_state(path)
    if state["model_class"] != "GPT":
        raise ValueError(
            f"checkpoint {path} holds a {state['model_class']}, not a GPT; build that model and use load_weights"
        )
    return load_language_model(path)


def checkpoint_tokenizer(path: str | os.PathLike[str]) -> Tokenizer:
    """The tokenizer a checkpoint's training tokens were encoded with (see
    :func:`~workbench.data.vocabulary.trained_tokenizer`: one that records none is refused)."""
    state = read_state(path)
    return trained_tokenizer(Path(path), state["metadata"], state["model_config"]["vocab_size"])


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Per-parameter state as flat tensors ``INDEX.NAME`` and the groups' hyperparameters."""
    state = optimizer.state_dict()
    tensors = {}
    for index, entries in state["state"].items():
        for name, value in entries.items():
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"optimizer state {index}.{name} is a {type(value).__name__}, not a tensor")
            tensors[f"{index}.{name}"] = value.detach().contiguous().cpu()
    groups = [
        {k: v for k, v in group.items() if k != "params"} | {"size": len(group["params"])}
        for group in state["param_groups"]
    ]
    return tensors, groups


def load_optimizer_tensors(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    """Restore per-parameter state into ``optimizer``, keeping its own hyperparameters and flags.

    The device-specific flags (``fused``, ``foreach``) stay those of this run, so a checkpoint
    written on a GPU resumes on a CPU and the other way round.
    """
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    current = optimizer.state_dict()
    optimizer.load_state_dict({"state": state, "param_groups": current["param_groups"]})
