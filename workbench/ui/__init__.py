"""What the notebooks show: figures (:mod:`.plots`) and interactive explorers (:mod:`.widgets`)."""

from .plots import (
    parameter_count_data,
    plot_ablation,
    plot_layer_transfer,
    plot_parameter_count,
    plot_pretraining_loss,
    plot_schedule,
    plot_zero_shot,
    plot_zero_shot_scaling,
    pretraining_loss_data,
    save_figure,
)
from .widgets import (
    AttentionMaps,
    attention_maps,
    attention_viewer,
    explorer_config,
    generation_playground,
    loss_curve_viewer,
    loss_curves,
    loss_summary,
    parameter_explorer,
    sampling_notes,
    sampling_options,
    sequence_html,
    token_text,
    transform_viewer,
)

__all__ = [
    "AttentionMaps", "attention_maps", "attention_viewer", "explorer_config", "generation_playground",
    "loss_curve_viewer", "loss_curves", "loss_summary", "parameter_count_data", "parameter_explorer",
    "plot_ablation", "plot_layer_transfer", "plot_parameter_count", "plot_pretraining_loss", "plot_schedule",
    "plot_zero_shot", "plot_zero_shot_scaling", "pretraining_loss_data", "sampling_notes", "sampling_options",
    "save_figure", "sequence_html", "token_text", "transform_viewer",
]
