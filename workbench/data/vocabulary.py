"""The corpus BPE and where prepared files live: below both ``prepare`` (which packs tokens with it)
and ``tasks`` (which matches a task's candidates on their number of tokens under it)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..core.io import is_disk_full
from .corpus import CORPUS_VERSION, DEFAULT_SOURCES, HELDOUT_FRACTION, VAL_FRACTION, archive_of, corpus_split
from .sources import cache_lock, data_dir, disk_full_error
from .tokenizer import Tokenizer, train_bpe

DEFAULT_VOCAB_SIZE = 8192


def prepared_dir(seed: int = 0) -> Path:
    """Where the tokenizers and packed splits of the corpus split by ``seed`` are kept."""
    key = dict(
        version=CORPUS_VERSION,
        seed=seed,
        sources={s: archive_of(s).sha256 for s in DEFAULT_SOURCES},
        val=VAL_FRACTION,
        heldout=HELDOUT_FRACTION,
    )
    fingerprint = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return data_dir() / "prepared" / f"corpus-{fingerprint}"


def corpus_tokenizer(vocab_size: int = DEFAULT_VOCAB_SIZE, seed: int = 0) -> Tokenizer:
    """The byte-level BPE trained on the training split (cached; trained on first use)."""
    path = prepared_dir(seed) / f"bpe{vocab_size}" / "tokenizer.json"
    if path.exists():
        return Tokenizer.load(path)
    with cache_lock():
        if path.exists():  # trained by another process while this one waited
            return Tokenizer.load(path)
        tokenizer = train_bpe([d.text for d in corpus_split("train", seed)], vocab_size)
        try:
            tokenizer.save(path)
        except OSError as error:
            if is_disk_full(error):
                raise disk_full_error(path, len(tokenizer.to_json().encode())) from error
            raise
    return tokenizer


def trained_tokenizer(checkpoint: Path, metadata: dict, vocab_size: int) -> Tokenizer:
    """The corpus BPE a checkpoint's training tokens were encoded with (its ``metadata`` records the
    tokenizer's hash), or a clear refusal: weights paired with another tokenizer produce fluent-looking
    nonsense, never an error, so a checkpoint that records no tokenizer is refused too."""
    recorded = metadata.get("tokenizer_sha256")
    if recorded is None:
        raise ValueError(
            f"{checkpoint} records no tokenizer: it was trained on "
            f"{metadata.get('train_tokens', 'unrecorded data')!s}, token ids with no tokenizer attached, so "
            "the ids of any text given to it would mean other words; expected a checkpoint trained on "
            "packed tokens (the books corpus, or a packed file of the workbench), which record theirs"
        )
    tokenizer = corpus_tokenizer(vocab_size)
    if recorded != tokenizer.sha256:
        raise ValueError(
            f"{checkpoint} was trained with tokenizer {recorded[:12]}, not the corpus BPE of {vocab_size} "
            f"tokens ({tokenizer.sha256[:12]}) that the workbench encodes text with"
        )
    return tokenizer
