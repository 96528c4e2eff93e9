"""Atomic writes of a file or a whole directory: write next to the target, then rename, so nothing is left
half-written; and the one error for a write that finds the disk full."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once: setting it is process-wide


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it onto ``target`` on success.

    On an exception the temporary file is removed and ``target`` keeps its old content. The file gets
    the permissions a plain ``open(target, "w")`` would give it (``mkstemp`` alone makes it 0600).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty hidden directory next to ``target``; on success it replaces ``target``.

    Files written into it are fsynced before the rename, so a power cut cannot leave a renamed
    directory with empty files either. On an exception nothing at ``target`` changes. The directory
    gets the permissions a plain ``mkdir`` would give it (``mkdtemp`` alone makes it 0700).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)
        for path in tmp.iterdir():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        if target.exists():  # re-saving a step: swap, then drop the old copy
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
            os.replace(target, old / "old")
            try:
                os.replace(tmp, target)
            except BaseException:
                os.replace(old / "old", target)  # put the previous copy back
                shutil.rmtree(old, ignore_errors=True)
                raise
            shutil.rmtree(old, ignore_errors=True)  # a leftover is a stale temporary, removed later
        else:
            os.replace(tmp, target)
        _fsync_directory(target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_atomic(target: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``target`` atomically; a full disk is a :class:`DiskFullError` naming the file."""
    try:
        with atomic_path(target) as tmp:
            tmp.write_text(text)
    except OSError as error:
        if is_disk_full(error):
            raise disk_full_error(
                target, len(text.encode()), f"could not write {target}", "Free some space and run it again."
            ) from error
        raise


_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


class DiskFullError(OSError):
    """A write ran out of disk space (or quota); the message names the path, the space needed and free."""

    def __init__(self, message: str, *, path: str | os.PathLike[str], needed: int | None):
        super().__init__(errno.ENOSPC, message, str(path))
        self.path, self.needed = Path(path), needed

    def __str__(self) -> str:
        return self.strerror  # the message names the path already


def is_disk_full(error: BaseException) -> bool:
    """A full disk or quota not yet turned into a :class:`DiskFullError`: an ``OSError`` with ENOSPC or
    EDQUOT, or a library error that carries one in its message (safetensors: "... (os error 28)")."""
    if isinstance(error, DiskFullError):
        return False
    return getattr(error, "errno", None) in _FULL or any(f"(os error {code})" in str(error) for code in _FULL)


def format_size(n: int) -> str:
    """Bytes in the unit a reader compares with ``df -h``: KiB only below 100 KiB, then MiB, then GiB."""
    for unit, scale, above in (("GiB", 2**30, 2**30), ("MiB", 2**20, 100 * 2**10), ("KiB", 2**10, 2**10)):
        if n >= above:
            return f"{n / scale:,.1f} {unit}"
    return f"{n} bytes"


def disk_full_error(path: str | os.PathLike[str], needed: int | None, message: str, advice: str) -> DiskFullError:
    """The error for a write of ``path`` that ran out of space: ``message`` (what could not be written),
    the space the write needs (``needed`` bytes, if known) and the space free there, then ``advice``."""
    path = Path(path)
    free = None
    for folder in (path.parent, *path.parents):
        with contextlib.suppress(OSError):
            free = shutil.disk_usage(folder).free
            break
    needs = f"it needs about {format_size(needed)}" if needed else "it needs more space"
    frees = f", and {format_size(free)} are free" if free is not None else ""
    return DiskFullError(f"{message}: {needs}{frees}. {advice}", path=path, needed=needed)
