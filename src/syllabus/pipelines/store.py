"""The pipeline store Protocol: pipelines, their runs, the step cache, triggers and leases.

:class:`~syllabus.pipelines.sql.SqlPipelineStore` implements it on SQLite and PostgreSQL.
Leases are row-level claims with an expiry (a conditional ``UPDATE`` that succeeds for one
claimer only), so they work the same on both databases and survive a crashed holder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from syllabus.pipelines.models import (
    CacheEntry,
    Firing,
    PipelineInfo,
    PipelineRun,
    StepRun,
    Trigger,
)

__all__ = ["PipelineStore", "TriggerSpec"]

TriggerSpec = tuple[str, str, Mapping[str, Any], str | None]
"""``(name, kind, spec, initial state)`` of a trigger declared by a pipeline."""


class PipelineStore(Protocol):
    """Persistence of pipelines, runs, cache entries, triggers and firings."""

    def save_pipeline(
        self, name: str, source: str, definition: Mapping[str, Any], digest: str
    ) -> PipelineInfo:
        """Insert or update a pipeline's definition (by name)."""
        ...

    def get_pipeline(self, name: str) -> PipelineInfo:
        """A pipeline by name; NotFoundError otherwise."""
        ...

    def list_pipelines(self) -> list[PipelineInfo]:
        """Pipelines by name."""
        ...

    def sync_triggers(self, pipeline_id: str, specs: Sequence[TriggerSpec]) -> list[Trigger]:
        """Make the pipeline's triggers these: new ones are added (with their initial
        state), changed specs updated (state kept), missing ones removed."""
        ...

    def list_triggers(self, pipeline: str | None = None) -> list[Trigger]:
        """Triggers (of one pipeline), by pipeline and name."""
        ...

    def create_run(self, run: PipelineRun, steps: Sequence[StepRun]) -> None:
        """Insert a pipeline run and its step rows in one transaction."""
        ...

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        ended_at: int | None = None,
        error: str | None = None,
        tracked_run_id: str | None = None,
    ) -> None:
        """Change a pipeline run's status, end, error or tracked run."""
        ...

    def get_run(self, ref: str) -> PipelineRun:
        """A pipeline run by id or unique prefix (6+ characters)."""
        ...

    def list_runs(self, pipeline: str | None = None, *, limit: int = 100) -> list[PipelineRun]:
        """Pipeline runs, newest first."""
        ...

    def save_step(self, step: StepRun) -> None:
        """Update one step row of a pipeline run."""
        ...

    def list_steps(self, pipeline_run_id: str) -> list[StepRun]:
        """The step rows of a pipeline run."""
        ...

    def get_cache(self, key: str) -> CacheEntry | None:
        """The cached result under ``key``, if any."""
        ...

    def put_cache(self, entry: CacheEntry) -> None:
        """Store (or replace) a cached result and reference its blob."""
        ...

    def claim_trigger(self, trigger_id: str, owner: str, now: int, ttl_ms: int) -> bool:
        """Take (or renew) the trigger's lease; False when another owner holds it."""
        ...

    def release_trigger(self, trigger_id: str, owner: str, *, checked_at: int) -> None:
        """Give the lease back (only when ``owner`` holds it)."""
        ...

    def fire(
        self,
        trigger_id: str,
        owner: str,
        occurrence: str,
        detail: Mapping[str, Any],
        *,
        now: int,
        ttl_ms: int,
    ) -> Firing | None:
        """Record that the trigger fired for ``occurrence`` and move its state there, in one
        transaction, if ``owner`` holds its lease and the occurrence never fired; the new
        firing is leased to ``owner``. None otherwise."""
        ...

    def update_firing(
        self,
        firing_id: str,
        owner: str,
        *,
        now: int,
        ttl_ms: int = 0,
        status: str | None = None,
        pipeline_run_id: str | None = None,
    ) -> bool:
        """Renew (``ttl_ms``) or end (``status``) a firing ``owner`` holds; False if lost."""
        ...

    def claim_stale_firings(self, owner: str, now: int, ttl_ms: int) -> list[Firing]:
        """Take over running firings whose lease expired (their agent died)."""
        ...

    def list_firings(self, pipeline: str | None = None, *, limit: int = 100) -> list[Firing]:
        """Firings, newest first."""
        ...
