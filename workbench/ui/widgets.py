"""ipywidgets explorers: each a thin view over pure functions of this module or lower layers.

What a widget shows is computed by a function without widgets (a config, sampling options, attention
maps, an example's token sequences, loss curves), tested on its own; the widget only wires controls
to it and draws. Each returned box carries handles to its controls (``.controls`` or ``.sliders``)
and to what it shows, so that a test, or a user's own code, can drive it without a browser. Bad
input (an empty prompt, an index out of range, missing data) becomes a message in the widget,
never a traceback.
"""

from __future__ import annotations

import html
import io
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from ..core.checks import NON_NEGATIVE_INT, Check
from ..data.tasks import TASKS, load_task, validate_examples
from ..data.tokenizer import Tokenizer
from ..data.transforms import TransformedSequence, token_roles, transform_example
from ..experiments.pretraining import find_runs
from ..models.config import GPTConfig
from ..models.generation import MAX_SEED, SEED, generate_text
from ..models.gpt import GPT
from ..models.params import parameter_breakdown

# ---------------------------------------------------------------------------------------------
# Shared pieces. Figures go into Image widgets (PNG bytes) and tables into HTML widgets rather
# than Output areas, so that every result is widget state: a browser shows it, and a test without
# a kernel can read it.


def _figure_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _image() -> widgets.Image:
    """An image at its own size: a box's children are otherwise stretched to its width."""
    return widgets.Image(format="png", layout=widgets.Layout(align_self="flex-start"))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _note(text: str, error: bool = False) -> str:
    colour = "#b00" if error else "#555"
    return f"<span style='color:{colour}'>{html.escape(text)}</span>"


def token_text(tokenizer: Tokenizer, token_id: int) -> str:
    """One token as readable text: spaces as a middle dot, newlines as an arrow."""
    return tokenizer.decode([token_id]).replace(" ", "\u00b7").replace("\n", "\u21b5")


# ---------------------------------------------------------------------------------------------
# Parameter explorer


EXPLORER_SIZES = ("n_layer", "d_model", "n_head", "vocab_size", "n_ctx", "norm")
"""What the parameter explorer's controls set."""


def explorer_config(base: GPTConfig, **sizes) -> GPTConfig:
    """``base`` with the sliders' sizes (and ``norm``); the FFN stays 4 x the width, as in both papers."""
    unknown = sorted(set(sizes) - set(EXPLORER_SIZES))
    if unknown:
        raise ValueError(f"explorer_config has no size(s) {unknown}; expected some of {list(EXPLORER_SIZES)}")
    return base.replace(**sizes, d_ff=4 * sizes.get("d_model", base.d_model))


def parameter_explorer(config: GPTConfig | None = None) -> widgets.VBox:
    """Sliders for layers, width, heads, vocabulary and context; a live breakdown table and bar chart.

    Invalid combinations (a width the heads do not divide) show the config error instead of a table.
    """
    config = config or GPTConfig.from_preset("gpt1")
    style = {"description_width": "90px"}
    sliders = {
        "n_layer": widgets.IntSlider(config.n_layer, min=1, max=96, description="layers", style=style),
        "d_model": widgets.IntSlider(config.d_model, min=64, max=12288, step=64, description="width", style=style),
        "n_head": widgets.IntSlider(config.n_head, min=1, max=96, description="heads", style=style),
        "vocab_size": widgets.IntSlider(
            config.vocab_size, min=256, max=256_000, step=1, description="vocabulary", style=style
        ),
        "n_ctx": widgets.IntSlider(config.n_ctx, min=16, max=32_768, description="context", style=style),
    }
    norm = widgets.ToggleButtons(options=["post", "pre"], value=config.norm, description="norm", style=style)
    total = widgets.HTML()
    output = widgets.Output()

    def update(_=None) -> None:
        output.clear_output(wait=True)
        try:
            current = explorer_config(config, **{name: s.value for name, s in sliders.items()}, norm=norm.value)
        except ValueError as error:
            total.value = f"<b style='color:#b00'>{error}</b>"
            return
        breakdown = parameter_breakdown(current)
        total.value = f"<b>{breakdown['parameters'].sum():,}</b> parameters"
        with output:
            shown = breakdown[breakdown["parameters"] > 0]
            table = shown[["component", "shape", "layers", "parameters"]]
            display(table.style.format({"parameters": "{:,}"}).hide(axis="index"))
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


# ---------------------------------------------------------------------------------------------
# Generation playground


PLAYGROUND_SEED = Check("an integer in [0, 2**64)", lambda v: v is not None and SEED.test(v))
"""The playground's seed box: what ``torch.Generator.manual_seed`` takes (no None: the box holds a number)."""


def sampling_options(temperature: float, top_k: int, top_p: float, seed: int) -> dict:
    """The :func:`generate_text` arguments the playground's controls mean.

    Temperature 0 (or less) is greedy, which needs no seed; top-k 0 and top-p 1 switch those
    filters off. A top-p outside (0, 1], a temperature that is not a finite number, a negative
    top-k or a seed outside ``[0, 2**64)`` is refused with a ValueError that says so.
    """
    if not _is_number(top_p) or not 0 < top_p <= 1:
        raise ValueError(f"top-p must be in (0, 1]; got {top_p!r} (1 switches it off)")
    if not _is_number(temperature) or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number (0 or less: greedy); got {temperature!r}")
    NON_NEGATIVE_INT(top_k, "top-k (0 switches it off)")
    PLAYGROUND_SEED(seed, "seed")
    greedy = temperature <= 0
    return dict(
        temperature=0.0 if greedy else temperature,
        top_k=top_k or None,
        top_p=None if top_p == 1 else top_p,
        seed=None if greedy else seed,
    )


def sampling_notes(options: dict, prompt: str) -> list[str]:
    """What the status line says about how a text was drawn, so that it can be drawn again."""
    notes = ["greedy (temperature 0)" if options["seed"] is None else f"seed {options['seed']}"]
    if not prompt:
        notes.append("empty prompt: sampling from <|endoftext|>")
    return notes


def generation_playground(
    model: GPT, tokenizer: Tokenizer, prompt: str = "", max_new_tokens: int = 64, seed: int = 0
) -> widgets.VBox:
    """Prompt box, sampling sliders and a Generate button; the text streams in as it is sampled.

    An empty prompt samples from ``<|endoftext|>``; temperature 0 is greedy decoding; top-k 0
    and top-p 1 switch those filters off; a top-p of 0 is refused with a message. The seed box
    advances after each sampled generation, so the next click draws a new sample and the status
    line names the seed that reproduces this one.
    """
    model.eval()
    style = {"description_width": "90px"}
    prompt_box = widgets.Textarea(
        prompt,
        placeholder="Type a prompt (empty: start from <|endoftext|>)",
        description="prompt",
        layout=widgets.Layout(width="95%", height="70px"),
        style=style,
    )
    temperature = widgets.FloatSlider(0.8, min=0.0, max=2.0, step=0.05, description="temperature", style=style)
    top_k = widgets.IntSlider(40, min=0, max=min(tokenizer.vocab_size, 500), description="top-k (0 off)", style=style)
    top_p = widgets.FloatSlider(0.95, min=0.0, max=1.0, step=0.01, description="top-p", style=style)
    length = widgets.IntSlider(max_new_tokens, min=1, max=512, description="new tokens", style=style)
    seed_box = widgets.IntText(seed, description="seed", style=style, layout=widgets.Layout(width="180px"))
    button = widgets.Button(description="Generate", button_style="primary", icon="play")
    status = widgets.HTML()
    output = widgets.HTML(layout=widgets.Layout(width="95%", min_height="60px"))

    def show(prompt_text: str, completion: str) -> None:
        output.value = (
            "<pre style='white-space:pre-wrap;font-size:13px'>"
            f"<span style='color:#777'>{html.escape(prompt_text)}</span>{html.escape(completion)}</pre>"
        )

    def generate(_=None) -> None:
        try:
            options = sampling_options(temperature.value, top_k.value, top_p.value, seed_box.value)
        except ValueError as error:
            status.value = _note(str(error), error=True)
            return
        text, steps = prompt_box.value, 0

        def on_update(texts: list[str]) -> None:
            nonlocal steps
            steps += 1
            show(text, texts[0])

        button.disabled = True
        status.value = _note("generating...")
        start = time.perf_counter()
        try:
            generate_text(model, tokenizer, text, length.value, on_update=on_update, **options)
        except Exception as error:  # shown in the widget: a traceback is no use to someone exploring
            status.value = _note(f"{type(error).__name__}: {error}", error=True)
            return
        finally:
            button.disabled = False
        seconds = time.perf_counter() - start
        if options["seed"] is not None:
            seed_box.value = (options["seed"] + 1) % MAX_SEED
        status.value = _note(
            f"{steps} tokens in {seconds:.2f} s, {steps / seconds:.0f} tokens/s; "
            + "; ".join(sampling_notes(options, text))
        )

    button.on_click(generate)
    playground = widgets.VBox(
        [
            prompt_box,
            widgets.HBox([widgets.VBox([temperature, top_k, top_p]), widgets.VBox([length, seed_box, button])]),
            status,
            output,
        ]
    )
    # Stable class names for browser tests and custom CSS.
    playground.add_class("workbench-playground")
    output.add_class("workbench-generated")
    status.add_class("workbench-playground-status")
    playground.controls = dict(
        prompt=prompt_box, temperature=temperature, top_k=top_k, top_p=top_p, max_new_tokens=length, seed=seed_box
    )
    playground.button, playground.status, playground.output = button, status, output
    return playground


# ---------------------------------------------------------------------------------------------
# Attention viewer


@dataclass(frozen=True)
class AttentionMaps:
    """Every head's attention over one text, from one forward pass."""

    tokens: list[str]  # readable token texts (see :func:`token_text`)
    weights: list[np.ndarray]  # per layer, [head, query, key]; each row sums to 1
    cropped: bool  # the text was longer than the context: these are its last n_ctx tokens

    def head(self, layer: int, head: int) -> np.ndarray:
        """One head's ``[query, key]`` map; an index out of range is a ValueError giving the ranges."""
        n_layer, n_head = len(self.weights), self.weights[0].shape[0]
        if not NON_NEGATIVE_INT.test(layer) or not NON_NEGATIVE_INT.test(head) or layer >= n_layer or head >= n_head:
            raise ValueError(
                f"layer must be in 0..{n_layer - 1} and head in 0..{n_head - 1}; got layer {layer!r}, head {head!r}"
            )
        return self.weights[layer][head]


def attention_maps(model: GPT, tokenizer: Tokenizer, text: str) -> AttentionMaps:
    """The attention of every head of ``model`` over ``text`` (its last ``n_ctx`` tokens)."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {text!r}")
    ids = tokenizer.encode(text)
    if not ids:
        raise ValueError(f"the text {text!r} has no tokens; expected some text to attend over")
    kept = ids[-model.config.n_ctx :]
    patterns = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.config.n_layer)]
    with torch.no_grad():
        idx = torch.tensor([kept], device=next(model.parameters()).device)
        _, cache = model.run_with_cache(idx, patterns, return_logits=False)
    return AttentionMaps(
        [token_text(tokenizer, i) for i in kept],
        [cache[name][0].float().cpu().numpy() for name in patterns],
        len(kept) < len(ids),
    )


def attention_viewer(
    model: GPT, tokenizer: Tokenizer, text: str = "The quick brown fox jumps over the lazy dog."
) -> widgets.VBox:
    """Text box, layer and head selectors, and a heatmap of that head's attention over the tokens.

    The model runs once per text, read at its ``attn.hook_pattern`` points (which take the explicit
    attention path); moving the layer or head redraws from the stored maps. A text longer than the
    context keeps its last ``n_ctx`` tokens; an empty text or an index out of range is a message,
    not an error.
    """
    model.eval()
    config = model.config
    style = {"description_width": "60px"}
    text_box = widgets.Textarea(
        text,
        description="text",
        continuous_update=False,
        layout=widgets.Layout(width="95%", height="60px"),
        style=style,
    )
    layer = widgets.IntText(
        0,
        description=f"layer (0-{config.n_layer - 1})",
        style={"description_width": "110px"},
        layout=widgets.Layout(width="200px"),
    )
    head = widgets.IntText(
        0,
        description=f"head (0-{config.n_head - 1})",
        style={"description_width": "110px"},
        layout=widgets.Layout(width="200px"),
    )
    message = widgets.HTML()
    image = _image()
    computed: dict[str, AttentionMaps] = {}  # the last text's maps, so that moving layer or head is cheap

    def update(_=None) -> None:
        viewer.weights = None
        if not text_box.value.strip():
            message.value = _note("type some text to see where each token attends", error=True)
            image.value = b""
            return
        try:
            if text_box.value not in computed:
                computed.clear()
                computed[text_box.value] = attention_maps(model, tokenizer, text_box.value)
            maps = computed[text_box.value]
            weights = maps.head(layer.value, head.value)
        except ValueError as error:
            message.value = _note(str(error), error=True)
            image.value = b""
            return
        size = min(2 + 0.2 * len(maps.tokens), 10)
        fig, ax = plt.subplots(figsize=(size, size))
        ax.imshow(weights, cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(len(maps.tokens)), maps.tokens, rotation=90, fontsize=8)
        ax.set_yticks(range(len(maps.tokens)), maps.tokens, fontsize=8)
        ax.set_xlabel("attended token (key)")
        ax.set_ylabel("attending token (query)")
        ax.set_title(f"layer {layer.value}, head {head.value}")
        image.value = _figure_png(fig)
        viewer.weights = weights
        message.value = _note(
            f"{len(maps.tokens)} tokens"
            + (f" (the last {config.n_ctx}: the context)" if maps.cropped else "")
            + "; each row sums to 1 over the token itself and those before it"
        )

    for control in (text_box, layer, head):
        control.observe(update, names="value")
    viewer = widgets.VBox([text_box, widgets.HBox([layer, head]), message, image])
    viewer.controls = dict(text=text_box, layer=layer, head=head)
    viewer.message, viewer.image, viewer.weights = message, image, None
    update()
    return viewer


# ---------------------------------------------------------------------------------------------
# Transform viewer

_ROLE_COLOURS = {"start": "#cde8ff", "delim": "#ffe6b3", "extract": "#ffcccc"}


def sequence_html(tokenizer: Tokenizer, sequence: TransformedSequence) -> str:
    """A sequence as token chips: special tokens coloured by role, the ``[extract]`` one outlined."""
    chips = []
    for token_id, role in zip(sequence.ids, token_roles(tokenizer, sequence.ids)):
        text = html.escape(f"[{role}]" if role else token_text(tokenizer, token_id))
        style = f"background:{_ROLE_COLOURS[role]};font-weight:bold;" if role else "background:#f2f2f2;"
        if role == "extract":
            style += "border:2px solid #c00;"
        chips.append(
            f"<span style='{style}padding:1px 3px;margin:1px;border-radius:3px;"
            f"display:inline-block;font-family:monospace;font-size:12px'>{text}</span>"
        )
    return "".join(chips) + "<span style='color:#c00;font-size:12px'> \u25c0 the head reads here</span>"


def example_html(task: str, example: dict) -> str:
    """An example's fields and label as HTML; an example that misses a field or has a label outside
    the task's set is a ValueError naming both (:func:`workbench.data.tasks.validate_examples`)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {list(TASKS)}")
    spec = TASKS[task]
    validate_examples(spec, [example])
    fields = "".join(
        f"<div><b>{html.escape(name)}</b>: {html.escape(str(example[name]))}</div>"
        for name in spec.fields
        if name != "label"
    )
    label = spec.labels.get(example["label"], example["label"])
    return f"{fields}<div>label: <b>{html.escape(str(label))}</b></div>"


def transform_viewer(
    tokenizer: Tokenizer,
    n_ctx: int = 128,
    split: str = "dev",
    seed: int = 0,
    load: Callable[..., list[dict]] | None = None,
) -> widgets.VBox:
    """Pick a task and an example; see the token sequences GPT-1's input transformation builds.

    Special tokens are highlighted and the ``<|extract|>`` position, whose final state the task
    head reads, is marked. ``load`` is :func:`workbench.data.tasks.load_task` unless given (tests
    pass their own examples). The tokenizer needs GPT-1's special tokens.
    """
    load = load or load_task
    names = list(TASKS)
    style = {"description_width": "60px"}
    task = widgets.Dropdown(options=names, value=names[0], description="task", style=style)
    index = widgets.IntSlider(0, min=0, max=0, description="example", style=style)
    description = widgets.HTML()
    view = widgets.HTML()
    loaded: dict[str, list[dict]] = {}

    def update(_=None) -> None:
        viewer.sequences = []
        spec = TASKS[task.value]
        try:
            if task.value not in loaded:
                loaded[task.value] = load(task.value, split, seed=seed)
            rows = loaded[task.value]
        except Exception as error:  # missing data, no network: say so in the widget
            view.value = _note(f"cannot load task {task.value!r}: {type(error).__name__}: {error}", error=True)
            return
        if not rows:
            view.value = _note(f"task {task.value!r} has no {split} examples", error=True)
            return
        index.max = len(rows) - 1
        example = rows[index.value]
        description.value = f"<i>{html.escape(spec.kind)}: {html.escape(spec.description)}</i>"
        try:
            fields = example_html(task.value, example)
            built = transform_example(spec.kind, example, tokenizer, n_ctx)
        except (KeyError, ValueError) as error:  # e.g. a tokenizer without GPT-1's special tokens
            view.value = _note(f"{type(error).__name__}: {error}", error=True)
            return
        blocks = "".join(
            f"<div style='margin-top:6px'><b>{html.escape(s.title)}</b> {len(s.ids)} tokens "
            f"(n_ctx={n_ctx})<div>{sequence_html(tokenizer, s)}</div></div>"
            for s in built
        )
        view.value = f"{fields}{blocks}"
        viewer.sequences = [s.ids for s in built]

    def change_task(_=None) -> None:
        if index.value == 0:
            update()
        else:
            index.value = 0  # which updates

    task.observe(change_task, names="value")
    index.observe(update, names="value")
    viewer = widgets.VBox([widgets.HBox([task, index]), description, view])
    viewer.controls = dict(task=task, index=index)
    viewer.view = view
    update()
    return viewer


# ---------------------------------------------------------------------------------------------
# Loss-curve viewer


HISTORY_EXPECTED = "expected a CSV with a 'step' column and loss columns, as the Trainer writes"


def read_history(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A run's ``history.csv`` (``path`` is the file or its run directory); one that cannot be read
    as a table with a ``step`` column is a ValueError naming the file and what was expected."""
    path = Path(path)
    if path.is_dir():
        path = path / "history.csv"
    expected = HISTORY_EXPECTED
    if not path.is_file():
        raise ValueError(f"{path} does not exist; {expected}")
    try:
        history = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:  # EmptyDataError too
        raise ValueError(f"{path} cannot be read ({type(error).__name__}: {error}); {expected}") from None
    _check_history(history, str(path))
    return history


def _check_history(history, name: str) -> None:
    if not isinstance(history, pd.DataFrame):
        raise ValueError(f"the history of {name} must be a DataFrame, got {type(history).__name__}")
    if "step" not in history.columns:
        raise ValueError(
            f"the history of {name} has no 'step' column (columns {list(history.columns)[:8]}); {HISTORY_EXPECTED}"
        )
    numeric = ["step", *(c for c in history.columns if str(c).endswith("loss"))]
    bad = [c for c in numeric if history[c].notna().any() and not pd.api.types.is_numeric_dtype(history[c])]
    if bad:
        raise ValueError(f"the history of {name} has non-numeric values in column(s) {bad}; expected numbers")


def loss_curves(histories: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Every loss column (a name ending in ``loss``) of each run's history, long: one row per
    ``(run, curve, step)`` with its ``loss``; steps without a value (validation) are left out.
    A history without a ``step`` column or with text in it is a ValueError naming the run."""
    if not isinstance(histories, Mapping):
        raise ValueError(f"histories must be a mapping run name -> DataFrame, got {type(histories).__name__}")
    for name, history in histories.items():
        _check_history(history, f"run {name!r}")
    frames = [
        history[["step", column]].dropna().rename(columns={column: "loss"}).assign(run=name, curve=column)
        for name, history in histories.items()
        for column in history.columns
        if column.endswith("loss")
    ]
    columns = ["step", "loss", "run", "curve"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def loss_summary(curves: pd.DataFrame) -> pd.DataFrame:
    """Per run and curve: the last step, the last loss and the best (lowest) loss."""
    return (
        curves.groupby(["run", "curve"], sort=False)
        .agg(steps=("step", "max"), last=("loss", "last"), best=("loss", "min"))
        .reset_index()
    )


def loss_curve_viewer(
    runs: Mapping[str, str | os.PathLike[str]] | str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> widgets.VBox:
    """Pick runs and overlay their train (solid) and validation (dashed) loss against steps.

    ``runs`` maps names to run directories, or lists run directories or folders to search for
    them (see :func:`workbench.experiments.pretraining.find_runs`); every column of ``history.csv``
    whose name ends in ``loss`` is drawn (:func:`loss_curves`). The first four runs are selected
    to begin with.
    """
    if isinstance(runs, Mapping):
        found = {name: Path(path) for name, path in runs.items()}
    else:
        found = find_runs(*([runs] if isinstance(runs, (str, os.PathLike)) else runs))
    message = widgets.HTML()
    if not found:
        message.value = _note(f"no run directories (with a history.csv) found in {runs}", error=True)
        viewer = widgets.VBox([message])
        viewer.controls, viewer.message, viewer.plotted = {}, message, None
        return viewer
    names = list(found)
    select = widgets.SelectMultiple(
        options=names, value=names[:4], description="runs", rows=min(len(names), 6), layout=widgets.Layout(width="60%")
    )
    log_x = widgets.Checkbox(False, description="log-scale steps")
    image = _image()
    table = widgets.HTML()
    histories: dict[str, pd.DataFrame] = {}

    def update(_=None) -> None:
        viewer.plotted = None
        if not select.value:
            message.value = _note("select one or more runs", error=True)
            image.value, table.value = b"", ""
            return
        missing = [name for name in select.value if not (found[name] / "history.csv").is_file()]
        unreadable = []
        for name in select.value:
            if name not in missing and name not in histories:
                try:
                    histories[name] = read_history(found[name])
                except ValueError as error:
                    unreadable.append(str(error))
        shown = [name for name in select.value if name in histories]
        curves = loss_curves({name: histories[name] for name in shown})
        fig, ax = plt.subplots(figsize=(8, 4))
        for (name, column), curve in curves.groupby(["run", "curve"], sort=False):
            dashed = column.startswith("val")
            ax.plot(
                curve["step"],
                curve["loss"],
                linestyle="--" if dashed else "-",
                marker="o" if dashed else None,
                markersize=3,
                color=f"C{shown.index(name)}",
                label=f"{name}: {column}",
            )
        ax.set_xscale("log" if log_x.value else "linear")
        ax.set_xlabel("update step")
        ax.set_ylabel("loss (nats per token)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        image.value = _figure_png(fig)
        viewer.plotted = curves if len(curves) else None
        table.value = loss_summary(curves).to_html(index=False, float_format="%.3f")
        problems = [f"no history.csv in {', '.join(missing)}"] if missing else []
        problems += unreadable
        problems += [] if len(curves) else ["the selected runs have no loss columns yet"]
        message.value = _note("; ".join(problems), error=True) if problems else ""

    select.observe(update, names="value")
    log_x.observe(update, names="value")
    viewer = widgets.VBox([widgets.HBox([select, log_x]), message, image, table])
    viewer.controls = dict(runs=select, log_x=log_x)
    viewer.message, viewer.image = message, image
    update()
    return viewer
