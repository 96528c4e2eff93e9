"""Learning-rate schedules of the GPT-1 paper, as multipliers of the peak learning rate.

GPT-1 pretraining: "increased linearly from zero over the first 2000 updates and annealed to 0
using a cosine schedule". GPT-1 fine-tuning: "a linear learning rate decay schedule with warmup
over 0.2% of training". ``constant`` (with optional warmup) is the control.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..core.checks import POSITIVE_INT, one_of

SCHEDULES = ("gpt1-pretrain", "gpt1-finetune", "constant")

GPT1_PRETRAIN_WARMUP = 2000
GPT1_FINETUNE_WARMUP_FRACTION = 0.002


@dataclass(frozen=True)
class Schedule:
    """A schedule over ``steps`` updates; ``schedule(step)`` is the multiplier for the next update.

    ``step`` counts the updates already done (0 for the first one). Warmup rises linearly to 1 at
    update ``warmup_steps``; the decay then reaches 0 exactly after the last update.
    """

    name: str
    steps: int
    warmup_steps: int

    def __post_init__(self) -> None:
        one_of(SCHEDULES)(self.name, "schedule")
        POSITIVE_INT(self.steps, "schedule steps")
        if not isinstance(self.warmup_steps, int) or not 0 <= self.warmup_steps <= self.steps:
            raise ValueError(f"warmup_steps must be an integer in [0, steps={self.steps}], got {self.warmup_steps!r}")

    @classmethod
    def create(cls, name: str, steps: int, warmup_steps: int | None = None) -> Schedule:
        """``warmup_steps=None`` takes the paper's warmup: 2000 updates for pretraining (at most a
        tenth of a shorter run, so that short runs still anneal) and 0.2% of updates (at least
        one) for fine-tuning; none for ``constant``."""
        if warmup_steps is None:
            if name == "gpt1-pretrain":
                warmup_steps = min(GPT1_PRETRAIN_WARMUP, steps // 10)
            elif name == "gpt1-finetune":
                warmup_steps = max(1, math.ceil(GPT1_FINETUNE_WARMUP_FRACTION * steps))
            else:
                warmup_steps = 0
        return cls(name, steps, warmup_steps)

    def __call__(self, step: int) -> float:
        if not 0 <= step < self.steps:
            raise ValueError(f"step must be in [0, {self.steps}), got {step}")
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if self.name == "constant":
            return 1.0
        progress = (step - self.warmup_steps) / (self.steps - self.warmup_steps)
        if self.name == "gpt1-pretrain":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 - progress

    def to_dict(self) -> dict:
        return asdict(self)
