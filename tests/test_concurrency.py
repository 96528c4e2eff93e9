"""One writer per directory: a second trainer in a run directory fails at once, naming the directory
and the process that holds it; two processes wanting the same experiment cache entry compute it once."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench import GPT, GPTConfig
from workbench.core.locks import DirectoryLocked, directory_lock
from workbench.experiments.cache import DONE
from workbench.training import checkpoint as ckpt
from workbench.training.checkpointer import hold_run_directory
from workbench.training.config import TrainConfig
from workbench.training.language_model import TokenSampler
from workbench.training.trainer import Trainer

pytestmark = pytest.mark.train

TOKENS = np.frombuffer((Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt").read_bytes(), dtype=np.uint8).astype(
    np.uint16
)

# The pretrain command, held at its second update (its directory locked, its first checkpoint
# written) until the test lets it go on.
FIRST = """\
import argparse, sys, time
from pathlib import Path
import workbench.cli.pretrain as pretrain
from workbench.training.language_model import TokenSampler

gate = Path(sys.argv[1])
real_next_batch = TokenSampler.next_batch

def held(self):
    if self.next_window == 8:  # the second update's batch
        (gate / "holding").touch()
        deadline = time.monotonic() + 120
        while not (gate / "go").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    return real_next_batch(self)

TokenSampler.next_batch = held
parser = argparse.ArgumentParser()
pretrain.add_arguments(parser)
sys.exit(pretrain.run(parser.parse_args(sys.argv[2:])))
"""

# The same command, started once the first one holds the directory; reports how long it took.
SECOND = """\
import argparse, sys, time
from pathlib import Path
import workbench.cli.pretrain as pretrain

gate = Path(sys.argv[1])
deadline = time.monotonic() + 120
while not (gate / "holding").exists() and time.monotonic() < deadline:
    time.sleep(0.02)
parser = argparse.ArgumentParser()
pretrain.add_arguments(parser)
args = parser.parse_args(sys.argv[2:])
start = time.monotonic()
try:
    code = pretrain.run(args)
finally:
    print(f"seconds {time.monotonic() - start:.3f}", flush=True)
sys.exit(code)
"""

# One of two processes that want the same cache entry; its compute takes a while, so that the other
# process asks for the entry while it runs.
CACHE_USER = """\
import sys, time
from pathlib import Path
import pandas as pd
from workbench.experiments.cache import cached_frame

gate, me = Path(sys.argv[1]), sys.argv[2]

def compute():
    with open(gate / "calls", "a") as calls:
        calls.write(me + "\\n")
    deadline = time.monotonic() + 60
    while not all((gate / f"asking-{n}").exists() for n in "ab") and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(1.0)
    return pd.DataFrame({"n": [1, 2, 3], "loss": [0.5, 0.25, 0.125], "name": ["a", "b", "c"]})

(gate / f"asking-{me}").touch()
print(cached_frame("concurrency", {"what": "a slow table"}, compute).to_json(), flush=True)
"""


def _pretrain_args(token_files, out):
    """The CPU recipe shrunk to 3 updates of gpt2-micro (as in test_ddp)."""
    train, val = token_files
    return [
        *("--recipe", "cpu", "--train-tokens", str(train), "--val-tokens", str(val), "--out", str(out)),
        *("--preset", "gpt2-micro", "--dropout", "0", "--n-checkpoints", "2"),
        *("--train.steps", "3", "--train.batch-size", "8", "--train.lr", "3e-3", "--train.precision", "fp32"),
        *("--train.device", "cpu", "--train.log-every", "1", "--train.eval-every", "3"),
        *("--train.eval-sequences", "8", "--train.progress", "false"),
    ]


@pytest.fixture(scope="module")
def token_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokens")
    rng = np.random.default_rng(0)
    np.save(root / "train.npy", rng.integers(0, 256, 20_000, dtype=np.uint16))
    np.save(root / "val.npy", rng.integers(0, 256, 2_000, dtype=np.uint16))
    return root / "train.npy", root / "val.npy"


def test_a_second_trainer_in_a_run_directory_fails_at_once_naming_the_holder(token_files, tmp_path):
    run_dir, gate = tmp_path / "run", tmp_path / "gate"
    gate.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first, second = (
        subprocess.Popen(
            [sys.executable, "-c", script, str(gate), *_pretrain_args(token_files, run_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for script in (FIRST, SECOND)
    )
    try:
        out, err = second.communicate(timeout=120)
        assert second.returncode != 0, out
        assert f"run directory {run_dir} is in use by process {first.pid}" in err, err[-3000:]
        assert float(out.split()[-1]) < 5  # at once: it did not wait for the first
        assert first.poll() is None  # the first is still at its second update
    finally:
        (gate / "go").touch()
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err[-3000:]
    assert "step 3: loss" in out
    assert (run_dir / DONE).exists()
    checkpoints = ckpt.list_checkpoints(run_dir)
    assert [ckpt.checkpoint_step(p) for p in checkpoints] == [1, 3]
    for path in checkpoints:
        ckpt.load_model(path)
        ckpt.read_safetensors(path / ckpt.OPTIMIZER_FILE)
        assert ckpt.read_state(path)["step"] == ckpt.checkpoint_step(path)
    assert list(ckpt.read_history(run_dir)["step"]) == [0, 1, 2, 3]
    assert not list(run_dir.rglob("*.tmp"))


def test_two_processes_computing_one_cache_entry_compute_it_once(tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    env = {**os.environ, "WORKBENCH_CACHE_DIR": str(tmp_path / "cache")}
    users = [
        subprocess.Popen(
            [sys.executable, "-c", CACHE_USER, str(gate), me],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for me in "ab"
    ]
    outputs = []
    for user in users:
        out, err = user.communicate(timeout=120)
        assert user.returncode == 0, err[-3000:]
        outputs.append(json.loads(out))
    assert len((gate / "calls").read_text().split()) == 1  # one computed, the other waited and read it
    assert outputs[0] == outputs[1]
    assert outputs[0]["loss"] == {"0": 0.5, "1": 0.25, "2": 0.125}


def _trainer(run_dir, **kwargs) -> Trainer:
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_preset("gpt2-micro", n_ctx=32))
    config = TrainConfig(steps=2, batch_size=4, lr=3e-3, eval_every=0, checkpoint_every=0, progress=False)
    return Trainer(model, lambda plan: TokenSampler.from_plan(TOKENS, plan), config, run_dir=run_dir, **kwargs)


def test_a_trainer_holds_its_run_directory_until_trained_or_closed(tmp_path):
    first = _trainer(tmp_path)
    with pytest.raises(DirectoryLocked, match=f"run directory {tmp_path} is in use by process {os.getpid()}"):
        with directory_lock(tmp_path, what="run directory"):  # what another process would meet
            pass
    with pytest.raises(RuntimeError, match=f"{tmp_path} is already in use by another Trainer of this process"):
        _trainer(tmp_path)
    first.close()
    with directory_lock(tmp_path):  # given back
        pass

    first.train(until=1)  # takes it again, and gives it back at the end
    second = _trainer(tmp_path, resume=True)
    with pytest.raises(RuntimeError, match="already in use by another Trainer"):
        first.train()
    second.train()
    assert second.step == 2
    third = _trainer(tmp_path, resume=True)
    del first, second, third  # a Trainer that is garbage-collected gives the directory back
    gc.collect()
    with directory_lock(tmp_path):
        pass

    # code around training (pretrain() marking a run done) holds the directory; its Trainer uses that hold
    other = tmp_path / "other"
    with hold_run_directory(other) as held:
        trainer = _trainer(held)
        with pytest.raises(RuntimeError, match="already in use by another Trainer of this process"):
            _trainer(held)
        trainer.train()
        _trainer(held, resume=True).close()  # the first gave it back at the end of train()
        with pytest.raises(DirectoryLocked, match=f"is in use by process {os.getpid()}"):
            with directory_lock(other):
                pass
    with directory_lock(other):  # given back at the end of the block
        pass
