"""Monitoring entities: frozen values returned by the store, the service and the client.

Times are Unix milliseconds; ids are 32-hex time-ordered ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from syllabus.monitoring.stats import Thresholds

__all__ = [
    "Alert",
    "AlertEvent",
    "AlertRule",
    "Monitor",
    "ProfileRecord",
    "RunResult",
    "Window",
    "WindowUpdate",
]


@dataclass(frozen=True, slots=True)
class ProfileRecord:
    """A stored reference profile: what was profiled (``source``) and its JSON blob."""

    id: str
    key: str
    source: str
    rows: int
    columns: int
    digest: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Monitor:
    """A monitor of one service's prediction log against a reference profile.

    ``window_kind`` is ``time`` (``window_size`` in milliseconds) or ``rows``.
    ``config`` holds ``features`` (model input columns watched), ``target`` (the
    reference column the predictions are compared with, if any), ``thresholds``,
    ``task`` and ``webhooks`` (URLs and secrets; secrets are never shown).
    """

    id: str
    name: str
    service: str
    window_kind: str
    window_size: int
    config: Mapping[str, Any]
    rows_seen: int
    created_at: int
    created_by: str
    updated_at: int
    log_path: str | None = None
    deployment: str | None = None
    env: str | None = None
    model_ref: str | None = None
    reference: str | None = None
    profile_id: str | None = None

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self.config.get("features", ()))

    @property
    def target(self) -> str | None:
        value = self.config.get("target")
        return None if value is None else str(value)

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds.from_dict(self.config.get("thresholds"))

    @property
    def window(self) -> str:
        """The window as written: ``1h``, ``10000 rows``."""
        if self.window_kind == "rows":
            return f"{self.window_size} rows"
        from syllabus.monitoring.windows import format_duration

        return format_duration(self.window_size)

    def to_dict(self) -> dict[str, Any]:
        config = dict(self.config)
        if "webhooks" in config:
            config["webhooks"] = [{"url": h["url"]} for h in config["webhooks"]]
        return {
            "id": self.id,
            "name": self.name,
            "service": self.service,
            "log_path": self.log_path,
            "deployment": self.deployment,
            "env": self.env,
            "model": self.model_ref,
            "reference": self.reference,
            "profile_id": self.profile_id,
            "window": self.window,
            "config": config,
            "rows_seen": self.rows_seen,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True)
class Window:
    """One window of a monitor's time series (``start``/``end``: ms, or row numbers)."""

    id: str
    monitor_id: str
    start: int
    end: int
    rows: int
    closed: bool
    state: str
    summary: Mapping[str, Any]
    labelled: int
    updated_at: int
    labels: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "rows": self.rows,
            "closed": self.closed,
            "labelled": self.labelled,
            "updated_at": self.updated_at,
            "summary": dict(self.summary),
        }


@dataclass(frozen=True, slots=True)
class WindowUpdate:
    """A window to write: its new state blob, summary and labels."""

    start: int
    end: int
    rows: int
    closed: bool
    state: str
    summary: Mapping[str, Any]
    labelled: int = 0
    labels: str | None = None


@dataclass(frozen=True, slots=True)
class AlertRule:
    """An alert rule of a monitor (``origin`` ``spec`` or ``user``)."""

    id: str
    monitor_id: str
    expr: str
    origin: str
    created_at: int
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "expr": self.expr, "origin": self.origin,
                "created_at": self.created_at, "created_by": self.created_by}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert: ``firing`` while its rule holds (one per monitor and rule), then
    ``resolved``."""

    id: str
    monitor_id: str
    monitor: str
    rule_id: str
    rule: str
    state: str
    value: float | None
    window_start: int
    started_at: int
    updated_at: int
    resolved_at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "monitor": self.monitor,
            "rule": self.rule,
            "state": self.state,
            "value": self.value,
            "window_start": self.window_start,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "resolved_at": self.resolved_at,
        }


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """An alert fired or resolved; ``seq`` increases, so a trigger can ask for the events
    after the last one it saw."""

    seq: int
    alert_id: str
    monitor_id: str
    monitor: str
    event: str
    rule: str
    value: float | None
    window_start: int
    created_at: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "alert_id": self.alert_id,
            "monitor": self.monitor,
            "event": self.event,
            "rule": self.rule,
            "value": self.value,
            "window_start": self.window_start,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one ``monitor run`` did."""

    monitor: str
    segments: int
    feedback_segments: int
    rows: int
    labelled: int
    windows: tuple[int, ...]
    events: tuple[AlertEvent, ...] = ()
    pending_feedback: int = 0
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "monitor": self.monitor,
            "segments": self.segments,
            "feedback_segments": self.feedback_segments,
            "rows": self.rows,
            "labelled": self.labelled,
            "windows": list(self.windows),
            "events": [e.to_dict() for e in self.events],
            "pending_feedback": self.pending_feedback,
        }
