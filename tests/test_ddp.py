"""The pretrain command, on one process and as two DDP processes under torchrun (gloo, CPU)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.training import checkpoint as ckpt
from workbench.cli import pretrain

LAUNCHER = """\
import argparse, sys
from workbench.cli import pretrain
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
    train, val = token_files
    return ["--train-tokens", str(train), "--val-tokens", str(val), "--out", str(out),
            "--preset", "gpt2-micro", "--dropout", "0", "--steps", "3", "--batch-size", "8",
            "--lr", "3e-3", "--precision", "fp32", "--log-every", "1", "--eval-every", "3",
            "--eval-sequences", "8", "--no-progress", *extra]


def test_help_lists_every_option_with_its_default():
    text = _parser().format_help()
    for option in ("--train-tokens", "--val-tokens", "--out", "--preset", "--resume", "--steps",
                   "--batch-size", "--micro-batch-size", "--lr", "--schedule", "--warmup-steps",
                   "--precision", "--device", "--compile", "--checkpoint-steps", "--peak-flops"):
        assert option in text
    assert "(default: 32)" in text and "(default: 0.00025)" in text and "(default: gpt1-mini)" in text


def test_bad_command_line_values_are_named(token_files, tmp_path):
    parser = _parser()
    with pytest.raises(SystemExit, match="lr must be a positive number, got -1.0"):
        pretrain.run(parser.parse_args(_args(token_files, tmp_path, "--lr", "-1")))
    with pytest.raises(SystemExit, match="token file .*missing.npy does not exist"):
        pretrain.run(parser.parse_args(_args(token_files, tmp_path, "--train-tokens",
                                             str(tmp_path / "missing.npy"))))
    assert not (tmp_path / "checkpoints").exists()


def test_pretrain_command_trains_and_resumes(token_files, tmp_path, capsys):
    parser = _parser()
    assert pretrain.run(parser.parse_args(_args(token_files, tmp_path, "--checkpoint-steps", "1"))) == 0
    assert "step 3: loss" in capsys.readouterr().out
    assert [ckpt.checkpoint_step(p) for p in ckpt.list_checkpoints(tmp_path)] == [1, 3]
    state = ckpt.read_state(ckpt.latest_checkpoint(tmp_path))
    assert state["metadata"] == {"train_tokens": "train.npy",
                                 "train_token_count": int(np.load(token_files[0]).size)}
    longer = _args(token_files, tmp_path, "--checkpoint-steps", "1")
    longer[longer.index("--steps") + 1] = "5"
    with pytest.raises(SystemExit, match="pretrain: error: .*steps=3 \\(this run: 5\\)"):
        pretrain.run(parser.parse_args(longer + ["--resume"]))
    assert pretrain.run(parser.parse_args(_args(token_files, tmp_path, "--resume", "--checkpoint-steps", "1"))) == 0
    assert "step 3: loss" in capsys.readouterr().out  # already finished: nothing more to do


def test_two_gloo_processes_match_one_process_with_the_same_global_batch(token_files, tmp_path):
    single, double = tmp_path / "single", tmp_path / "double"
    assert pretrain.run(_parser().parse_args(_args(token_files, single))) == 0

    launcher = tmp_path / "launch.py"
    launcher.write_text(LAUNCHER)
    # 2 ranks x micro-batch 2 x accumulation 2 = the single process's batch of 8.
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(launcher), *_args(token_files, double, "--micro-batch-size", "2", "--device", "cpu")]
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
