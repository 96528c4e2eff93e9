import pytest

from workbench.core.options import from_dict, to_dict
from workbench.models.config import PRESETS, GPTConfig


def test_presets_have_the_papers_shapes():
    gpt1 = GPTConfig.from_preset("gpt1")
    assert (gpt1.n_layer, gpt1.d_model, gpt1.n_head, gpt1.d_ff) == (12, 768, 12, 3072)
    assert (gpt1.vocab_size, gpt1.n_ctx, gpt1.norm, gpt1.final_norm) == (40478, 512, "post", False)
    for name, shape in {
        "gpt2": (12, 768, 12),
        "gpt2-medium": (24, 1024, 16),
        "gpt2-large": (36, 1280, 20),
        "gpt2-xl": (48, 1600, 25),
    }.items():
        config = GPTConfig.from_preset(name)
        assert (config.n_layer, config.d_model, config.n_head) == shape
        assert (config.vocab_size, config.n_ctx, config.norm, config.final_norm) == (50257, 1024, "pre", True)
        assert config.d_ff == 4 * config.d_model


def test_unknown_preset_lists_valid_names():
    with pytest.raises(ValueError, match="unknown preset 'gpt3'") as info:
        GPTConfig.from_preset("gpt3")
    for name in PRESETS:
        assert name in str(info.value)


def test_overrides_and_round_trip():
    config = GPTConfig.from_preset("gpt2", dropout=0.0)
    assert config.dropout == 0.0 and config.n_layer == 12
    assert GPTConfig.from_dict(config.to_dict()) == config
    assert from_dict(GPTConfig, to_dict(config)) == config  # the schema the recipes' YAML files use


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(d_model=100, n_head=3), "GPTConfig.d_model=100 must be divisible by n_head=3"),
        (dict(n_layer=0), "GPTConfig.n_layer must be a positive integer, got 0"),
        (dict(vocab_size=-5), "GPTConfig.vocab_size must be a positive integer, got -5"),
        (dict(n_ctx=1.5), "GPTConfig.n_ctx must be a positive integer, got 1.5"),
        (dict(norm="middle"), "GPTConfig.norm must be one of .*'middle'"),
        (dict(activation="relu"), "GPTConfig.activation must be one of .*'relu'"),
        (dict(dropout=1.0), r"GPTConfig.dropout must be a number in \[0, 1\), got 1.0"),
    ],
)
def test_invalid_configs_name_the_value(changes, message):
    with pytest.raises(ValueError, match=message):
        GPTConfig(**changes)


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(ValueError, match=r"unknown GPTConfig fields \['n_embd'\]"):
        GPTConfig.from_dict({"n_embd": 768})
