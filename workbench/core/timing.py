"""``with timed("label"):`` — how long a notebook step took, printed once, kept for later cells."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class Timing:
    label: str
    seconds: float = float("nan")


@contextlib.contextmanager
def timed(label: str) -> Iterator[Timing]:
    """Print ``label: N s`` when the block ends (also on an error), and keep the seconds."""
    timing = Timing(label)
    start = time.perf_counter()
    try:
        yield timing
    finally:
        timing.seconds = time.perf_counter() - start
        seconds = timing.seconds
        print(f"{label}: {seconds:.2g} s" if seconds < 10 else f"{label}: {seconds:.0f} s")  # 0.23 s, 3.5 s, 95 s
