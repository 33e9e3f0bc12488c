"""The monitoring store Protocol: what the service needs from metadata storage."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from syllabus.monitoring.models import (
    Alert,
    AlertEvent,
    AlertRule,
    Monitor,
    ProfileRecord,
    Window,
    WindowUpdate,
)

__all__ = ["MonitoringStore"]


class MonitoringStore(Protocol):
    """Profiles, monitors, processed segments, windows, rules, alerts and their events."""

    def find_profile(self, key: str) -> ProfileRecord | None: ...

    def get_profile(self, profile_id: str) -> ProfileRecord: ...

    def add_profile(
        self, key: str, source: str, rows: int, columns: int, digest: str
    ) -> ProfileRecord: ...

    def create_monitor(self, values: Mapping[str, Any], actor: str) -> Monitor: ...

    def update_monitor(self, monitor_id: str, values: Mapping[str, Any]) -> Monitor: ...

    def get_monitor(self, name: str) -> Monitor: ...

    def list_monitors(self) -> list[Monitor]: ...

    def delete_monitor(self, monitor_id: str) -> None: ...

    def acquire(self, monitor_id: str, owner: str, ttl_ms: int) -> bool: ...

    def release(self, monitor_id: str, owner: str) -> None: ...

    def processed(self, monitor_id: str, kind: str) -> dict[str, int]: ...

    def windows(
        self,
        monitor_id: str,
        *,
        starts: Sequence[int] | None = None,
        since: int | None = None,
        closed: bool | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[Window]: ...

    def commit_run(
        self,
        monitor_id: str,
        segments: Iterable[tuple[str, str, int]],
        windows: Sequence[WindowUpdate],
        rows_seen: int | None,
    ) -> list[Window]: ...

    def add_rule(self, monitor_id: str, expr: str, origin: str, actor: str) -> AlertRule: ...

    def list_rules(self, monitor_id: str) -> list[AlertRule]: ...

    def remove_rule(self, rule_id: str) -> None: ...

    def list_alerts(
        self,
        *,
        monitor_id: str | None = None,
        state: str | None = None,
        limit: int = 1000,
        after: str | None = None,
    ) -> list[Alert]: ...

    def apply_alerts(
        self,
        monitor_id: str,
        fire: Sequence[tuple[AlertRule, float | None, int]],
        keep: Sequence[tuple[str, float | None, int]],
        resolve: Sequence[tuple[str, float | None, int]],
    ) -> list[AlertEvent]: ...

    def events(
        self, *, after: int = 0, monitor_id: str | None = None, limit: int = 1000
    ) -> list[AlertEvent]: ...
