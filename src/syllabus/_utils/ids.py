"""Time-ordered identifiers (UUIDv7, RFC 9562) as 32 lowercase hex characters.

Sorting ids sorts by creation time (millisecond resolution, then a monotonic counter within
the same millisecond in this process), so ``ORDER BY id`` is creation order and ids can
serve as cursors. A unique prefix of at least :data:`MIN_PREFIX` characters is accepted
wherever an id is.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterable

__all__ = ["MIN_PREFIX", "abbreviate", "id_timestamp_ms", "is_id", "is_id_prefix", "new_id"]

MIN_PREFIX = 6
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEXPREFIX = re.compile(r"[0-9a-f]{6,32}")

_lock = threading.Lock()
_last_ms = 0
_seq = 0


def new_id() -> str:
    """A new UUIDv7 as 32 hex characters, strictly increasing within this process."""
    global _last_ms, _seq  # noqa: PLW0603 - process-wide monotonic clock state
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            # Same millisecond (or a clock step back): keep order with the 12-bit counter.
            _seq += 1
            if _seq > 0xFFF:
                _last_ms += 1
                _seq = 0
            ms = _last_ms
        else:
            _last_ms = ms
            _seq = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave room to count up
        seq = _seq
    rand = int.from_bytes(os.urandom(8), "big") & 0x3FFF_FFFF_FFFF_FFFF
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | rand
    return f"{value:032x}"


def is_id(text: str) -> bool:
    """True if ``text`` is a whole id (32 lowercase hex characters)."""
    return _HEX32.fullmatch(text) is not None


def is_id_prefix(text: str) -> bool:
    """True if ``text`` could be a unique-prefix abbreviation of an id."""
    return _HEXPREFIX.fullmatch(text) is not None


def id_timestamp_ms(id_: str) -> int:
    """The creation time (Unix milliseconds) encoded in an id."""
    return int(id_[:12], 16)


def abbreviate(ids: Iterable[str], *, min_length: int = 12) -> dict[str, str]:
    """The shortest prefix of each id, at least ``min_length`` long, that tells it apart
    from every other id given (like ``git log --abbrev``).

    Time-ordered ids made close together share their leading (timestamp) characters, so a
    fixed-length prefix can show two runs the same way; this never does.
    """
    unique = sorted(set(ids))
    out: dict[str, str] = {}
    for i, id_ in enumerate(unique):
        length = min_length
        for other in (unique[i - 1] if i else None, unique[i + 1] if i + 1 < len(unique) else None):
            if other is None:
                continue
            common = next(
                (n for n, (a, b) in enumerate(zip(id_, other, strict=False)) if a != b),
                min(len(id_), len(other)),
            )
            length = max(length, common + 1)
        out[id_] = id_[: min(length, len(id_))]
    return out
