"""Tracking entities: frozen values returned by the store and the client.

Times are Unix milliseconds (``int``); ids are 32-hex time-ordered ids. ``Run.metrics``
holds each key's latest point (highest step, then timestamp); the full series comes from
``get_metric_history``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, overload

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MAX_KEY",
    "MAX_NAME",
    "MAX_VALUE",
    "Artifact",
    "Experiment",
    "Metric",
    "Run",
    "RunInput",
    "RunPage",
    "RunStatus",
]

MAX_NAME: Final = 255
"""Longest experiment or run name, in characters."""
MAX_KEY: Final = 250
"""Longest param, metric or tag key, in characters."""
MAX_VALUE: Final = 8000
"""Longest param or tag value, in characters (longer values are refused, never truncated)."""


class RunStatus(StrEnum):
    """Where a run is in its life. ``crashed`` is never stored: it is a running run whose
    process stopped sending heartbeats."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"
    CRASHED = "crashed"

    @property
    def ended(self) -> bool:
        return self is not RunStatus.RUNNING


@dataclass(frozen=True, slots=True)
class Experiment:
    """A named group of runs."""

    id: str
    name: str
    created_at: int
    description: str | None = None
    deleted_at: int | None = None

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


@dataclass(frozen=True, slots=True)
class Metric:
    """One point of a metric series."""

    key: str
    value: float
    step: int
    timestamp: int

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Metric):
            return NotImplemented
        same_value = self.value == other.value or (
            math.isnan(self.value) and math.isnan(other.value)
        )
        return (
            same_value
            and self.key == other.key
            and self.step == other.step
            and self.timestamp == other.timestamp
        )

    def __hash__(self) -> int:
        return hash((self.key, self.step, self.timestamp))


@dataclass(frozen=True, slots=True)
class Artifact:
    """A stored file of a run: its run-relative POSIX path, content id and size."""

    path: str
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class RunInput:
    """Something a run consumed: ``kind`` (e.g. ``"dataset"``), the target's id, its name
    and content digest when known, and the role it played (``"train"``, ``"eval"``, ...)."""

    kind: str
    target_id: str
    name: str | None = None
    digest: str | None = None
    role: str = "input"
    run_id: str | None = None


@dataclass(frozen=True, slots=True)
class Run:
    """A run with its params, tags and the latest value of each metric."""

    id: str
    experiment_id: str
    name: str
    status: RunStatus
    user: str
    host: str
    start_time: int
    end_time: int | None
    heartbeat_at: int
    parent_id: str | None = None
    error: str | None = None
    deleted_at: int | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, Metric] = field(default_factory=dict)

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def duration_ms(self) -> int | None:
        """Milliseconds from start to end (None while running)."""
        return None if self.end_time is None else self.end_time - self.start_time

    def to_dict(self) -> dict[str, Any]:
        """A flat JSON-able view: attributes, then ``params.*``, ``metrics.*``, ``tags.*``."""
        out: dict[str, Any] = {
            "id": self.id,
            "experiment_id": self.experiment_id,
            "name": self.name,
            "status": self.status.value,
            "user": self.user,
            "host": self.host,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "parent_id": self.parent_id,
        }
        out.update({f"params.{k}": v for k, v in self.params.items()})
        out.update({f"metrics.{k}": m.value for k, m in self.metrics.items()})
        out.update({f"tags.{k}": v for k, v in self.tags.items()})
        return out


@dataclass(frozen=True)
class RunPage(Sequence[Run]):
    """One page of search results; ``next_page_token`` fetches the next (None at the end)."""

    runs: tuple[Run, ...]
    next_page_token: str | None = None

    @overload
    def __getitem__(self, index: int) -> Run: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Run]: ...
    def __getitem__(self, index: int | slice) -> Run | Sequence[Run]:
        return self.runs[index]

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[Run]:
        return iter(self.runs)

    def to_pandas(self) -> pd.DataFrame:
        """The page as a DataFrame, one row per run (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            from syllabus.errors import ConfigError

            raise ConfigError("to_pandas() needs pandas; run `pip install pandas`") from exc
        return pd.DataFrame([run.to_dict() for run in self.runs])
