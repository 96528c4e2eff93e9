"""The pretrain command, on one process and as two DDP processes under torchrun (gloo, CPU)."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import workbench.cli.pretrain as pretrain
from workbench.cli import main
from workbench.core import from_dict
from workbench.core.options import apply_overrides, overrides_from_args
from workbench.experiments import PretrainRun, PretrainSpec
from workbench.experiments import pretraining as pretraining_module
from workbench.experiments.cache import DONE
from workbench.training import checkpoint as ckpt
from workbench.training.checkpointer import hold_run_directory
from workbench.training.language_model import TokenSampler

LAUNCHER = """\
import argparse, sys
import workbench.cli.pretrain as pretrain
parser = argparse.ArgumentParser()
pretrain.add_arguments(parser)
sys.exit(pretrain.run(parser.parse_args()))
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pretrain", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    pretrain.add_arguments(parser)
    return parser


@pytest.fixture(scope="module")
def token_files(tmp_path_factory):
    """Python's LICENSE as byte tokens, split into train and validation .npy files."""
    text = (Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt").read_bytes()
    tokens = np.frombuffer(text, dtype=np.uint8).astype(np.uint16)
    root = tmp_path_factory.mktemp("tokens")
    cut = len(tokens) * 9 // 10
    np.save(root / "train.npy", tokens[:cut])
    np.save(root / "val.npy", tokens[cut:])
    return root / "train.npy", root / "val.npy"


def _args(token_files, out, *extra):
    """The CPU recipe shrunk to 3 updates of gpt2-micro, checkpoints kept at steps 1 and 3."""
    train, val = token_files
    return [
        "--recipe",
        "cpu",
        "--train-tokens",
        str(train),
        "--val-tokens",
        str(val),
        "--out",
        str(out),
        "--preset",
        "gpt2-micro",
        "--dropout",
        "0",
        "--n-checkpoints",
        "2",
        "--train.steps",
        "3",
        "--train.batch-size",
        "8",
        "--train.lr",
        "3e-3",
        "--train.precision",
        "fp32",
        "--train.device",
        "cpu",
        "--train.log-every",
        "1",
        "--train.eval-every",
        "3",
        "--train.eval-sequences",
        "8",
        "--train.progress",
        "false",
        *extra,
    ]


def test_help_lists_every_option():
    text = _parser().format_help()
    for option in (
        "--recipe",
        "--recipe-file",
        "--train-tokens",
        "--val-tokens",
        "--out",
        "--preset",
        "--model",
        "--dropout",
        "--data-seed",
        "--n-checkpoints",
        "--train.steps",
        "--train.batch-size",
        "--train.micro-batch-size",
        "--train.lr",
        "--train.schedule",
        "--train.warmup-steps",
        "--train.precision",
        "--train.device",
        "--train.compile",
        "--train.seed",
        "--train.peak-flops",
        "--train.progress",
    ):
        assert option in text
    assert "--resume" not in text and "--steps" not in text  # runs resume by themselves; options are dotted
    assert "(default: cpu)" in text  # the recipe's values are the defaults of everything else
    assert "(none: unset)" in text


def test_bad_command_line_values_are_named(token_files, tmp_path, capsys):
    parser = _parser()
    bad = [
        (["--train.lr", "-1"], "^workbench pretrain: error: TrainConfig.lr must be a positive number, got -1.0$"),
        (["--train.steps", "0"], "TrainConfig.steps must be a positive integer, got 0"),
        (["--train.precision", "fp8"], r"TrainConfig.precision must be one of \[.*\], got 'fp8'"),
        (["--preset", "gpt5"], r"PretrainSpec.preset must be one of \[.*\], got 'gpt5'"),
        (["--dropout", "1"], r"PretrainSpec.dropout must be a number in \[0, 1\), got 1.0"),
        (["--n-checkpoints", "0"], "PretrainSpec.n_checkpoints must be a positive integer, got 0"),
        (["--train.checkpoint-steps", "1"], "PretrainSpec.train.checkpoint_steps must be empty .*set n_checkpoints"),
        (["--train.micro-batch-size", "3"], "batch_size=8 is not a multiple of micro_batch_size=3"),
        (["--train-tokens", str(tmp_path / "missing.npy")], "token file .*missing.npy does not exist"),
    ]
    for extra, message in bad:
        # the command raises; `python -m workbench` prints one line and exits 1
        with pytest.raises((ValueError, OSError), match=message.removeprefix("^workbench pretrain: error: ")):
            pretrain.run(parser.parse_args(_args(token_files, tmp_path, *extra)))
        assert main(["pretrain", *_args(token_files, tmp_path, *extra)]) == 1
        assert re.search(message, capsys.readouterr().err.strip()), extra
    assert main(["pretrain", "--val-tokens", str(token_files[1]), "--out", str(tmp_path)]) == 2  # usage error
    assert capsys.readouterr().err == "workbench pretrain: error: --val-tokens was given without --train-tokens\n"
    assert not (tmp_path / "checkpoints").exists()
    # values that are not even of the field's type stop at parsing, with argparse's usage error
    for extra, message in [
        (["--train.steps", "many"], "expected int, got 'many'"),
        (["--train.progress", "maybe"], "expected true or false, got 'maybe'"),
        (["--recipe", "laptop"], "invalid choice: 'laptop'"),
    ]:
        with pytest.raises(SystemExit) as info:
            parser.parse_args(_args(token_files, tmp_path, *extra))
        assert info.value.code == 2 and message in capsys.readouterr().err


def _checkpoints(run_dir):
    return [ckpt.checkpoint_step(p) for p in ckpt.list_checkpoints(run_dir)]


def test_pretrain_command_trains_checkpoints_and_resumes(token_files, tmp_path, capsys, monkeypatch):
    parser = _parser()
    whole, run_dir = tmp_path / "whole", tmp_path / "interrupted"
    assert pretrain.run(parser.parse_args(_args(token_files, whole))) == 0
    assert "step 3: loss" in capsys.readouterr().out
    assert _checkpoints(whole) == [1, 3] and (whole / DONE).exists()
    state = ckpt.read_state(ckpt.latest_checkpoint(whole))
    assert state["metadata"] == {"train_tokens": "train.npy", "train_token_count": int(np.load(token_files[0]).size)}
    assert state["train_config"]["steps"] == 3 and state["train_config"]["checkpoint_steps"] == [1, 3]

    # Ctrl-C during update 2: the update finishes, a checkpoint is saved there, the command stops.
    real_next_batch = TokenSampler.next_batch

    def interrupting(self):
        if self.next_window == 8:  # the second update's batch
            signal.raise_signal(signal.SIGINT)
        return real_next_batch(self)

    with monkeypatch.context() as patch:
        patch.setattr(TokenSampler, "next_batch", interrupting)
        assert pretrain.run(parser.parse_args(_args(token_files, run_dir))) == 130
    printed = capsys.readouterr().out
    kept = ckpt.latest_checkpoint(run_dir)
    assert f"interrupted; the latest checkpoint is kept: {kept}; the same command resumes" in printed
    assert _checkpoints(run_dir) == [1, 2] and not (run_dir / DONE).exists()

    # a command that differs in what the numbers depend on cannot resume the run
    assert main(["pretrain", *_args(token_files, run_dir, "--train.steps", "5")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.match(
        r"workbench pretrain: error: .*interrupted holds the result of another config: train.steps=3 \(this run: 5\)",
        err,
    ), err
    # the same command resumes from step 2, and ends where the uninterrupted run ended, bit for bit
    assert pretrain.run(parser.parse_args(_args(token_files, run_dir))) == 0
    assert "step 3: loss" in capsys.readouterr().out
    assert {1, 3} <= set(_checkpoints(run_dir)) and (run_dir / DONE).exists()
    stored = json.loads((run_dir / "config.json").read_text())
    spec = from_dict(PretrainSpec, {k: v for k, v in stored.items() if k != "data"})
    assert PretrainRun(spec, run_dir).steps == [1, 3]  # the interruption's rolling one is not kept
    resumed, reference = (ckpt.load_model(ckpt.latest_checkpoint(d)) for d in (run_dir, whole))
    for (name, expected), actual in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(actual, expected), name
    h1, h2 = ckpt.read_history(whole), ckpt.read_history(run_dir)
    assert list(h2["step"]) == list(h1["step"]) == [0, 1, 2, 3]
    np.testing.assert_array_equal(h2["loss"], h1["loss"])
    np.testing.assert_array_equal(h2["val_loss"], h1["val_loss"])

    # once finished, the same command trains nothing and reports the run again
    monkeypatch.setattr(
        pretraining_module,
        "train_language_model",
        lambda *args, **kwargs: pytest.fail("a finished run was trained again"),
    )
    assert pretrain.run(parser.parse_args(_args(token_files, run_dir))) == 0
    assert "step 3: loss" in capsys.readouterr().out


@pytest.mark.train
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(token_files, tmp_path):
    single, double = tmp_path / "single", tmp_path / "double"
    assert pretrain.run(_parser().parse_args(_args(token_files, single))) == 0

    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    # 2 ranks x micro-batch 2 x accumulation 2 = the single process's batch of 8.
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(launcher),
        *_args(token_files, double, "--train.micro-batch-size", "2"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("step 3: loss") == 1  # only rank 0 reports

    one, two = (ckpt.latest_checkpoint(d) for d in (single, double))
    assert ckpt.read_state(two)["world_size"] == 2
    assert len(ckpt.read_state(two)["rng"]) == 2  # every rank's dropout stream is saved
    reference, distributed = ckpt.load_model(one), ckpt.load_model(two)
    # An update moves weights by about lr = 3e-3, so a wrong shard or scale shows up as ~1e-3;
    # summing gradients in another order differs by ~1e-6.
    for (name, expected), actual in zip(reference.state_dict().items(), distributed.state_dict().values()):
        torch.testing.assert_close(actual, expected, rtol=1e-4, atol=5e-5, msg=name)
    h1, h2 = ckpt.read_history(single), ckpt.read_history(double)
    assert list(h1["step"]) == list(h2["step"]) == [0, 1, 2, 3]
    np.testing.assert_allclose(h2["loss"].dropna(), h1["loss"].dropna(), rtol=1e-5)
    np.testing.assert_allclose(h2["val_loss"].dropna(), h1["val_loss"].dropna(), rtol=1e-5)
    assert (h2["tokens"].iloc[1:] == h1["tokens"].iloc[1:]).all()


@pytest.mark.train
def test_every_rank_follows_rank_zero_when_another_job_finishes_the_cache_entry(token_files, tmp_path, monkeypatch):
    """Only rank 0 holds a cache entry's lock. While another job holds it, rank 0 waits; when that job
    finishes the run, every rank must load it. A rank that judged for itself saw no DONE yet, started
    training alone and waited for rank 0 in a collective that never came."""
    single, cache = tmp_path / "single", tmp_path / "cache"
    assert pretrain.run(_parser().parse_args(_args(token_files, single))) == 0  # what the other job writes
    cached = _args(token_files, single)
    del cached[cached.index("--out") : cached.index("--out") + 2]
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(cache))
    args = _parser().parse_args(cached)
    spec = apply_overrides(pretrain.recipe_from_args(args).pretraining, overrides_from_args(args, PretrainSpec))
    entry = pretraining_module.cache_entry(spec, token_files)
    entry.mkdir(parents=True)
    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(launcher)]
    with hold_run_directory(entry, wait=False, what="experiment cache entry"):
        job = subprocess.Popen([*command, *cached], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(20)  # both ranks reach the entry: rank 0 waits for the lock, rank 1 must wait for rank 0
        shutil.copytree(single, entry, dirs_exist_ok=True)  # the other job finishes the run
    try:
        out, err = job.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        job.kill()
        pytest.fail(
            f"the ranks did not agree on the finished cache entry, one of them hangs: {job.communicate()[1][-3000:]}"
        )
    assert job.returncode == 0, err[-3000:]
    assert out.count("step 3: loss") == 1
    assert ckpt.read_state(ckpt.latest_checkpoint(entry))["world_size"] == 1  # loaded, not trained again
