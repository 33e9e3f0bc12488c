"""The metadata a data-versioning store keeps: the small Protocol its backends implement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from syllabus.datasets.models import (
    Dataset,
    DatasetSummary,
    DatasetTag,
    DatasetVersion,
    Remote,
    VersionSpec,
)

__all__ = ["DatasetStore"]


class DatasetStore(Protocol):
    """Datasets, their numbered versions, tags and remotes. No bytes: only digests.

    Implementations declare every digest a version references (tree, profiles) in
    ``blob_refs`` in the same transaction as the version row.
    """

    def get_dataset(self, name: str) -> Dataset | None:
        """The dataset called ``name`` (None when there is none)."""
        ...

    def list_datasets(self) -> list[DatasetSummary]:
        """Every dataset with at least one live version, by name."""
        ...

    def create_version(self, name: str, spec: VersionSpec) -> tuple[DatasetVersion, bool]:
        """Add the next version of ``name`` (creating the dataset), unless the latest live
        version has the same tree and empty folders: then return it and False.

        Safe against concurrent callers: each gets its own consecutive number."""
        ...

    def get_version(
        self, name: str, version: int, *, include_deleted: bool = False
    ) -> DatasetVersion | None:
        """Version ``version`` of ``name``."""
        ...

    def latest_version(self, name: str) -> DatasetVersion | None:
        """The highest live version of ``name``."""
        ...

    def latest_number(self, name: str) -> int | None:
        """The highest live version number of ``name`` (None when none)."""
        ...

    def version_for_tag(self, name: str, tag: str) -> DatasetVersion | None:
        """The version ``tag`` names."""
        ...

    def list_versions(self, name: str, *, include_deleted: bool = False) -> list[DatasetVersion]:
        """Versions of ``name``, newest first."""
        ...

    def set_tag(self, version_id: str, tag: str, *, at_ms: int | None = None) -> None:
        """Point ``tag`` at a version (moving it from another version of the dataset);
        ``at_ms`` is when it was set (default now; a pulled tag keeps its time)."""
        ...

    def list_tags(self, name: str) -> list[DatasetTag]:
        """The tags of ``name`` with their live versions and times, by tag."""
        ...

    def import_versions(
        self, name: str, versions: Sequence[DatasetVersion]
    ) -> tuple[list[DatasetVersion], list[DatasetVersion]]:
        """Insert versions made elsewhere (a pull), keeping their ids, numbers, authors and
        times, in one transaction; returns ``(imported, conflicting)``: a version whose id
        is here already is neither, one whose number is taken (even by a deleted version)
        is conflicting and left out."""
        ...

    def remove_tag(self, name: str, tag: str) -> bool:
        """Remove a tag; False when it did not exist."""
        ...

    def soft_delete(self, version_ids: Sequence[str], at_ms: int) -> int:
        """Mark versions deleted (their tags go); returns how many were live."""
        ...

    def purge_deleted(self, before_ms: int) -> int:
        """Remove versions deleted at or before ``before_ms`` and their blob references."""
        ...

    def add_remote(self, name: str, url: str) -> Remote:
        """Record a remote; AlreadyExistsError when the name is taken."""
        ...

    def list_remotes(self) -> list[Remote]:
        """Every remote, by name."""
        ...

    def remove_remote(self, name: str) -> bool:
        """Forget a remote; False when it did not exist."""
        ...
