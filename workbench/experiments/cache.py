"""The experiment cache: a directory per result, named by a hash of everything that made it.

A result is complete only once its ``DONE`` marker exists (written last, atomically), so an
interrupted run is resumed or recomputed, never read half-made. ``WORKBENCH_CACHE_DIR`` moves the
cache (default ``~/.cache/gpt-workbench/experiments``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.io import atomic_path, write_text_atomic

CACHE_VERSION = 1
"""Bump when a change to the code changes results, so that old cache entries are not reused."""

DONE = "DONE"


def cache_root() -> Path:
    root = os.environ.get("WORKBENCH_CACHE_DIR") or Path.home() / ".cache" / "gpt-workbench" / "experiments"
    return Path(root).expanduser()


def config_key(config: dict[str, Any]) -> str:
    """A short stable hash of a JSON-serialisable config (key order does not matter)."""
    text = json.dumps({"cache_version": CACHE_VERSION, **config}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def entry_dir(kind: str, config: dict[str, Any]) -> Path:
    """The directory of one cache entry; ``config.json`` inside says what it holds."""
    path = cache_root() / kind / config_key(config)
    path.mkdir(parents=True, exist_ok=True)
    config_file = path / "config.json"
    if not config_file.exists():
        write_text_atomic(config_file, json.dumps(config, indent=1, sort_keys=True, default=str))
    return path


def is_done(path: Path) -> bool:
    return (path / DONE).exists()


def mark_done(path: Path) -> None:
    write_text_atomic(path / DONE, "")


def cached_frame(kind: str, config: dict[str, Any], compute) -> pd.DataFrame:
    """``compute()`` once per config; later calls read the stored CSV."""
    path = entry_dir(kind, config)
    table = path / "result.csv"
    if is_done(path):
        return pd.read_csv(table)
    frame = compute()
    with atomic_path(table) as tmp:
        frame.to_csv(tmp, index=False)
    mark_done(path)
    return frame
