"""A training process killed (SIGKILL) at random moments: every checkpoint left behind loads, the next
start removes what the killed one left half-written, and resuming ends bit for bit where an
uninterrupted run ends."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.training import checkpoint as ckpt

pytestmark = pytest.mark.train

STEPS = 24

# One run of a gpt2-micro model: a checkpoint after every update (the two latest kept, so older
# ones are removed as it goes); it resumes from the latest checkpoint when there is one. It reports
# the temporaries it finds once it holds the directory, then "update" as each update begins.
WORKER = """\
import json, sys
from pathlib import Path
import numpy as np, torch
torch.set_num_threads(1)
from workbench import GPT, GPTConfig
from workbench.training import checkpoint as ckpt
from workbench.training.config import TrainConfig
from workbench.training.language_model import TokenSampler
from workbench.training.trainer import Trainer, lm_loss

run_dir, steps, tokens = Path(sys.argv[1]), int(sys.argv[2]), np.load(sys.argv[3])
torch.manual_seed(0)
model = GPT(GPTConfig.from_preset("gpt2-micro", n_ctx=32))
config = TrainConfig(
    steps=steps, batch_size=4, lr=3e-3, log_every=1, eval_every=0, checkpoint_every=1, keep_last=2,
    progress=False, device="cpu", precision="fp32", compile=False,
)

def loss(model, batch):
    print("update", flush=True)
    return lm_loss(model, batch)

resume = ckpt.latest_checkpoint(run_dir) is not None
trainer = Trainer(
    model, lambda plan: TokenSampler.from_plan(tokens, plan), config, loss_fn=loss, run_dir=run_dir, resume=resume
)
stale = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*.tmp"))
print("started", trainer.step, json.dumps(stale), flush=True)
trainer.train()
print("finished", flush=True)
"""


@pytest.fixture
def tokens(license_tokens) -> Path:
    return license_tokens


def _start(run_dir: Path, tokens: Path) -> tuple[subprocess.Popen, int]:
    """A worker, once it holds the run directory; returns it and the step it starts from."""
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(run_dir), str(STEPS), str(tokens)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = worker.stdout.readline()
    if not line.startswith("started"):
        worker.kill()
        pytest.fail(f"the worker did not start: {line!r} {worker.communicate()[1][-3000:]}")
    _, step, stale = line.split(" ", 2)
    assert json.loads(stale) == [], "the start left a killed run's temporaries behind"
    return worker, int(step)


def _finish(worker: subprocess.Popen) -> list[float]:
    """Wait for the worker to end; the times at which its updates began."""
    times = []
    for line in worker.stdout:
        if line.startswith("update"):
            times.append(time.perf_counter())
    _, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err[-3000:]
    return times


def _assert_checkpoints_load(run_dir: Path) -> None:
    for path in ckpt.list_checkpoints(run_dir):
        state = ckpt.read_state(path)
        assert state["step"] == ckpt.checkpoint_step(path)
        ckpt.load_model(path)
        ckpt.read_safetensors(path / ckpt.OPTIMIZER_FILE)
        assert list(ckpt.read_history(path)["step"]) == list(range(1, state["step"] + 1))


def test_runs_killed_at_random_moments_resume_to_the_uninterrupted_result(tmp_path, tokens):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    worker, _ = _start(whole, tokens)
    times = _finish(worker)
    seconds_per_update = (times[-1] - times[0]) / (len(times) - 1)

    rng = random.Random(0)
    starts = []
    for _ in range(5):
        worker, step = _start(killed, tokens)
        starts.append(step)
        updates = rng.randint(1, 3)  # kill during the run's first few updates
        for _ in range(updates):
            line = worker.stdout.readline()
            assert line.startswith("update"), (line, worker.communicate()[1][-3000:])
        time.sleep(rng.uniform(0, 1.5 * seconds_per_update))  # anywhere in the update or its checkpoint
        worker.send_signal(signal.SIGKILL)
        worker.communicate(timeout=60)
        assert worker.returncode == -signal.SIGKILL
        _assert_checkpoints_load(killed)
    worker, step = _start(killed, tokens)
    starts.append(step)
    _finish(worker)
    assert starts == sorted(starts) and starts[-1] < STEPS, starts  # every run went on from the last

    _assert_checkpoints_load(killed)
    assert [ckpt.checkpoint_step(p) for p in ckpt.list_checkpoints(killed)] == [STEPS - 1, STEPS]
    reference, resumed = (ckpt.load_model(ckpt.latest_checkpoint(d)) for d in (whole, killed))
    for (name, expected), actual in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(actual, expected), name
    h1, h2 = ckpt.read_history(whole), ckpt.read_history(killed)
    assert list(h2["step"]) == list(h1["step"]) == list(range(1, STEPS + 1))
    np.testing.assert_array_equal(h2["loss"], h1["loss"])
