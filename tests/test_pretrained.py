"""Errors of the Hugging Face checkpoint loader (parity itself is in test_parity.py)."""

import json

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
