"""ipywidgets explorers. Each function returns a widget; tests drive them by setting values."""

from __future__ import annotations

import ipywidgets as widgets
from IPython.display import display

from .config import GPTConfig
from .params import parameter_breakdown


def parameter_explorer(config: GPTConfig | None = None) -> widgets.VBox:
    """Sliders for layers, width, heads, vocabulary and context; a live breakdown table and bar chart.

    Invalid combinations (a width the heads do not divide) show the config error instead of a table.
    """
    import matplotlib.pyplot as plt

    config = config or GPTConfig.from_preset("gpt1")
    style = {"description_width": "90px"}
    sliders = {
        "n_layer": widgets.IntSlider(config.n_layer, min=1, max=96, description="layers", style=style),
        "d_model": widgets.IntSlider(config.d_model, min=64, max=12288, step=64, description="width", style=style),
        "n_head": widgets.IntSlider(config.n_head, min=1, max=96, description="heads", style=style),
        "vocab_size": widgets.IntSlider(config.vocab_size, min=256, max=256_000, step=1, description="vocabulary", style=style),
        "n_ctx": widgets.IntSlider(config.n_ctx, min=16, max=32_768, description="context", style=style),
    }
    norm = widgets.ToggleButtons(options=["post", "pre"], value=config.norm, description="norm", style=style)
    total = widgets.HTML()
    output = widgets.Output()

    def update(_=None) -> None:
        output.clear_output(wait=True)
        values = {name: slider.value for name, slider in sliders.items()}
        try:
            current = config.replace(**values, d_ff=4 * values["d_model"], norm=norm.value)
        except ValueError as error:
            total.value = f"<b style='color:#b00'>{error}</b>"
            return
        breakdown = parameter_breakdown(current)
        total.value = f"<b>{breakdown['parameters'].sum():,}</b> parameters"
        with output:
            shown = breakdown[breakdown["parameters"] > 0]
            display(shown[["component", "shape", "layers", "parameters"]].style.format({"parameters": "{:,}"}).hide(axis="index"))
            fig, ax = plt.subplots(figsize=(7, 3))
            ax.barh(shown["component"], shown["parameters"] / 1e6)
            ax.invert_yaxis()
            ax.set_xlabel("parameters (millions)")
            fig.tight_layout()
            display(fig)
            plt.close(fig)

    for control in [*sliders.values(), norm]:
        control.observe(update, names="value")
    update()
    explorer = widgets.VBox([widgets.HBox([widgets.VBox(list(sliders.values())), norm]), total, output])
    explorer.sliders, explorer.total = sliders, total  # handles for tests and users
    return explorer
