"""Analytic parameter counts, derived from a config without building a model.

The counts are exact: tests hold them equal to ``sum(p.numel())`` of :class:`workbench.models.gpt.GPT`
for every preset. The quoted approximations of both papers are derived here too, so that the
notebook can reconcile them term by term instead of asserting numbers.
"""

from __future__ import annotations

import pandas as pd

from .config import PRESETS, GPTConfig

BREAKDOWN_COLUMNS = ["component", "group", "shape", "per_layer", "layers", "parameters"]


def parameter_breakdown(config: GPTConfig, n_classes: int = 0, n_special: int = 0) -> pd.DataFrame:
    """One row per component: its shape, count per layer, number of layers and total.

    ``n_classes`` adds a fine-tuning classification head (a linear layer on the final hidden
    state); ``n_special`` adds rows of the token embedding for special tokens that are not in
    ``config.vocab_size`` (GPT-1's ``<start>``, ``<delim>``, ``<extract>``). Both default to the bare
    language model, whose LM head is tied to the token embedding and so costs nothing.
    """
    if n_classes < 0 or n_special < 0:
        raise ValueError(f"n_classes and n_special must be >= 0, got {n_classes} and {n_special}")
    d, f, L = config.d_model, config.d_ff, config.n_layer
    rows = [
        ("token embedding", "embedding", (config.vocab_size, d), 1),
        ("position embedding", "embedding", (config.n_ctx, d), 1),
        ("attention QKV weight", "attention", (d, 3 * d), L),
        ("attention QKV bias", "attention", (3 * d,), L),
        ("attention output weight", "attention", (d, d), L),
        ("attention output bias", "attention", (d,), L),
        ("FFN input weight", "ffn", (d, f), L),
        ("FFN input bias", "ffn", (f,), L),
        ("FFN output weight", "ffn", (f, d), L),
        ("FFN output bias", "ffn", (d,), L),
        ("layer norm 1 (gain + bias)", "layer norm", (2, d), L),
        ("layer norm 2 (gain + bias)", "layer norm", (2, d), L),
        ("final layer norm (gain + bias)", "layer norm", (2, d), int(config.final_norm)),
        ("LM head (tied to token embedding)", "head", (d, config.vocab_size), 0),
        ("special-token embeddings", "embedding", (n_special, d), int(n_special > 0)),
        ("task head weight", "head", (d, n_classes), int(n_classes > 0)),
        ("task head bias", "head", (n_classes,), int(n_classes > 0)),
    ]
    records = []
    for component, group, shape, layers in rows:
        per_layer = 1
        for size in shape:
            per_layer *= size
        records.append(
            dict(
                component=component,
                group=group,
                shape=" x ".join(map(str, shape)),
                per_layer=per_layer,
                layers=layers,
                parameters=per_layer * layers,
            )
        )
    return pd.DataFrame.from_records(records, columns=BREAKDOWN_COLUMNS)


def count_parameters(config: GPTConfig, n_classes: int = 0, n_special: int = 0) -> int:
    """Exact number of parameters of ``GPT(config)`` (plus the optional fine-tuning extras)."""
    return int(parameter_breakdown(config, n_classes, n_special)["parameters"].sum())


def non_embedding_parameters(config: GPTConfig) -> int:
    """Parameters outside the token and position embeddings (the tied LM head is the token
    embedding): the N of Kaplan et al. (2020), against which scaling laws are fit."""
    breakdown = parameter_breakdown(config)
    return int(breakdown.loc[breakdown["group"] != "embedding", "parameters"].sum())


def per_block_parameters(config: GPTConfig) -> int:
    """Parameters of one transformer block: 12 d^2 of matrices (with d_ff = 4d) + 9d + 4d."""
    breakdown = parameter_breakdown(config)
    return int(breakdown.loc[breakdown["layers"] == config.n_layer, "per_layer"].sum())


def family_table(names: list[str] | None = None) -> pd.DataFrame:
    """Exact counts across presets beside the ``12 L d^2`` rule of thumb (matrices of the blocks only)."""
    names = names or ["gpt1", "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"]
    records = []
    for name in names:
        config = PRESETS[name]
        exact = count_parameters(config)
        approx = 12 * config.n_layer * config.d_model**2
        records.append(
            dict(
                model=name,
                n_layer=config.n_layer,
                d_model=config.d_model,
                exact=exact,
                twelve_L_d2=approx,
                embeddings=(config.vocab_size + config.n_ctx) * config.d_model,
                approx_share=approx / exact,
            )
        )
    return pd.DataFrame.from_records(records)


QUOTED_GPT1_BLOCK = 7_080_960
QUOTED_GPT1_VOCAB = 40_000
QUOTED_GPT1_CLASSES = 1000


def quoted_gpt1_approximation(config: GPTConfig | None = None) -> pd.DataFrame:
    """The commonly quoted GPT-1 derivation, term by term.

    12 blocks x 7,080,960 (four weight matrices, 12 d^2, plus two LayerNorms read as "mean and
    variance", 4d; no biases) + 40,000 x 768 token embeddings + a 768 x 1000 output layer.
    """
    config = config or PRESETS["gpt1"]
    d = config.d_model
    terms = [
        ("blocks: 12 d^2 weights + 4d 'mean and variance'", config.n_layer * QUOTED_GPT1_BLOCK),
        ("token embedding, vocabulary rounded to 40,000", QUOTED_GPT1_VOCAB * d),
        ("output layer 768 x 1000 (no bias)", d * QUOTED_GPT1_CLASSES),
    ]
    return pd.DataFrame(terms, columns=["term", "parameters"])


def reconcile_gpt1(config: GPTConfig | None = None) -> pd.DataFrame:
    """Every difference between the quoted approximation and the exact count, computed.

    The rows add up: quoted total + all differences == ``count_parameters(config)``.
    """
    config = config or PRESETS["gpt1"]
    d, L = config.d_model, config.n_layer
    quoted = int(quoted_gpt1_approximation(config)["parameters"].sum())
    biases_per_block = 3 * d + d + config.d_ff + d
    layer_norm_per_block = 2 * 2 * d
    rows = [
        ("quoted approximation", quoted, "12 x 7,080,960 + 40,000 x 768 + 768 x 1000"),
        (
            "+ attention and FFN biases",
            L * biases_per_block,
            f"QKV 3d + output d + FFN d_ff + d = {biases_per_block} per block, x {L}",
        ),
        (
            "+/- LayerNorm: gain and bias, not mean and variance",
            L * layer_norm_per_block - L * (QUOTED_GPT1_BLOCK - 12 * d * d),
            "same count (2 x 2d per block); the quote names them wrongly",
        ),
        ("+ position embeddings", config.n_ctx * d, f"{config.n_ctx} positions x {d}"),
        (
            "+ vocabulary 40,478, not 40,000",
            (config.vocab_size - QUOTED_GPT1_VOCAB) * d,
            f"({config.vocab_size} - {QUOTED_GPT1_VOCAB}) x {d}",
        ),
        (
            "- output layer: the LM head is tied to the token embedding",
            -d * QUOTED_GPT1_CLASSES,
            "a 1000-way layer is not part of the language model",
        ),
    ]
    table = pd.DataFrame(rows, columns=["item", "parameters", "why"])
    total = ("= total", int(table["parameters"].sum()), "equals count_parameters(config)")
    return pd.concat([table, pd.DataFrame([total], columns=table.columns)], ignore_index=True)


GPT2_PAPER_SIZES = {"gpt2": 117e6, "gpt2-medium": 345e6, "gpt2-large": 762e6, "gpt2-xl": 1542e6}
"""Sizes quoted in Table 2 of the GPT-2 paper."""


def reconcile_gpt2_paper() -> pd.DataFrame:
    """The GPT-2 paper's sizes against the released models.

    The gap is exactly the vocabulary: counted with GPT-1's 40,478-token vocabulary instead of
    GPT-2's 50,257, each released architecture rounds to the size the paper quotes.
    """
    records = []
    for name, quoted in GPT2_PAPER_SIZES.items():
        config = PRESETS[name]
        exact = count_parameters(config)
        with_gpt1_vocab = count_parameters(config.replace(vocab_size=PRESETS["gpt1"].vocab_size))
        records.append(
            dict(
                model=name,
                paper=int(quoted),
                exact=exact,
                gap=exact - int(quoted),
                vocabulary_difference=(config.vocab_size - PRESETS["gpt1"].vocab_size) * config.d_model,
                exact_with_gpt1_vocab=with_gpt1_vocab,
                rounds_to_paper=round(with_gpt1_vocab / 1e6) == round(quoted / 1e6),
            )
        )
    return pd.DataFrame.from_records(records)
