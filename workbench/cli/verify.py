"""``python -m workbench verify RUN_DIR``: read every checkpoint of a run again and compare each file
with the size and SHA-256 recorded when it was written.

A bit flipped on disk leaves a file that loads and holds finite values; this finds it before a resume
or an evaluation reads it. One line per checkpoint: ok, damaged (naming the file), or no hash recorded
(a checkpoint written before hashes were). Any damaged checkpoint makes the command fail (exit 1).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..training import checkpoint as ckpt
from . import arguments

add_arguments = arguments.verify  # in .arguments: `verify --help` need not import this module

EXPECTED = (
    f"expected a run directory (holding {ckpt.CHECKPOINTS}/) or a checkpoint directory (holding {ckpt.STATE_FILE})"
)


def checkpoints_at(path: Path) -> list[Path]:
    """The checkpoints ``path`` names: itself if it is one, else those of the run directory it is."""
    if (path / ckpt.STATE_FILE).is_file():
        return [path]
    if (path / ckpt.CHECKPOINTS).is_dir():
        found = ckpt.list_checkpoints(path)
        if not found:
            raise ValueError(f"{path} holds no checkpoint in {ckpt.CHECKPOINTS}/; {EXPECTED}")
        return found
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; {EXPECTED}")
    raise ValueError(f"{path} is neither a run directory nor a checkpoint directory; {EXPECTED}")


def run(args: argparse.Namespace) -> int:
    damaged = []
    for path in checkpoints_at(args.path):
        files = ckpt.verify_checkpoint(path)
        if files is None:
            print(f"{path.name}  no hash recorded (written before checkpoints recorded hashes)")
            continue
        problems = "; ".join(problem for problem in files.values() if problem)
        print(f"{path.name}  {len(files)} files  " + (f"damaged: {problems}" if problems else "ok"))
        if problems:
            damaged.append(f"{path} ({problems})")
    if damaged:
        raise ckpt.CheckpointError(f"{len(damaged)} damaged checkpoint(s): {', '.join(damaged)}")
    return 0
