"""Triggers: what starts a pipeline by itself, and the cron expressions of schedules.

Declared with the pipeline (``@pipeline(triggers=[...])`` or ``triggers:`` in YAML)::

    cron("0 3 * * *")              # every day at 03:00 UTC
    on_dataset("churn")            # each new version of dataset churn
    on_alert("churn-local")        # each new alert of monitor churn-local ("*": any)

Each is a dict (``{"cron": "0 3 * * *"}``, ``{"dataset": "churn"}``, ``{"alert": "..."}``)
with an optional ``name`` and ``params`` (pipeline params the firing sets). A trigger keeps
a cursor: the last occurrence it fired for (the scheduled minute, the dataset version, the
alert id). It fires for the newest occurrence past its cursor, once: schedules missed
while no agent ran fire once on the next check, not once per missed minute.

Cron expressions have five fields (minute hour day-of-month month day-of-week, in UTC)
with ``*``, lists ``1,15``, ranges ``1-5``, steps ``*/10`` and ``10-50/20``, month and
day names (``jan``, ``mon``), and ``@hourly``, ``@daily``, ``@weekly``, ``@monthly``,
``@yearly``. When both day fields are restricted, a day matching either runs (as in cron).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from syllabus.errors import InvalidArgumentError

__all__ = [
    "AlertEvent",
    "AlertSource",
    "Cron",
    "cron",
    "on_alert",
    "on_dataset",
    "parse_trigger",
]

_ALIASES: Final = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTHS: Final = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_DAYS: Final = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{1,128}")


def _field(text: str, low: int, high: int, names: Mapping[str, int], what: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.lower().split(","):
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise InvalidArgumentError(f"invalid step {step_text!r} in the {what} field")
            step = int(step_text)

        def value(tok: str) -> int:
            if tok in names:
                return names[tok]
            if not tok.isdigit():
                raise InvalidArgumentError(f"invalid {what} {tok!r} in cron expression")
            v = int(tok)
            if what == "day of week" and v == 7:
                v = 0
            if not low <= v <= high:
                raise InvalidArgumentError(f"{what} {v} is out of range ({low}-{high})")
            return v

        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = value(a), value(b)
            if what == "day of week" and b == "7":  # 7 is Sunday again: ..-7 ends on Saturday
                end = 6
                out.add(0)
            if start > end:
                raise InvalidArgumentError(f"invalid range {base!r} in the {what} field")
        else:
            start = value(base)
            end = high if step_text else start
        out.update(range(start, end + 1, step))
    return frozenset(out)


@dataclass(frozen=True)
class Cron:
    """A parsed five-field cron expression (UTC)."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    @staticmethod
    def parse(text: str) -> Cron:
        if not isinstance(text, str):
            raise InvalidArgumentError(f"a cron expression is text, not {type(text).__name__}")
        expr = _ALIASES.get(text.strip().lower(), text.strip())
        fields = expr.split()
        if len(fields) != 5:
            raise InvalidArgumentError(
                f"cron expression {text!r} needs 5 fields (minute hour day month weekday)"
            )
        return Cron(
            text=text,
            minutes=_field(fields[0], 0, 59, {}, "minute"),
            hours=_field(fields[1], 0, 23, {}, "hour"),
            days=_field(fields[2], 1, 31, {}, "day of month"),
            months=_field(fields[3], 1, 12, _MONTHS, "month"),
            weekdays=_field(fields[4], 0, 7, _DAYS, "day of week"),
            any_day=fields[2] == "*",
            any_weekday=fields[4] == "*",
        )

    def _day_matches(self, t: datetime) -> bool:
        weekday = (t.weekday() + 1) % 7
        in_days = t.day in self.days
        in_weekdays = weekday in self.weekdays
        if self.any_day or self.any_weekday:
            return in_days and in_weekdays
        return in_days or in_weekdays

    def matches(self, t: datetime) -> bool:
        return (
            t.minute in self.minutes
            and t.hour in self.hours
            and t.month in self.months
            and self._day_matches(t)
        )

    def previous(self, now: datetime) -> datetime | None:
        """The latest scheduled minute at or before ``now`` (within 366 days)."""
        t = now.astimezone(UTC).replace(second=0, microsecond=0)
        limit = t - timedelta(days=366)
        while t >= limit:
            if t.month not in self.months or not self._day_matches(t):
                t = t.replace(hour=23, minute=59) - timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=59) - timedelta(hours=1)
                continue
            if t.minute in self.minutes:
                return t
            t -= timedelta(minutes=1)
        return None

    def next(self, after: datetime) -> datetime | None:
        """The first scheduled minute after ``after`` (within 366 days)."""
        t = after.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = t + timedelta(days=366)
        while t <= limit:
            if t.month not in self.months or not self._day_matches(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
                continue
            if t.minute in self.minutes:
                return t
            t += timedelta(minutes=1)
        return None


def cron(expression: str, *, name: str | None = None, **params: Any) -> dict[str, Any]:
    """A schedule trigger (``params`` are pipeline params the firing sets)."""
    Cron.parse(expression)
    return _spec({"cron": expression}, name, params)


def on_dataset(dataset: str, *, name: str | None = None, **params: Any) -> dict[str, Any]:
    """A trigger on each new version of ``dataset``."""
    return _spec({"dataset": dataset}, name, params)


def on_alert(rule: str = "*", *, name: str | None = None, **params: Any) -> dict[str, Any]:
    """A trigger on each new monitoring alert matching ``rule``: a monitor's name, a rule's
    text, ``MONITOR:RULE``, or ``*`` for any alert."""
    return _spec({"alert": rule}, name, params)


def _spec(base: dict[str, Any], name: str | None, params: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    if name is not None:
        out["name"] = name
    if params:
        out["params"] = dict(params)
    return out


def parse_trigger(data: Mapping[str, Any], *, default_name: str) -> tuple[str, str, dict[str, Any]]:
    """``(name, kind, spec)`` of a declared trigger; InvalidArgumentError when malformed."""
    kinds = [k for k in ("cron", "dataset", "alert") if k in data]
    if len(kinds) != 1:
        raise InvalidArgumentError(
            f"trigger {dict(data)!r} needs exactly one of cron, dataset or alert"
        )
    kind = kinds[0]
    value = data[kind]
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(f"trigger {kind} must be non-empty text, not {value!r}")
    if kind == "cron":
        Cron.parse(value)
    name = str(data.get("name") or default_name)
    if not _NAME.fullmatch(name):
        raise InvalidArgumentError(f"invalid trigger name {name!r}")
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise InvalidArgumentError(f"trigger {name!r}: params must be a mapping")
    unknown = set(data) - {"cron", "dataset", "alert", "name", "params"}
    if unknown:
        raise InvalidArgumentError(f"trigger {name!r}: unknown key {sorted(unknown)[0]!r}")
    return name, kind, {kind: value, "params": dict(params)}


# -- what a trigger watches -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A fired monitoring alert as triggers see it: an id that sorts in time order, the
    rule that fired and facts about it (monitor, value, window)."""

    id: str
    rule: str
    detail: Mapping[str, Any]


class AlertSource(Protocol):
    """Monitoring's fired alerts, oldest first (the client supplies monitoring's)."""

    def alerts_after(self, after: str | None, rule: str) -> Sequence[AlertEvent]:
        """Alerts matching ``rule`` (a monitor's name, a rule's text, ``MONITOR:RULE`` or
        ``*``) whose id sorts after ``after`` (all when None), oldest first."""
        ...


Occurrence = tuple[str, dict[str, Any]]


def cron_occurrence(spec: Mapping[str, Any], now: datetime, created_at: int) -> Occurrence | None:
    """The newest scheduled minute at or before ``now`` and after the trigger was made."""
    when = Cron.parse(spec["cron"]).previous(now)
    if when is None or when.timestamp() * 1000 < created_at - 60_000:
        return None
    if when.timestamp() * 1000 < created_at:
        return None
    return when.strftime("%Y-%m-%dT%H:%MZ"), {"scheduled": when.isoformat()}


def dataset_occurrence(
    spec: Mapping[str, Any], latest: Callable[[str], tuple[str, int] | None]
) -> Occurrence | None:
    """The newest version of the watched dataset (``(id, version)`` from ``latest``)."""
    found = latest(spec["dataset"])
    if found is None:
        return None
    version_id, number = found
    ref = f"{spec['dataset']}@{number}"
    return f"{ref}:{version_id}", {"dataset": ref, "version_id": version_id}


def alert_occurrence(
    spec: Mapping[str, Any], state: str | None, source: AlertSource | None
) -> Occurrence | None:
    """The newest alert of the watched rule after the cursor."""
    if source is None:
        return None
    events = source.alerts_after(state, spec["alert"])
    if not events:
        return None
    last = events[-1]
    return last.id, {"alert": last.id, "rule": last.rule, **dict(last.detail)}
