"""The numerics are versioned: a change that moves a trained model's numbers must bump the cache version.

The experiment cache (and every committed notebook) holds results computed with today's numerics. A
change to the loss, attention, initialisation, data order or a kernel that moves those numbers, even at
rounding level, leaves a user's fresh run different from the committed outputs, so strict nbval fails on
a new machine while a developer's warm cache hides it. The fingerprint below is pinned per
``CACHE_VERSION``: when it fails, bump ``CACHE_VERSION`` in ``workbench/experiments/cache.py``, add the
new fingerprint here under the new version, and regenerate the notebooks from an empty experiment cache
(``make refresh``).
"""

import json
import os
import subprocess
import sys

import pytest
import torch

from workbench.experiments.cache import CACHE_VERSION
from workbench.training.fingerprint import numerics_fingerprint

FINGERPRINTS = {
    2: {
        "gpt": {
            "loss": [
                6.258488655090332,
                6.2551116943359375,
                6.248838901519775,
                6.178102970123291,
                6.21993350982666,
                6.209127426147461,
            ],
            "val_loss": [6.241357803344727, 6.245610237121582, 6.2426838874816895],
            "weights_sha256": "c02253cf41a818c22cde0b1027bc42179b59649853990dca8ee84f89145b23ba",
        },
        "lstm": {
            "loss": [
                6.264217853546143,
                6.2442216873168945,
                6.2362775802612305,
                6.1222076416015625,
                6.15607213973999,
                6.217602252960205,
            ],
            "val_loss": [6.240723133087158, 6.247829437255859, 6.25632381439209],
            "weights_sha256": "345b8896fa726ff5e3c6d65d84af9afff4bafe67d1ab28a9fafffe9e9e00ae63",
        },
    },
}
"""``numerics_fingerprint()`` per cache version (fp32, one thread, PyTorch's CPU kernels pinned to AVX2)."""

BUMP = (
    "bump CACHE_VERSION in workbench/experiments/cache.py, pin the new fingerprint in tests/test_numerics.py "
    "under it, and regenerate the notebooks and figures from an empty experiment cache "
    "(make refresh)"
)


PINS = ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA")
"""What ``workbench/__init__.py`` sets (and this process's children inherit)."""


def _fingerprint_in_subprocess(**env: str) -> dict:
    """The fingerprint in a fresh interpreter (PyTorch picks its CPU kernels once per process),
    from an environment without this process's pins, plus ``env``."""
    code = "import json; from workbench.training.fingerprint import numerics_fingerprint as f; print(json.dumps(f()))"
    clean = {k: v for k, v in os.environ.items() if k not in PINS}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_cache_version_has_a_pinned_fingerprint():
    assert CACHE_VERSION in FINGERPRINTS, f"CACHE_VERSION={CACHE_VERSION} has no pinned fingerprint: " + BUMP


@pytest.mark.skipif(torch.backends.cpu.get_cpu_capability() != "AVX2", reason="the workbench's kernel pin is off")
def test_numerics_fingerprint_is_pinned():
    """Fails whenever training's floating-point results change; the message says what to do."""
    assert numerics_fingerprint() == FINGERPRINTS[CACHE_VERSION], "the numerics changed: " + BUMP


def test_fingerprint_is_the_same_without_avx512():
    """A CPU without AVX-512 or native bf16 computes the same numbers: simulated here by limiting MKL,
    oneDNN and PyTorch's kernels to AVX2 in a fresh process (on a machine without AVX-512 both runs are
    that machine's)."""
    simulated = dict(MKL_ENABLE_INSTRUCTIONS="AVX2", ONEDNN_MAX_CPU_ISA="AVX2", ATEN_CPU_CAPABILITY="avx2")
    assert _fingerprint_in_subprocess(**simulated) == _fingerprint_in_subprocess()


def test_kernel_pin_is_what_makes_it_so():
    """Without the pin, this machine's native kernels give other numbers where it has AVX-512, which is
    why the workbench pins them (the check cannot pass vacuously on a machine with AVX-512)."""
    info = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    if "avx512f" not in info:
        pytest.skip("this CPU has no AVX-512: its native kernels are the pinned ones")
    native = _fingerprint_in_subprocess(WORKBENCH_NATIVE_CPU_KERNELS="1")
    assert native["gpt"]["weights_sha256"] != FINGERPRINTS[CACHE_VERSION]["gpt"]["weights_sha256"]
