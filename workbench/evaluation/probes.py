"""Linear probes on frozen per-layer features: where in the network the useful features are.

The layer-transfer ablation fine-tunes, so it mixes what the pretrained layers hold with what
fine-tuning makes of them. A logistic regression on the frozen ``[extract]`` state after each
layer, for the pretrained model and for the same architecture untrained, asks only the first
question: the per-layer gap in probe accuracy says where pretraining put features a task can use.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..data.transforms import collate
from ..models.gpt import GPT
from ..models.hooks import residual_stream_names

PROBE_COLUMNS = ["layer", "split", "n", "accuracy", "correct"]
SOLVER = "newton-cholesky"
"""Newton's method on the exact objective: a few iterations for a few hundred features, so the fit
does not depend on where an iterative solver stops (and runs 6x faster than lbfgs here)."""
PROBED_KINDS = ("classification", "entailment")
"""Task kinds whose examples are one sequence, so that one ``[extract]`` state stands for an example."""


def layer_features(
    model: GPT, encoded: Sequence[tuple[Sequence[Sequence[int]], int]], pad_id: int, batch_size: int = 64
) -> np.ndarray:
    """The state at each example's ``[extract]`` token after every layer: ``[n_layer + 1, n, d_model]`` float32.

    Layer 0 is the embedding output (token + position), layer ``i`` the residual stream after block
    ``i`` (the activation cache's ``accumulated_resid``). The last layer is the last block's output,
    before GPT-2's final LayerNorm (``ln_f``), so every layer is the same kind of state. ``encoded`` is
    :func:`~workbench.data.transforms.encode_examples` output of a one-sequence kind
    (classification, entailment). Batches are sorted by length to pad less; rows keep input order.
    """
    if not encoded:
        raise ValueError("no examples: expected at least one encoded (sequences, label) pair")
    for i, (sequences, _) in enumerate(encoded):
        if len(sequences) != 1:
            raise ValueError(
                f"example {i} has {len(sequences)} token sequences; a probe reads one [extract] state per "
                "example, so expected exactly 1 (the kinds 'classification' and 'entailment')"
            )
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: expected a positive number of examples per batch")
    order = np.argsort([len(sequences[0]) for sequences, _ in encoded], kind="stable")
    features = np.empty((model.config.n_layer + 1, len(encoded), model.config.d_model), dtype=np.float32)
    device = next(model.parameters()).device
    names = residual_stream_names(model.config)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                ids, extract = collate([encoded[i][0][0] for i in rows], pad_id)
                _, cache = model.run_with_cache(ids.to(device), names, return_logits=False)
                states = cache.accumulated_resid()  # [n_layer + 1, batch, time, d_model]
                at_extract = states[:, torch.arange(len(rows), device=device), extract.to(device)]
                features[:, rows] = at_extract.float().cpu().numpy()
    finally:
        model.train(was_training)
    return features


def fit_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    eval_sets: dict[str, tuple[np.ndarray, np.ndarray]],
    C: float = 1.0,
    max_iter: int = 1000,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Fit a logistic regression on standardised ``train_x``; per eval split, which examples it gets right.

    Returns ``{split: correct}``, ``correct`` an int8 0/1 array in the split's example order, so that
    conditions probed on the same examples can be compared paired by example.
    """
    train_x, train_y = _checked("train", train_x, train_y, width=None)
    checked = {split: _checked(split, x, y, width=train_x.shape[1]) for split, (x, y) in eval_sets.items()}
    probe = make_pipeline(
        StandardScaler(), LogisticRegression(C=C, solver=SOLVER, max_iter=max_iter, random_state=seed)
    )
    probe.fit(train_x, train_y)
    return {split: (probe.predict(x) == y).astype(np.int8) for split, (x, y) in checked.items()}


def _checked(split: str, x, y, width: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``x`` ``[n, width]`` (n > 0) and ``y`` ``[n]`` as arrays, else a ValueError naming the split."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or len(x) == 0 or (width is not None and x.shape[1] != width):
        raise ValueError(
            f"{split} features have shape {x.shape}; expected [n, {width or 'd_model'}] with n > 0 examples"
        )
    if y.shape != (len(x),):
        raise ValueError(f"{split} labels have shape {y.shape}; expected ({len(x)},), one label per example")
    return x, y


def probe_layers(
    features_by_split: dict[str, np.ndarray],
    labels_by_split: dict[str, np.ndarray],
    C: float = 1.0,
    max_iter: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """One probe per layer, fit on the ``"train"`` split, scored on every other split.

    Features are ``[n_layer + 1, n, d_model]`` per split (:func:`layer_features`), labels ``[n]``.
    Returns one row per (layer, split) with the columns of :data:`PROBE_COLUMNS`. ``correct`` holds
    the per-example outcomes as a string of "0"/"1", in the split's example order, for paired
    bootstrap statistics across conditions on the same examples:
    ``np.array(list(correct), dtype=np.int8)`` is the array that
    :class:`~workbench.evaluation.statistics.Outcomes` takes. Read a CSV of this frame back with
    ``dtype={"correct": str}``, or pandas parses the string as a number and drops leading zeros.
    """
    if "train" not in features_by_split:
        raise ValueError(f"splits {sorted(features_by_split)} have no 'train' split to fit the probes on")
    if len(features_by_split) < 2:
        raise ValueError("only a 'train' split: expected at least one other split to score the probes on")
    if set(labels_by_split) != set(features_by_split):
        raise ValueError(f"labels for splits {sorted(labels_by_split)}; expected {sorted(features_by_split)}")
    features = {split: np.asarray(x) for split, x in features_by_split.items()}
    shapes = {split: x.shape for split, x in features.items()}
    if any(len(shape) != 3 for shape in shapes.values()) or len({shape[0] for shape in shapes.values()}) != 1:
        raise ValueError(f"feature shapes {shapes}; expected [n_layer + 1, n, d_model] with the same layers in all")
    rows = []
    for layer in range(shapes["train"][0]):
        evals = {split: (x[layer], labels_by_split[split]) for split, x in features.items() if split != "train"}
        correct = fit_probe(features["train"][layer], labels_by_split["train"], evals, C, max_iter, seed)
        for split, c in correct.items():
            rows.append(
                dict(layer=layer, split=split, n=len(c), accuracy=float(c.mean()), correct="".join(map(str, c)))
            )
    return pd.DataFrame(rows, columns=PROBE_COLUMNS)
