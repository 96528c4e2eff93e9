"""The experiment cache: a directory per result, named by a hash of everything that made it.

A result is complete only once its ``DONE`` marker exists (written last, atomically), so an
interrupted run is resumed or recomputed, never read half-made. One process at a time computes an
entry (:func:`entry_lock`): another process that wants the same result (a second notebook) waits
for it, then reads it. ``WORKBENCH_CACHE_DIR`` moves the cache (default
``~/.cache/gpt-workbench/experiments``).
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.io import atomic_path, write_text_atomic
from ..core.locks import directory_lock

CACHE_VERSION = 2
"""Bump when a change to the code changes results, so that old cache entries are not reused;
tests/test_numerics.py pins a fingerprint of the numerics per version, and fails until it is bumped."""

DONE = "DONE"


def cache_root() -> Path:
    root = os.environ.get("WORKBENCH_CACHE_DIR") or Path.home() / ".cache" / "gpt-workbench" / "experiments"
    return Path(root).expanduser()


def config_key(config: dict[str, Any]) -> str:
    """A short stable hash of a JSON-serialisable config (key order does not matter)."""
    text = json.dumps({"cache_version": CACHE_VERSION, **config}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def entry_path(kind: str, config: dict[str, Any]) -> Path:
    """Where the cache entry of ``config`` lives, without creating it (to look for a finished result)."""
    return cache_root() / kind / config_key(config)


def entry_dir(kind: str, config: dict[str, Any]) -> Path:
    """The directory of one cache entry, created; ``config.json`` inside says what it holds."""
    return claim_dir(entry_path(kind, config), config)


def claim_dir(path: Path, config: dict[str, Any]) -> Path:
    """``path`` as the home of the result of ``config``: its ``config.json`` is written on first use,
    and a directory that holds another config's result is an error naming what differs."""
    path.mkdir(parents=True, exist_ok=True)
    config_file = path / "config.json"
    text = json.dumps(config, indent=1, sort_keys=True, default=str)
    if not config_file.exists():
        write_text_atomic(config_file, text)
    elif (stored := json.loads(config_file.read_text())) != json.loads(text):
        ours, theirs = _flat(json.loads(text)), _flat(stored)
        diff = [
            f"{k}={theirs.get(k)!r} (this run: {ours.get(k)!r})"
            for k in sorted(set(ours) | set(theirs))
            if ours.get(k) != theirs.get(k)
        ]
        raise ValueError(f"{path} holds the result of another config: {', '.join(diff)}; choose another directory")
    return path


def _flat(data: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def is_done(path: Path) -> bool:
    return (path / DONE).exists()


def mark_done(path: Path) -> None:
    write_text_atomic(path / DONE, "")


def entry_lock(path: Path) -> AbstractContextManager[Path]:
    """Hold the entry ``path`` while computing it, after waiting for another process that computes
    it; check :func:`is_done` again once held, as that process may have finished it."""
    return directory_lock(path, wait=True, what="experiment cache entry")


def cached_frame(kind: str, config: dict[str, Any], compute) -> pd.DataFrame:
    """``compute()`` once per config; later calls read the stored CSV."""
    path = entry_dir(kind, config)
    table = path / "result.csv"
    if not is_done(path):
        with entry_lock(path):
            if not is_done(path):
                frame = compute()
                with atomic_path(table) as tmp:
                    frame.to_csv(tmp, index=False)
                mark_done(path)
                return frame
    return pd.read_csv(table)
