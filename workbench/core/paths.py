"""Where the workbench writes: figures and caches, each overridable by an environment variable.

Tests and nbval point ``WORKBENCH_FIGURES_DIR`` at a temporary directory so that they never
overwrite the committed figures.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def figures_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """``override``, else ``$WORKBENCH_FIGURES_DIR``, else the repository's ``figures/``."""
    chosen = override or os.environ.get("WORKBENCH_FIGURES_DIR") or REPO_ROOT / "figures"
    path = Path(chosen).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path
