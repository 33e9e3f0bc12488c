"""Runs side by side: the params that differ and every metric's latest value.

Pure logic over :class:`~syllabus.tracking.models.Run` objects, shared by
``syllabus runs compare``, the demo and (later) the web UI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from syllabus.tracking.models import Run

__all__ = ["RunComparison", "compare_runs"]


@dataclass(frozen=True, slots=True)
class RunComparison:
    """``params`` and ``metrics`` are ``(key, one value per run)`` rows, sorted by key; a
    run without the key has None there."""

    runs: tuple[Run, ...]
    params: tuple[tuple[str, tuple[str | None, ...]], ...]
    metrics: tuple[tuple[str, tuple[float | None, ...]], ...]


def compare_runs(runs: Sequence[Run], *, all_params: bool = False) -> RunComparison:
    """Compare ``runs``: params whose values differ (every param with ``all_params``) and
    the latest value of every metric any of them logged."""
    params = []
    for key in sorted({k for r in runs for k in r.params}):
        values = tuple(r.params.get(key) for r in runs)
        if all_params or len(set(values)) > 1:
            params.append((key, values))
    metrics = [
        (key, tuple(r.metrics[key].value if key in r.metrics else None for r in runs))
        for key in sorted({k for r in runs for k in r.metrics})
    ]
    return RunComparison(tuple(runs), tuple(params), tuple(metrics))
