"""Jinja2 filters of the web UI: times, durations, numbers and sizes read the same on every
page (UTC times, four significant digits, binary sizes)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

__all__ = ["FILTERS", "duration", "number", "short_id", "size", "timestamp"]


def timestamp(ms: int | float | None) -> str:
    """Unix milliseconds as ``2026-01-31 12:00:05`` (UTC); empty for None."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(ms: int | float | None) -> str:
    """``850 ms``, ``12.4 s``, ``3m 05s``, ``2h 03m``; empty for None."""
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def number(value: Any) -> str:
    """Numbers to four significant digits (integers in full); anything else as text."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.4g}"
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.1f}"


def size(n: int | float | None) -> str:
    """Bytes in binary units: ``512 B``, ``1.5 KiB``, ``2.0 GiB``."""
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - the loop returns


def short_id(value: str | None, n: int = 8) -> str:
    return "" if value is None else value[:n]


FILTERS: dict[str, Callable[..., str]] = {
    "ts": timestamp,
    "duration": duration,
    "num": number,
    "size": size,
    "short": short_id,
}
