"""Store maintenance: verify (fsck), garbage collection and disk usage.

These work on any :class:`~syllabus.blobs.store.BlobStore` and are reached through its
``verify``, ``gc`` and ``du`` methods.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from syllabus.blobs.backend import Flags, ObjectInfo
from syllabus.blobs.digest import Digest, hasher
from syllabus.blobs.records import decode_chunklist, logical_bytes, verified_bytes
from syllabus.errors import BlobNotFoundError, StorageError
from syllabus.types import ProgressCallback, null_progress

if TYPE_CHECKING:
    from syllabus.blobs.store import BlobStore

__all__ = [
    "GC_TIMEOUT",
    "DiskUsage",
    "GcReport",
    "Keep",
    "KindUsage",
    "VerifyReport",
    "du",
    "gc",
    "verify",
]


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What ``verify`` found. ``ok`` when nothing is corrupt or missing."""

    records: int
    """Records checked."""
    stored_bytes: int
    """Stored bytes read."""
    corrupt: dict[Digest, str] = field(default_factory=dict)
    """Records whose bytes do not hash to their id (or cannot be decoded), with the reason."""
    missing_chunks: dict[Digest, tuple[Digest, ...]] = field(default_factory=dict)
    """Chunk lists whose chunks are not stored, with the missing chunk ids."""

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.missing_chunks


@dataclass(frozen=True, slots=True)
class GcReport:
    """What ``gc`` deleted, or would delete on a dry run."""

    dry_run: bool
    live: int
    """Records reachable from the kept roots (or younger than the grace period)."""
    unreferenced: tuple[Digest, ...]
    """Records deleted (or, on a dry run, that would be)."""
    unreferenced_bytes: int
    """Their stored size."""
    freed_bytes: int
    """Bytes actually freed on disk (0 on a dry run; repacking may differ from the above)."""

    @property
    def count(self) -> int:
        return len(self.unreferenced)


@dataclass(frozen=True, slots=True)
class KindUsage:
    """Count, stored bytes and logical bytes of one kind of record."""

    count: int = 0
    stored_bytes: int = 0
    logical_bytes: int = 0

    def __add__(self, other: KindUsage) -> KindUsage:
        return KindUsage(
            self.count + other.count,
            self.stored_bytes + other.stored_bytes,
            self.logical_bytes + other.logical_bytes,
        )


@dataclass(frozen=True, slots=True)
class DiskUsage:
    """Space by record kind.

    ``whole``: blobs stored as one record (small files, manifests); ``chunks``: pieces of
    large files; ``chunk_lists``: one per large file, whose logical bytes are the file
    sizes. ``total`` sums counts and stored bytes of all three; its logical bytes are the
    content the store represents (whole blobs plus chunked files, chunks not counted twice).
    """

    whole: KindUsage
    chunks: KindUsage
    chunk_lists: KindUsage

    @property
    def total(self) -> KindUsage:
        every = self.whole + self.chunks + self.chunk_lists
        return KindUsage(
            every.count,
            every.stored_bytes,
            self.whole.logical_bytes + self.chunk_lists.logical_bytes,
        )


def _usage(infos: Iterable[ObjectInfo]) -> KindUsage:
    out = KindUsage()
    for info in infos:
        out += KindUsage(1, info.stored_size, info.size)
    return out


class _Verifier:
    """One verify pass; remembers what it checked so shared chunks are counted once."""

    def __init__(self, store: BlobStore, progress: ProgressCallback) -> None:
        self.backend = store.backend
        self.progress = progress
        self.infos = {i.digest: i for i in self.backend.iter_info()}
        self.total = sum(i.stored_size for i in self.infos.values())
        self.corrupt: dict[Digest, str] = {}
        self.missing: dict[Digest, tuple[Digest, ...]] = {}
        self.checked: set[Digest] = set()
        self.read_bytes = 0

    def _count(self, digest: Digest) -> None:
        if digest not in self.checked:
            self.checked.add(digest)
            stored = self.infos[digest].stored_size if digest in self.infos else 0
            self.read_bytes += stored
            self.progress(stored, self.total)

    def plain(self, digest: Digest) -> bytes | None:
        """Verified logical bytes of a plain record (None if corrupt or gone)."""
        self._count(digest)
        try:
            return verified_bytes(self.backend.read(digest))
        except BlobNotFoundError:
            return None
        except StorageError as exc:
            self.corrupt.setdefault(digest, str(exc))
            return None

    def chunked(self, digest: Digest, info: ObjectInfo) -> None:
        """Check a chunk list, its chunks, and the file they make up."""
        self._count(digest)
        try:
            refs = decode_chunklist(logical_bytes(self.backend.read(digest)), digest=digest)
        except BlobNotFoundError:
            return
        except StorageError as exc:
            self.corrupt[digest] = str(exc)
            return
        lacking = tuple(dict.fromkeys(d for d, _ in refs if d not in self.infos))
        if lacking:
            self.missing[digest] = lacking
            return
        whole, size, intact = hasher(), 0, True
        for chunk, length in refs:
            data = self.plain(chunk)
            if data is None or len(data) != length:
                intact = False
            elif intact:
                whole.update(data)
                size += len(data)
        if not intact:
            self.corrupt[digest] = f"object {digest}: one of its chunks is corrupt or missing"
        elif size != info.size or whole.digest() != digest.to_bytes():
            self.corrupt[digest] = f"object {digest}: its chunks do not hash to its content id"

    def run(self) -> VerifyReport:
        for digest, info in self.infos.items():
            if info.flags & Flags.CHUNKLIST:
                self.chunked(digest, info)
        for digest in self.infos:
            if digest not in self.checked:
                self.plain(digest)
        return VerifyReport(len(self.infos), self.read_bytes, self.corrupt, self.missing)


def verify(store: BlobStore, *, progress: ProgressCallback = null_progress) -> VerifyReport:
    """Re-hash every record: whole blobs and chunks against their ids, and every chunked
    file as the concatenation of its chunks against the file's id.

    Progress counts stored bytes. Records deleted while verify runs are skipped.
    """
    return _Verifier(store, progress).run()


Keep = Callable[[], Iterable[Digest]] | Iterable[Digest]
"""The roots a gc keeps: digests, or a function returning them that a deleting gc calls
once it holds the store's writers' lock (so it sees every reference committed by then)."""

GC_TIMEOUT: Final = 5.0
"""Seconds a deleting gc waits by default for other writers of the store to close."""


def gc(
    store: BlobStore,
    keep: Keep,
    *,
    grace_seconds: float,
    dry_run: bool = True,
    timeout: float = GC_TIMEOUT,
    force: bool = False,
) -> GcReport:
    """Delete records not reachable from ``keep`` and older than ``grace_seconds``.

    Records younger than the grace period count as roots too, so a chunk reused by a file
    being written right now (whose reference is not committed yet) is never taken away
    from it. A dry run only lists, without any lock.

    To delete, gc first enters the backend's ``gc_guard``: it waits up to ``timeout``
    seconds while other writers of the store are open (instances that wrote or
    deduplicated, which may be about to reference a record they found stored), then
    raises StorageError having deleted nothing. Under the guard it calls ``keep`` if it
    is callable, so pass a function that reads the references (from the database) to
    honour those committed by writers that closed just before. An iterable ``keep`` is
    read before the guard and may miss them. ``force`` skips the guard: only for a
    caller who has stopped every other writer (S3 stores have no guard yet).
    """
    if grace_seconds < 0:
        raise StorageError("gc grace period must not be negative")
    if timeout < 0:
        raise StorageError("gc timeout must not be negative")
    if dry_run:
        return _collect(store, keep, grace_seconds, dry_run=True)
    guard = contextlib.nullcontext() if force else store.backend.gc_guard(timeout=timeout)
    with guard:
        return _collect(store, keep, grace_seconds, dry_run=False)


def _collect(store: BlobStore, keep: Keep, grace_seconds: float, *, dry_run: bool) -> GcReport:
    backend = store.backend
    store.flush()
    roots = list(keep() if callable(keep) else keep)
    infos = list(backend.iter_info())
    cutoff = time.time() - grace_seconds
    young = [i.digest for i in infos if i.mtime >= cutoff]
    live = store.expand([*roots, *young])
    doomed = [i for i in infos if i.digest not in live]
    freed = 0 if dry_run else backend.delete([i.digest for i in doomed])
    return GcReport(
        dry_run,
        len(live),
        tuple(sorted(i.digest for i in doomed)),
        sum(i.stored_size for i in doomed),
        freed,
    )


def du(store: BlobStore) -> DiskUsage:
    """Space by record kind (reads every chunk list to tell chunks from whole blobs)."""
    backend = store.backend
    infos = list(backend.iter_info())
    chunk_ids: set[Digest] = set()
    lists = [i for i in infos if i.flags & Flags.CHUNKLIST]
    for info in lists:
        try:
            record = backend.read(info.digest)
            chunk_ids.update(
                d for d, _ in decode_chunklist(logical_bytes(record), digest=info.digest)
            )
        except StorageError:
            continue  # verify reports it
    plain = [i for i in infos if not i.flags & Flags.CHUNKLIST]
    return DiskUsage(
        whole=_usage(i for i in plain if i.digest not in chunk_ids),
        chunks=_usage(i for i in plain if i.digest in chunk_ids),
        chunk_lists=_usage(lists),
    )
