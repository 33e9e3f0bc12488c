"""Push and pull: a dataset's records and its metadata, to and from a remote.

The records (files, chunks, manifests, profiles) move first, with
:func:`~syllabus.blobs.transfer.transfer_roots`: only what the other side lacks, in
parallel, resumable. The metadata follows only once they are durable there: a push then
publishes a merged version index on the remote (:mod:`syllabus.datasets.remote_index`), a
pull imports the remote's versions and tags into the local database in one transaction.
An interrupted push or pull therefore leaves either no new metadata or complete versions.

Nothing is overwritten: a version number that names different versions here and on the
remote is a *conflict*, reported and left as it is on both sides (naming one such version
explicitly, ``churn@4``, is an error). Tags move to the most recently set pointer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from syllabus.blobs.backend import RefBackend
from syllabus.blobs.digest import Digest
from syllabus.blobs.store import BlobStore, open_blob_store
from syllabus.blobs.transfer import TransferReport, transfer_roots
from syllabus.datasets.models import (
    DatasetSummary,
    DatasetVersion,
    Remote,
    TransferResult,
)
from syllabus.datasets.remote_index import (
    RemoteIndex,
    merge_indexes,
    read_index,
    remote_dataset_names,
    write_index,
)
from syllabus.errors import (
    ConflictError,
    InvalidReferenceError,
    NotFoundError,
    StorageError,
)
from syllabus.refs import Ref, SelectorKind, parse_ref
from syllabus.types import ProgressCallback

if TYPE_CHECKING:
    from syllabus.datasets.service import DatasetService

__all__ = ["pull", "push", "remote_datasets"]


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ms / 1000))


def _who(v: DatasetVersion) -> str:
    text = f"added by {v.author} on {_when(v.created_at)}"
    return f"{text}, {v.message!r}" if v.message else text


def _conflict(here: DatasetVersion, there: DatasetVersion, remote: str, verb: str) -> str:
    return (
        f"{here.ref} differs here ({_who(here)}) and on remote {remote!r} ({_who(there)}); "
        f"not {verb}"
    )


def _refs(store: BlobStore, remote: Remote) -> RefBackend:
    backend = store.backend
    if not isinstance(backend, RefBackend):
        raise StorageError(f"remote {remote.name!r} ({remote.url}) cannot hold dataset metadata")
    return backend


def _result(
    ref: str,
    remote: Remote,
    report: TransferReport,
    *,
    versions: Sequence[int],
    tags: Sequence[str],
    conflicts: Sequence[str],
) -> TransferResult:
    return TransferResult(
        ref,
        remote.name,
        report.copied,
        report.copied_bytes,
        report.skipped,
        report.skipped_bytes,
        tuple(sorted(versions)),
        tuple(tags),
        tuple(conflicts),
    )


def _portable(v: DatasetVersion) -> DatasetVersion:
    """What of a version travels (no local row ids, tags or deletion)."""
    return replace(v, dataset_id="", tags=(), deleted_at=None)


def _roots(versions: Sequence[DatasetVersion]) -> list[Digest]:
    roots = []
    for v in versions:
        roots.append(Digest(v.tree))
        if v.profiles:
            roots.append(Digest(v.profiles))
    return roots


def _open(svc: DatasetService, remote: Remote) -> BlobStore:
    return open_blob_store(remote.url, endpoint_url=svc.s3_endpoint_url)


def push(
    svc: DatasetService, ref: str, remote_name: str | None, progress: ProgressCallback
) -> TransferResult:
    remote = svc.remote(remote_name)
    name = parse_ref(ref).name
    explicit = "@" in ref
    versions = [svc.resolve(ref)] if explicit else svc.list_versions(name)
    with _open(svc, remote) as dst:
        refs = _refs(dst, remote)
        found = read_index(refs, name, where=dst.url)
        there = found.index.by_number() if found.index else {}
        conflicts = [_conflict(a, b, remote.name, "pulled") for a, b in found.conflicts]
        publish: list[DatasetVersion] = []
        for v in versions:
            other = there.get(v.version)
            if other is not None and other.id != v.id:
                line = _conflict(v, other, remote.name, "pushed")
                if explicit:
                    raise ConflictError(line)
                conflicts.append(line)
            else:
                publish.append(v)
        roots = _roots(publish)
        lacking = svc.blobs.missing(roots)
        if lacking:
            raise StorageError(
                f"{ref}: {len(lacking)} manifest(s) are not in the local blob store; "
                "pull them first or run `syllabus store fsck`"
            )
        report = transfer_roots(svc.blobs, dst, roots, jobs=svc.jobs, progress=progress)
        # The records are durable on the remote (the transfer flushed it): publish.
        ids = {v.id for v in publish}
        mine = RemoteIndex(
            name,
            tuple(_portable(v) for v in publish),
            tuple(t for t in svc.store.list_tags(name) if t.version_id in ids),
        )
        merged, _ = merge_indexes(name, [found.index, mine] if found.index else [mine])
        before = found.index.tagged() if found.index else {}
        moved = [
            f"{t.tag} -> {name}@{t.version}"
            for t in merged.tags
            if (old := before.get(t.tag)) is None or old.version_id != t.version_id
        ]
        new = [v.version for v in publish if there.get(v.version) is None]
        write_index(refs, merged, found.refs)
    return _result(ref, remote, report, versions=new, tags=moved, conflicts=conflicts)


def _select(index: RemoteIndex, parsed: Ref, ref: str, remote: Remote) -> list[DatasetVersion]:
    numbers = index.by_number()
    latest = max(numbers) if numbers else None
    hint = f"latest there is {latest}" if latest else "it has no versions"
    if parsed.kind is SelectorKind.VERSION:
        assert parsed.version is not None
        if parsed.version not in numbers:
            raise NotFoundError(f"remote {remote.name!r} has no {ref} ({hint})")
        return [numbers[parsed.version]]
    if parsed.kind is SelectorKind.LATEST:
        if "@" not in ref:
            return list(index.versions)
        return [numbers[latest]] if latest else []
    if parsed.kind is SelectorKind.ALIAS:
        tag = index.tagged().get(parsed.alias or "")
        if tag is None:
            raise NotFoundError(f"remote {remote.name!r} has no tag {ref} ({hint})")
        return [numbers[tag.version]]
    raise InvalidReferenceError(
        f"datasets have no stages: use {parsed.name}@<version>, @latest or @<tag>"
    )


def pull(
    svc: DatasetService, ref: str, remote_name: str | None, progress: ProgressCallback
) -> TransferResult:
    remote = svc.remote(remote_name)
    parsed = parse_ref(ref)
    name = parsed.name
    with _open(svc, remote) as src:
        found = read_index(_refs(src, remote), name, where=src.url)
        if found.index is None:
            return _pull_records_only(svc, src, ref, remote, progress)
        wanted = _select(found.index, parsed, ref, remote)
        conflicts = [_conflict(a, b, remote.name, "pulled") for a, b in found.conflicts]
        local = svc.store.list_versions(name, include_deleted=True)
        by_id = {v.id for v in local}
        by_number = {v.version: v for v in local}
        take: list[DatasetVersion] = []
        for v in wanted:
            mine = by_number.get(v.version)
            if v.id not in by_id and mine is not None:
                line = _conflict(mine, v, remote.name, "pulled")
                if "@" in ref:
                    raise ConflictError(line)
                conflicts.append(line)
            else:
                take.append(v)
        roots = _roots(take)
        absent = src.missing(roots)
        if absent:
            raise NotFoundError(
                f"remote {remote.name!r} lacks {len(absent)} manifest(s) of {ref}; "
                "push them from a store that has them"
            )
        report = transfer_roots(src, svc.blobs, roots, jobs=svc.jobs, progress=progress)
    svc.blobs.flush()  # the records are durable here before the versions name them
    imported, clashing = svc.store.import_versions(name, [v for v in take if v.id not in by_id])
    for v in clashing:  # taken by a local add since we looked
        mine = svc.store.get_version(name, v.version, include_deleted=True)
        if mine is not None:
            conflicts.append(_conflict(mine, v, remote.name, "pulled"))
    moved = _pull_tags(svc, name, found.index, {v.id for v in take})
    return _result(
        ref,
        remote,
        report,
        versions=[v.version for v in imported],
        tags=moved,
        conflicts=conflicts,
    )


def _pull_tags(svc: DatasetService, name: str, index: RemoteIndex, ids: set[str]) -> list[str]:
    """Set the remote's tags of the pulled versions here, unless set here more recently."""
    live = {v.id for v in svc.store.list_versions(name)}
    here = {t.tag: t for t in svc.store.list_tags(name)}
    moved = []
    for t in index.tags:
        if t.version_id not in ids or t.version_id not in live:
            continue
        mine = here.get(t.tag)
        if mine is None or (mine.version_id != t.version_id and t.set_at > mine.set_at):
            svc.store.set_tag(t.version_id, t.tag, at_ms=t.set_at)
            moved.append(f"{t.tag} -> {name}@{t.version}")
    return moved


def _pull_records_only(
    svc: DatasetService, src: BlobStore, ref: str, remote: Remote, progress: ProgressCallback
) -> TransferResult:
    """A remote without an index of the dataset (pushed before indexes existed, or by a
    workspace sharing this database): fetch the records of the versions known here."""
    name = parse_ref(ref).name
    if svc.store.get_dataset(name) is None:
        raise NotFoundError(
            f"remote {remote.name!r} has no dataset {name!r}; see "
            f"`syllabus data list --remote {remote.name}`"
        )
    versions = [svc.resolve(ref)] if "@" in ref else svc.list_versions(name)
    roots = _roots(versions)
    absent = src.missing(roots)
    if absent:
        raise NotFoundError(
            f"remote {remote.name!r} lacks {len(absent)} manifest(s) of {ref}; "
            "push them from a store that has them"
        )
    report = transfer_roots(src, svc.blobs, roots, jobs=svc.jobs, progress=progress)
    return _result(ref, remote, report, versions=(), tags=(), conflicts=())


def remote_datasets(svc: DatasetService, remote_name: str | None) -> list[DatasetSummary]:
    """The datasets published on a remote, with their latest version there."""
    remote = svc.remote(remote_name)
    out = []
    with _open(svc, remote) as store:
        refs = _refs(store, remote)
        for name in remote_dataset_names(refs):
            index = read_index(refs, name, where=store.url).index
            if index is None or not index.versions:
                continue
            last = index.versions[-1]
            out.append(
                DatasetSummary(
                    name,
                    len(index.versions),
                    last.version,
                    last.size,
                    last.file_count,
                    last.created_at,
                )
            )
    return out
