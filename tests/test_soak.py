"""A soak under concurrency: writers and readers at once against one experiment cache and the data
cache, random participants killed with SIGKILL, then every entry loads, verifies and matches an
uninterrupted run bit for bit, and no temporary file or held lock is left.

The participants are real commands: ``pretrain`` into the cache (two of one config, which share an
entry, and one of another), readers that load every checkpoint they can list, a ``reproduce`` of a
notebook that reads the cache and the packed corpus while the writers hold entries. The killer picks
a random writer or reader every second or so; a killed writer is started again (it resumes, or a
waiting twin takes the entry over), a killed reader too.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch

from workbench.core.locks import directory_lock
from workbench.experiments.cache import is_done
from workbench.training import checkpoint as ckpt

pytestmark = [pytest.mark.train, pytest.mark.data]

KILLS = 6
SECONDS = 120  # the soak's limit; on an idle 2-core machine it takes about a minute

# Loads every checkpoint it can list until told to stop; a checkpoint rotated away (keep_last)
# between the listing and the read is counted as gone, anything else that fails is an error.
READER = """\
import sys, time
from pathlib import Path
from workbench.training import checkpoint as ckpt
root, stop = Path(sys.argv[1]), Path(sys.argv[2])
loads = gone = 0
while not stop.exists():
    for entry in sorted(root.glob("pretrain/*")):
        for path in ckpt.list_checkpoints(entry):
            try:
                ckpt.load_model(path)
                ckpt.read_history(path)
            except Exception:
                if path.exists():
                    raise
                gone += 1
                continue
            loads += 1
    time.sleep(0.05)
print("loads", loads, "gone", gone, flush=True)
"""

# What the notebook run by `reproduce` does while the writers write: read the cache's finished runs
# and the packed corpus, ten times over five seconds.
NOTEBOOK_CELLS = [
    "vocab_size = 8192",
    "import time\n"
    "from workbench.experiments.pretraining import cached_pretraining_runs\n"
    "from workbench.training.language_model import default_token_files\n"
    "for _ in range(10):\n"
    "    runs, paths = cached_pretraining_runs(), default_token_files(vocab_size, progress=False)\n"
    "    time.sleep(0.5)\n"
    "print(len(runs), [p.name for p in paths])",
]


@pytest.fixture
def tokens(license_tokens) -> Path:
    return license_tokens


def _pretrain(tokens: Path, seed: int, out: Path | None = None) -> list[str]:
    """A 60-update gpt2-micro run with a checkpoint every 3 updates (the two latest kept)."""
    command = [sys.executable, "-m", "workbench", "pretrain", "--recipe", "cpu", "--train-tokens", str(tokens)]
    command += ["--preset", "gpt2-micro", "--n-checkpoints", "2", "--train.steps", "60", "--train.batch-size", "4"]
    command += ["--train.eval-every", "0", "--train.checkpoint-every", "3", "--train.keep-last", "2"]
    command += ["--train.seed", str(seed), "--train.progress", "false"]
    return command + (["--out", str(out)] if out else [])


def _notebook(directory: Path) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS]
    notebook.cells[0].metadata["tags"] = ["parameters"]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    directory.mkdir()
    nbformat.write(notebook, directory / "01_reads_the_cache.ipynb")
    return directory


def test_writers_readers_and_kills_leave_a_cache_that_loads_verifies_and_resumes_exactly(tmp_path, tokens):
    cache, stop = tmp_path / "cache", tmp_path / "stop"
    env = os.environ | {"WORKBENCH_CACHE_DIR": str(cache)}
    # The runs as they end uninterrupted, each alone in its own directory.
    for seed in (0, 1):
        subprocess.run(_pretrain(tokens, seed, tmp_path / f"whole-{seed}"), env=env, check=True, capture_output=True)

    def start(command: list[str]) -> subprocess.Popen:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    notebooks = _notebook(tmp_path / "notebooks")
    reproduce = [sys.executable, "-m", "workbench", "reproduce", "--notebooks", str(notebooks)]
    reproducing = start([*reproduce, "--output-dir", str(tmp_path / "executed")])  # first: its kernel starts
    writers = {name: start(_pretrain(tokens, seed)) for name, seed in (("a", 0), ("a-twin", 0), ("b", 1))}
    reader = [sys.executable, "-c", READER, str(cache), str(stop)]
    readers = {name: start(reader) for name in ("r1", "r2")}

    rng, kills, restarts, deadline = random.Random(0), [], 0, time.monotonic() + SECONDS
    while len(kills) < KILLS and any(w.poll() is None for w in writers.values()):
        assert time.monotonic() < deadline, f"the soak ran past {SECONDS} s"
        time.sleep(rng.uniform(0.5, 1.5))
        name = rng.choice(sorted(writers) + sorted(readers))
        group = writers if name in writers else readers
        if group[name].poll() is not None:
            continue
        group[name].send_signal(signal.SIGKILL)
        group[name].communicate(timeout=60)
        kills.append(name)
        group[name] = start(group[name].args)  # a writer resumes (or its twin took the entry over)
        restarts += 1
    for name, writer in writers.items():
        _, err = writer.communicate(timeout=SECONDS)
        assert writer.returncode == 0, f"writer {name}: {err[-3000:]}"
    stop.touch()
    reads = {}
    for name, process in readers.items():
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, f"reader {name}: {err[-3000:]}"
        _, loads, _, gone = out.split()
        reads[name] = (int(loads), int(gone))
    out, err = reproducing.communicate(timeout=SECONDS)
    assert reproducing.returncode == 0, out[-3000:] + err[-3000:]
    print(f"soak: {len(kills)} kills {kills}, {restarts} restarts, reads (loads, rotated away) {reads}")

    entries = sorted(p for p in (cache / "pretrain").iterdir() if p.is_dir())
    assert len(entries) == 2 and all(is_done(e) for e in entries)  # one entry per config, both finished
    for entry in entries:
        for path in ckpt.list_checkpoints(entry):
            assert not any(ckpt.verify_checkpoint(path).values()), path  # every file as it was written
        with directory_lock(entry, wait=False):  # no lock is left held
            pass
        seed = json.loads((entry / "config.json").read_text())["train"]["seed"]
        whole = ckpt.load_model(ckpt.latest_checkpoint(tmp_path / f"whole-{seed}"))
        soaked = ckpt.load_model(ckpt.latest_checkpoint(entry))
        for (key, expected), actual in zip(whole.state_dict().items(), soaked.state_dict().values()):
            assert torch.equal(actual, expected), (entry.name, key)
    assert not list(cache.rglob("*.tmp")), "a temporary file or directory was left behind"
    assert sum(loads for loads, _ in reads.values()) > 0  # the readers did read while the writers wrote
