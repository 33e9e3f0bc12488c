"""The code store Protocol: what a code backend must persist.

:class:`~syllabus.code.sql.SqlCodeStore` implements it on SQLite and PostgreSQL. The
bytes (snapshot and environment records, patches, trees, notebooks) live in the blob
store; the store keeps rows, and declares every digest a row references in ``blob_refs``
in the same transaction as the row. Behaviour (capturing, canonical forms, diffs) lives
in :class:`~syllabus.code.service.CodeService`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from syllabus.code.models import NotebookCheckpoint

__all__ = ["CodeStore", "NotebookSummary", "RunLink", "StoredRecord"]


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A snapshot or environment row: its id, record digest and creation time."""

    id: str
    digest: str
    created_at: int


@dataclass(frozen=True, slots=True)
class RunLink:
    """The ``run_code`` row of a run."""

    run_id: str
    snapshot_id: str
    environment_id: str | None
    checkpoint_id: str | None
    root: str | None
    entry_point: str | None
    argv: tuple[str, ...]
    created_at: int


@dataclass(frozen=True, slots=True)
class NotebookSummary:
    """A notebook with its number of checkpoints and its latest one."""

    path: str
    checkpoints: int
    latest: int
    updated_at: int


class CodeStore(Protocol):
    """Persistence of snapshots, environments, run links and notebook checkpoints."""

    def put_snapshot(
        self,
        *,
        digest: str,
        kind: str,
        commit: str | None,
        branch: str | None,
        remote: str | None,
        dirty: bool,
        blobs: Sequence[str],
    ) -> StoredRecord:
        """The snapshot row for ``digest``, inserted (with blob references to ``blobs``)
        unless one exists."""
        ...

    def get_snapshot(self, ref: str) -> StoredRecord:
        """A snapshot by id or unique id prefix; NotFoundError otherwise."""
        ...

    def put_environment(
        self,
        *,
        digest: str,
        python: str,
        platform: str,
        package_count: int,
    ) -> StoredRecord:
        """The environment row for ``digest``, inserted unless one exists."""
        ...

    def get_environment(self, ref: str) -> StoredRecord:
        """An environment by id or unique id prefix; NotFoundError otherwise."""
        ...

    def link_run(
        self,
        run_id: str,
        *,
        snapshot_id: str,
        environment_id: str | None,
        checkpoint_id: str | None,
        root: str | None,
        entry_point: str | None,
        argv: Sequence[str],
    ) -> RunLink:
        """Record (or replace) what run ``run_id`` was started from."""
        ...

    def get_run_link(self, run_ref: str) -> RunLink:
        """A run's link by run id or unique prefix; NotFoundError when nothing was captured."""
        ...

    def runs_with_snapshot(self, snapshot_id: str) -> list[str]:
        """Ids of the runs that used a snapshot, oldest first."""
        ...

    def add_checkpoint(
        self,
        path: str,
        *,
        digest: str,
        cell_count: int,
        outputs: bool,
        message: str,
        author: str,
        run_id: str | None,
    ) -> tuple[NotebookCheckpoint, bool]:
        """A new checkpoint of notebook ``path`` (next version), or the latest one with
        ``False`` when its digest is already ``digest``."""
        ...

    def get_checkpoint(self, path: str, version: int | None = None) -> NotebookCheckpoint:
        """Checkpoint ``version`` (the latest when None); NotFoundError otherwise."""
        ...

    def get_checkpoint_by_id(self, checkpoint_id: str) -> NotebookCheckpoint:
        """A checkpoint by id."""
        ...

    def list_checkpoints(self, path: str) -> list[NotebookCheckpoint]:
        """Checkpoints of a notebook, newest first; NotFoundError for an unknown notebook."""
        ...

    def list_notebooks(self) -> list[NotebookSummary]:
        """Every checkpointed notebook, by path."""
        ...
