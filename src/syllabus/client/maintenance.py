"""Store maintenance across both storage layers: ``fsck``, ``gc`` and ``du``.

``blobs`` and ``meta`` never import each other; this module is where the references the
database holds (the ``blob_refs`` table) meet the records the blob store holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from syllabus.blobs.backend import ObjectInfo
from syllabus.blobs.digest import Digest
from syllabus.blobs.maintenance import GC_TIMEOUT, GcReport, KindUsage
from syllabus.blobs.store import BlobStore
from syllabus.meta import BlobRefs
from syllabus.types import ProgressCallback, null_progress

__all__ = ["DuReport", "FsckReport", "MissingRef", "du", "fsck", "gc"]


@dataclass(frozen=True, slots=True)
class MissingRef:
    """A digest the database references that the blob store cannot produce whole."""

    digest: str
    kind: str
    owner_type: str
    owner_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class FsckReport:
    """Every record re-hashed, every database reference checked."""

    records_checked: int
    bytes_checked: int
    references_checked: int
    corrupt: dict[str, str] = field(default_factory=dict)
    missing_chunks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    missing: tuple[MissingRef, ...] = ()

    @property
    def ok(self) -> bool:
        return not (self.corrupt or self.missing_chunks or self.missing)

    @property
    def problems(self) -> int:
        return len(self.corrupt) + len(self.missing_chunks) + len(self.missing)


@dataclass(frozen=True, slots=True)
class DuReport:
    """Space by kind of referencing object (from the database) and by record type (store).

    A record reached from several kinds counts in each of them; ``total`` counts it once.
    """

    by_kind: dict[str, KindUsage]
    by_record: dict[str, KindUsage]
    unreferenced: KindUsage
    total: KindUsage


def fsck(
    engine: Engine, store: BlobStore, *, progress: ProgressCallback = null_progress
) -> FsckReport:
    """Verify the blob store and check that every referenced digest, and every file of a
    referenced manifest, is stored."""
    report = store.verify(progress=progress)
    refs = BlobRefs(engine)
    referenced = {Digest(d) for d in refs.digests()}
    problems: dict[Digest, str] = dict.fromkeys(store.missing(referenced), "not in the blob store")
    for root, lacking in store.dangling(referenced - problems.keys()).items():
        problems[root] = f"{len(lacking)} of its parts are not in the blob store"
    missing: list[MissingRef] = []
    for digest in sorted(problems):
        missing.extend(
            MissingRef(r.digest, r.kind, r.owner_type, r.owner_id, problems[digest])
            for r in refs.owners(digest)
        )
    return FsckReport(
        records_checked=report.records,
        bytes_checked=report.stored_bytes,
        references_checked=len(referenced),
        corrupt={str(k): v for k, v in report.corrupt.items()},
        missing_chunks={str(k): tuple(map(str, v)) for k, v in report.missing_chunks.items()},
        missing=tuple(missing),
    )


def gc(
    engine: Engine,
    store: BlobStore,
    *,
    grace_seconds: float,
    dry_run: bool = True,
    timeout: float = GC_TIMEOUT,
    force: bool = False,
    purge: Callable[[], None] | None = None,
) -> GcReport:
    """Delete (or with ``dry_run`` only list) records no database reference reaches and
    that are older than ``grace_seconds``.

    The references are read by the blob store once it holds its writers' lock, so a
    reference committed by any writer that has closed is honoured; a deleting gc waits up
    to ``timeout`` seconds for open writers and deletes nothing if they stay open.
    ``purge`` (drop soft-deleted metadata and its references) runs under that lock too,
    just before the references are read, so a refused gc purges nothing.
    """

    def keep() -> list[Digest]:
        if purge is not None:
            purge()
        return [Digest(d) for d in BlobRefs(engine).digests()]

    return store.gc(
        keep, grace_seconds=grace_seconds, dry_run=dry_run, timeout=timeout, force=force
    )


def du(engine: Engine, store: BlobStore) -> DuReport:
    """Space used: per kind of referencing object, per record type, and unreferenced."""
    infos = {i.digest: i for i in store.backend.iter_info()}
    roots_by_kind: dict[str, set[Digest]] = {}
    for kind, digest in BlobRefs(engine).digests_by_kind():
        roots_by_kind.setdefault(kind, set()).add(Digest(digest))
    by_kind: dict[str, KindUsage] = {}
    reached: set[Digest] = set()
    for kind, roots in sorted(roots_by_kind.items()):
        records = store.expand(roots)
        reached |= records
        by_kind[kind] = _usage(infos, records, logical_from=roots)
    usage = store.du()
    loose = set(infos) - reached
    return DuReport(
        by_kind=by_kind,
        by_record={
            "whole": usage.whole,
            "chunks": usage.chunks,
            "chunk_lists": usage.chunk_lists,
        },
        unreferenced=_usage(infos, loose, logical_from=loose),
        total=usage.total,
    )


def _usage(
    infos: dict[Digest, ObjectInfo], records: set[Digest], *, logical_from: set[Digest]
) -> KindUsage:
    stored = sum(infos[d].stored_size for d in records if d in infos)
    logical = sum(infos[d].size for d in logical_from if d in infos)
    return KindUsage(len(records), stored, logical)
