"""Checkpoint files: atomic, pickle-free, hashed, tied weights stored once, clear errors on mismatch."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from workbench import GPT, GPTConfig
from workbench.cli import main
from workbench.data import sources
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


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _safetensors_disk_full(*args, **kwargs):  # how safetensors itself reports it
    raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")


@pytest.mark.parametrize("where", ["weights", "optimizer", "state", "fsync"])
def test_a_full_disk_is_named_and_leaves_the_previous_checkpoint(tmp_path, monkeypatch, where):
    run = tmp_path / "run"
    model = _gpt()
    _write(ckpt.checkpoint_path(run, 1), model)
    before = {p.name: p.read_bytes() for p in ckpt.checkpoint_path(run, 1).iterdir()}
    if where == "weights":
        monkeypatch.setattr(ckpt, "save_weights", _disk_full)
    elif where == "optimizer":
        monkeypatch.setattr(ckpt, "save_file", _safetensors_disk_full)
    elif where == "state":
        monkeypatch.setattr(ckpt.json, "dumps", _disk_full)
    else:
        monkeypatch.setattr(ckpt.os, "fsync", _disk_full)
    for step in (1, 2):  # overwriting a step and writing a new one
        with pytest.raises(
            OSError, match=rf"cannot write checkpoint .*step-0000000{step}: it needs about \d+\.\d MiB"
        ) as error:
            _write(ckpt.checkpoint_path(run, step), model, step=step)
        assert error.value.errno == errno.ENOSPC and error.value.filename == str(ckpt.checkpoint_path(run, step))
        assert "earlier checkpoints are intact" in str(error.value)
    monkeypatch.undo()
    assert [p.name for p in (run / ckpt.CHECKPOINTS).iterdir()] == ["step-00000001"]  # no half-written directory
    assert {p.name: p.read_bytes() for p in ckpt.checkpoint_path(run, 1).iterdir()} == before


def test_a_failed_swap_puts_the_previous_checkpoint_back(tmp_path, monkeypatch):
    path = ckpt.checkpoint_path(tmp_path, 1)
    _write(path, _gpt())
    before = (path / ckpt.MODEL_FILE).read_bytes()
    replace = os.replace

    def failing_replace(src, dst):
        if Path(dst) == path and ".tmp" in str(src) and not str(src).endswith("old"):
            raise OSError(errno.EIO, "I/O error")
        return replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", failing_replace)
    with pytest.raises(OSError, match="I/O error"):
        _write(path, _gpt(seed=1))
    monkeypatch.undo()
    assert (path / ckpt.MODEL_FILE).read_bytes() == before
    ckpt.remove_stale_temporaries(tmp_path)
    assert [p.name for p in (tmp_path / ckpt.CHECKPOINTS).iterdir()] == ["step-00000001"]


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"step": 1, "model_cl', r"trainer.json is not valid JSON \(.*; 21 bytes\): it is truncated or damaged"),
        ("", r"trainer.json is not valid JSON"),
        ("\xff\xfe{}", r"trainer.json is not valid JSON"),
        ("[1, 2]", r"trainer.json holds a JSON list; expected an object of fields"),
    ],
)
def test_a_damaged_state_file_is_named(tmp_path, text, message):
    path = tmp_path / "step-00000001"
    _write(path, _gpt())
    (path / ckpt.STATE_FILE).write_bytes(text.encode("latin-1"))
    with pytest.raises(ckpt.CheckpointError, match=message):
        ckpt.load_model(path)


def test_a_missing_field_is_named_with_the_file(tmp_path):
    path = tmp_path / "step-00000001"
    _write(path, _gpt())
    (path / ckpt.HASHES_FILE).unlink()  # as written by a version before hashes (else: damaged, below)
    state = json.loads((path / ckpt.STATE_FILE).read_text())
    del state["model_class"]
    (path / ckpt.STATE_FILE).write_text(json.dumps(state))
    with pytest.raises(ckpt.CheckpointError, match=r"trainer.json has no 'model_class' field \(fields present: \['"):
        ckpt.load_model(path)
    with pytest.raises(KeyError):  # still a KeyError for code that falls back on one
        ckpt.read_state(path)["tokens"]
    assert ckpt.read_state(path).get("tokens", 0) == 0
    state["model_class"], state["model_config"] = "GPT", {"n_layer": "two", "bogus": 1}
    (path / ckpt.STATE_FILE).write_text(json.dumps(state))
    with pytest.raises(ckpt.CheckpointError, match=r"trainer.json: model_config is not a valid GPT config"):
        ckpt.load_model(path)


@pytest.mark.parametrize("keep", [0, 7, 100, -30])
def test_a_truncated_safetensors_file_is_named(tmp_path, keep):
    path = tmp_path / "step-00000001"
    model = _gpt()
    optimizer = build_optimizer(model, TrainConfig())
    model(torch.randint(0, 512, (2, 8)), torch.randint(0, 512, (2, 8))).loss.backward()
    optimizer.step()  # so that the optimizer file holds tensors
    _write(path, model, optimizer)
    for file in (ckpt.MODEL_FILE, ckpt.OPTIMIZER_FILE):
        data = (path / file).read_bytes()
        (path / file).write_bytes(data[:keep])
        with pytest.raises(
            ckpt.CheckpointError, match=rf"{file} is not a readable safetensors file .*truncated or damaged"
        ):
            ckpt.read_safetensors(path / file)
    with pytest.raises(ckpt.CheckpointError, match=rf"{ckpt.MODEL_FILE} is not a readable safetensors file"):
        ckpt.load_model(path)


def test_non_finite_weights_are_refused(tmp_path):
    path = tmp_path / "step-00000001"
    model = _gpt()
    with torch.no_grad():
        model.wte.weight[2, :3] = float("nan")
        model.blocks[1].ln_2.bias[0] = float("-inf")
    _write(path, model)
    with pytest.raises(
        ValueError,
        match=r"model.safetensors are not finite: .*wte.weight holds 3 NaN and 0 inf of 32768 values \(the file",
    ):
        ckpt.load_model(path)
    with pytest.raises(ValueError, match=r"blocks.1.ln_2.bias holds 0 NaN and 1 inf of 64 values"):
        ckpt.load_weights(_gpt(), path)
    with pytest.raises(
        ckpt.CheckpointError,
        match=r"model.safetensors: tensor .*'wte.weight' holds 3 NaN and 0 inf of 32768 values: not finite",
    ):
        ckpt.read_safetensors(path / ckpt.MODEL_FILE)


def test_a_damaged_alias_table_is_named(tmp_path):
    path = tmp_path / "step-00000001"
    model = _gpt()
    tensors, _ = ckpt.unique_state_dict(model)
    save_file(tensors, str(tmp_path / "model.safetensors"), metadata={"aliases": '{"lm_head.weight": "nope"}'})
    with pytest.raises(ckpt.CheckpointError, match=r"the alias 'lm_head.weight' names 'nope'"):
        ckpt.load_weights(model, tmp_path / "model.safetensors")
    save_file(tensors, str(tmp_path / "model.safetensors"), metadata={"aliases": "{oops"})
    with pytest.raises(ckpt.CheckpointError, match=r"its 'aliases' metadata is not a JSON object"):
        ckpt.load_weights(model, tmp_path / "model.safetensors")
    assert not path.exists()


def _flip_a_bit(path: Path) -> None:
    """Flip the lowest bit of the first value past the header: a mantissa bit, so the value stays finite."""
    data = bytearray(path.read_bytes())
    data[8 + int.from_bytes(data[:8], "little")] ^= 1
    path.write_bytes(data)


def _stepped(model):
    """An optimizer after one update, so that its file holds tensors."""
    optimizer = build_optimizer(model, TrainConfig())
    model(torch.randint(0, 512, (2, 8)), torch.randint(0, 512, (2, 8))).loss.backward()
    optimizer.step()
    return optimizer


@pytest.mark.parametrize("file", [ckpt.MODEL_FILE, ckpt.OPTIMIZER_FILE])
def test_a_flipped_bit_in_tensor_data_is_named_on_load(tmp_path, file):
    run = tmp_path / "run"
    path = ckpt.checkpoint_path(run, 1)
    model = _gpt()
    _write(path, model, _stepped(model))
    assert json.loads((path / ckpt.HASHES_FILE).read_text())[file]["size"] == (path / file).stat().st_size
    _flip_a_bit(path / file)
    with safe_open(str(path / file), framework="pt") as handle:  # still readable, every value finite
        assert all(torch.isfinite(handle.get_tensor(name)).all() for name in handle.keys())
    message = rf"{file} is damaged: {file} has SHA-256 [0-9a-f]{{64}}, but the checkpoint's hashes.json recorded"
    with pytest.raises(ckpt.CheckpointError, match=message) as error:
        ckpt.read_safetensors(path / file)
    assert f"python -m workbench verify {run}`" in str(error.value)
    if file == ckpt.MODEL_FILE:
        with pytest.raises(ValueError, match=message):
            ckpt.load_model(path)


def test_verify_names_the_damaged_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    for step in (1, 2):
        _write(ckpt.checkpoint_path(run, step), _gpt(), step=step)
    assert main(["verify", str(run)]) == 0
    assert capsys.readouterr().out.splitlines() == ["step-00000001  4 files  ok", "step-00000002  4 files  ok"]
    _flip_a_bit(ckpt.checkpoint_path(run, 2) / ckpt.MODEL_FILE)
    assert main(["verify", str(run)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == "step-00000001  4 files  ok"
    assert out.splitlines()[1].startswith("step-00000002  4 files  damaged: model.safetensors has SHA-256 ")
    assert err.startswith(f"workbench verify: error: 1 damaged checkpoint(s): {ckpt.checkpoint_path(run, 2)} (")
    assert main(["verify", str(ckpt.checkpoint_path(run, 1))]) == 0  # one checkpoint directory
    assert capsys.readouterr().out == "step-00000001  4 files  ok\n"


def test_a_checkpoint_without_hashes_loads_and_verifies_as_unrecorded(tmp_path, capsys):
    path = ckpt.checkpoint_path(tmp_path, 1)
    model = _gpt()
    _write(path, model)
    (path / ckpt.HASHES_FILE).unlink()  # as written before hashes were recorded
    loaded = ckpt.load_model(path)
    assert all(torch.equal(loaded.state_dict()[name], t) for name, t in model.state_dict().items())
    assert ckpt.verify_checkpoint(path) is None
    assert main(["verify", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("step-00000001  no hash recorded")


def test_a_damaged_hash_manifest_is_named(tmp_path, capsys):
    path = ckpt.checkpoint_path(tmp_path, 1)
    _write(path, _gpt())
    (path / ckpt.HASHES_FILE).write_text('{"model.safetensors": {"size": "big"}}')
    message = r"hashes.json is damaged \(\d+ bytes\): expected a JSON object mapping each file name to its size"
    with pytest.raises(ckpt.CheckpointError, match=message):
        ckpt.load_model(path)
    assert main(["verify", str(tmp_path)]) == 1
    assert "damaged: " in capsys.readouterr().out


def test_each_file_is_hashed_once_per_process_while_unchanged(tmp_path, monkeypatch):
    path = ckpt.checkpoint_path(tmp_path, 1)
    _write(path, _gpt())
    hashed = []
    real = sources.sha256_file
    monkeypatch.setattr(sources, "sha256_file", lambda file: hashed.append(Path(file).name) or real(file))
    for _ in range(3):
        ckpt.load_model(path)
    assert sorted(hashed) == [ckpt.MODEL_FILE, ckpt.STATE_FILE]
    model_file = path / ckpt.MODEL_FILE
    stat = model_file.stat()
    os.utime(model_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # touched: hashed again
    ckpt.load_model(path)
    assert sorted(hashed) == [ckpt.MODEL_FILE, ckpt.MODEL_FILE, ckpt.STATE_FILE]


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
