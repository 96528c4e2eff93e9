from workbench.params import count_parameters
from workbench.widgets import parameter_explorer
from workbench.config import GPTConfig


def _shown_total(explorer) -> int:
    return int(explorer.total.value.split("<b>")[1].split("</b>")[0].replace(",", ""))


def test_parameter_explorer_updates_when_sliders_move():
    explorer = parameter_explorer(GPTConfig.from_preset("gpt1"))
    assert _shown_total(explorer) == 116_534_784
    explorer.sliders["n_layer"].value = 24
    expected = count_parameters(GPTConfig.from_preset("gpt1", n_layer=24))
    assert _shown_total(explorer) == expected


def test_parameter_explorer_shows_config_errors():
    explorer = parameter_explorer(GPTConfig.from_preset("gpt1"))
    explorer.sliders["n_head"].value = 7
    assert "must be divisible by n_head=7" in explorer.total.value
