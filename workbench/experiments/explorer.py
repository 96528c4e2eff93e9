"""Which model the explorer notebook (05) shows, and its validated parameters.

No pretrained GPT weights can be installed offline, so the model is one trained on this machine:
the best cached pretraining run, else a small demo run trained on first use (then cached).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.checks import NON_EMPTY_STRING, NON_NEGATIVE_INT, POSITIVE_INT, Check
from ..core.options import apply_overrides
from ..data.tokenizer import Tokenizer
from ..data.vocabulary import corpus_tokenizer, trained_tokenizer
from ..models.config import GPTConfig
from ..models.generation import MAX_SEED
from ..models.gpt import GPT
from ..models.params import count_parameters
from ..training import checkpoint as ckpt
from .pretraining import PretrainRun, cached_pretraining_runs, pretrain
from .recipes import RECIPES, PretrainSpec

SOURCES = ("auto", "demo", "untrained")

_CHECKS = {
    "model_source": Check(
        f"one of {list(SOURCES)} or an existing run directory",
        lambda v: (isinstance(v, str) and v in SOURCES) or (isinstance(v, (str, os.PathLike)) and Path(v).is_dir()),
    ),
    "demo_steps": POSITIVE_INT,
    "seed": NON_NEGATIVE_INT,
    "prompt": Check("a string (empty: start from <|endoftext|>)", lambda v: isinstance(v, str)),
    "max_new_tokens": POSITIVE_INT,
    "attention_text": NON_EMPTY_STRING,
}


SEED_BOUND = Check("an integer below 2**64 (torch's generators take no more)", lambda v: v < MAX_SEED)
"""Checked after ``_CHECKS["seed"]``: a seed the demo run and the playground can both use."""


@dataclass(frozen=True)
class Explorer:
    """A model, its tokenizer, a sentence that says honestly what it is, the runs to compare, and
    the notebook's other parameters, all validated."""

    model: GPT
    tokenizer: Tokenizer
    description: str
    runs: dict[str, Path]
    prompt: str
    max_new_tokens: int
    attention_text: str
    seed: int

    @classmethod
    def from_params(
        cls,
        model_source: str | os.PathLike[str] = "auto",
        demo_steps: int = 300,
        seed: int = 0,
        prompt: str = "To be, or not to be",
        max_new_tokens: int = 48,
        attention_text: str = "And God said, Let there be light: and there was light.",
    ) -> Explorer:
        """Check every parameter (before any training), then find or train the model.

        ``model_source``: ``"auto"``, the cached GPT pretraining run that has seen the most tokens,
        the lowest validation loss breaking ties (after notebook 04, its gpt2-mini rung), else the
        demo; ``"demo"``: :func:`demo_spec` with ``demo_steps`` updates (trained on first use);
        ``"untrained"``: random gpt2-mini weights, to check the widgets quickly; or a run directory
        written by the Trainer on the corpus (``python -m workbench pretrain``).
        """
        params = dict(
            model_source=model_source,
            demo_steps=demo_steps,
            seed=seed,
            prompt=prompt,
            max_new_tokens=max_new_tokens,
            attention_text=attention_text,
        )
        for name, check in _CHECKS.items():
            check(params[name], name)
        SEED_BOUND(seed, "seed")
        if model_source == "untrained":
            config = GPTConfig.from_preset("gpt2-mini")
            torch.manual_seed(seed)
            model, tokenizer = GPT(config).eval(), corpus_tokenizer(config.vocab_size)
            description = f"an UNTRAINED {describe(config)} (random weights): its text is noise"
            runs = {}
        elif model_source in SOURCES:
            model, tokenizer, description, runs = _cached_model(model_source, demo_spec(demo_steps, seed))
        else:
            model, tokenizer, description, runs = _run_directory_model(Path(model_source))
        return cls(model, tokenizer, description, runs, prompt, max_new_tokens, attention_text, seed)


def demo_spec(steps: int = 300, seed: int = 0) -> PretrainSpec:
    """The demo model: the gpt2-mini preset trained for ``steps`` updates of 8 x 128 tokens.

    About a minute on 2 CPU cores for 300 updates; a high learning rate and no dropout, because
    it is short. Cached like every pretraining run, so only the first call trains.
    """
    every = max(1, steps // 10)
    return apply_overrides(
        RECIPES["cpu"].pretraining,
        {
            "preset": "gpt2-mini",
            "dropout": 0.0,
            "n_checkpoints": 1,
            "train": {
                "steps": steps,
                "batch_size": 8,
                "lr": 2e-3,
                "warmup_steps": every,
                "eval_every": every,
                "eval_sequences": 16,
                "seed": seed,
            },
        },
    )


def best_gpt_run(runs: dict[str, PretrainRun]) -> tuple[str, PretrainRun] | None:
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


def describe(config: GPTConfig) -> str:
    """A model's shape in words, for a reader who wants to know what they are looking at."""
    return (
        f"{config.n_layer}-layer, {config.d_model}-wide {'GPT-2' if config.norm == 'pre' else 'GPT-1'}-style "
        f"model ({count_parameters(config) / 1e6:.1f}M parameters, {config.vocab_size}-token BPE, "
        f"context {config.n_ctx})"
    )


def _cached_model(source: str, demo: PretrainSpec) -> tuple[GPT, Tokenizer, str, dict[str, Path]]:
    """The best cached run (``"auto"``) or the demo run, trained when it is not cached yet."""
    cached = cached_pretraining_runs()
    best = best_gpt_run(cached) if source == "auto" else None
    if best is None:
        run = pretrain(demo)
        cached = cached_pretraining_runs()  # now with the demo run
        best = next((name, r) for name, r in cached.items() if r.run_dir == run.run_dir)
    name, run = best
    history = run.history
    val = history["val_loss"].dropna()
    is_demo = run.spec == demo
    description = (
        f"{'a DEMO model: ' if is_demo else ''}{describe(run.spec.gpt_config)} pretrained for "
        f"{run.spec.train.steps:,} updates ({int(history['tokens'].max()):,} tokens) on the corpus, "
        f"validation loss {val.iloc[-1]:.2f} nats/token (cached run {name!r})"
        f"{'; expect word salad, not prose' if is_demo else ''}"
    )
    return run.load(), run.tokenizer, description, {n: r.run_dir for n, r in cached.items()}


def _run_directory_model(run: Path) -> tuple[GPT, Tokenizer, str, dict[str, Path]]:
    """The last checkpoint of a run directory, with the tokenizer it was trained with (or a refusal)."""
    latest = ckpt.latest_checkpoint(run)
    if latest is None:
        raise FileNotFoundError(f"{run} holds no checkpoint (expected a run directory written by the Trainer)")
    model = ckpt.load_model(latest)
    state = ckpt.read_state(latest)
    tokenizer = trained_tokenizer(latest, state.get("metadata", {}), model.config.vocab_size)
    history = ckpt.read_history(run)
    val = history["val_loss"].dropna() if "val_loss" in history else []
    loss = f", validation loss {val.iloc[-1]:.2f} nats/token" if len(val) else ""
    description = (
        f"{describe(model.config)} trained for {state['step']:,} updates "
        f"({int(history['tokens'].max()):,} tokens) on the corpus{loss}; run {run}"
    )
    return model, tokenizer, description, {run.name: run}
