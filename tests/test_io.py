"""Atomic writes: all or nothing, with the permissions of a plain write."""

import errno
import os
from pathlib import Path

import pytest

from workbench.core import locks
from workbench.core.io import DiskFullError, atomic_path, write_text_atomic
from workbench.core.locks import directory_lock
from workbench.experiments.cache import entry_dir


def test_a_failed_write_keeps_the_old_content_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "table.csv"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_a_written_file_has_the_permissions_of_a_plain_write(tmp_path):
    write_text_atomic(tmp_path / "atomic.txt", "x")
    (tmp_path / "plain.txt").write_text("x")
    modes = [os.stat(tmp_path / name).st_mode & 0o777 for name in ("atomic.txt", "plain.txt")]
    assert modes[0] == modes[1]


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_names_the_cache_entrys_config_and_the_lock_file(tmp_path, monkeypatch):
    """Issue 26: the experiment cache's config.json and a lock file failed with a bare [Errno 28]."""
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    with monkeypatch.context() as patch:
        patch.setattr(Path, "write_text", _no_space)
        with pytest.raises(
            DiskFullError, match=r"could not write .*config\.json: it needs about \d+ bytes, and .* free"
        ):
            entry_dir("finetune", {"task": "sentiment"})
    assert not list((tmp_path / "cache").rglob("config.json"))  # nothing half-written
    with monkeypatch.context() as patch:
        patch.setattr(locks.os, "open", _no_space)
        with pytest.raises(DiskFullError, match=r"could not write the lock file .*\.lock of data cache .*: it needs"):
            with directory_lock(tmp_path / "data", what="data cache"):
                pass
    with monkeypatch.context() as patch:
        patch.setattr(locks.os, "write", _no_space)
        with pytest.raises(DiskFullError, match=r"the lock file .* of directory"):
            with directory_lock(tmp_path / "other"):
                pass
    # other errors pass through unchanged
    with monkeypatch.context() as patch:
        patch.setattr(Path, "write_text", lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "denied")))
        with pytest.raises(PermissionError, match="denied"):
            write_text_atomic(tmp_path / "x.txt", "x")
