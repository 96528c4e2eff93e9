"""GPT workbench: GPT-1 and GPT-2 reproduced at laptop scale, for notebooks and GPUs alike.

Importing the package imports nothing heavy (the command line's ``--help`` answers at once): the
names below load their modules on first use.
"""

import importlib
import os
import platform

# The same numbers on every x86-64 CPU. PyTorch picks its own CPU kernels (softmax, LayerNorm,
# Adam, ...) once, at the first tensor operation, for the widest vector unit it finds, and AVX2 and
# AVX-512 kernels round differently: a model trained on a machine with AVX-512 and one trained on a
# machine without it drift apart after a few updates. Pinning PyTorch's kernels, MKL's (conditional
# numerical reproducibility) and oneDNN's (the LSTM) to AVX2 makes them bit-identical, for about 5%
# of float32 training speed (tests/test_numerics.py). WORKBENCH_NATIVE_CPU_KERNELS=1 keeps the native
# kernels; a value a user set for any of the three variables is kept.
# ``workbench.core.device.machine_info()`` reports what ran.
if platform.machine().lower() in ("x86_64", "amd64") and os.environ.get("WORKBENCH_NATIVE_CPU_KERNELS") != "1":
    os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
    os.environ.setdefault("MKL_CBWR", "AVX2")
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")  # oneDNN runs the LSTM

_EXPORTS = {
    "GPT": "workbench.models.gpt",
    "GPTOutput": "workbench.models.gpt",
    "GPTConfig": "workbench.models.config",
    "PRESETS": "workbench.models.config",
    "count_parameters": "workbench.models.params",
    "parameter_breakdown": "workbench.models.params",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")
