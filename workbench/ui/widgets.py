"""ipywidgets explorers. Each function returns a widget; tests drive them by setting values.

Each returned box carries handles to its controls (``.controls`` or ``.sliders``) and to what it
shows, so that a test, or a user's own code, can drive it without a browser. Bad input (an empty
prompt, an index out of range, missing data) becomes a message in the widget, never a traceback.
"""

from __future__ import annotations

import html
import io
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

import ipywidgets as widgets
import torch
from IPython.display import display

from ..models.config import GPTConfig
from ..models.gpt import GPT, generate_text
from ..models.params import count_parameters, parameter_breakdown

if TYPE_CHECKING:
    from ..experiments import PretrainRun
    from ..data.tokenizer import Tokenizer


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


# ---------------------------------------------------------------------------------------------
# Shared pieces. Figures go into Image widgets (PNG bytes) and tables into HTML widgets rather
# than Output areas, so that every result is widget state: a browser shows it, and a test without
# a kernel can read it.

def _figure_png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _image() -> widgets.Image:
    """An image at its own size: a box's children are otherwise stretched to its width."""
    return widgets.Image(format="png", layout=widgets.Layout(align_self="flex-start"))


def _note(text: str, error: bool = False) -> str:
    colour = "#b00" if error else "#555"
    return f"<span style='color:{colour}'>{html.escape(text)}</span>"


def _token_text(tokenizer, token_id: int) -> str:
    """One token as readable text: spaces as a middle dot, newlines as an arrow."""
    return tokenizer.decode([token_id]).replace(" ", "\u00b7").replace("\n", "\u21b5")


# ---------------------------------------------------------------------------------------------
# Generation playground

def generation_playground(model: GPT, tokenizer: Tokenizer, prompt: str = "",
                          max_new_tokens: int = 64, seed: int = 0) -> widgets.VBox:
    """Prompt box, sampling sliders and a Generate button; the text streams in as it is sampled.

    An empty prompt samples from ``<|endoftext|>``; temperature 0 is greedy decoding; top-k 0
    and top-p 1 switch those filters off; a top-p of 0 is refused with a message. The seed box
    advances after each sampled generation, so the next click draws a new sample and the status
    line names the seed that reproduces this one.
    """
    model.eval()
    style = {"description_width": "90px"}
    prompt_box = widgets.Textarea(prompt, placeholder="Type a prompt (empty: start from <|endoftext|>)",
                                  description="prompt", layout=widgets.Layout(width="95%", height="70px"), style=style)
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
        if not 0 < top_p.value <= 1:
            status.value = _note(f"top-p must be in (0, 1]; got {top_p.value} (1 switches it off)", error=True)
            return
        greedy = temperature.value <= 0
        text, used_seed = prompt_box.value, seed_box.value
        notes = ["greedy (temperature 0)" if greedy else f"seed {used_seed}"]
        if not text:
            notes.append("empty prompt: sampling from <|endoftext|>")
        steps = 0

        def on_update(texts: list[str]) -> None:
            nonlocal steps
            steps += 1
            show(text, texts[0])

        button.disabled = True
        status.value = _note("generating...")
        start = time.perf_counter()
        try:
            generate_text(
                model, tokenizer, text, length.value, on_update=on_update,
                temperature=0.0 if greedy else temperature.value, top_k=top_k.value or None,
                top_p=None if top_p.value == 1 else top_p.value, seed=None if greedy else used_seed,
            )
        except Exception as error:  # shown in the widget: a traceback is no use to someone exploring
            status.value = _note(f"{type(error).__name__}: {error}", error=True)
            return
        finally:
            button.disabled = False
        seconds = time.perf_counter() - start
        if not greedy:
            seed_box.value = used_seed + 1
        status.value = _note(f"{steps} tokens in {seconds:.2f} s, {steps / seconds:.0f} tokens/s; " + "; ".join(notes))

    button.on_click(generate)
    playground = widgets.VBox([
        prompt_box,
        widgets.HBox([widgets.VBox([temperature, top_k, top_p]), widgets.VBox([length, seed_box, button])]),
        status, output,
    ])
    # Stable class names for browser tests and custom CSS.
    playground.add_class("workbench-playground")
    output.add_class("workbench-generated")
    status.add_class("workbench-playground-status")
    playground.controls = dict(prompt=prompt_box, temperature=temperature, top_k=top_k, top_p=top_p,
                               max_new_tokens=length, seed=seed_box)
    playground.button, playground.status, playground.output = button, status, output
    return playground


# ---------------------------------------------------------------------------------------------
# Attention viewer

def attention_viewer(model: GPT, tokenizer: Tokenizer,
                     text: str = "The quick brown fox jumps over the lazy dog.") -> widgets.VBox:
    """Text box, layer and head selectors, and a heatmap of that head's attention over the tokens.

    The model runs once per text (its explicit attention path, asked for here only); moving the
    layer or head redraws from the stored maps. A text longer than the context keeps its last
    ``n_ctx`` tokens; an empty text or an index out of range is a message, not an error.
    """
    model.eval()
    config = model.config
    style = {"description_width": "60px"}
    text_box = widgets.Textarea(text, description="text", continuous_update=False,
                                layout=widgets.Layout(width="95%", height="60px"), style=style)
    layer = widgets.IntText(0, description=f"layer (0-{config.n_layer - 1})", style={"description_width": "110px"},
                            layout=widgets.Layout(width="200px"))
    head = widgets.IntText(0, description=f"head (0-{config.n_head - 1})", style={"description_width": "110px"},
                           layout=widgets.Layout(width="200px"))
    message = widgets.HTML()
    image = _image()
    state: dict = {"text": None, "tokens": [], "attentions": None}

    def run_model() -> None:
        ids = tokenizer.encode(state["text"])[-config.n_ctx:]
        state["tokens"] = [_token_text(tokenizer, i) for i in ids]
        with torch.no_grad():
            out = model(torch.tensor([ids], device=next(model.parameters()).device), output_attentions=True)
        state["attentions"] = [a[0].float().cpu().numpy() for a in out.attentions]

    def update(_=None) -> None:
        import matplotlib.pyplot as plt

        viewer.weights = None
        if not text_box.value.strip():
            message.value = _note("type some text to see where each token attends", error=True)
            image.value = b""
            return
        if not 0 <= layer.value < config.n_layer or not 0 <= head.value < config.n_head:
            message.value = _note(
                f"layer must be in 0..{config.n_layer - 1} and head in 0..{config.n_head - 1}; "
                f"got layer {layer.value}, head {head.value}", error=True)
            image.value = b""
            return
        if state["text"] != text_box.value:
            state["text"] = text_box.value
            try:
                run_model()
            except ValueError as error:
                state["text"] = None
                message.value = _note(str(error), error=True)
                return
        weights = state["attentions"][layer.value][head.value]
        tokens = state["tokens"]
        size = min(2 + 0.2 * len(tokens), 10)
        fig, ax = plt.subplots(figsize=(size, size))
        ax.imshow(weights, cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=8)
        ax.set_yticks(range(len(tokens)), tokens, fontsize=8)
        ax.set_xlabel("attended token (key)")
        ax.set_ylabel("attending token (query)")
        ax.set_title(f"layer {layer.value}, head {head.value}")
        image.value = _figure_png(fig)
        viewer.weights = weights
        cropped = len(tokenizer.encode(text_box.value)) > config.n_ctx
        message.value = _note(f"{len(tokens)} tokens" + (f" (the last {config.n_ctx}: the context)" if cropped else "")
                              + "; each row sums to 1 over the token itself and those before it")

    for control in (text_box, layer, head):
        control.observe(update, names="value")
    viewer = widgets.VBox([text_box, widgets.HBox([layer, head]), message, image])
    viewer.controls = dict(text=text_box, layer=layer, head=head)
    viewer.message, viewer.image, viewer.weights = message, image, None
    update()
    return viewer


# ---------------------------------------------------------------------------------------------
# Transform viewer

_SPECIAL_COLOURS = {"start": "#cde8ff", "delim": "#ffe6b3", "extract": "#ffcccc"}


def transform_viewer(tokenizer: Tokenizer, n_ctx: int = 128, split: str = "dev", seed: int = 0,
                     load: Callable[..., list[dict]] | None = None) -> widgets.VBox:
    """Pick a task and an example; see the token sequences GPT-1's input transformation builds.

    Special tokens are highlighted and the ``<|extract|>`` position, whose final state the task
    head reads, is marked. ``load`` is :func:`workbench.data.tasks.load_task` unless given (tests
    pass their own examples). The tokenizer needs GPT-1's special tokens.
    """
    from ..data import transforms
    from ..data.tasks import TASKS, load_task

    load = load or load_task
    names = [name for name, spec in TASKS.items() if spec.kind in transforms.KINDS]
    style = {"description_width": "60px"}
    task = widgets.Dropdown(options=names, value=names[0], description="task", style=style)
    index = widgets.IntSlider(0, min=0, max=0, description="example", style=style)
    description = widgets.HTML()
    view = widgets.HTML()
    loaded: dict[str, list[dict]] = {}

    def examples(name: str) -> list[dict]:
        if name not in loaded:
            loaded[name] = load(name, split, seed=seed)
        return loaded[name]

    def sequences(kind: str, example: dict) -> list[tuple[str, list[int]]]:
        if kind == "classification":
            return [("", transforms.classification(tokenizer, example["text"], n_ctx))]
        if kind == "entailment":
            return [("", transforms.entailment(tokenizer, example["premise"], example["hypothesis"], n_ctx))]
        if kind == "similarity":
            both = transforms.similarity(tokenizer, example["text_a"], example["text_b"], n_ctx)
            return list(zip(["a; b", "b; a (the head adds both states)"], both))
        built = transforms.multiple_choice(tokenizer, example["context"], example["choices"], n_ctx)
        return [(f"choice {k}" + (" (correct)" if k == example["label"] else ""), ids) for k, ids in enumerate(built)]

    def chips(ids: list[int]) -> str:
        special = {tokenizer.start_id: "start", tokenizer.delim_id: "delim", tokenizer.extract_id: "extract"}
        parts = []
        for token_id in ids:
            kind = special.get(token_id)
            text = html.escape(f"[{kind}]" if kind else _token_text(tokenizer, token_id))
            style_ = f"background:{_SPECIAL_COLOURS[kind]};font-weight:bold;" if kind else "background:#f2f2f2;"
            if kind == "extract":
                style_ += "border:2px solid #c00;"
            parts.append(f"<span style='{style_}padding:1px 3px;margin:1px;border-radius:3px;"
                         f"display:inline-block;font-family:monospace;font-size:12px'>{text}</span>")
        return "".join(parts) + "<span style='color:#c00;font-size:12px'> \u25c0 the head reads here</span>"

    def update(_=None) -> None:
        viewer.sequences = []
        spec = TASKS[task.value]
        try:
            rows = examples(task.value)
        except Exception as error:  # missing data, no network: say so in the widget
            view.value = _note(f"cannot load task {task.value!r}: {type(error).__name__}: {error}", error=True)
            return
        if not rows:
            view.value = _note(f"task {task.value!r} has no {split} examples", error=True)
            return
        index.max = len(rows) - 1
        example = rows[index.value]
        description.value = f"<i>{html.escape(spec.kind)}: {html.escape(spec.description)}</i>"
        fields = "".join(
            f"<div><b>{html.escape(name)}</b>: {html.escape(str(example[name]))}</div>" for name in spec.fields if name != "label")
        label = spec.labels.get(example["label"], example["label"])
        try:
            built = sequences(spec.kind, example)
        except (KeyError, ValueError) as error:  # e.g. a tokenizer without GPT-1's special tokens
            view.value = _note(f"{type(error).__name__}: {error}", error=True)
            return
        blocks = "".join(
            f"<div style='margin-top:6px'><b>{html.escape(title)}</b> {len(ids)} tokens "
            f"(n_ctx={n_ctx})<div>{chips(ids)}</div></div>" for title, ids in built)
        view.value = f"{fields}<div>label: <b>{html.escape(str(label))}</b></div>{blocks}"
        viewer.sequences = [ids for _, ids in built]

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

def find_runs(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> dict[str, Path]:
    """Run directories (those with a ``history.csv``) at or under ``paths``, by a short name.

    Checkpoint directories carry a copy of the history too; they are not runs of their own.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    found: list[Path] = []
    for path in map(Path, paths):
        candidates = [path / "history.csv"] if (path / "history.csv").is_file() else sorted(path.rglob("history.csv"))
        found += [c.parent for c in candidates if "checkpoints" not in c.relative_to(path).parts[:-1]]
    names: dict[str, Path] = {}
    for run in dict.fromkeys(found):
        name = run.name if run.name not in names else f"{run.parent.name}/{run.name}"
        names[name] = run
    return names


def loss_curve_viewer(runs: Mapping[str, str | os.PathLike[str]] | str | os.PathLike[str]
                      | Iterable[str | os.PathLike[str]]) -> widgets.VBox:
    """Pick runs and overlay their train (solid) and validation (dashed) loss against steps.

    ``runs`` maps names to run directories, or lists run directories or folders to search for
    them (see :func:`find_runs`); every column of ``history.csv`` whose name ends in ``loss`` is
    drawn. The first four runs are selected to begin with.
    """
    import matplotlib.pyplot as plt
    import pandas as pd

    found = {name: Path(path) for name, path in runs.items()} if isinstance(runs, Mapping) else find_runs(runs)
    message = widgets.HTML()
    if not found:
        message.value = _note(f"no run directories (with a history.csv) found in {runs}", error=True)
        viewer = widgets.VBox([message])
        viewer.controls, viewer.message, viewer.plotted = {}, message, None
        return viewer
    names = list(found)
    select = widgets.SelectMultiple(options=names, value=names[:4], description="runs",
                                    rows=min(len(names), 6), layout=widgets.Layout(width="60%"))
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
        fig, ax = plt.subplots(figsize=(8, 4))
        frames, summary = [], []
        missing = [name for name in select.value if not (found[name] / "history.csv").is_file()]
        for colour, name in enumerate(n for n in select.value if n not in missing):
            if name not in histories:
                histories[name] = pd.read_csv(found[name] / "history.csv")
            history = histories[name]
            columns = [c for c in history.columns if c.endswith("loss")]
            for column in columns:
                curve = history[["step", column]].dropna()
                dashed = column.startswith("val")
                ax.plot(curve["step"], curve[column], linestyle="--" if dashed else "-",
                        marker="o" if dashed else None, markersize=3, color=f"C{colour}",
                        label=f"{name}: {column}")
                frames.append(curve.rename(columns={column: "loss"}).assign(run=name, curve=column))
                summary.append(dict(run=name, curve=column, steps=int(curve["step"].max()) if len(curve) else 0,
                                    last=curve[column].iloc[-1] if len(curve) else float("nan"),
                                    best=curve[column].min()))
        ax.set_xscale("log" if log_x.value else "linear")
        ax.set_xlabel("update step")
        ax.set_ylabel("loss (nats per token)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        image.value = _figure_png(fig)
        viewer.plotted = pd.concat(frames, ignore_index=True) if frames else None
        table.value = pd.DataFrame(summary).to_html(index=False, float_format="%.3f")
        problems = [f"no history.csv in {', '.join(missing)}"] if missing else []
        problems += [] if frames else ["the selected runs have no loss columns yet"]
        message.value = _note("; ".join(problems), error=True) if problems else ""

    select.observe(update, names="value")
    log_x.observe(update, names="value")
    viewer = widgets.VBox([widgets.HBox([select, log_x]), message, image, table])
    viewer.controls = dict(runs=select, log_x=log_x)
    viewer.message, viewer.image = message, image
    update()
    return viewer


# ---------------------------------------------------------------------------------------------
# The model the explorer notebook shows

EXPLORER_SOURCES = ("auto", "demo", "untrained")


@dataclass
class Explorable:
    """A model, its tokenizer, a sentence that says honestly what it is, and runs to compare."""

    model: GPT
    tokenizer: Tokenizer
    description: str
    runs: dict[str, Path]


def demo_spec(steps: int = 300, seed: int = 0):
    """The demo model: the gpt2-mini preset trained for ``steps`` updates of 8 x 128 tokens.

    About a minute on 2 CPU cores for 300 updates; a high learning rate and no dropout, because
    it is short. Cached like every pretraining run, so only the first call trains.
    """
    from ..experiments import PretrainSpec

    return PretrainSpec(preset="gpt2-mini", steps=steps, batch_size=8, lr=2e-3, warmup_steps=max(1, steps // 10),
                        dropout=0.0, seed=seed, n_checkpoints=1, extra={"eval_sequences": 16})


def explorer_model(source: str | os.PathLike[str] = "auto", demo_steps: int = 300, seed: int = 0) -> Explorable:
    """The model to explore. No pretrained GPT weights exist offline, so it is one trained here.

    ``"auto"``: the cached GPT pretraining run that has seen the most tokens, the lowest
    validation loss breaking ties (after notebook 04, its gpt2-mini rung), else the demo.
    ``"demo"``: :func:`demo_spec` (trained on first use).
    ``"untrained"``: random gpt2-mini weights, to check the widgets quickly. A path: a run
    directory written by the Trainer on the corpus (``python -m workbench pretrain``).
    ``runs`` holds every cached pretraining run, for the loss-curve viewer.
    """
    from ..data.prepare import corpus_tokenizer
    from ..experiments import pretrain
    from ..experiments.pretraining import cached_pretraining_runs

    if isinstance(source, str) and source not in EXPLORER_SOURCES and not Path(source).exists():
        raise ValueError(f"source={source!r}: expected one of {EXPLORER_SOURCES} or an existing run directory")
    if not isinstance(demo_steps, int) or demo_steps < 1:
        raise ValueError(f"demo_steps={demo_steps!r}: expected a positive integer")
    if source == "untrained":
        config = GPTConfig.from_preset("gpt2-mini")
        torch.manual_seed(seed)
        return Explorable(GPT(config).eval(), corpus_tokenizer(config.vocab_size),
                          f"an UNTRAINED {_describe(config)} (random weights): its text is noise", {})
    if source not in EXPLORER_SOURCES:
        return _load_run(Path(source))
    demo = demo_spec(demo_steps, seed)
    cached = cached_pretraining_runs()
    best = _best_gpt_run(cached) if source == "auto" else None
    if best is None:
        run = pretrain(demo)
        cached = cached_pretraining_runs()  # now with the demo run
        name = next(n for n, r in cached.items() if r.run_dir == run.run_dir)
    else:
        name, run = best
    history = run.history
    val = history["val_loss"].dropna()
    is_demo = run.spec == demo
    description = (f"{'a DEMO model: ' if is_demo else ''}{_describe(run.spec.gpt_config)} pretrained for "
                   f"{run.spec.steps:,} updates ({int(history['tokens'].max()):,} tokens) on the corpus, "
                   f"validation loss {val.iloc[-1]:.2f} nats/token (cached run {name!r})"
                   f"{'; expect word salad, not prose' if is_demo else ''}")
    runs = {n: r.run_dir for n, r in cached.items()}
    return Explorable(run.load(), run.tokenizer, description, runs)


def _best_gpt_run(runs: dict[str, "PretrainRun"]) -> tuple[str, "PretrainRun"] | None:
    """The GPT run (not an LSTM baseline) that has seen the most training tokens, and of those the
    one with the lowest validation loss (the best model on offer), or None."""
    seen = {}
    for name, run in runs.items():
        if run.spec.model == "gpt":
            history = run.history
            seen[name] = (int(history["tokens"].max()), -float(history["val_loss"].dropna().iloc[-1]))
    if not seen:
        return None
    best = max(seen, key=seen.get)
    return best, runs[best]


def _describe(config: GPTConfig) -> str:
    return (f"{config.n_layer}-layer, {config.d_model}-wide {'GPT-2' if config.norm == 'pre' else 'GPT-1'}-style "
            f"model ({count_parameters(config) / 1e6:.1f}M parameters, {config.vocab_size}-token BPE, "
            f"context {config.n_ctx})")


def _load_run(run: Path) -> Explorable:
    from ..training import checkpoint
    from ..data.prepare import corpus_tokenizer

    latest = checkpoint.latest_checkpoint(run)
    if latest is None:
        raise FileNotFoundError(f"{run} holds no checkpoint (expected a run directory written by the Trainer)")
    model = checkpoint.load_model(latest)
    state = checkpoint.read_state(latest)
    tokenizer = corpus_tokenizer(model.config.vocab_size)
    metadata = state.get("metadata", {})
    expected = metadata.get("tokenizer_sha256")
    if expected not in (None, tokenizer.sha256):
        raise ValueError(f"{run} was trained with another tokenizer than the corpus BPE of "
                         f"{model.config.vocab_size} tokens")
    history = checkpoint.read_history(run)
    val = history["val_loss"].dropna() if "val_loss" in history else []
    loss = f", validation loss {val.iloc[-1]:.2f} nats/token" if len(val) else ""
    data = "the corpus" if expected == tokenizer.sha256 else metadata.get("train_tokens", "unrecorded data")
    description = (f"{_describe(model.config)} trained for {state['step']:,} updates "
                   f"({int(history['tokens'].max()):,} tokens) on {data}{loss}; run {run}")
    return Explorable(model, tokenizer, description, {run.name: run})
