"""Devices, precision, peak FLOPs and the torchrun environment, in one place.

Nothing here assumes CUDA: ``device="auto"`` picks CUDA, then MPS, then the CPU, and
``precision="auto"`` uses bf16 autocast wherever the device runs it natively.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

PRECISIONS = ("auto", "fp32", "bf16")


def resolve_device(device: str = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"`` -> CUDA (this process's local rank under torchrun), then MPS, then CPU.

    An explicit device that this machine does not have is an error, not a silent fallback.
    """
    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device):
        raise ValueError(f"device must be 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N', got {device!r}")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available "
                f"(torch {torch.__version__}); use device='auto' or 'cpu'"
            )
        index = int(device.split(":")[1]) if ":" in device else local_rank
        if index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return torch.device("cuda", index)
    if device == "mps" and not torch.backends.mps.is_available():
        raise ValueError("device='mps' was requested but MPS is not available on this machine")
    return torch.device(device)


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 instructions (AVX512-BF16 or AMX), where autocast pays off.

    Without them bf16 autocast on a CPU is emulated and slower than float32.
    """
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """The autocast dtype: ``torch.bfloat16`` or ``torch.float32`` (float32 means no autocast).

    ``"auto"`` is bf16 on CUDA devices that support it and on CPUs with native bf16; float32
    elsewhere, MPS included (its bf16 autocast depends on the macOS version).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":  # native bf16 from Ampere on; emulated bf16 on older GPUs is slow
        native = torch.cuda.is_bf16_supported(including_emulation=False)
        return torch.bfloat16 if native else torch.float32
    if device.type == "cpu":
        return torch.bfloat16 if cpu_supports_bf16() else torch.float32
    return torch.float32


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device``; a no-op context for float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


# Dense (no sparsity) peak FLOP/s per GPU: (bf16 tensor cores, float32 without TF32).
# Matched against torch.cuda.get_device_name(); the first pattern that occurs wins.
_CUDA_PEAKS = (
    ("H200", 989e12, 67e12),
    ("GH200", 989e12, 67e12),
    ("H100 PCIe", 756e12, 51e12),
    ("H100", 989e12, 67e12),
    ("B200", 2250e12, 80e12),
    ("A100", 312e12, 19.5e12),
    ("L40S", 362e12, 91.6e12),
    ("L40", 181e12, 90.5e12),
    ("L4", 121e12, 30.3e12),
)


def peak_flops(device: torch.device, dtype: torch.dtype) -> float | None:
    """Nominal peak FLOP/s of one device at ``dtype``, for model FLOPs utilisation; None if unknown.

    GPUs come from a table of data-sheet numbers. For a CPU it is a nominal estimate (threads x
    clock x FLOPs per cycle of its widest vector unit), good for comparing runs on one machine;
    pass ``peak_flops`` to the Trainer for a figure you trust.
    """
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for pattern, bf16, fp32 in _CUDA_PEAKS:
            if pattern in name:
                return bf16 if dtype == torch.bfloat16 else fp32
        return None
    if device.type == "cpu":
        capability = torch.backends.cpu.get_cpu_capability()
        per_cycle = {"AVX512": 64.0, "AVX2": 32.0}.get(capability, 16.0)
        if dtype == torch.bfloat16:
            per_cycle *= 2  # bf16 dot products retire twice the float32 rate
        return torch.get_num_threads() * _cpu_hz() * per_cycle
    return None


def _cpu_hz() -> float:
    """The current clock of the first core from /proc/cpuinfo, 2.5 GHz where that is unavailable."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        match = re.search(r"^cpu MHz\s*:\s*([\d.]+)", cpuinfo.read_text(), re.MULTILINE)
        if match:
            return float(match.group(1)) * 1e6
    return 2.5e9


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in a (possibly one-process) job."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str = "auto") -> DistributedContext:
    """Join the torchrun job described by the environment, if any; one process otherwise.

    torchrun sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; the process group uses NCCL when
    the job runs on CUDA and gloo otherwise. Calling this again in a joined process is a no-op.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1 and not dist.is_initialized():
        return DistributedContext()
    if not dist.is_initialized():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = resolve_device(device, local_rank).type == "cuda"
        if cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return DistributedContext(
        rank=dist.get_rank(),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        world_size=dist.get_world_size(),
    )
