"""The widgets, driven by setting their controls, and the pure functions they are views over."""

import os
from pathlib import Path

import pandas as pd
import pytest
import torch

from workbench import GPT
from workbench.data.tokenizer import Tokenizer, train_bpe
from workbench.data.transforms import transform_example
from workbench.experiments.pretraining import find_runs
from workbench.models.config import GPTConfig
from workbench.models.params import count_parameters
from workbench.ui.widgets import (
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
    transform_viewer,
)


def _shown_total(explorer) -> int:
    return int(explorer.total.value.split("<b>")[1].split("</b>")[0].replace(",", ""))


def test_parameter_explorer_updates_when_sliders_move():
    explorer = parameter_explorer(GPTConfig.from_preset("gpt1"))
    assert _shown_total(explorer) == 116_534_784
    explorer.sliders["n_layer"].value = 24
    expected = count_parameters(GPTConfig.from_preset("gpt1", n_layer=24))
    assert _shown_total(explorer) == expected


def test_explorer_config_keeps_the_ffn_at_four_times_the_width():
    config = explorer_config(GPTConfig.from_preset("gpt1"), d_model=1024, n_head=16, norm="pre")
    assert (config.d_model, config.d_ff, config.n_head, config.norm) == (1024, 4096, 16, "pre")
    assert explorer_config(config, n_layer=2).d_ff == 4096


def test_parameter_explorer_shows_config_errors():
    explorer = parameter_explorer(GPTConfig.from_preset("gpt1"))
    explorer.sliders["n_head"].value = 7
    assert "must be divisible by n_head=7" in explorer.total.value


# --------------------------------------------------------------------------- shared fixtures

TEXTS = [
    "It was the best of times, it was the worst of times.",
    "To be, or not to be, that is the question.",
    "In the beginning God created the heaven and the earth.",
] * 20


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return train_bpe(TEXTS, 300)


@pytest.fixture(scope="module")
def model(tokenizer) -> GPT:
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_preset("gpt2-micro", vocab_size=tokenizer.vocab_size, n_ctx=32))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)
    return model


# --------------------------------------------------------------------------- generation playground


def test_sampling_options_map_the_controls():
    assert sampling_options(0.8, 40, 0.95, 7) == dict(temperature=0.8, top_k=40, top_p=0.95, seed=7)
    assert sampling_options(0.0, 0, 1.0, 7) == dict(temperature=0.0, top_k=None, top_p=None, seed=None)
    with pytest.raises(ValueError, match=r"top-p must be in \(0, 1\]; got 0.0"):
        sampling_options(0.8, 40, 0.0, 7)
    assert sampling_notes(sampling_options(0.0, 0, 1.0, 7), "") == [
        "greedy (temperature 0)",
        "empty prompt: sampling from <|endoftext|>",
    ]
    assert sampling_notes(sampling_options(1.0, 0, 1.0, 7), "To be") == ["seed 7"]


def test_playground_streams_text_and_reports_speed(model, tokenizer):
    playground = generation_playground(model, tokenizer, prompt="To be", max_new_tokens=6)
    updates = []
    playground.output.observe(lambda change: updates.append(change["new"]), names="value")
    playground.button.click()
    assert len(updates) >= 2  # the text arrived step by step, not once at the end
    assert "To be" in playground.output.value and len(updates[-1]) > len(updates[0])
    assert "tokens/s" in playground.status.value and "seed 0" in playground.status.value
    assert playground.controls["seed"].value == 1  # the next click draws a new sample
    assert not playground.button.disabled


def test_playground_greedy_empty_prompt_and_bad_top_p(model, tokenizer):
    playground = generation_playground(model, tokenizer, max_new_tokens=5)
    playground.controls["temperature"].value = 0.0
    playground.button.click()
    status, first = playground.status.value, playground.output.value
    assert "greedy" in status and "&lt;|endoftext|&gt;" in status
    playground.button.click()
    assert playground.output.value == first  # greedy repeats itself
    playground.controls["top_p"].value = 0.0
    playground.controls["prompt"].value = "something else"
    playground.button.click()
    assert "top-p must be in (0, 1]" in playground.status.value
    assert playground.output.value == first  # nothing was generated


def test_playground_shows_model_errors_as_messages(model):
    too_big = train_bpe(TEXTS, model.config.vocab_size + 200)
    playground = generation_playground(model, too_big, prompt="the worst of times", max_new_tokens=3)
    playground.button.click()
    assert "ValueError" in playground.status.value and "outside the vocabulary" in playground.status.value


# --------------------------------------------------------------------------- attention viewer


def test_attention_maps_crop_to_the_context_and_check_indices(model, tokenizer):
    maps = attention_maps(model, tokenizer, "To be, or not to be")
    n = len(tokenizer.encode("To be, or not to be"))
    assert "".join(maps.tokens) == "To\u00b7be,\u00b7or\u00b7not\u00b7to\u00b7be" and not maps.cropped
    assert len(maps.weights) == model.config.n_layer and maps.weights[0].shape == (model.config.n_head, n, n)
    assert (maps.head(1, 1) == maps.weights[1][1]).all()
    with pytest.raises(ValueError, match="layer must be in 0..1 and head in 0..1; got layer 2, head 0"):
        maps.head(2, 0)
    long = attention_maps(model, tokenizer, "the worst of times " * 20)
    assert long.cropped and len(long.tokens) == model.config.n_ctx
    with pytest.raises(ValueError, match="no tokens"):
        attention_maps(model, tokenizer, "")


def test_attention_viewer_draws_each_head(model, tokenizer):
    viewer = attention_viewer(model, tokenizer, text="To be, or not to be")
    n = len(tokenizer.encode("To be, or not to be"))
    first = viewer.weights
    assert first.shape == (n, n)
    assert torch.allclose(torch.from_numpy(first).sum(-1), torch.ones(n), atol=1e-5)
    assert (first[~torch.ones(n, n, dtype=torch.bool).tril().numpy()] == 0).all()  # causal
    image = viewer.image.value
    viewer.controls["head"].value = 1
    assert not (viewer.weights == first).all() and viewer.image.value != image
    viewer.controls["text"].value = "It was the best of times"
    assert viewer.weights.shape[0] == len(tokenizer.encode("It was the best of times"))


def test_attention_viewer_bad_input_is_a_message(model, tokenizer):
    viewer = attention_viewer(model, tokenizer)
    viewer.controls["layer"].value = model.config.n_layer
    assert "layer must be in 0..1" in viewer.message.value and viewer.weights is None
    viewer.controls["layer"].value = 0
    viewer.controls["head"].value = -1
    assert "head in 0..1" in viewer.message.value
    viewer.controls["head"].value = 0
    viewer.controls["text"].value = ""
    assert "type some text" in viewer.message.value
    viewer.controls["text"].value = "the worst of times " * 20  # longer than the 32-token context
    assert viewer.weights.shape == (32, 32) and "the last 32" in viewer.message.value


# --------------------------------------------------------------------------- transform viewer

EXAMPLES = {
    "sentiment": [dict(text="a fine film", label=1), dict(text="dull and slow", label=0)],
    "line_order": [dict(premise="To be, or not to be", hypothesis="that is the question", label=1)],
    "same_work": [dict(text_a="It was the best of times", text_b="In the beginning", label=0)],
    "next_line": [
        dict(context="To be, or not to be", label=2, choices=["the earth", "the worst", "that is the question", "God"])
    ],
    "corrupted_sentence": [dict(text="the question is that", label=0)],
}


def _fake_load(name, split, seed=0):
    return EXAMPLES[name]


def test_sequence_html_marks_special_tokens_and_the_extract_position(tokenizer):
    sequence = transform_example("entailment", EXAMPLES["line_order"][0], tokenizer, 64)[0]
    shown = sequence_html(tokenizer, sequence)
    assert shown.count("[start]") == shown.count("[delim]") == shown.count("[extract]") == 1
    assert shown.index("[extract]") > shown.index("[delim]") and "border:2px solid #c00" in shown
    assert "the head reads here" in shown and shown.count("<span") == len(sequence.ids) + 1


def test_transform_viewer_builds_each_kind(tokenizer):
    viewer = transform_viewer(tokenizer, n_ctx=64, load=_fake_load)
    shapes = {}
    for name in EXAMPLES:
        viewer.controls["task"].value = name
        sequences = viewer.sequences
        assert all(s[0] == tokenizer.start_id and s[-1] == tokenizer.extract_id for s in sequences)
        assert "[extract]" in viewer.view.value and "the head reads here" in viewer.view.value
        shapes[name] = (len(sequences), sum(s.count(tokenizer.delim_id) for s in sequences))
        if name == "next_line":
            assert "choice 2 (correct)" in viewer.view.value
    assert shapes == {
        "sentiment": (1, 0),
        "line_order": (1, 1),
        "same_work": (2, 2),
        "next_line": (4, 4),
        "corrupted_sentence": (1, 0),
    }
    viewer.controls["task"].value = "sentiment"
    first = viewer.sequences
    viewer.controls["index"].value = 1
    assert viewer.sequences != first and viewer.controls["index"].max == 1


def test_transform_viewer_bad_data_and_tokenizer(tokenizer):
    def broken(name, split, seed=0):
        raise FileNotFoundError("no data here")

    viewer = transform_viewer(tokenizer, load=broken)
    assert "cannot load task" in viewer.view.value and "no data here" in viewer.view.value

    class NoSpecials(Tokenizer):
        @property
        def start_id(self):
            return self.token_to_id("<|nothing|>")

    viewer = transform_viewer(NoSpecials(tokenizer.backend), load=_fake_load)
    assert "KeyError" in viewer.view.value and viewer.sequences == []


@pytest.mark.data
def test_transform_viewer_on_real_task(tokenizer):
    viewer = transform_viewer(tokenizer, n_ctx=64)
    viewer.controls["task"].value = "sentiment"
    assert viewer.sequences and len(viewer.sequences[0]) <= 64


# --------------------------------------------------------------------------- loss-curve viewer


def _run(directory, losses, val_every=2):
    directory.mkdir(parents=True)
    steps = list(range(1, len(losses) + 1))
    val = [loss + 0.1 if s % val_every == 0 else None for s, loss in zip(steps, losses)]
    pd.DataFrame(dict(step=steps, tokens=[64 * s for s in steps], lr=0.001, loss=losses, val_loss=val)).to_csv(
        directory / "history.csv", index=False
    )
    return directory


def test_loss_curves_and_summary():
    history = pd.DataFrame(dict(step=[1, 2, 3], lr=0.1, loss=[3.0, 2.0, 2.5], val_loss=[None, 2.2, None]))
    curves = loss_curves({"a": history, "b": history.drop(columns="val_loss")})
    assert list(curves.columns) == ["step", "loss", "run", "curve"]
    counts = curves.groupby(["run", "curve"]).size().to_dict()
    assert counts == {("a", "loss"): 3, ("a", "val_loss"): 1, ("b", "loss"): 3}
    summary = loss_summary(curves).set_index(["run", "curve"])
    assert summary.loc[("a", "loss")].tolist() == [3, 2.5, 2.0]
    assert summary.loc[("a", "val_loss")].tolist() == [2, 2.2, 2.2]
    assert loss_curves({"c": history[["step", "lr"]]}).empty


def test_find_runs_skips_a_directory_that_vanishes_while_it_is_walked(tmp_path, monkeypatch):
    """A run that is training removes its old checkpoint directories: a reader's walk that meets one
    already gone is no error (``Path.rglob`` raised ``FileNotFoundError``; the soak test found it)."""
    for name in ("gone", "kept"):
        _run(tmp_path / "runs" / name, [5.0, 4.0])
    scandir = os.scandir

    def vanishing(path="."):
        if Path(path).name == "gone":
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", vanishing)
    assert list(find_runs(tmp_path / "runs")) == ["kept"]


def test_loss_curve_viewer_overlays_selected_runs(tmp_path):
    _run(tmp_path / "runs" / "small", [5.0, 4.0, 3.5, 3.2])
    big = _run(tmp_path / "runs" / "big", [5.0, 3.0, 2.5, 2.0, 1.8, 1.7])
    _run(big / "checkpoints" / "step-00000004", [5.0, 3.0, 2.5, 2.0])  # a copy, not a run
    assert sorted(find_runs(tmp_path / "runs")) == ["big", "small"]
    viewer = loss_curve_viewer(tmp_path / "runs")
    plotted = viewer.plotted
    assert set(plotted["run"]) == {"big", "small"} and set(plotted["curve"]) == {"loss", "val_loss"}
    assert len(plotted.query("run == 'big' and curve == 'val_loss'")) == 3  # NaNs dropped
    image = viewer.image.value
    viewer.controls["runs"].value = ("small",)
    assert set(viewer.plotted["run"]) == {"small"} and viewer.image.value != image
    image = viewer.image.value
    viewer.controls["log_x"].value = True
    assert viewer.image.value != image
    viewer.controls["runs"].value = ()
    assert "select one or more runs" in viewer.message.value


def test_loss_curve_viewer_without_runs(tmp_path):
    viewer = loss_curve_viewer(tmp_path)
    assert "no run directories" in viewer.message.value
