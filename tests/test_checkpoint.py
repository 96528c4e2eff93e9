"""Checkpoint files: atomic, pickle-free, tied weights stored once, clear errors on mismatch."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from workbench import GPT, GPTConfig
from workbench.training import checkpoint as ckpt
from workbench.training.config import TrainConfig
from workbench.training.trainer import build_optimizer


def _gpt(seed=0, **changes):
    torch.manual_seed(seed)
    return GPT(GPTConfig.from_preset("gpt1-micro", **changes))


def _write(path, model, optimizer=None, step=1):
    ckpt.write_checkpoint(
        path,
        model=model,
        optimizer=optimizer or build_optimizer(model, TrainConfig()),
        state={"step": step, "model_class": "GPT", "model_config": model.config.to_dict()},
        history=pd.DataFrame({"step": [step], "loss": [1.5]}),
        model_config=model.config.to_dict(),
    )


def test_tied_weights_are_stored_once_and_tied_again_on_load(tmp_path):
    model = _gpt()
    _write(tmp_path / "step-00000001", model)
    tensors, metadata = ckpt.read_safetensors(tmp_path / "step-00000001" / ckpt.MODEL_FILE)
    assert "wte.weight" in tensors and "lm_head.weight" not in tensors
    assert json.loads(metadata["aliases"]) == {"lm_head.weight": "wte.weight"}
    assert json.loads(metadata["config"]) == model.config.to_dict()
    loaded = ckpt.load_model(tmp_path / "step-00000001")
    assert loaded.lm_head.weight is loaded.wte.weight
    assert not loaded.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_loading_into_another_shape_names_the_tensor(tmp_path):
    _write(tmp_path / "step-00000001", _gpt())
    with pytest.raises(ValueError, match=r"wpe.weight has shape \(64, 64\), this model expects \(32, 64\)"):
        ckpt.load_weights(_gpt(n_ctx=32), tmp_path / "step-00000001")
    with pytest.raises(ValueError, match=r"missing \['blocks.2.attn.proj.bias'"):
        ckpt.load_weights(_gpt(n_layer=3), tmp_path / "step-00000001")


def test_optimizer_state_round_trips_without_pickle(tmp_path):
    model = _gpt()
    optimizer = build_optimizer(model, TrainConfig())
    model(torch.randint(0, 512, (2, 8)), torch.randint(0, 512, (2, 8))).loss.backward()
    optimizer.step()
    _write(tmp_path / "step-00000001", model, optimizer)
    restored = build_optimizer(model, TrainConfig())
    tensors, _ = ckpt.read_safetensors(tmp_path / "step-00000001" / ckpt.OPTIMIZER_FILE)
    assert {"0.exp_avg", "0.exp_avg_sq", "0.step"} <= set(tensors)
    ckpt.load_optimizer_tensors(restored, tensors)
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            assert torch.equal(restored.state_dict()["state"][index][key], value)
    groups = json.loads((tmp_path / "step-00000001" / ckpt.STATE_FILE).read_text())["optimizer_groups"]
    assert [g["weight_decay"] for g in groups] == [0.01, 0.0]


def test_a_crash_while_writing_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    run = tmp_path / "run"
    model = _gpt()
    _write(ckpt.checkpoint_path(run, 1), model)
    before = (ckpt.checkpoint_path(run, 1) / ckpt.MODEL_FILE).read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_file", crash)  # the optimizer file fails after the weights
    with torch.no_grad():
        model.wte.weight.add_(1.0)
    for step in (1, 2):  # overwriting a step and writing a new one
        with pytest.raises(OSError, match="disk full"):
            _write(ckpt.checkpoint_path(run, step), model, step=step)
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step-00000001"]
    assert (ckpt.checkpoint_path(run, 1) / ckpt.MODEL_FILE).read_bytes() == before
    assert [p.name for p in (run / ckpt.CHECKPOINTS).iterdir()] == ["step-00000001"]


def test_stale_temporaries_are_ignored_then_removed(tmp_path):
    stale = tmp_path / ckpt.CHECKPOINTS / ".step-00000005.abc.tmp"
    stale.mkdir(parents=True)
    (stale / ckpt.STATE_FILE).write_text("{")
    assert ckpt.list_checkpoints(tmp_path) == [] and ckpt.latest_checkpoint(tmp_path) is None
    ckpt.remove_stale_temporaries(tmp_path)
    assert not stale.exists()


def test_log_spaced_steps():
    steps = ckpt.log_spaced_steps(1000, 7)
    assert steps == (1, 3, 10, 32, 100, 316, 1000)
    assert ckpt.log_spaced_steps(5, 10) == (1, 2, 3, 4, 5)
    with pytest.raises(ValueError, match="count=0"):
        ckpt.log_spaced_steps(10, 0)
