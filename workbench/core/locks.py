"""One writer per directory: an OS file lock that dies with its process.

A run directory, a data cache entry or an experiment cache entry is written by one process at a time.
The lock is ``flock`` on ``DIR/.lock`` (``msvcrt.locking`` on Windows): the kernel releases it when the
process exits, however it exits, so a killed run never leaves a stale lock. The holder writes its
process id into the file, so a second process can say who holds it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from .io import disk_full_error, is_disk_full

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

LOCK_FILE = ".lock"


class DirectoryLocked(RuntimeError):
    """Another process holds the directory's lock."""


def _try_lock(fd: int) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def _holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        pid = ""
    return f"process {pid}" if pid else "another process"


@contextlib.contextmanager
def _disk_full_named(path: Path, what: str, directory: Path) -> Iterator[None]:
    """A full disk while the lock file is made or written, as an error naming it (not a bare Errno 28)."""
    try:
        yield
    except OSError as error:
        if is_disk_full(error):
            message = f"could not write the lock file {path} of {what} {directory}"
            raise disk_full_error(path, None, message, "Free some space and run it again.") from error
        raise


@contextlib.contextmanager
def directory_lock(
    directory: str | os.PathLike[str], *, wait: bool = False, what: str = "directory", poll_seconds: float = 0.2
) -> Iterator[Path]:
    """Hold ``directory``'s lock for the ``with`` block.

    ``wait=False`` fails at once with :class:`DirectoryLocked` naming the directory and the holder;
    ``wait=True`` waits for the holder to finish (for a cache entry that another process computes).
    Locks are per open file, so a process that already holds the lock must not take it again.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    with _disk_full_named(path, what, directory):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        while not _try_lock(fd):
            if not wait:
                raise DirectoryLocked(
                    f"{what} {directory} is in use by {_holder(path)}: one process at a time may write it "
                    "(wait for it to finish, or choose another directory)"
                )
            time.sleep(poll_seconds)
        with _disk_full_named(path, what, directory):
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, str(os.getpid()).encode())
        try:
            yield directory
        finally:
            os.ftruncate(fd, 0)
            _unlock(fd)
    finally:
        os.close(fd)
