"""Windows over the prediction log: durations, segments, and batches split by window.

Windows tumble: by time (``1h``: ``[k*size, (k+1)*size)`` in request time, UTC) or by
count (``10000 rows``: rows ``[k*size, (k+1)*size)`` in log order). Segments (listed and
opened by :func:`syllabus.deploy.predlog.open_segments`, in a folder or on S3) are read
one record batch of at most :data:`BATCH_ROWS` rows at a time (bounded memory whatever
the window size) and each batch is split by window with vectorized grouping.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from syllabus.errors import InvalidArgumentError

__all__ = [
    "BATCH_ROWS",
    "format_duration",
    "parse_duration",
    "parse_window",
    "service_folder",
    "split_by_window",
]

BATCH_ROWS: Final = 131_072
_UNITS: Final = {"ms": 1, "s": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000,
                 "d": 86_400_000, "w": 604_800_000}  # fmt: skip
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d|w)\s*$")
_ROWS = re.compile(r"^\s*(\d+)\s*rows?\s*$")


def parse_duration(text: str) -> int:
    """``30s``, ``15m``, ``1h``, ``7d``, ``2w`` -> milliseconds."""
    m = _DURATION.match(str(text))
    if m is None:
        raise InvalidArgumentError(
            f"invalid duration {text!r}; write a number and a unit: 30s, 15m, 1h, 7d"
        )
    ms = int(float(m[1]) * _UNITS[m[2]])
    if ms <= 0:
        raise InvalidArgumentError(f"duration {text!r} must be positive")
    return ms


def format_duration(ms: int) -> str:
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS[unit]
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def parse_window(text: str | int) -> tuple[str, int]:
    """``1h`` -> (``time``, 3600000); ``10000 rows`` (or an integer) -> (``rows``, 10000)."""
    if isinstance(text, int):
        kind, size = "rows", text
    else:
        m = _ROWS.match(text)
        kind, size = ("rows", int(m[1])) if m else ("time", parse_duration(text))
    if size <= 0:
        raise InvalidArgumentError(f"window {text!r} must be positive")
    return kind, size


def service_folder(root: Path, service: str) -> Path:
    """``<root>/<service>``: one service's log (the name is a plain folder name)."""
    if (
        not service
        or service in (".", "..")
        or any(c in service for c in "/\\\x00")
        or service.startswith(".")
        or len(service) > 128
    ):
        raise InvalidArgumentError(f"invalid service name {service!r} (a plain folder name)")
    return Path(root) / service


def split_by_window(
    batch: pa.RecordBatch, keys: np.ndarray[Any, Any], size: int
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(window start, the batch's rows in that window) for each window the keys touch;
    ``keys`` are request times in ms or row numbers."""
    starts = (keys // size) * size
    unique, inverse = np.unique(starts, return_inverse=True)
    if unique.size == 1:
        yield int(unique[0]), batch
        return
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(unique.size + 1))
    for i, start in enumerate(unique.tolist()):
        idx = pa.array(order[bounds[i] : bounds[i + 1]])
        yield int(start), batch.take(idx)


def time_keys(batch: pa.RecordBatch) -> np.ndarray[Any, Any]:
    """Request times of a prediction batch in Unix milliseconds."""
    ts = batch.column("ts")
    if pa.types.is_timestamp(ts.type):
        ts = pc.cast(ts.cast(pa.timestamp("ms", tz="UTC")), pa.int64())
    return np.asarray(ts.to_numpy(zero_copy_only=False), dtype=np.int64)
