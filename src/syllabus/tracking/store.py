"""The tracking store Protocol: what a tracking backend must do.

:class:`~syllabus.tracking.sql.SqlTrackingStore` implements it on SQLite and PostgreSQL; a
remote (REST) implementation will implement it against the server. Behaviour that does not
depend on the backend (validation, defaults, buffering, artifacts' bytes) lives in
:class:`~syllabus.tracking.service.TrackingService`, on top of any store.

Run and experiment arguments take a full id or a unique prefix of at least 6 characters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, NamedTuple, Protocol, TypeAlias

from syllabus.tracking.models import Artifact, Experiment, Metric, Run, RunInput, RunPage

__all__ = ["DeletedFilter", "PointBatch", "RunEnd", "TrackingStore"]

PointBatch: TypeAlias = Mapping[tuple[str, str], Sequence[tuple[int, int, float]]]
"""Metric points grouped by ``(run id, key)``: ``[(step, timestamp ms, value), ...]``."""

DeletedFilter: TypeAlias = Literal["active", "deleted", "all"]


class RunEnd(NamedTuple):
    """How a run ends (given with its last metric points, in the same transaction)."""

    run_id: str
    status: str
    end_time: int
    error: str | None = None


class TrackingStore(Protocol):
    """Persistence of experiments, runs, metrics, params, tags, artifact rows and inputs."""

    def create_experiment(self, name: str, description: str | None = None) -> Experiment:
        """A new experiment; AlreadyExistsError when a live one has this name."""
        ...

    def get_experiment(self, ref: str, *, by_name: bool = False) -> Experiment:
        """An experiment by id (or unique prefix), or by name; NotFoundError otherwise."""
        ...

    def list_experiments(self, *, deleted: DeletedFilter = "active") -> list[Experiment]:
        """Experiments ordered by creation time."""
        ...

    def update_experiment(
        self,
        ref: str,
        *,
        name: str | None = None,
        description: str | None = None,
        deleted: bool | None = None,
    ) -> Experiment:
        """Rename, describe, soft-delete or restore an experiment."""
        ...

    def create_run(
        self,
        experiment_id: str,
        *,
        run_id: str,
        name: str,
        user: str,
        host: str,
        start_time: int,
        parent_id: str | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Run:
        """Insert a running run with its first params and tags, in one transaction."""
        ...

    def get_run(self, ref: str) -> Run:
        """A run with params, tags and latest metrics; NotFoundError when unknown."""
        ...

    def update_run(
        self,
        ref: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        error: str | None = None,
        heartbeat_at: int | None = None,
        deleted: bool | None = None,
    ) -> None:
        """Change a run's status, end, error text, heartbeat or deletion."""
        ...

    def heartbeat(self, run_ids: Sequence[str], at: int) -> None:
        """Record that the process owning these running runs is alive."""
        ...

    def log_batch(
        self,
        ref: str,
        *,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Add params (ConflictError when a key already holds another value) and set tags."""
        ...

    def log_metrics(self, points: PointBatch, *, end: RunEnd | None = None) -> None:
        """Append metric points of one or more runs in bulk, update latest values and, with
        ``end``, end that run, all in one transaction. Points of runs that no longer exist
        (purged) are dropped; the others are written, then NotFoundError names the missing
        runs (including ``end``'s)."""
        ...

    def get_metric_history(self, ref: str, key: str) -> list[Metric]:
        """Every point of one metric of a run, by step then timestamp."""
        ...

    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        *,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        parent_id: str | None = None,
        deleted: DeletedFilter = "active",
    ) -> RunPage:
        """Runs matching a filter (see :mod:`syllabus.tracking.search`), one page at a time."""
        ...

    def add_artifacts(self, ref: str, artifacts: Sequence[Artifact]) -> None:
        """Record stored files of a run (and their blob references) in one transaction."""
        ...

    def list_artifacts(self, ref: str, prefix: str = "") -> list[Artifact]:
        """A run's artifacts under ``prefix`` (a folder path or ""), by path."""
        ...

    def log_inputs(self, ref: str, inputs: Sequence[RunInput]) -> None:
        """Record what a run consumed (idempotent per kind, target and role)."""
        ...

    def list_inputs(self, ref: str) -> list[RunInput]:
        """What a run consumed."""
        ...

    def runs_with_input(self, kind: str, target_id: str) -> list[RunInput]:
        """Every (non-purged) run that consumed a target, with the role it played."""
        ...

    def purge_deleted(self, older_than: int) -> int:
        """Remove runs (and experiments) soft-deleted at or before ``older_than`` (Unix ms) with
        their rows and blob references; returns the number of runs removed."""
        ...
