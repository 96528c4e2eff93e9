"""Packed token files: a split encoded once into a flat memmap that a trainer samples windows from
(``workbench.training.language_model.TokenSampler``), reading only the windows it draws.

``NAME.bin`` holds every document's token ids back to back, each followed by ``<|endoftext|>``,
as ``uint16`` (``uint32`` when the vocabulary has more than 65,536 ids); ``NAME.json`` beside it is
the manifest: dtype, counts, the source archives' pinned hashes and the tokenizer's hash. The
manifest is written last and removed first, so a ``.bin`` without one is never trusted, and opening
with a tokenizer other than the one that encoded the file is an error rather than silent garbage.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..core.io import atomic_path, write_text_atomic
from .corpus import CORPUS_SOURCES, Document, archive_of
from .tokenizer import Tokenizer

FORMAT_VERSION = 1
BATCH_DOCUMENTS = 64


def dtype_for(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size <= 2**16 else np.uint32)


def manifest_path(path: str | os.PathLike[str]) -> Path:
    return Path(path).with_suffix(".json")


def pack_tokens(
    documents: Sequence[Document], tokenizer: Tokenizer, path: str | os.PathLike[str], progress: bool = True, **metadata
) -> dict:
    """Encode ``documents`` in batches (parallel, in Rust) and write ``path`` + its manifest.

    ``metadata`` (e.g. split, seed) is recorded in the manifest. Returns the manifest.
    """
    from tqdm.auto import tqdm

    path = Path(path)
    dtype = dtype_for(tokenizer.vocab_size)
    eos = np.array([tokenizer.eos_id], dtype=dtype)
    manifest_path(path).unlink(missing_ok=True)
    per_source: dict[str, dict] = {}
    n_tokens = 0
    with (
        atomic_path(path) as tmp,
        open(tmp, "wb") as out,
        tqdm(
            total=sum(len(d.text) for d in documents),
            unit="char",
            unit_scale=True,
            desc=f"encode {path.name}",
            disable=not progress,
        ) as bar,
    ):
        for start in range(0, len(documents), BATCH_DOCUMENTS):
            batch = documents[start : start + BATCH_DOCUMENTS]
            for document, ids in zip(batch, tokenizer.encode_batch([d.text for d in batch])):
                array = np.asarray(ids, dtype=dtype)
                out.write(array.tobytes())
                out.write(eos.tobytes())
                stats = per_source.setdefault(
                    document.source,
                    dict(
                        archive_sha256=archive_of(document.source).sha256
                        if document.source in CORPUS_SOURCES
                        else None,  # a user's own documents
                        documents=0,
                        tokens=0,
                    ),
                )
                stats["documents"] += 1
                stats["tokens"] += len(array) + 1
                n_tokens += len(array) + 1
            bar.update(sum(len(d.text) for d in batch))
    manifest = dict(
        format=FORMAT_VERSION,
        file=path.name,
        dtype=dtype.name,
        tokens=n_tokens,
        documents=len(documents),
        tokenizer_sha256=tokenizer.sha256,
        vocab_size=tokenizer.vocab_size,
        eos_id=tokenizer.eos_id,
        sources=per_source,
        **metadata,
    )
    write_text_atomic(manifest_path(path), json.dumps(manifest, indent=1))
    return manifest


def read_manifest(path: str | os.PathLike[str]) -> dict:
    """The manifest of a packed file, after checking that the file is whole."""
    path = Path(path)
    try:
        manifest = json.loads(manifest_path(path).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} has no manifest {manifest_path(path).name}: it was not "
            "(completely) written by pack_tokens; pack it again"
        ) from None
    except ValueError as error:
        raise ValueError(
            f"manifest {manifest_path(path)} is not valid JSON ({error}); pack {path.name} again"
        ) from None
    if manifest.get("format") != FORMAT_VERSION:
        raise ValueError(
            f"manifest {manifest_path(path)} has format {manifest.get('format')!r}, "
            f"expected {FORMAT_VERSION}; pack {path.name} again"
        )
    expected = manifest["tokens"] * np.dtype(manifest["dtype"]).itemsize
    size = path.stat().st_size if path.exists() else None
    if size != expected:
        raise ValueError(
            f"{path} has {size} bytes, but its manifest says {manifest['tokens']} "
            f"{manifest['dtype']} tokens ({expected} bytes); pack it again"
        )
    return manifest


def open_tokens(path: str | os.PathLike[str], tokenizer: Tokenizer | None = None) -> np.memmap:
    """The packed token ids as a read-only 1-D memmap (nothing is loaded until indexed).

    With ``tokenizer``, check that it is the one the file was encoded with.
    """
    manifest = read_manifest(path)
    if tokenizer is not None and tokenizer.sha256 != manifest["tokenizer_sha256"]:
        raise ValueError(
            f"{path} was encoded with tokenizer {manifest['tokenizer_sha256'][:12]}... "
            f"(vocab {manifest['vocab_size']}), not with the given tokenizer "
            f"{tokenizer.sha256[:12]}... (vocab {tokenizer.vocab_size}); use the tokenizer saved "
            "with the data or pack the tokens again"
        )
    return np.memmap(path, dtype=np.dtype(manifest["dtype"]), mode="r", shape=(manifest["tokens"],))
