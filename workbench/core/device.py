"""Devices, precision, peak FLOPs and the torchrun environment, in one place.

Nothing here assumes CUDA: ``device="auto"`` picks CUDA, then MPS, then the CPU, and
``precision="auto"`` uses bf16 autocast wherever the device runs it natively.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from threadpoolctl import threadpool_limits

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


def cpu_kernels_pinned() -> bool:
    """True when oneDNN is held to AVX2 (``workbench/__init__.py`` pins it, for the same numbers on every
    CPU): its bf16 kernels, native or not, are then out of reach."""
    return os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() in ("AVX2", "AVX", "SSE41")


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 instructions (AVX512-BF16 or AMX) that the kernels may use,
    where autocast pays off.

    Without them, or with the kernels pinned to AVX2, bf16 autocast on a CPU is emulated: 15x slower
    than float32 for the CPU recipe's model (414 against 6,087 tokens/s), and oneDNN's LSTM refuses it.
    """
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return not cpu_kernels_pinned() and any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """The autocast dtype: ``torch.bfloat16`` or ``torch.float32`` (float32 means no autocast).

    ``"auto"`` is bf16 on CUDA devices that support it and on CPUs with native bf16 kernels in reach
    (:func:`cpu_supports_bf16`); float32 elsewhere, MPS included (its bf16 autocast depends on the
    macOS version).
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


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """``count`` torch and BLAS threads inside the block (None: as they are).

    A fixed count makes a CPU run's numbers independent of the machine's cores (reductions split
    by thread round differently), and one thread per process is what a shared 2-core machine runs
    fastest: two threads, one of them waiting on a busy core, trained 4-6x slower than one. The BLAS
    limit matters too: scikit-learn's BLAS spinning on more threads than the process had cores made
    the probes' fits 25x slower.
    """
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        with threadpool_limits(count):
            yield
    finally:
        torch.set_num_threads(previous)


CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile")
"""The CPU features that change which kernels can run (and so speed, and without the pin, rounding)."""


def machine_info(device: torch.device | str = "cpu", dtype: torch.dtype | None = None) -> dict[str, object]:
    """What a run ran on: device, precision, threads, the CPU's kernels and flags, torch's version.

    ``cpu_kernels`` is the vector width PyTorch's own CPU kernels use (AVX2 when the workbench pins
    them, see ``workbench/__init__.py``); two runs agree bit for bit only where it, the precision and
    the threads agree.
    """
    device = torch.device(device)
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.exists() else ""
    model = re.search(r"^model name\s*:\s*(.*)$", text, re.MULTILINE)
    flags = re.search(r"^flags\s*:(.*)$", text, re.MULTILINE)
    flags = flags.group(1).split() if flags else None
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
        "precision": "fp32" if dtype in (None, torch.float32) else str(dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "cpu": model.group(1).strip() if model else platform.machine(),
        "cpu_kernels": torch.backends.cpu.get_cpu_capability(),
        "cpu_flags": "unknown" if flags is None else " ".join(f for f in CPU_FLAGS if f in flags) or "none",
        "torch": torch.__version__,
    }


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
