"""Prepared data, built on demand and cached: the corpus BPE tokenizer and the packed splits.

Also ``python -m workbench data prepare``, which builds everything once with progress bars and
prints the sizes of sources and tasks. Prepared files live under
``$WORKBENCH_DATA_DIR/prepared/corpus-<fingerprint>/``; the fingerprint hashes the pinned archives,
the text-processing version and the seed, so a change to any of them prepares afresh. They are
written holding the data cache's lock (:func:`~workbench.data.sources.cache_lock`): of two processes
that need the same file, one builds it while the other waits and then reuses it. The tokenizer and
the folder (``corpus_tokenizer``, ``prepared_dir``) are defined in ``vocabulary``, which tasks use too.
"""

from __future__ import annotations

import re
import time
import warnings
from pathlib import Path

from ..core.io import DiskFullError
from ..core.progress import tqdm
from .corpus import DEFAULT_SOURCES, corpus_split, load_documents, source_sizes
from .sources import cache_lock, fetch_all
from .tasks import task_sizes
from .tokenizer import Tokenizer, check_vocab_size
from .tokens import manifest_path, open_tokens, pack_tokens, read_manifest, upgrade_manifest
from .vocabulary import DEFAULT_VOCAB_SIZE, corpus_tokenizer, prepared_dir

PACKED_SPLITS = ("train", "val")

_LEGACY = "its manifest records no content hash"


def _packed_problem(path: Path, tokenizer: Tokenizer) -> str | None:
    """None when ``path`` holds whole, unchanged tokens of ``tokenizer`` whose hash is recorded."""
    try:
        open_tokens(path, tokenizer)
        return None if read_manifest(path).get("sha256") else _LEGACY
    except (OSError, ValueError) as error:
        return str(error)


def packed_split(split: str, vocab_size: int = DEFAULT_VOCAB_SIZE, seed: int = 0, progress: bool = False) -> Path:
    """Path of the packed tokens of a corpus split, encoded with ``corpus_tokenizer`` (cached).

    A file packed by an older version gets its content hash recorded in its manifest (after a
    check), not packed again; a missing, half-written or changed file, or one encoded by another
    tokenizer, is packed again.
    """
    tokenizer = corpus_tokenizer(vocab_size, seed)
    path = prepared_dir(seed) / f"bpe{vocab_size}" / f"{split}.bin"
    if _packed_problem(path, tokenizer) is None:
        return path
    with cache_lock():
        problem = _packed_problem(path, tokenizer)  # another process may have packed it meanwhile
        if problem is None:
            return path
        if problem == _LEGACY:
            try:
                upgrade_manifest(path)
                return path
            except DiskFullError:
                raise
            except (OSError, ValueError) as error:
                problem = str(error)
        if path.exists() or manifest_path(path).exists():
            reason = re.sub(r"[;,] (pack (it|\S+|the tokens) again|use the tokenizer .*)$", "", problem)
            warnings.warn(f"{reason}: packing {path.name} again", stacklevel=2)
        pack_tokens(corpus_split(split, seed), tokenizer, path, progress=progress, split=split, seed=seed)
    return path


def prepare(vocab_size: int = DEFAULT_VOCAB_SIZE, seed: int = 0, progress: bool = True) -> dict:
    """Fetch every source, build the tokenizer, the packed train/val splits and the tasks.

    The cache is written holding its lock: a second ``prepare`` at the same time waits for this one,
    then finds everything built. Returns the tables of sizes and the timings (seconds per step).
    """

    check_vocab_size(vocab_size)  # before minutes of fetching
    timings = {}
    with cache_lock():
        start = time.perf_counter()
        fetch_all(progress=progress)
        timings["fetch + extract"] = time.perf_counter() - start

        start = time.perf_counter()
        for source in tqdm(DEFAULT_SOURCES, desc="documents", disable=not progress):
            load_documents(source)
        timings["read documents"] = time.perf_counter() - start

        start = time.perf_counter()
        tokenizer = corpus_tokenizer(vocab_size, seed)
        timings["train tokenizer"] = time.perf_counter() - start

        start = time.perf_counter()
        packed = {split: packed_split(split, vocab_size, seed, progress) for split in PACKED_SPLITS}
        timings["pack tokens"] = time.perf_counter() - start

    start = time.perf_counter()
    sources = source_sizes(seed, tokenizer)
    timings["source sizes"] = time.perf_counter() - start

    start = time.perf_counter()
    tasks = task_sizes(seed)
    timings["tasks"] = time.perf_counter() - start
    return dict(
        sources=sources,
        tasks=tasks,
        packed=packed,
        tokenizer=tokenizer,
        timings=timings,
        manifests={split: read_manifest(path) for split, path in packed.items()},
    )
