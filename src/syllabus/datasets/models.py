"""Frozen entities of the data-versioning component."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "AddResult",
    "CheckoutReport",
    "Dataset",
    "DatasetSummary",
    "DatasetTag",
    "DatasetVersion",
    "FileChange",
    "PathState",
    "Remote",
    "StatusReport",
    "TransferResult",
    "VersionSpec",
]

Kind = Literal["file", "folder"]


@dataclass(frozen=True, slots=True)
class Dataset:
    """A named, versioned collection of files."""

    id: str
    name: str
    created_at: int  # Unix milliseconds


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """One immutable version: the manifest ``tree`` of its files, and who made it when.

    ``kind`` says whether it was added from one file or a folder; ``profiles`` is the
    manifest of the tabular profiles (None when no file was tabular).
    """

    id: str
    dataset_id: str
    name: str
    version: int
    tree: str
    kind: Kind
    file_count: int
    size: int
    message: str
    author: str
    created_at: int
    profiles: str | None = None
    empty_dirs: tuple[str, ...] = ()
    source: str | None = None
    tags: tuple[str, ...] = ()
    deleted_at: int | None = None

    @property
    def ref(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None


@dataclass(frozen=True, slots=True)
class DatasetTag:
    """Where a tag points, and when it was set there (Unix milliseconds)."""

    tag: str
    version_id: str
    version: int
    set_at: int


@dataclass(frozen=True, slots=True)
class VersionSpec:
    """What a new version is made of (everything but its number and id)."""

    tree: str
    kind: Kind
    file_count: int
    size: int
    message: str
    author: str
    profiles: str | None = None
    empty_dirs: tuple[str, ...] = ()
    source: str | None = None


@dataclass(frozen=True, slots=True)
class DatasetSummary:
    """A row of ``data list``: the latest live version of each dataset."""

    name: str
    versions: int
    latest: int | None
    size: int | None
    file_count: int | None
    updated_at: int | None


@dataclass(frozen=True, slots=True)
class AddResult:
    """``created`` is False when the content equalled the latest version (no new version)."""

    version: DatasetVersion
    created: bool


@dataclass(frozen=True, slots=True)
class Remote:
    """A named blob store to push to and pull from."""

    name: str
    url: str
    created_at: int


@dataclass(frozen=True, slots=True)
class TransferResult:
    """What a push or pull did, in records (files, chunks, manifests) and stored bytes,
    and with the metadata: ``versions`` published to (push) or imported from (pull) the
    remote, ``tags`` set or moved, and ``conflicts`` (one line each) left as they were."""

    ref: str
    remote: str
    copied: int
    copied_bytes: int
    skipped: int
    skipped_bytes: int
    versions: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()


State = Literal["added", "removed", "modified", "unchanged"]


@dataclass(frozen=True, slots=True)
class PathState:
    """One path that differs between a working folder and a version.

    ``added``: in the folder, not the version; ``removed``: in the version, not the folder;
    ``modified``: content, executable bit or link target differs.
    """

    path: str
    state: State
    size: int | None = None


@dataclass(frozen=True, slots=True)
class StatusReport:
    """What differs between ``folder`` and ``ref``; ``hashed`` counts files read to decide."""

    ref: str
    folder: str
    changes: tuple[PathState, ...]
    files: int
    hashed: int

    @property
    def clean(self) -> bool:
        return not self.changes


@dataclass(frozen=True, slots=True)
class CheckoutReport:
    """What a checkout wrote (``written``), left as it was and removed."""

    ref: str
    folder: str
    written: int
    unchanged: int
    removed: int
    written_bytes: int


@dataclass(frozen=True, slots=True)
class FileChange:
    """A file-level difference between two versions (sizes None where absent)."""

    path: str
    change: Literal["added", "removed", "modified"]
    size_a: int | None
    size_b: int | None
    details: dict[str, object] = field(default_factory=dict)
