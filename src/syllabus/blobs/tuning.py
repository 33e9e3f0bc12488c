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
from typing import Final, ParamSpec, TypeVar

__all__ = ["SWITCH_INTERVAL", "bulk", "gc_paused", "short_switch_interval"]

P = ParamSpec("P")
R = TypeVar("R")

SWITCH_INTERVAL: Final = 0.0002
"""Seconds; the GIL switch interval inside :func:`short_switch_interval`."""

_lock = threading.Lock()
_switch_users = 0
_switch_saved = 0.0
_gc_users = 0
_gc_was_enabled = False


@contextlib.contextmanager
def short_switch_interval() -> Iterator[None]:
    """Run the block with a GIL switch interval of at most :data:`SWITCH_INTERVAL`."""
    global _switch_users, _switch_saved  # noqa: PLW0603 - one process-wide setting
    with _lock:
        if _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch_saved, SWITCH_INTERVAL))
        _switch_users += 1
    try:
        yield
    finally:
        with _lock:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_saved)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Run the block with the cyclic garbage collector off (if it was on)."""
    global _gc_users, _gc_was_enabled  # noqa: PLW0603 - one process-wide setting
    with _lock:
        if _gc_users == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_users += 1
    try:
        yield
    finally:
        with _lock:
            _gc_users -= 1
            if _gc_users == 0 and _gc_was_enabled:
                gc.enable()


def bulk(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate a bulk operation (add, checkout, status, push, pull) to run in
    :func:`gc_paused`."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with gc_paused():
            return fn(*args, **kwargs)

    return wrapper
