"""GPT-1 input transformations (section 3.3, Figure 1 right) and batching.

Every task becomes one or more token sequences that start with ``<|start|>`` and end with
``<|extract|>``; the fine-tuning head reads the final hidden state at the ``<|extract|>`` position.

- classification: ``[start] text [extract]``
- entailment:     ``[start] premise [delim] hypothesis [extract]``
- similarity:     both orderings ``[start] a [delim] b [extract]`` and ``[start] b [delim] a [extract]``;
                  the head adds their two final states
- multiple choice: ``[start] context [delim] answer_k [extract]`` for each k, scored independently,
                  softmax over the choices; ``[start] answer_k [extract]`` when there is no context
                  (a minimal pair: which of two versions of a line is right)

Truncation never drops a special token. When the text parts do not fit ``n_ctx``, the longest part
is shortened first (tokens are removed until all parts are as short as needed, the longest ones
losing the most). Parts lose tokens at their end, except a multiple-choice context, which loses its
beginning: the words right before the answer are the ones that matter.

The special tokens are inserted by id, never by their text: an example whose text spells
``<|delim|>`` is encoded as those characters (the tokenizer reads text as text), so each sequence has
exactly one ``<|start|>``, one ``<|extract|>`` and one ``<|delim|>`` between two parts, whatever the
examples say; a tokenizer that turned text into one of them is refused.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from .tasks import KIND_FIELDS

KINDS = ("classification", "entailment", "similarity", "multiple_choice")
"""Kinds a fine-tuning head is built for; :func:`transform_example` also encodes ``substitution``."""


class SpecialTokenizer(Protocol):
    """What the transforms need from a tokenizer (``workbench.data.tokenizer.Tokenizer`` provides it)."""

    start_id: int
    delim_id: int
    extract_id: int
    pad_id: int

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        """Ids of each text read as plain text: a special-token string in it is not a special token."""
        ...


def fit_parts(parts: Sequence[Sequence[int]], budget: int, keep_end: Sequence[bool] | None = None) -> list[list[int]]:
    """Shorten token lists so that their total length is at most ``budget``, longest first.

    The result is the water-filling solution: every part longer than some cap ``c`` is cut to ``c``
    (or ``c + 1``, for the earliest of them, to use the whole budget); shorter parts are untouched.
    ``keep_end[i]`` keeps the end of part ``i`` (drops its beginning) instead of its start.
    """
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    lengths = [len(p) for p in parts]
    keep_end = list(keep_end) if keep_end is not None else [False] * len(parts)
    if sum(lengths) <= budget:
        return [list(p) for p in parts]
    cap = 0
    while sum(min(n, cap + 1) for n in lengths) <= budget:
        cap += 1
    spare = budget - sum(min(n, cap) for n in lengths)
    targets = []
    for n in lengths:
        target = min(n, cap)
        if n > cap and spare > 0:
            target, spare = target + 1, spare - 1
        targets.append(target)
    return [list(p[len(p) - t :]) if end else list(p[:t]) for p, t, end in zip(parts, targets, keep_end)]


def _minimum_context(n_parts: int, n_ctx: int) -> None:
    specials = n_parts + 1  # start, one delimiter between parts, extract
    if n_ctx < specials + n_parts:
        raise ValueError(
            f"n_ctx={n_ctx} is too small: the transform needs {specials} special tokens plus at least "
            f"one token per text part ({n_parts})"
        )


def _join(tok: SpecialTokenizer, parts: Sequence[Sequence[int]], n_ctx: int, keep_end=None) -> list[int]:
    _minimum_context(len(parts), n_ctx)
    budget = n_ctx - (len(parts) + 1)
    fitted = fit_parts(parts, budget, keep_end)
    ids = [tok.start_id]
    for i, part in enumerate(fitted):
        if i:
            ids.append(tok.delim_id)
        ids.extend(part)
    ids.append(tok.extract_id)
    return ids


def _encode(tok: SpecialTokenizer, texts: Sequence[str], example_name: str) -> list[list[int]]:
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{example_name}: empty or non-string text {text!r}")
    encoded = tok.encode_batch(list(texts))
    control = {tok.start_id: "<|start|>", tok.delim_id: "<|delim|>", tok.extract_id: "<|extract|>"}
    for text, ids in zip(texts, encoded):
        found = sorted({control[i] for i in ids if i in control})
        if found:
            raise ValueError(
                f"{example_name}: the tokenizer encoded the text {text!r:.80} into the control token(s) {found}; "
                "expected a tokenizer that encodes text as plain text (workbench.data.tokenizer.Tokenizer does)"
            )
    return encoded


def classification(tok: SpecialTokenizer, text: str, n_ctx: int) -> list[int]:
    """``[start] text [extract]``"""
    return _join(tok, _encode(tok, [text], "classification"), n_ctx)


def entailment(tok: SpecialTokenizer, premise: str, hypothesis: str, n_ctx: int) -> list[int]:
    """``[start] premise [delim] hypothesis [extract]``"""
    return _join(tok, _encode(tok, [premise, hypothesis], "entailment"), n_ctx)


def similarity(tok: SpecialTokenizer, a: str, b: str, n_ctx: int) -> list[list[int]]:
    """Both orderings, since a similarity has no natural order: ``[a; b]`` and ``[b; a]``."""
    ea, eb = _encode(tok, [a, b], "similarity")
    return [_join(tok, [ea, eb], n_ctx), _join(tok, [eb, ea], n_ctx)]


def multiple_choice(tok: SpecialTokenizer, context: str, choices: Sequence[str], n_ctx: int) -> list[list[int]]:
    """``[start] context [delim] answer_k [extract]`` for each choice k; ``[start] answer_k [extract]``
    for an empty context."""
    if not choices:
        raise ValueError("multiple_choice: an example needs at least one choice")
    if isinstance(context, str) and not context.strip():
        return [_join(tok, [answer], n_ctx) for answer in _encode(tok, choices, "multiple_choice")]
    encoded = _encode(tok, [context, *choices], "multiple_choice")
    return [_join(tok, [encoded[0], answer], n_ctx, keep_end=[True, False]) for answer in encoded[1:]]


def collate(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence; return ``(input_ids [N, T], extract_positions [N])``.

    Right padding is safe for a causal model: the state at ``[extract]`` never sees the pads.
    """
    if not sequences:
        raise ValueError("collate: no sequences")
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    for i, seq in enumerate(sequences):
        ids[i, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    extract = torch.tensor([len(s) - 1 for s in sequences], dtype=torch.long)
    return ids, extract


def lm_targets(input_ids: torch.Tensor, extract: torch.Tensor) -> torch.Tensor:
    """Next-token targets for the auxiliary LM loss: ``input_ids`` shifted left, pads ignored.

    The target of the last real position (``[extract]``) and of every pad is ``-100``.
    """
    targets = torch.full_like(input_ids, -100)
    targets[..., :-1] = input_ids[..., 1:]
    positions = torch.arange(input_ids.size(-1), device=input_ids.device)
    targets[positions >= extract.unsqueeze(-1)] = -100
    return targets


@dataclass(frozen=True)
class TransformedSequence:
    """One token sequence of an example, as the task head sees it."""

    title: str  # which sequence of the example it is ("" when there is only one)
    ids: list[int]

    @property
    def extract(self) -> int:
        """Position of ``[extract]``, whose final hidden state the task head reads: the last one."""
        return len(self.ids) - 1


def transform_example(kind: str, example: dict, tok: SpecialTokenizer, n_ctx: int) -> list[TransformedSequence]:
    """The token sequences of one example of a ``kind`` task: the one dispatch on task kind.

    One sequence for classification and entailment, two for similarity (``a; b`` and ``b; a``), one
    per choice for multiple choice. A ``substitution`` example (a blank in a sentence) is a multiple
    choice whose context is the text before the blank and whose answers are each candidate followed
    by the rest of the sentence. A choice equal to the example's ``label`` is titled correct.
    """
    if kind not in KIND_FIELDS:
        raise ValueError(f"unknown task kind {kind!r}; expected one of {tuple(KIND_FIELDS)}")
    missing = [name for name in KIND_FIELDS[kind] if name != "label" and name not in example]
    if missing:
        raise ValueError(f"the {kind} example {example!r} lacks the field(s) {missing}")
    e = example
    if kind == "classification":
        return [TransformedSequence("", classification(tok, e["text"], n_ctx))]
    if kind == "entailment":
        return [TransformedSequence("", entailment(tok, e["premise"], e["hypothesis"], n_ctx))]
    if kind == "similarity":
        both = similarity(tok, e["text_a"], e["text_b"], n_ctx)
        titles = ("a; b", "b; a (the head adds both states)")
        return [TransformedSequence(title, ids) for title, ids in zip(titles, both)]
    if kind == "multiple_choice":
        choices = multiple_choice(tok, e["context"], e["choices"], n_ctx)
    else:
        choices = multiple_choice(tok, e["prefix"], [c + e["suffix"] for c in e["choices"]], n_ctx)
    return [
        TransformedSequence(f"choice {k}" + (" (correct)" if k == e.get("label") else ""), ids)
        for k, ids in enumerate(choices)
    ]


def token_roles(tok: SpecialTokenizer, ids: Sequence[int]) -> list[str | None]:
    """``"start"``, ``"delim"`` or ``"extract"`` for each special token of ``ids``, None for text."""
    special = {tok.start_id: "start", tok.delim_id: "delim", tok.extract_id: "extract"}
    return [special.get(token_id) for token_id in ids]


def encode_examples(
    kind: str, examples: Sequence[dict], tok: SpecialTokenizer, n_ctx: int
) -> list[tuple[list[list[int]], int]]:
    """Each task example as ``(sequences, label)`` (see :func:`transform_example`)."""
    encoded = []
    for i, e in enumerate(examples):
        try:
            sequences = [s.ids for s in transform_example(kind, e, tok, n_ctx)]
        except ValueError as error:
            raise ValueError(f"example {i}: {error}") from None
        encoded.append((sequences, _class_label(e, i)))
    return encoded


def _class_label(example: dict, index: int) -> int:
    """The example's label as a class index, refusing a string, a bool or a fractional number by name."""
    if "label" not in example:
        raise ValueError(f"example {index}: no 'label' field; expected an int class index")
    label = example["label"]
    if isinstance(label, float) and label.is_integer():
        return int(label)
    if not isinstance(label, bool):
        try:
            return operator.index(label)
        except TypeError:
            pass
    raise ValueError(
        f"example {index}: label {label!r} is a {type(label).__name__}; expected an int class index "
        "(0, 1, ...; a text label must be mapped to its index first, and a regression score is not a class)"
    )
