"""The background metric writer: ``add`` never waits on the database.

Points are grouped in memory by ``(run id, key)`` and written in bulk by a daemon thread
every ``interval`` seconds, or sooner once ``batch_points`` are waiting. :meth:`flush`
writes whatever is pending in the caller's thread and returns once everything added before
the call is durable (it raises the writer's error if the database refuses). Every live
buffer is flushed at interpreter exit.

Writes are serialised by one lock that is held from taking the pending points to their
commit, so a flush that returns has also waited for any write already in flight. A failed
background write puts its points back and is retried; the error is logged, and the next
:meth:`flush` raises it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Final

from syllabus.errors import InvalidArgumentError, NotFoundError
from syllabus.tracking.store import PointBatch

__all__ = ["MetricBuffer"]

log = logging.getLogger(__name__)

_Series = list[tuple[int, int, float]]
_MAX_WAITING: Final = 2_000_000  # points held before add() waits for the writer


class MetricBuffer:
    """Buffers metric points and writes them with ``write`` on a background thread.

    ``tick`` (optional) is called from the writer thread about every ``tick_interval``
    seconds (the service sends run heartbeats through it).
    """

    def __init__(
        self,
        write: Callable[[PointBatch], None],
        *,
        interval: float = 0.5,
        batch_points: int = 50_000,
        tick: Callable[[], None] | None = None,
        tick_interval: float = 30.0,
    ) -> None:
        self._write = write
        self._interval = interval
        self._batch_points = batch_points
        self._tick = tick
        self._tick_interval = tick_interval
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._drained = threading.Condition(self._lock)
        self._write_lock = threading.Lock()
        self._pending: dict[tuple[str, str], _Series] = {}
        self._waiting = 0
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._closed = False
        self._failures = 0
        _live.add(self)

    # -- adding ----------------------------------------------------------------------------

    def add(self, run_id: str, key: str, value: float, step: int, timestamp: int) -> None:
        """Queue one point (thread-safe, returns at once)."""
        with self._lock:
            series = self._pending.get((run_id, key))
            if series is None:
                series = self._pending[(run_id, key)] = []
            series.append((step, timestamp, value))
            self._waiting += 1
            if self._thread is None or self._waiting >= self._batch_points:
                self._after_add()

    def add_many(self, run_id: str, points: Iterable[tuple[str, float, int, int]]) -> None:
        """Queue ``(key, value, step, timestamp)`` points of one run."""
        with self._lock:
            n = 0
            pending = self._pending
            for key, value, step, timestamp in points:
                series = pending.get((run_id, key))
                if series is None:
                    series = pending[(run_id, key)] = []
                series.append((step, timestamp, value))
                n += 1
            self._waiting += n
            self._after_add()

    def add_series(
        self, run_id: str, series: dict[str, list[tuple[int, int, float]]], count: int
    ) -> None:
        """Queue ``{key: [(step, timestamp, value), ...]}`` of one run (``count`` points);
        the lists are taken over, not copied."""
        with self._lock:
            pending = self._pending
            for key, points in series.items():
                held = pending.get((run_id, key))
                if held is None:
                    pending[(run_id, key)] = points
                else:
                    held.extend(points)
            self._waiting += count
            self._after_add()

    def _after_add(self) -> None:
        """With the lock held: start the writer if needed, wake it, or wait when far behind."""
        if self._thread is None or self._pid != os.getpid():
            self._start()
        if self._waiting >= self._batch_points:
            self._wake.notify()
        while self._waiting >= _MAX_WAITING and self._thread is not None:
            self._drained.wait(timeout=1.0)

    def _start(self) -> None:
        if self._pid != os.getpid():  # threads and locks do not survive fork
            self._pid = os.getpid()
            self._write_lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="syllabus-metrics", daemon=True)
        self._thread.start()

    def ensure_started(self) -> None:
        """Start the writer thread now (it also sends ticks while no point is logged)."""
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                self._start()

    @property
    def pending(self) -> int:
        """Points not yet handed to the database."""
        return self._waiting

    # -- writing ---------------------------------------------------------------------------

    def _take(self) -> tuple[dict[tuple[str, str], _Series], int]:
        with self._lock:
            batch, n = self._pending, self._waiting
            self._pending, self._waiting = {}, 0
            self._drained.notify_all()
            return batch, n

    def _put_back(self, batch: dict[tuple[str, str], _Series], n: int) -> None:
        with self._lock:
            for pair, series in self._pending.items():
                batch.setdefault(pair, []).extend(series)
            self._pending = batch
            self._waiting += n

    def _write_pending(self, write: Callable[[PointBatch], None] | None = None) -> None:
        """Write everything pending (the caller holds no lock)."""
        with self._write_lock:
            batch, n = self._take()
            if not n and write is None:
                return
            try:
                (write or self._write)(batch)
            except (NotFoundError, InvalidArgumentError):
                raise  # points the database will never take (a purged run): dropped
            except BaseException:
                if n:
                    self._put_back(batch, n)
                raise

    def flush(self, write: Callable[[PointBatch], None] | None = None) -> None:
        """Make every point added so far durable; raises if the database refuses them.

        ``write`` (called even when nothing is pending) replaces the buffer's writer for
        this flush, e.g. to end a run in the transaction that writes its last points."""
        self._write_pending(write)

    def _run(self) -> None:
        next_tick = time.monotonic() + self._tick_interval
        while True:
            with self._lock:
                if self._waiting < self._batch_points and not self._closed:
                    delay = self._interval * min(2**self._failures, 60)
                    if self._tick is not None:
                        delay = min(delay, max(0.0, next_tick - time.monotonic()))
                    self._wake.wait(timeout=delay)
                closed = self._closed
            try:
                self._write_pending()
                self._failures = 0
            except Exception:
                self._failures += 1
                log.warning("syllabus: writing metrics failed; will retry", exc_info=True)
            if self._tick is not None and time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self._tick_interval
                try:
                    self._tick()
                except Exception:
                    log.warning("syllabus: heartbeat failed", exc_info=True)
            if closed:
                return

    def close(self) -> None:
        """Flush and stop the writer thread."""
        with self._lock:
            self._closed = True
            self._wake.notify()
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=60)
        self.flush()


_live: weakref.WeakSet[MetricBuffer] = weakref.WeakSet()


def _flush_all_at_exit() -> None:
    for buffer in list(_live):
        with contextlib.suppress(Exception):
            buffer.flush()


atexit.register(_flush_all_at_exit)
