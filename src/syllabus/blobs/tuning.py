"""Interpreter settings for bulk work, changed for the duration of a block and restored.

Both are process-wide, so nested and concurrent users (threads) share one saved value,
restored when the last one leaves.

* :func:`short_switch_interval`: the compiled chunker holds the GIL while it scans, and the
  workers that hash and write chunks release it around every call; with the default 5 ms
  switch interval each of them waits up to 5 ms for the GIL after every hash or write (a
  convoy). With 0.2 ms they get it back at once.
* :func:`gc_paused`: storing or checking out 10,000 small files allocates hundreds of
  thousands of short-lived, acyclic objects (paths, stats, records, manifest entries); the
  cyclic garbage collector ran ~190 times during such an add and took 20-25% of it. Paused,
  nothing is lost: what is unreachable only through cycles is collected once it resumes.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Final, Generic, ParamSpec, TypeVar, cast

__all__ = ["SWITCH_INTERVAL", "bulk", "gc_paused", "short_switch_interval"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

SWITCH_INTERVAL: Final = 0.0002
"""Seconds; the GIL switch interval inside :func:`short_switch_interval`."""


class _Shared(Generic[T]):
    """A process-wide setting changed while at least one user is inside :meth:`held`: the
    first one in saves the old value (``change`` returns it), the last one out restores it."""

    _lock = threading.Lock()  # one for every setting: entering and leaving are rare

    def __init__(self, change: Callable[[], T], restore: Callable[[T], object]) -> None:
        self._change, self._restore = change, restore
        self._users = 0
        self._saved: T | None = None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._saved = self._change()
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    self._restore(cast(T, self._saved))


def _shorten_switch_interval() -> float:
    saved = sys.getswitchinterval()
    sys.setswitchinterval(min(saved, SWITCH_INTERVAL))
    return saved


def _pause_gc() -> bool:
    was_enabled = gc.isenabled()
    gc.disable()
    return was_enabled


def _resume_gc(was_enabled: bool) -> None:
    if was_enabled:
        gc.enable()


_SWITCH: Final = _Shared(_shorten_switch_interval, sys.setswitchinterval)
_GC: Final = _Shared(_pause_gc, _resume_gc)


def short_switch_interval() -> contextlib.AbstractContextManager[None]:
    """Run the block with a GIL switch interval of at most :data:`SWITCH_INTERVAL`."""
    return _SWITCH.held()


def gc_paused() -> contextlib.AbstractContextManager[None]:
    """Run the block with the cyclic garbage collector off (if it was on)."""
    return _GC.held()


def bulk(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate a bulk operation (add, checkout, status, push, pull) to run in
    :func:`gc_paused`."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with gc_paused():
            return fn(*args, **kwargs)

    return wrapper
