"""Packed token files: a split encoded once into a flat memmap that a trainer samples windows from
(``workbench.training.language_model.TokenSampler``), reading only the windows it draws.

``NAME.bin`` holds every document's token ids back to back, each followed by ``<|endoftext|>``,
as ``uint16`` (``uint32`` when the vocabulary has more than 65,536 ids); ``NAME.json`` beside it is
the manifest: dtype, counts, the source archives' pinned hashes, the tokenizer's hash and the
SHA-256 of the ``.bin`` itself. The manifest is written last and removed first, so a ``.bin``
without one is never trusted; a ``.bin`` whose content is not the one its manifest records (or that
holds an id beyond the vocabulary) is refused, and so is opening it with a tokenizer other than the
one that encoded it. The content is hashed again only when the file's size or mtime changed since
the hash was recorded, at most once per process.

Documents are encoded as ordinary text: a document that spells ``<|endoftext|>`` does not get the
separator's id (the tokenizer reads special-token strings as text, and packing refuses any control
id inside a document); the separator is inserted by id only.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..core.io import atomic_path, is_disk_full, write_text_atomic
from ..core.progress import tqdm
from .corpus import CORPUS_SOURCES, Document, archive_of
from .sources import disk_full_error, stamp_file
from .tokenizer import SPECIAL_TOKENS, Tokenizer

FORMAT_VERSION = 1  # new fields (sha256, stat) are optional, so manifests of older versions still read
BATCH_DOCUMENTS = 64
SCAN_BYTES = 1 << 22  # a multiple of every dtype's size


def dtype_for(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size <= 2**16 else np.uint32)


def manifest_path(path: str | os.PathLike[str]) -> Path:
    return Path(path).with_suffix(".json")


def _control_ids(tokenizer: Tokenizer) -> np.ndarray:
    """Ids of the special tokens, which no document's own tokens may contain."""
    ids = {tokenizer.eos_id}
    for token in getattr(tokenizer, "special_tokens", SPECIAL_TOKENS):
        try:
            ids.add(tokenizer.token_to_id(token))
        except (KeyError, AttributeError):
            pass
    return np.array(sorted(ids))


def pack_tokens(
    documents: Sequence[Document], tokenizer: Tokenizer, path: str | os.PathLike[str], progress: bool = True, **metadata
) -> dict:
    """Encode ``documents`` in batches (parallel, in Rust) and write ``path`` + its manifest.

    Each document is encoded as ordinary text and followed by ``<|endoftext|>``'s id. ``metadata``
    (e.g. split, seed) is recorded in the manifest. Returns the manifest. On a full disk it raises
    :class:`~workbench.core.io.DiskFullError` and leaves neither file.
    """

    path = Path(path)
    dtype = dtype_for(tokenizer.vocab_size)
    eos = np.array([tokenizer.eos_id], dtype=dtype).tobytes()
    control = _control_ids(tokenizer)
    manifest_path(path).unlink(missing_ok=True)
    per_source: dict[str, dict] = {}
    n_tokens = 0
    total_chars = sum(len(d.text) for d in documents)
    done_chars = 0
    digest = hashlib.sha256()
    try:
        with atomic_path(path) as tmp:
            with (
                open(tmp, "wb") as out,
                tqdm(
                    total=total_chars, unit="char", unit_scale=True, desc=f"encode {path.name}", disable=not progress
                ) as bar,
            ):
                for start in range(0, len(documents), BATCH_DOCUMENTS):
                    batch = documents[start : start + BATCH_DOCUMENTS]
                    for document, ids in zip(batch, tokenizer.encode_batch([d.text for d in batch])):
                        array = np.asarray(ids, dtype=dtype)
                        if np.isin(array, control).any():
                            found = sorted(set(array[np.isin(array, control)].tolist()))
                            raise ValueError(
                                f"document {document.title!r} ({document.source}) was encoded with the control "
                                f"token ids {found}: the tokenizer read a special-token string in the text as the "
                                "special token; documents must be encoded as ordinary text (the separator is "
                                "inserted by id)"
                            )
                        chunk = array.tobytes() + eos
                        out.write(chunk)
                        digest.update(chunk)
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
                    done = sum(len(d.text) for d in batch)
                    done_chars += done
                    bar.update(done)
            stat = stamp_file(tmp)
    except OSError as error:
        if is_disk_full(error):
            per_char = n_tokens / done_chars if done_chars else 0.5  # byte-level BPE: a few characters a token
            raise disk_full_error(path, int(per_char * total_chars * dtype.itemsize)) from error
        raise
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
    manifest.update(sha256=digest.hexdigest(), stat=stat)
    _write_manifest(path, manifest, drop_on_failure=True)
    return manifest


def _write_manifest(path: Path, manifest: dict, drop_on_failure: bool = False) -> None:
    text = json.dumps(manifest, indent=1)
    try:
        write_text_atomic(manifest_path(path), text)
    except OSError as error:
        if drop_on_failure:
            path.unlink(missing_ok=True)  # a .bin without its manifest is never used: free its space
        if is_disk_full(error):
            raise disk_full_error(manifest_path(path), len(text.encode())) from error
        raise


_scans: dict[tuple, tuple[str, int]] = {}


def _scan(path: Path, dtype: np.dtype) -> tuple[str, int]:
    """(SHA-256, largest id) of a packed file; once per process while its size and mtime stay the same."""
    st = path.stat()
    key = (os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, dtype.name)
    if key not in _scans:
        digest, top = hashlib.sha256(), -1
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(SCAN_BYTES), b""):
                digest.update(block)
                top = max(top, int(np.frombuffer(block, dtype=dtype).max()))
        _scans[key] = (digest.hexdigest(), top)
    return _scans[key]


def read_manifest(path: str | os.PathLike[str]) -> dict:
    """The manifest of a packed file, after checking that the file is whole and unchanged."""
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
    _check_content(path, manifest)
    return manifest


def _check_content(path: Path, manifest: dict) -> None:
    """Refuse a file whose bytes are not those its manifest records, or that holds ids beyond the
    vocabulary. A manifest of an older version records no hash: then only the ids are checked."""
    recorded = manifest.get("sha256")
    st = path.stat()
    if recorded and manifest.get("stat") == {"size": st.st_size, "mtime_ns": st.st_mtime_ns}:
        return  # untouched since its hash was recorded
    digest, top = _scan(path, np.dtype(manifest["dtype"]))
    if top >= manifest["vocab_size"]:
        raise ValueError(
            f"{path} holds token id {top}, beyond the vocabulary of {manifest['vocab_size']} ids that its manifest "
            f"{manifest_path(path).name} names: the file was overwritten after packing; pack it again"
        )
    if recorded and digest != recorded:
        raise ValueError(
            f"{path} has SHA-256 {digest}, but its manifest {manifest_path(path).name} records {recorded}: "
            "the file was changed after packing; pack it again"
        )


def upgrade_manifest(path: str | os.PathLike[str]) -> dict:
    """Record the content hash in the manifest of a file packed by an older version (which has none),
    in place, after checking the file (size, ids within the vocabulary); the ``.bin`` is not touched
    beyond its mtime. Returns the manifest. Write it holding the data cache's lock."""
    path = Path(path)
    manifest = read_manifest(path)
    if manifest.get("sha256"):
        return manifest
    stat = stamp_file(path)
    digest, _ = _scan(path, np.dtype(manifest["dtype"]))
    if stamp_file(path) != stat:
        raise ValueError(f"{path} changed while its hash was recorded; pack it again")
    manifest.update(sha256=digest, stat=stat)
    _write_manifest(path, manifest)
    return manifest


def open_tokens(path: str | os.PathLike[str], tokenizer: Tokenizer | None = None) -> np.memmap:
    """The packed token ids as a read-only 1-D memmap (nothing is loaded until indexed).

    The file is checked against its manifest first (size, content hash, ids within the vocabulary).
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


def token_counts(tokens: np.ndarray, vocab_size: int) -> np.ndarray:
    """How often each token id occurs in ``tokens`` (float64, one entry per id of the vocabulary)."""
    return np.bincount(np.asarray(tokens, dtype=np.int64), minlength=vocab_size).astype(np.float64)


def unigram_entropy(tokens: np.ndarray, vocab_size: int) -> float:
    """Entropy in nats of the token frequencies of ``tokens``: the loss of a model that knows only them
    (the plateau a language model must leave to have learned anything about context)."""
    counts = token_counts(tokens, vocab_size)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def unigram_log_probs(tokens: np.ndarray, vocab_size: int) -> np.ndarray:
    """Log-probability of each token id under the token frequencies of ``tokens``, add-one smoothed
    (so that a token never seen has a finite one): the unigram model SLOR subtracts."""
    counts = token_counts(tokens, vocab_size) + 1
    return np.log(counts / counts.sum())
