"""The lock between writers and a deleting gc on a local store (``<root>/gc.lock``).

Deduplication is a promise about the future: a writer that finds a record already stored
does not write it, and later commits a reference to it in the database. A gc that read the
references before that commit would see the record as unreferenced and delete it. So:

- every backend instance that has written or asked ``contains`` (the question dedup rests
  on) holds a *shared* ``flock`` on ``gc.lock`` until it is closed. It takes the lock before
  looking, so while a gc deletes, writers wait and then see what is left;
- a deleting gc takes the *exclusive* lock (converting its own instance's shared lock on the
  same file handle), waits a bounded time while writers are open, and otherwise gives up
  without deleting anything. Under the lock it reads the references again, so those
  committed by writers that closed before it are honoured.

``flock`` locks belong to an open file description, which a forked child shares with its
parent: the child closes its inherited copy right after ``fork`` (never unlocking it, which
would release the parent's lock) and takes a lock of its own when it writes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from syllabus.errors import StorageError

__all__ = ["LOCK_NAME", "WritersLock"]

log = logging.getLogger(__name__)

LOCK_NAME: Final = "gc.lock"
_BUSY: Final = frozenset({errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES})
_POLL_MAX: Final = 0.1

_live: weakref.WeakSet[WritersLock] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for lock in list(_live):
        lock._forget_inherited()


os.register_at_fork(after_in_child=_after_fork_in_child)


class WritersLock:
    """One instance's handle on ``gc.lock``: unlocked, shared (a writer) or exclusive (gc).

    Not thread-safe by itself: the owning backend calls it with its own lock held.
    """

    def __init__(self, root: Path) -> None:
        self._path = root / LOCK_NAME
        self._fd = -1
        self._mode = 0  # 0, fcntl.LOCK_SH or fcntl.LOCK_EX
        self._pid = os.getpid()
        _live.add(self)

    @property
    def mode(self) -> int:
        """``0``, ``fcntl.LOCK_SH`` or ``fcntl.LOCK_EX`` as held by this process."""
        self._check_fork()
        return self._mode

    def _forget_inherited(self) -> None:
        """In a forked child: drop the parent's handle without unlocking it."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd, self._mode, self._pid = -1, 0, os.getpid()

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            self._forget_inherited()

    def _open(self) -> int:
        if self._fd < 0:
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise StorageError(f"cannot open {self._path}: {exc}") from exc
        return self._fd

    def hold_shared(self) -> None:
        """Hold at least the shared lock (no-op if held); waits while a gc deletes."""
        self._check_fork()
        if self._mode:
            return
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in _BUSY:
                raise StorageError(f"cannot lock {self._path}: {exc}") from exc
            log.info("%s: waiting for a garbage collection to finish", self._path.parent)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
            except OSError as exc2:
                raise StorageError(f"cannot lock {self._path}: {exc2}") from exc2
        self._mode = fcntl.LOCK_SH

    @contextlib.contextmanager
    def exclusive(self, *, timeout: float) -> Iterator[None]:
        """Hold the exclusive lock for the block, waiting up to ``timeout`` seconds for
        other writers to close; StorageError if they do not. Leaves the lock released
        (a later write takes the shared lock again)."""
        self._check_fork()
        if self._mode == fcntl.LOCK_EX:
            yield  # nested: the outer block releases
            return
        fd = self._open()
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in _BUSY:
                    raise StorageError(f"cannot lock {self._path}: {exc}") from exc
            # A failed conversion may drop the shared lock this handle held (Linux does).
            self._mode = 0
            left = deadline - time.monotonic()
            if left <= 0:
                raise StorageError(
                    f"blob store {self._path.parent} is in use by other writers (still open "
                    f"after {timeout:g}s); nothing was deleted: close them and run gc again"
                )
            time.sleep(min(delay, left))
            delay = min(2 * delay, _POLL_MAX)
        self._mode = fcntl.LOCK_EX
        try:
            yield
        finally:
            self._check_fork()
            if self._fd >= 0 and self._mode == fcntl.LOCK_EX:
                with contextlib.suppress(OSError):
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._mode = 0

    def release(self) -> None:
        """Release the lock and close the handle (on close of the owning backend)."""
        self._check_fork()
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing the last handle releases the flock
        self._fd, self._mode = -1, 0
