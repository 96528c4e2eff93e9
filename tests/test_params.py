import pytest
import torch

from workbench import GPT, count_parameters, parameter_breakdown
from workbench.models.config import PRESETS
from workbench.models.params import (
    family_table,
    per_block_parameters,
    quoted_gpt1_approximation,
    reconcile_gpt1,
    reconcile_gpt2_paper,
)

EXACT = {
    "gpt1": 116_534_784,
    "gpt2": 124_439_808,
    "gpt2-medium": 354_823_168,
    "gpt2-large": 774_030_080,
    "gpt2-xl": 1_557_611_200,
}


@pytest.mark.parametrize("name", EXACT)
def test_exact_totals(name):
    assert count_parameters(PRESETS[name]) == EXACT[name]


@pytest.mark.parametrize("name", list(PRESETS))
def test_analytic_count_equals_built_model(name):
    # Large presets are built on the meta device: shapes only, no memory.
    with torch.device("meta"):
        model = GPT(PRESETS[name])
    assert count_parameters(PRESETS[name]) == sum(p.numel() for p in model.parameters())
    assert parameter_breakdown(PRESETS[name])["parameters"].sum() == model.num_parameters()


def test_breakdown_components_match_module_shapes():
    config = PRESETS["gpt2-micro"]
    model = GPT(config)
    table = parameter_breakdown(config).set_index("component")["parameters"]
    blocks = model.blocks
    assert table["token embedding"] == model.wte.weight.numel()
    assert table["position embedding"] == model.wpe.weight.numel()
    assert table["attention QKV weight"] == sum(b.attn.qkv.weight.numel() for b in blocks)
    assert table["FFN output bias"] == sum(b.mlp.proj.bias.numel() for b in blocks)
    assert table["final layer norm (gain + bias)"] == 2 * config.d_model
    assert table["LM head (tied to token embedding)"] == 0
    assert (
        parameter_breakdown(PRESETS["gpt1-micro"]).set_index("component")["parameters"][
            "final layer norm (gain + bias)"
        ]
        == 0
    )


def test_task_head_and_special_tokens():
    config = PRESETS["gpt1"]
    base = count_parameters(config)
    assert count_parameters(config, n_classes=2) == base + 768 * 2 + 2
    assert count_parameters(config, n_special=3) == base + 3 * 768
    with pytest.raises(ValueError, match="n_classes and n_special must be >= 0"):
        parameter_breakdown(config, n_classes=-1)


def test_gpt1_block_and_quoted_approximation():
    assert per_block_parameters(PRESETS["gpt1"]) == 7_087_872
    assert quoted_gpt1_approximation()["parameters"].sum() == 116_459_520


def test_gpt1_reconciliation_adds_up_to_the_exact_count():
    table = reconcile_gpt1()
    differences = table.iloc[1:-1]["parameters"]
    assert table.iloc[0]["parameters"] == 116_459_520
    assert table.iloc[0]["parameters"] + differences.sum() == EXACT["gpt1"]
    assert table.iloc[-1]["parameters"] == EXACT["gpt1"]
    items = dict(zip(table["item"], table["parameters"]))
    assert items["+ attention and FFN biases"] == 12 * 6912
    assert items["+ position embeddings"] == 512 * 768
    assert items["+ vocabulary 40,478, not 40,000"] == 478 * 768


def test_gpt2_paper_sizes_are_the_architectures_with_gpt1_vocabulary():
    table = reconcile_gpt2_paper().set_index("model")
    assert table.loc["gpt2", "exact"] == EXACT["gpt2"]
    assert table["rounds_to_paper"].all()
    assert table.loc["gpt2", "exact_with_gpt1_vocab"] == EXACT["gpt2"] - (50257 - 40478) * 768


def test_family_table_rule_of_thumb_is_the_block_matrices():
    table = family_table().set_index("model")
    assert table.loc["gpt2-xl", "twelve_L_d2"] == 12 * 48 * 1600**2
    assert (table["twelve_L_d2"] < table["exact"]).all()
