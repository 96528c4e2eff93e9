"""Training options, and how the global batch splits into ranks, micro-batches and accumulation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..core.checks import (
    NON_NEGATIVE_INT,
    NON_NEGATIVE_NUMBER,
    POSITIVE_INT,
    POSITIVE_NUMBER,
    check_fields,
    in_range,
    one_of,
    optional,
)
from ..core.device import PRECISIONS, resolve_device
from ..core.options import option
from .schedules import SCHEDULES, Schedule


@dataclass(frozen=True)
class TrainConfig:
    """Every training option; the ``pretrain`` command line is generated from these fields.

    The defaults are GPT-1's pretraining hyperparameters where the paper gives them (Adam with
    lr 2.5e-4, warmup then cosine, weight decay 0.01, gradient clipping at 1 as in its code).
    """

    steps: int = option("optimizer updates to train for", default=1000, check=POSITIVE_INT)
    batch_size: int = option(
        "global batch in sequences per update = micro_batch_size x ranks x accumulation", default=32, check=POSITIVE_INT
    )
    micro_batch_size: int | None = option(
        "sequences per forward pass on each rank; default batch_size / ranks (no accumulation)",
        default=None,
        check=optional(POSITIVE_INT),
    )
    seq_len: int | None = option(
        "tokens per training sequence; default the model's n_ctx", default=None, check=optional(POSITIVE_INT)
    )
    lr: float = option("peak learning rate", default=2.5e-4, check=POSITIVE_NUMBER)
    schedule: str = option("learning-rate schedule", default="gpt1-pretrain", check=one_of(SCHEDULES))
    warmup_steps: int | None = option(  # checked against steps by Schedule.create
        "linear warmup updates; default the paper's: 2000 (at most steps/10) for gpt1-pretrain, "
        "0.2% of steps for gpt1-finetune, 0 for constant",
        default=None,
    )
    weight_decay: float = option(
        "decoupled weight decay on weight matrices (not biases, gains, position embeddings)",
        default=0.01,
        check=NON_NEGATIVE_NUMBER,
    )
    beta1: float = option("Adam beta1", default=0.9, check=in_range(0, 1))
    beta2: float = option("Adam beta2", default=0.999, check=in_range(0, 1))
    eps: float = option("Adam epsilon", default=1e-8, check=POSITIVE_NUMBER)
    grad_clip: float = option(
        "clip the global gradient norm to this; 0 disables", default=1.0, check=NON_NEGATIVE_NUMBER
    )
    seed: int = option(
        "seed of data order and dropout (and of the model init in the CLI)", default=0, check=NON_NEGATIVE_INT
    )
    device: str = option(  # checked by resolve_device
        "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps", default="auto"
    )
    precision: str = option(
        "auto: bf16 autocast where the device runs bf16 natively, else fp32", default="auto", check=one_of(PRECISIONS)
    )
    threads: int | None = option(
        "torch CPU threads during the run (a fixed count gives the same numbers on any machine); None: torch's",
        default=None,
        check=optional(POSITIVE_INT),
    )
    compile: bool | None = option("torch.compile the model; default on for CUDA, off elsewhere", default=None)
    deterministic: bool = option("deterministic algorithms, so a seed reproduces a run exactly", default=True)
    log_every: int = option("updates between history rows and progress-bar refreshes", default=10, check=POSITIVE_INT)
    eval_every: int = option(
        "updates between validation runs (also at step 0); 0 disables", default=100, check=NON_NEGATIVE_INT
    )
    eval_sequences: int = option("validation sequences per evaluation", default=128, check=POSITIVE_INT)
    checkpoint_every: int = option(
        "updates between rolling checkpoints; 0 saves only at the end", default=500, check=NON_NEGATIVE_INT
    )
    checkpoint_steps: tuple[int, ...] = option(  # checked against steps in __post_init__
        "steps whose checkpoints are kept for good (e.g. log-spaced, for zero-shot curves)", default=()
    )
    keep_last: int = option("rolling checkpoints kept besides checkpoint_steps", default=1, check=POSITIVE_INT)
    peak_flops: float | None = option(
        "peak FLOP/s of one device for MFU; default from a table (GPUs) or a nominal CPU estimate",
        default=None,
        check=optional(POSITIVE_NUMBER),
    )
    flops_per_token: float | None = option(
        "training FLOPs per token for MFU; default 6N + 12 L T d from the model",
        default=None,
        check=optional(POSITIVE_NUMBER),
    )
    progress: bool = option("show a progress bar", default=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "checkpoint_steps", tuple(sorted(set(self.checkpoint_steps))))
        check_fields(self)
        bad_steps = [s for s in self.checkpoint_steps if not 1 <= s <= self.steps]
        if bad_steps:
            raise ValueError(f"TrainConfig.checkpoint_steps {bad_steps} are outside 1..steps={self.steps}")
        Schedule.create(self.schedule, self.steps, self.warmup_steps)  # validates warmup_steps
        resolve_device(self.device)  # validates the name and that this machine has the device

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["checkpoint_steps"] = list(self.checkpoint_steps)
        return data

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


# Options that change the numbers: a resumed run must use the checkpoint's values.
RESUME_FIXED = (
    "steps",
    "batch_size",
    "seq_len",
    "lr",
    "schedule",
    "warmup_steps",
    "weight_decay",
    "beta1",
    "beta2",
    "eps",
    "grad_clip",
    "seed",
)


@dataclass(frozen=True)
class BatchPlan:
    """How the global batch is split: what a batch source needs to know to shard its data."""

    micro_batch_size: int
    accumulation: int
    seq_len: int | None
    seed: int
    rank: int = 0
    world_size: int = 1


def plan_batches(config: TrainConfig, world_size: int = 1, rank: int = 0, seq_len: int | None = None) -> BatchPlan:
    """Split ``config.batch_size`` into micro-batches per rank and accumulation steps, or say why not."""
    batch = config.batch_size
    micro = config.micro_batch_size
    if micro is None:
        if batch % world_size:
            raise ValueError(
                f"batch_size={batch} is not divisible by the {world_size} ranks: the global batch "
                "is micro_batch_size x ranks x accumulation"
            )
        micro = batch // world_size
    if batch % (micro * world_size):
        raise ValueError(
            f"batch_size={batch} is not a multiple of micro_batch_size={micro} x {world_size} "
            f"rank(s) = {micro * world_size}: the global batch is micro_batch_size x ranks x "
            "accumulation"
        )
    return BatchPlan(micro, batch // (micro * world_size), config.seq_len or seq_len, config.seed, rank, world_size)
