"""Experiment tracking: experiments, runs, params, step-wise metrics, tags, artifacts,
system metrics, and a search language compiled to SQL.

Layers: :mod:`~syllabus.tracking.models` (frozen entities), :mod:`~syllabus.tracking.store`
(the Protocol), :mod:`~syllabus.tracking.sql` (SQLite/PostgreSQL), :mod:`~syllabus.tracking.search`
(the filter language), :mod:`~syllabus.tracking.buffer` (background metric writer),
:mod:`~syllabus.tracking.service` (behaviour on top of any store).
"""

from __future__ import annotations

from syllabus.tracking.models import (
    Artifact,
    Experiment,
    Metric,
    Run,
    RunInput,
    RunPage,
    RunStatus,
)

__all__ = ["Artifact", "Experiment", "Metric", "Run", "RunInput", "RunPage", "RunStatus"]
