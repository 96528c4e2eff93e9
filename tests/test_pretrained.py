"""Errors of the Hugging Face checkpoint loader (parity itself is in test_parity.py)."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from workbench import GPT
from workbench.models.huggingface import config_from_hf

HF_GPT2 = dict(model_type="gpt2", n_layer=1, n_embd=8, n_head=2, n_positions=4, vocab_size=11)


def _write_checkpoint(directory, config, tensors):
    directory.mkdir(exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    save_file(tensors, directory / "model.safetensors")


def _gpt2_tensors(d=8, vocab=11, ctx=4):
    tensors = {
        "transformer.wte.weight": torch.randn(vocab, d),
        "transformer.wpe.weight": torch.randn(ctx, d),
        "transformer.ln_f.weight": torch.ones(d),
        "transformer.ln_f.bias": torch.zeros(d),
    }
    for name, shape in {
        "attn.c_attn.weight": (d, 3 * d),
        "attn.c_attn.bias": (3 * d,),
        "attn.c_proj.weight": (d, d),
        "attn.c_proj.bias": (d,),
        "mlp.c_fc.weight": (d, 4 * d),
        "mlp.c_fc.bias": (4 * d,),
        "mlp.c_proj.weight": (4 * d, d),
        "mlp.c_proj.bias": (d,),
        "ln_1.weight": (d,),
        "ln_1.bias": (d,),
        "ln_2.weight": (d,),
        "ln_2.bias": (d,),
    }.items():
        tensors[f"transformer.h.0.{name}"] = torch.randn(shape)
    return tensors


def test_minimal_checkpoint_loads(tmp_path):
    tensors = _gpt2_tensors()
    _write_checkpoint(tmp_path, HF_GPT2, tensors)
    model = GPT.from_pretrained(tmp_path)
    assert torch.equal(model.blocks[0].attn.qkv.weight, tensors["transformer.h.0.attn.c_attn.weight"].t())
    assert not model.training


def test_shape_mismatch_names_tensor_and_both_shapes(tmp_path):
    tensors = _gpt2_tensors()
    tensors["transformer.h.0.mlp.c_fc.bias"] = torch.zeros(31)
    _write_checkpoint(tmp_path, HF_GPT2, tensors)
    with pytest.raises(ValueError, match=r"blocks.0.mlp.fc.bias has shape \(31,\), this model expects \(32,\)"):
        GPT.from_pretrained(tmp_path)


def test_missing_and_unexpected_tensors_are_listed(tmp_path):
    tensors = _gpt2_tensors()
    del tensors["transformer.ln_f.bias"]
    _write_checkpoint(tmp_path, HF_GPT2, tensors)
    with pytest.raises(ValueError, match=r"missing \['ln_f.bias'\]"):
        GPT.from_pretrained(tmp_path)
    tensors = _gpt2_tensors()
    tensors["transformer.h.0.attn.q_norm.weight"] = torch.ones(8)
    _write_checkpoint(tmp_path, HF_GPT2, tensors)
    with pytest.raises(ValueError, match="unexpected tensor 'transformer.h.0.attn.q_norm.weight'"):
        GPT.from_pretrained(tmp_path)


def test_untied_lm_head_is_rejected(tmp_path):
    tensors = _gpt2_tensors()
    tensors["lm_head.weight"] = torch.randn(11, 8)
    _write_checkpoint(tmp_path, HF_GPT2, tensors)
    with pytest.raises(ValueError, match="lm_head.weight differs from wte.weight"):
        GPT.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(model_type="llama"), r"unknown model type 'llama'; expected one of \('openai-gpt', 'gpt2'\)"),
        (dict(activation_function="relu"), "unsupported activation_function='relu'"),
        (dict(scale_attn_by_inverse_layer_idx=True), "scale_attn_by_inverse_layer_idx"),
    ],
)
def test_unsupported_configs(changes, message):
    with pytest.raises(ValueError, match=message):
        config_from_hf({**HF_GPT2, **changes})


def test_missing_weights_file(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(HF_GPT2))
    with pytest.raises(FileNotFoundError, match="has no model.safetensors"):
        GPT.from_pretrained(tmp_path)


def test_unknown_hub_name_says_how_to_provide_a_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="Provide a local directory with config.json"):
        GPT.from_pretrained("gpt2")


def _write_sharded(directory, tensors, index_name="model.safetensors.index.json", shards=None):
    """Split ``tensors`` into two shards and an index naming them (``shards`` overrides the names)."""
    directory.mkdir(exist_ok=True)
    (directory / "config.json").write_text(json.dumps(HF_GPT2))
    names = sorted(tensors)
    halves = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    weight_map = {}
    for file, part in halves.items():
        save_file({name: tensors[name] for name in part}, directory / file)
        weight_map |= {name: (shards or {}).get(file, file) for name in part}
    (directory / index_name).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


def test_sharded_checkpoint_loads(tmp_path):
    tensors = _gpt2_tensors()
    _write_sharded(tmp_path / "ckpt", tensors)
    model = GPT.from_pretrained(tmp_path / "ckpt")
    assert torch.equal(model.wte.weight, tensors["transformer.wte.weight"])


def test_sharded_bin_index_loads(tmp_path):
    tensors = _gpt2_tensors()
    directory = tmp_path / "ckpt"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(HF_GPT2))
    torch.save(tensors, directory / "pytorch_model-00001-of-00001.bin")
    weight_map = {name: "pytorch_model-00001-of-00001.bin" for name in tensors}
    (directory / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))
    model = GPT.from_pretrained(directory)
    assert torch.equal(model.wpe.weight, tensors["transformer.wpe.weight"])


@pytest.mark.parametrize("index_name", ["model.safetensors.index.json", "pytorch_model.bin.index.json"])
@pytest.mark.parametrize("how", ["absolute", "parent", "symlink"])
def test_a_shard_outside_the_checkpoint_is_refused(tmp_path, index_name, how):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    tensors = _gpt2_tensors()
    save_file({"transformer.wte.weight": tensors["transformer.wte.weight"]}, outside / "secret.safetensors")
    shard = "model-00001-of-00002.safetensors"
    directory = tmp_path / "ckpt"
    target = {
        "absolute": str(outside / "secret.safetensors"),
        "parent": "../elsewhere/secret.safetensors",
        "symlink": "linked.safetensors",
    }[how]
    _write_sharded(directory, tensors, index_name, shards={shard: target})
    if how == "symlink":
        (directory / "linked.safetensors").symlink_to(outside / "secret.safetensors")
    with pytest.raises(ValueError, match=rf"{index_name} names the shard .*outside the checkpoint directory"):
        GPT.from_pretrained(directory)


@pytest.mark.parametrize("weights", ["model.safetensors", "pytorch_model.bin"])
def test_an_unsharded_weights_file_linked_from_outside_is_refused(tmp_path, weights):
    """The shards' rule holds for a single weights file too: a link out of the directory is not read."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    tensors = _gpt2_tensors()
    save_file(tensors, outside / "model.safetensors")
    torch.save(tensors, outside / "pytorch_model.bin")
    directory = tmp_path / "ckpt"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(HF_GPT2))
    (directory / weights).symlink_to(outside / weights)
    message = rf"{weights} is a symlink to .*elsewhere.*, outside the checkpoint directory; expected a file inside"
    with pytest.raises(ValueError, match=message):
        GPT.from_pretrained(directory)
    inside = directory / f"real-{weights}"
    (outside / weights).rename(inside)
    (directory / weights).unlink()
    (directory / weights).symlink_to(inside.name)  # a link inside the directory is fine
    model = GPT.from_pretrained(directory)
    assert torch.equal(model.wte.weight, tensors["transformer.wte.weight"])


def test_hub_cache_links_into_its_blobs_are_followed(tmp_path):
    """The Hugging Face cache keeps files in blobs/ and links them from snapshots/REVISION/."""
    repo = tmp_path / "models--openai--gpt2"
    snapshot, blobs = repo / "snapshots" / "abc123", repo / "blobs"
    blobs.mkdir(parents=True)
    tensors = _gpt2_tensors()
    _write_sharded(tmp_path / "staging", tensors)
    snapshot.mkdir(parents=True)
    for path in (tmp_path / "staging").iterdir():
        path.rename(blobs / path.name)
        (snapshot / path.name).symlink_to(Path("..") / ".." / "blobs" / path.name)
    model = GPT.from_pretrained(snapshot)
    assert torch.equal(model.wte.weight, tensors["transformer.wte.weight"])


def test_a_missing_shard_and_a_bad_index_are_named(tmp_path):
    directory = tmp_path / "ckpt"
    _write_sharded(directory, _gpt2_tensors(), shards={"model-00002-of-00002.safetensors": "gone.safetensors"})
    with pytest.raises(FileNotFoundError, match="names the shard 'gone.safetensors', which does not exist"):
        GPT.from_pretrained(directory)
    (directory / "model.safetensors.index.json").write_text('{"weight_map": ')
    with pytest.raises(ValueError, match=r"model.safetensors.index.json is not valid JSON"):
        GPT.from_pretrained(directory)
    (directory / "model.safetensors.index.json").write_text('{"weights": {}}')
    with pytest.raises(ValueError, match="has no 'weight_map' object"):
        GPT.from_pretrained(directory)
    (directory / "model.safetensors.index.json").write_text('{"weight_map": {"transformer.wte.weight": null}}')
    with pytest.raises(ValueError, match="names the shard None; expected a file name"):
        GPT.from_pretrained(directory)


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"model_type": "gpt2", ', r"config.json is not valid JSON"),
        ("[1, 2]", r"config.json holds a JSON list; expected"),
        (json.dumps({k: v for k, v in HF_GPT2.items() if k != "n_head"}), r"config.json has no 'n_head' field"),
        (json.dumps({k: v for k, v in HF_GPT2.items() if k != "model_type"}), r"config.json has no 'model_type'"),
        (json.dumps({**HF_GPT2, "n_layer": "12"}), r"config.json: n_layer='12'; expected a positive int"),
    ],
)
def test_a_bad_config_json_names_the_file_and_field(tmp_path, text, message):
    _write_checkpoint(tmp_path, HF_GPT2, _gpt2_tensors())
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(ValueError, match=message):
        GPT.from_pretrained(tmp_path)


def test_damaged_weights_are_named(tmp_path):
    _write_checkpoint(tmp_path, HF_GPT2, _gpt2_tensors())
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-50])
    with pytest.raises(ValueError, match=r"model.safetensors is not a readable weights file \(SafetensorError"):
        GPT.from_pretrained(tmp_path)
    weights.unlink()
    (tmp_path / "pytorch_model.bin").write_bytes(b"not a pickle or a zip")
    with pytest.raises(ValueError, match=r"pytorch_model.bin is not a readable weights file"):
        GPT.from_pretrained(tmp_path)


def test_nan_weights_are_refused(tmp_path):
    tensors = _gpt2_tensors()
    tensors["transformer.h.0.ln_1.bias"][3] = float("nan")
    tensors["transformer.h.0.ln_1.bias"][5] = float("inf")
    _write_checkpoint(tmp_path, HF_GPT2, tensors)
    with pytest.raises(ValueError, match=r"not finite: blocks.0.ln_1.bias holds 1 NaN and 1 inf of 8 values"):
        GPT.from_pretrained(tmp_path)
