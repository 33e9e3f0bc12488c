"""Pipeline entities: frozen values returned by the store, the service and the client.

Times are Unix milliseconds; ids are 32-hex time-ordered ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "CacheEntry",
    "Firing",
    "PipelineInfo",
    "PipelineResult",
    "PipelineRun",
    "RunStatus",
    "StepResult",
    "StepRun",
    "StepStatus",
    "Trigger",
]


class RunStatus(StrEnum):
    """Where a pipeline run is."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class StepStatus(StrEnum):
    """What happened to one step of a pipeline run.

    ``cached``: its result was reused (same code, params and inputs); ``skipped``: it did
    not run because a step it depends on failed; ``pending``: not reached yet (a run that
    stopped can be resumed).
    """

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    CACHED = "cached"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def done(self) -> bool:
        return self in (StepStatus.SUCCEEDED, StepStatus.CACHED)


@dataclass(frozen=True, slots=True)
class PipelineInfo:
    """A registered pipeline: its name, where it is defined and its definition (JSON)."""

    id: str
    name: str
    source: str
    definition: Mapping[str, Any]
    digest: str
    created_at: int
    updated_at: int

    @property
    def steps(self) -> list[str]:
        return [s["name"] for s in self.definition.get("steps", [])]


@dataclass(frozen=True, slots=True)
class PipelineRun:
    """One run of a pipeline; ``run_id`` is its tracked run (the step runs' parent)."""

    id: str
    pipeline_id: str
    pipeline: str
    run_id: str | None
    status: RunStatus
    params: Mapping[str, Any]
    digest: str
    executor: str
    forced: tuple[str, ...]
    created_by: str
    started_at: int
    ended_at: int | None = None
    error: str | None = None
    resumes: str | None = None
    firing_id: str | None = None
    inputs: Mapping[str, str] = field(default_factory=dict)  # dataset/model refs as resolved


@dataclass(frozen=True, slots=True)
class StepRun:
    """One step of a pipeline run. ``reason`` says why it ran, was reused or skipped."""

    id: str
    pipeline_run_id: str
    step: str
    status: StepStatus
    run_id: str | None = None
    cache_key: str | None = None
    cached_from: str | None = None
    reason: str | None = None
    outputs: Mapping[str, Any] | None = None
    started_at: int | None = None
    ended_at: int | None = None
    error: str | None = None

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A step's stored result under its cache key."""

    key: str
    step: str
    digest: str
    format: str
    outputs: Mapping[str, Any]
    step_run_id: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Trigger:
    """What starts a pipeline by itself: ``kind`` ``cron``, ``dataset`` or ``alert``."""

    id: str
    pipeline_id: str
    pipeline: str
    name: str
    kind: str
    spec: Mapping[str, Any]
    enabled: bool
    state: str | None
    last_fired_at: int | None
    checked_at: int | None
    lease_owner: str | None
    lease_expires_at: int | None
    created_at: int


@dataclass(frozen=True, slots=True)
class Firing:
    """One occurrence a trigger fired for (at most once per trigger and occurrence)."""

    id: str
    trigger_id: str
    occurrence: str
    status: str
    agent: str
    fired_at: int
    detail: Mapping[str, Any] = field(default_factory=dict)
    pipeline_run_id: str | None = None
    lease_owner: str | None = None
    lease_expires_at: int | None = None
    ended_at: int | None = None


@dataclass(frozen=True, slots=True)
class StepResult:
    """A step's outcome in a :class:`PipelineResult`."""

    step: str
    status: StepStatus
    reason: str
    run_id: str | None
    cache_key: str | None
    outputs: Mapping[str, Any] | None = None
    error: str | None = None
    duration_ms: int | None = None


@dataclass(frozen=True)
class PipelineResult:
    """What ``run_pipeline`` returns: the run and each step's outcome, in DAG order.

    ``value(step)`` loads a step's output from the store."""

    run: PipelineRun
    steps: tuple[StepResult, ...]
    values: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.run.status is RunStatus.SUCCEEDED

    @property
    def ran(self) -> list[str]:
        return [s.step for s in self.steps if s.status is StepStatus.SUCCEEDED]

    @property
    def cached(self) -> list[str]:
        return [s.step for s in self.steps if s.status is StepStatus.CACHED]

    @property
    def failed(self) -> list[str]:
        return [s.step for s in self.steps if s.status is StepStatus.FAILED]

    @property
    def skipped(self) -> list[str]:
        return [s.step for s in self.steps if s.status is StepStatus.SKIPPED]

    def step(self, name: str) -> StepResult:
        for s in self.steps:
            if s.step == name:
                return s
        raise KeyError(name)

    def value(self, step: str) -> Any:
        """The output of ``step`` in this run (KeyError when it did not produce one)."""
        return self.values[step]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.run.id,
            "pipeline": self.run.pipeline,
            "run_id": self.run.run_id,
            "status": self.run.status.value,
            "params": dict(self.run.params),
            "inputs": dict(self.run.inputs),
            "executor": self.run.executor,
            "error": self.run.error,
            "resumes": self.run.resumes,
            "steps": [
                {
                    "step": s.step,
                    "status": s.status.value,
                    "reason": s.reason,
                    "run_id": s.run_id,
                    "cache_key": s.cache_key,
                    "outputs": dict(s.outputs) if s.outputs else None,
                    "error": s.error,
                    "duration_ms": s.duration_ms,
                }
                for s in self.steps
            ],
        }
