"""Evaluation entities: frozen values returned by the store, the service and the client.

Times are Unix milliseconds; ids are 32-hex time-ordered ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Comparison", "Evaluation", "EvaluationSpec", "MetricValue"]


@dataclass(frozen=True, slots=True)
class MetricValue:
    """A metric's value on the data and its bootstrap interval (None where undefined)."""

    name: str
    value: float | None
    low: float | None
    high: float | None
    higher_is_better: bool = True

    def describe(self) -> str:
        if self.value is None:
            return f"{self.name}: undefined"
        ci = "" if self.low is None or self.high is None else f" [{self.low:.4g}, {self.high:.4g}]"
        return f"{self.name}: {self.value:.4g}{ci}"


@dataclass(frozen=True, slots=True)
class Comparison:
    """The candidate against the champion on one metric, paired on the same rows.

    ``delta`` is candidate minus champion, with its paired-bootstrap interval; the test
    says whether it is real: ``verdict`` is ``better``, ``worse`` or ``no significant
    difference`` (from the candidate's side, two-sided, at the evaluation's confidence).
    ``se`` is the standard error of ``delta`` (DeLong's for ROC AUC, else the standard
    deviation of the paired-bootstrap deltas); promotion gates use it for one-sided
    bounds at their own confidence and margin.
    """

    metric: str
    candidate: float | None
    champion: float | None
    delta: float | None
    low: float | None
    high: float | None
    test: str
    statistic: float | None
    p_value: float | None
    verdict: str
    higher_is_better: bool = True
    se: float | None = None

    def describe(self) -> str:
        if self.delta is None:
            return f"{self.metric}: undefined"
        ci = (
            "" if self.low is None or self.high is None else f" [{self.low:+.4g}, {self.high:+.4g}]"
        )
        p = "" if self.p_value is None else f", {self.test} p={self.p_value:.3g}"
        return f"{self.metric}: {self.delta:+.4g}{ci} {self.verdict}{p}"


@dataclass(frozen=True, slots=True)
class EvaluationSpec:
    """What a new evaluation record holds (the service fills it in)."""

    model_version_id: str
    model_ref: str
    dataset_version_id: str
    dataset_ref: str
    target: str
    task: str
    rows: int
    confidence: float
    resamples: int
    results: str  # content id of the full results JSON in the blob store
    metrics: tuple[MetricValue, ...]
    comparisons: tuple[Comparison, ...] = ()
    champion_version_id: str | None = None
    champion_ref: str | None = None
    slice_column: str | None = None
    latency_ms_per_row: float | None = None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A stored evaluation: a model version (and a champion) on a dataset version."""

    id: str
    model_version_id: str
    model_ref: str
    dataset_version_id: str
    dataset_ref: str
    target: str
    task: str
    rows: int
    confidence: float
    resamples: int
    results: str
    created_at: int
    created_by: str
    metrics: tuple[MetricValue, ...] = ()
    comparisons: tuple[Comparison, ...] = ()
    champion_version_id: str | None = None
    champion_ref: str | None = None
    slice_column: str | None = None
    latency_ms_per_row: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def metric(self, name: str) -> MetricValue | None:
        return next((m for m in self.metrics if m.name == name), None)

    def comparison(self, name: str) -> Comparison | None:
        return next((c for c in self.comparisons if c.metric == name), None)
