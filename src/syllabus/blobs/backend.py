"""The object layer: where stored records live (a folder, an S3 prefix).

A *record* is what a backend stores under a content id: a flags byte, the logical size and
the stored payload (possibly zstd-compressed; a chunk list instead of content for large
files). Backends never hash, compress or interpret payloads;
:class:`~syllabus.blobs.store.BlobStore` does that on top of any backend. Keeping records
opaque lets a transfer copy them between backends byte for byte.

Both backends use the same pack format (:mod:`syllabus.blobs.pack`): small records are
appended to pack files whose index entries are committed only after the pack bytes are
durable; records larger than :data:`LOOSE_MIN` are written as one *loose* object each,
crash-safely (temp file, fsync, rename; or one PUT).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import IntFlag
from typing import Protocol, runtime_checkable

from syllabus.blobs.digest import Digest
from syllabus.errors import InvalidArgumentError

__all__ = [
    "LOOSE_MIN",
    "Flags",
    "ObjectBackend",
    "ObjectInfo",
    "Record",
    "RefBackend",
    "check_ref_name",
]

LOOSE_MIN = 8 * 1024 * 1024
"""Records with a payload at least this large are stored loose rather than packed."""


class Flags(IntFlag):
    """Bits of a record's flags byte."""

    NONE = 0
    ZSTD = 1  # payload is a zstd frame of the logical bytes
    CHUNKLIST = 2  # logical bytes are a chunk list (see store.py), not the content itself


@dataclass(frozen=True, slots=True)
class Record:
    """One stored object: ``digest`` is the BLAKE3 of the logical content it stands for."""

    digest: Digest
    flags: Flags
    size: int  # logical size of the content the digest names
    payload: bytes


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a backend knows about a record without reading its payload."""

    digest: Digest
    flags: Flags
    size: int
    stored_size: int
    mtime: float  # Unix seconds when the record was written


@runtime_checkable
class ObjectBackend(Protocol):
    """Durable, content-addressed record storage. Safe for several threads and processes.

    Writes are idempotent: writing a record whose digest is present is a no-op. A record is
    durable (survives kill -9 and power loss) once :meth:`flush` returns; before that it
    may be lost but never half-visible.
    """

    @property
    def url(self) -> str:
        """Where this backend stores (a folder path or ``s3://bucket/prefix``)."""
        ...

    def contains(self, digests: Iterable[Digest]) -> set[Digest]:
        """The subset of ``digests`` that are stored (and committed)."""
        ...

    def write(self, records: Iterable[Record]) -> None:
        """Store records (buffered; durable after :meth:`flush`)."""
        ...

    def flush(self) -> None:
        """Make every written record durable and visible to other processes."""
        ...

    def read(self, digest: Digest) -> Record:
        """The stored record; raises BlobNotFoundError."""
        ...

    def read_many(self, digests: Iterable[Digest]) -> Iterator[Record]:
        """Records for ``digests`` in the given order (batched reads where the backend can)."""
        ...

    def info(self, digest: Digest) -> ObjectInfo:
        """Metadata of one record; raises BlobNotFoundError."""
        ...

    def iter_info(self) -> Iterator[ObjectInfo]:
        """Every committed record, each digest once."""
        ...

    def delete(self, digests: Iterable[Digest]) -> int:
        """Remove records (repacking packs as needed); returns stored bytes freed."""
        ...

    def gc_guard(self, *, timeout: float) -> AbstractContextManager[None]:
        """A block in which records can be deleted without taking them from writers.

        Writers (instances that wrote or asked :meth:`contains`, in any process) may have
        deduplicated against a record they have not referenced yet. Entering waits up to
        ``timeout`` seconds for such writers to close and raises StorageError (deleting
        nothing) if they do not; inside the block, writers wait. A backend that cannot
        tell raises StorageError saying so.
        """
        ...

    def close(self) -> None:
        """Flush and release files, locks and connections."""
        ...


_REF_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,199}")


def check_ref_name(name: str) -> str:
    """``name`` if it is a valid ref name (``/``-separated segments of letters, digits,
    ``.``, ``_``, ``~`` and ``-``, each starting with a letter or digit), else
    InvalidArgumentError. Ref names never leave the ``refs/`` folder of a store."""
    parts = name.split("/")
    if not name or len(name) > 1000 or not all(_REF_SEGMENT.fullmatch(p) for p in parts):
        raise InvalidArgumentError(f"invalid ref name {name!r}")
    return name


@runtime_checkable
class RefBackend(Protocol):
    """Small named files kept next to the records, under ``refs/``.

    Records are immutable and named by content; refs are how a store publishes something
    about them that is found by name (a remote's dataset version indexes). Writing a ref is
    atomic and durable when the call returns (readers see the old bytes or the new ones,
    never a mix); there is no compare-and-swap, so callers that share a ref name between
    writers must merge (e.g. one immutable ref per content, named by its digest).
    """

    def list_refs(self, prefix: str) -> list[str]:
        """Names of the refs starting with ``prefix`` (a folder ending in ``/``), sorted."""
        ...

    def read_ref(self, name: str) -> bytes | None:
        """The bytes of a ref (None when there is none)."""
        ...

    def write_ref(self, name: str, data: bytes) -> None:
        """Create or replace a ref, durably."""
        ...

    def delete_refs(self, names: Iterable[str]) -> None:
        """Remove refs (missing ones are no error)."""
        ...
