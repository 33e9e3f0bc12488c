"""Records in an S3 bucket (AWS or any S3-compatible store: MinIO, Ceph, moto).

The layout under ``s3://bucket/prefix`` is the local one, in objects::

    packs/<id>.pack     a whole pack (see :mod:`syllabus.blobs.pack`), uploaded in one PUT
    packs/<id>.idx      its index, uploaded only after the pack: the commit point
    loose/ab/cdef...    one record (header and payload) per object, for large records
    refs/...            named objects (``RefBackend``): what a remote publishes by name

Small records are buffered in memory and sealed into a pack when the buffer reaches
:data:`PACK_TARGET` bytes or on :meth:`S3Backend.flush`. A pack whose index is missing
(a writer died between the two PUTs) is invisible garbage. Packs are never modified: a
delete repacks the live records of the packs it touches into a new pack, commits it, and
only then removes the old index and pack.

The index of every pack is listed and loaded lazily (concurrently) on first use and
refreshed when a lookup misses, so records flushed by another process become visible.
Packed records are read with ranged GETs, adjacent records of one pack in a single GET.

Requests, keys and their one-line errors are in :mod:`syllabus.blobs.s3io`.

Garbage collection: unlike the local folder (:mod:`syllabus.blobs.gclock`), an S3 store has
no lock between writers and a deleting gc, so ``gc_guard`` refuses and a deleting gc needs
``force=True`` from a caller who has stopped every other writer. (A writer that found a
record already stored, and has not yet referenced it, would otherwise lose it.) Lease
objects under ``locks/`` would lift this; they are not written yet.

boto3 is imported only when a backend is made, so the core install works without the
``[s3]`` extra. Credentials and region come from the usual AWS environment variables or
profiles; ``endpoint_url`` (or ``AWS_ENDPOINT_URL``) points at an S3-compatible store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self, TypeVar

from syllabus._utils.ids import id_timestamp_ms, is_id, new_id
from syllabus.blobs.backend import LOOSE_MIN, Flags, ObjectInfo, Record, check_ref_name
from syllabus.blobs.digest import Digest
from syllabus.blobs.pack import (
    INDEX_ENTRY,
    INDEX_MAGIC,
    PACK_MAGIC,
    RECORD_HEADER,
    IndexEntry,
    decode_index,
    decode_loose,
    encode_index_entries,
    encode_loose,
    encode_record_header,
)
from syllabus.blobs.s3io import MissingObjectError, S3Objects, make_client, parse_s3_url
from syllabus.errors import (
    BlobCorruptError,
    BlobNotFoundError,
    InvalidArgumentError,
    StorageError,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["PACK_TARGET", "S3Backend", "parse_s3_url"]

log = logging.getLogger(__name__)

PACK_TARGET: Final = 64 * 1024 * 1024
"""Buffered small records are sealed into a pack object once they reach this many bytes."""

_RANGE_GAP: Final = 64 * 1024  # merge two ranged reads of a pack when this close
_RANGE_MAX: Final = 16 * 1024 * 1024  # but never into one GET larger than this
_WINDOW_RECORDS: Final = 512  # read_many resolves and fetches this many digests at once
_WINDOW_BYTES: Final = 64 * 1024 * 1024  # or this many known payload bytes
_WINDOW_UNKNOWN: Final = 8  # or this many records of unknown size (possibly large loose)
_HEAD_MAX: Final = 64  # look loose objects up one by one up to this many, else list them
# An incremental index refresh lists packs with ids from this long before the newest known
# one: more than any upload takes, or any sane clock skew between writers. A pack it misses
# makes contains() say "missing" (the record is written again, harmlessly); reads that miss
# fall back to a full listing before they give up.
_LIST_MARGIN_MS: Final = 60 * 60 * 1000
T = TypeVar("T")
U = TypeVar("U")
_Location = tuple[str, IndexEntry]


class S3Backend:
    """An :class:`~syllabus.blobs.backend.ObjectBackend` storing records in an S3 bucket.

    ``prefix`` is a folder inside the bucket (``""`` for the bucket root). Pass ``client``
    to reuse a configured boto3 S3 client; otherwise one is made from ``endpoint_url`` and
    the AWS environment. ``pack_size`` is the buffer size at which a pack is uploaded and
    ``workers`` the number of concurrent requests one call may make. Safe to share between
    threads; several processes may use the same bucket and prefix at once.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        client: S3Client | None = None,
        pack_size: int = PACK_TARGET,
        workers: int = 8,
    ) -> None:
        if not bucket or "/" in bucket:
            raise InvalidArgumentError(f"invalid S3 bucket name {bucket!r}")
        if pack_size < 1 or workers < 1:
            raise InvalidArgumentError("pack_size and workers must be at least 1")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._pack_size = pack_size
        self._workers = workers
        self._io = S3Objects(
            bucket,
            self.prefix,
            client if client is not None else make_client(endpoint_url, workers=workers),
        )

        self._lock = threading.RLock()
        self._settled = threading.Condition(self._lock)  # notified when an upload ends
        self._refresh_lock = threading.Lock()
        self._generation = 0  # bumped by every index refresh
        self._loaded = False
        self._packs: dict[str, list[IndexEntry]] = {}
        self._index: dict[Digest, _Location] = {}
        self._pending: dict[Digest, Record] = {}  # written, not yet in an upload
        self._pending_bytes = 0
        self._sealing: dict[Digest, Record] = {}  # in a pack being uploaded
        self._inflight = 0
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False

    @classmethod
    def from_url(cls, url: str, *, endpoint_url: str | None = None) -> S3Backend:
        """A backend for ``s3://bucket/prefix``."""
        bucket, prefix = parse_s3_url(url)
        return cls(bucket, prefix, endpoint_url=endpoint_url)

    # -- ObjectBackend ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def contains(self, digests: Iterable[Digest]) -> set[Digest]:
        """The subset of ``digests`` stored in the bucket, or written by this instance."""
        wanted = {Digest(d) for d in digests}
        if not wanted:
            return set()
        self._ensure_loaded()
        with self._lock:
            present = {d for d in wanted if self._known(d)}
        rest = wanted - present
        if rest:
            present |= self._loose_present(rest)
            rest -= present
        if rest:
            self._refresh()
            with self._lock:
                present |= {d for d in rest if d in self._index}
        return present

    def write(self, records: Iterable[Record]) -> None:
        """Buffer small records for the next pack; upload large ones as loose objects now."""
        loaded = False
        for record in records:
            if len(record.payload) >= LOOSE_MIN:
                self._write_loose(record)
                continue
            if not loaded:
                self._ensure_loaded()
                loaded = True
            batch: list[Record] | None = None
            with self._lock:
                self._check_open()
                if self._known(record.digest):
                    continue
                self._pending[record.digest] = record
                self._pending_bytes += RECORD_HEADER.size + len(record.payload)
                if self._pending_bytes >= self._pack_size:
                    batch = self._take_pending()
            if batch:
                self._upload_pack([(r, None) for r in batch], buffered=True)

    def flush(self) -> None:
        """Upload buffered records as a pack and its index; wait for uploads in progress."""
        # Two passes: the second retries records a failed concurrent upload handed back.
        for _ in range(2):
            with self._lock:
                batch = self._take_pending() if self._pending else None
            if batch:
                self._upload_pack([(r, None) for r in batch], buffered=True)
            with self._lock:
                while self._inflight:
                    self._settled.wait()
                if not self._pending:
                    return

    def read(self, digest: Digest) -> Record:
        """The stored record; raises :class:`BlobNotFoundError`."""
        return next(self.read_many([digest]))

    def read_many(self, digests: Iterable[Digest]) -> Iterator[Record]:
        """Records in the given order, fetched in windows of concurrent (ranged) GETs."""
        self._ensure_loaded()
        window: list[Digest] = []
        known_bytes = unknown = 0
        for raw in digests:
            digest = Digest(raw)
            window.append(digest)
            with self._lock:
                loc = self._index.get(digest)
                known = loc is not None or self._known(digest)
            if loc is not None:
                known_bytes += loc[1].stored_len
            elif not known:
                unknown += 1
            if (
                len(window) >= _WINDOW_RECORDS
                or known_bytes >= _WINDOW_BYTES
                or unknown >= _WINDOW_UNKNOWN
            ):
                yield from self._read_window(window)
                window, known_bytes, unknown = [], 0, 0
        if window:
            yield from self._read_window(window)

    def info(self, digest: Digest) -> ObjectInfo:
        """Metadata of one record; raises :class:`BlobNotFoundError`."""
        digest = Digest(digest)
        self._ensure_loaded()
        found = self._info_cached(digest)
        if found is None:
            found = self._loose_info(digest)
        for force in (False, True):
            if found is None:
                self._refresh(force=force)
                found = self._info_cached(digest)
        if found is None:
            raise self._not_found(digest)
        return found

    def iter_info(self) -> Iterator[ObjectInfo]:
        """Every committed record (packed, then loose), each digest once."""
        self._refresh(force=True)
        with self._lock:
            packed = [entry for _, entry in self._index.values()]
        seen: set[Digest] = set()
        for entry in packed:
            seen.add(entry.digest)
            yield entry.info()
        todo = [d for d in self._list_loose() if d not in seen]
        for start in range(0, len(todo), _HEAD_MAX):
            for found in self._map(self._loose_info, todo[start : start + _HEAD_MAX]):
                if found is not None and found.digest not in seen:
                    seen.add(found.digest)
                    yield found

    def delete(self, digests: Iterable[Digest]) -> int:
        """Remove records: loose objects directly, packs by repacking their live records.

        Returns the stored bytes freed (objects removed minus objects written).
        """
        targets = {Digest(d) for d in digests}
        if not targets:
            return 0
        with self._lock:
            self._check_open()
            for digest in targets & self._pending.keys():
                record = self._pending.pop(digest)
                self._pending_bytes -= RECORD_HEADER.size + len(record.payload)
        self._refresh(force=True)
        freed = self._delete_loose(targets)
        with self._lock:
            affected = sorted(
                pid
                for pid, entries in self._packs.items()
                if any(e.digest in targets for e in entries)
            )
        return freed + self._repack(affected, targets)

    # -- refs (RefBackend) ---------------------------------------------------------------

    def list_refs(self, prefix: str) -> list[str]:
        """Names of the refs under ``refs/`` starting with ``prefix``, sorted."""
        folder, _, _ = prefix.rpartition("/")
        if folder:
            check_ref_name(folder)
        return sorted(prefix + rel for rel, _, _ in self._io.list(f"refs/{prefix}"))

    def read_ref(self, name: str) -> bytes | None:
        """The bytes of a ref (None when there is none)."""
        try:
            return self._io.get(self._io.key(f"refs/{check_ref_name(name)}"))
        except MissingObjectError:
            return None

    def write_ref(self, name: str, data: bytes) -> None:
        """Create or replace a ref in one PUT."""
        self._io.put(self._io.key(f"refs/{check_ref_name(name)}"), data)

    def delete_refs(self, names: Iterable[str]) -> None:
        """Remove refs (missing ones are no error)."""
        keys = [self._io.key(f"refs/{check_ref_name(n)}") for n in names]
        if keys:
            self._io.delete_keys(keys)

    def gc_guard(self, *, timeout: float) -> AbstractContextManager[None]:
        """Always StorageError: an S3 store has no lock that keeps writers out of a gc.

        A writer in another process may have deduplicated against a record it has not
        referenced yet, and nothing here can tell; deleting needs ``force=True`` from a
        caller who knows no other process writes to the store (see ``BlobStore.gc``).
        """
        raise StorageError(
            f"gc cannot make sure that no other process is writing to {self.url} (S3 stores "
            "have no writers' lock yet), so it deleted nothing; stop every other writer and "
            "run it again with force"
        )

    def close(self) -> None:
        """Upload what is buffered and release the worker threads."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"S3Backend({self.url!r}, endpoint={self._io.endpoint!r})"

    # -- keys and S3 calls -----------------------------------------------------------------

    def _pack_key(self, pid: str) -> str:
        return self._io.key(f"packs/{pid}.pack")

    def _idx_key(self, pid: str) -> str:
        return self._io.key(f"packs/{pid}.idx")

    def _loose_key(self, digest: Digest) -> str:
        head, tail = digest.fanout()
        return self._io.key(f"loose/{head}/{tail}")

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self._workers, thread_name_prefix="syllabus-s3"
                )
            return self._executor

    def _map(self, fn: Callable[[T], U], items: Sequence[T]) -> list[U]:
        if len(items) <= 1:
            return [fn(item) for item in items]
        return list(self._pool().map(fn, items))

    # -- the pack index --------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"{self.url}: the backend is closed")

    def _known(self, digest: Digest) -> bool:
        """In the index or written by this instance (call with the lock held)."""
        return digest in self._index or digest in self._pending or digest in self._sealing

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self._refresh()

    def _refresh(self, *, force: bool = False) -> None:
        """Load the indexes of packs committed since the last look.

        The first and every ``force``d refresh list all of ``packs/`` and also forget packs
        that were deleted. Other refreshes list only packs whose (time-ordered) id is at
        most :data:`_LIST_MARGIN_MS` older than the newest known one, so a refresh costs
        one request however many packs there are; and a caller that waited for another
        thread's refresh reuses it.
        """
        with self._lock:
            generation = self._generation
        with self._refresh_lock:
            with self._lock:
                if not force and self._loaded and self._generation != generation:
                    return
                known = set(self._packs)
                full = force or not self._loaded
            start_after = None if full else self._incremental_start(known)
            listed = {
                rel[: -len(".idx")]
                for rel, _, _ in self._io.list("packs/", start_after=start_after)
                if rel.endswith(".idx") and "/" not in rel
            }
            new = sorted(listed - known)
            loaded = self._map(self._load_index, new)
            with self._lock:
                for pid, entries in zip(new, loaded, strict=True):
                    if entries is not None:
                        self._add_pack(pid, entries)
                if start_after is None:
                    self._drop_packs((known - listed) & self._packs.keys())
                self._generation += 1
                self._loaded = True
        if new:
            log.debug("%s: loaded %d pack indexes", self.url, len(new))

    def _incremental_start(self, known: set[str]) -> str | None:
        """The pack name to list after in an incremental refresh (None: list everything)."""
        stamps = [id_timestamp_ms(pid) for pid in known if is_id(pid)]
        if not stamps:
            return None
        return f"{max(0, max(stamps) - _LIST_MARGIN_MS):012x}"

    def _load_index(self, pid: str) -> list[IndexEntry] | None:
        key = self._idx_key(pid)
        try:
            data = self._io.get(key)
        except MissingObjectError:
            return None  # deleted by a repack since it was listed
        return decode_index(data, source=f"s3://{self.bucket}/{key}")

    def _add_pack(self, pid: str, entries: list[IndexEntry]) -> None:
        if pid in self._packs:
            return
        self._packs[pid] = entries
        for entry in entries:
            self._index.setdefault(entry.digest, (pid, entry))

    def _drop_packs(self, pids: Iterable[str]) -> None:
        dropped = False
        for pid in pids:
            dropped |= self._packs.pop(pid, None) is not None
        if dropped:
            index: dict[Digest, _Location] = {}
            for pid, entries in self._packs.items():
                for entry in entries:
                    index.setdefault(entry.digest, (pid, entry))
            self._index = index

    # -- writing ---------------------------------------------------------------------------

    def _take_pending(self) -> list[Record]:
        """Move the buffer into an upload (call with the lock held)."""
        batch = list(self._pending.values())
        self._sealing.update(self._pending)
        self._pending = {}
        self._pending_bytes = 0
        self._inflight += 1
        return batch

    def _upload_pack(self, items: Sequence[tuple[Record, float | None]], *, buffered: bool) -> int:
        """Upload one pack, then its index (the commit point); returns the bytes written.

        ``items`` are records with the mtime to keep (None: now). ``buffered`` records were
        taken from the buffer with :meth:`_take_pending` and go back to it if this fails.
        """
        pid = new_id()
        now = time.time()
        parts: list[bytes] = [PACK_MAGIC]
        entries: list[IndexEntry] = []
        offset = len(PACK_MAGIC)
        for record, mtime in items:
            header = encode_record_header(record)
            parts += (header, record.payload)
            offset += len(header)
            entries.append(
                IndexEntry(
                    record.digest,
                    record.flags,
                    record.size,
                    offset,
                    len(record.payload),
                    now if mtime is None else mtime,
                )
            )
            offset += len(record.payload)
        index = INDEX_MAGIC + encode_index_entries(entries)
        records = [r for r, _ in items]
        try:
            self._io.put(self._pack_key(pid), b"".join(parts))
            self._io.put(self._idx_key(pid), index)
        except BaseException:
            if buffered:
                self._settle(records, None, [])
            raise
        if buffered:
            self._settle(records, pid, entries)
        else:
            with self._lock:
                self._add_pack(pid, entries)
        log.debug("%s: committed pack %s (%d records)", self.url, pid, len(entries))
        return offset + len(index)

    def _settle(self, records: list[Record], pid: str | None, entries: list[IndexEntry]) -> None:
        """End a buffered upload: publish its pack, or hand its records back to the buffer."""
        with self._lock:
            ours = [r for r in records if self._sealing.get(r.digest) is r]
            for record in ours:
                del self._sealing[record.digest]
            if pid is not None:
                self._add_pack(pid, entries)
            else:
                for record in ours:  # the next flush retries them
                    if record.digest not in self._pending:
                        self._pending[record.digest] = record
                        self._pending_bytes += RECORD_HEADER.size + len(record.payload)
            self._inflight -= 1
            self._settled.notify_all()

    def _write_loose(self, record: Record) -> None:
        with self._lock:
            self._check_open()
        key = self._loose_key(record.digest)
        if self._loose_present([record.digest]):
            return
        self._io.put(key, encode_loose(record))

    # -- reading ---------------------------------------------------------------------------

    def _not_found(self, digest: Digest) -> BlobNotFoundError:
        return BlobNotFoundError(f"content id {digest} is not in {self.url}")

    def _read_window(self, window: list[Digest]) -> Iterator[Record]:
        found: dict[Digest, Record] = {}
        located: dict[Digest, _Location] = {}
        unknown: list[Digest] = []
        self._classify(dict.fromkeys(window), found, located, unknown)
        if unknown:
            missing: list[Digest] = []
            for digest, loose in zip(unknown, self._map(self._get_loose, unknown), strict=True):
                if loose is None:
                    missing.append(digest)
                else:
                    found[digest] = loose
            if missing:
                self._refresh()
                still: list[Digest] = []
                self._classify(missing, found, located, still)
                if still:
                    self._refresh(force=True)
                    self._classify(still, found, located, [])
        if located:
            gone = self._fetch_packed(located, found)
            if gone:  # a pack was repacked away since we loaded its index
                self._refresh(force=True)
                retry: dict[Digest, _Location] = {}
                self._classify(gone, found, retry, [])
                self._fetch_packed(retry, found)
        for digest in window:
            record = found.get(digest)
            if record is None:
                raise self._not_found(digest)
            yield record

    def _classify(
        self,
        digests: Iterable[Digest],
        found: dict[Digest, Record],
        located: dict[Digest, _Location],
        unknown: list[Digest],
    ) -> None:
        with self._lock:
            for digest in digests:
                if digest in found:
                    continue
                record = self._pending.get(digest) or self._sealing.get(digest)
                if record is not None:
                    found[digest] = record
                elif (loc := self._index.get(digest)) is not None:
                    located[digest] = loc
                else:
                    unknown.append(digest)

    def _fetch_packed(
        self, located: dict[Digest, _Location], found: dict[Digest, Record]
    ) -> list[Digest]:
        """Fill ``found`` from packs with merged ranged GETs; returns digests whose pack is gone."""
        by_pack: dict[str, list[IndexEntry]] = {}
        for pid, entry in located.values():
            by_pack.setdefault(pid, []).append(entry)
        spans: list[tuple[str, int, int, list[IndexEntry]]] = []
        for pid, entries in by_pack.items():
            entries.sort(key=lambda e: e.offset)
            current: list[IndexEntry] = []
            start = end = 0
            for entry in entries:
                e_end = entry.offset + entry.stored_len
                if current and entry.offset - end <= _RANGE_GAP and e_end - start <= _RANGE_MAX:
                    current.append(entry)
                    end = max(end, e_end)
                    continue
                if current:
                    spans.append((pid, start, end, current))
                current, start, end = [entry], entry.offset, e_end
            spans.append((pid, start, end, current))

        def fetch(span: tuple[str, int, int, list[IndexEntry]]) -> bytes | None:
            pid, start, end, _ = span
            if end == start:
                return b""
            try:
                return self._io.get(self._pack_key(pid), (start, end))
            except MissingObjectError:
                return None

        gone: list[Digest] = []
        for span, data in zip(spans, self._map(fetch, spans), strict=True):
            _, start, _, entries = span
            for entry in entries:
                if data is None:
                    gone.append(entry.digest)
                    continue
                lo = entry.offset - start
                payload = data[lo : lo + entry.stored_len]
                found[entry.digest] = Record(entry.digest, entry.flags, entry.size, payload)
        return gone

    def _get_loose(self, digest: Digest) -> Record | None:
        key = self._loose_key(digest)
        try:
            data = self._io.get(key)
        except MissingObjectError:
            return None
        source = f"s3://{self.bucket}/{key}"
        record = decode_loose(data, source=source)
        if record.digest != digest:
            raise BlobCorruptError(f"{source} holds the record of {record.digest}, not {digest}")
        return record

    def _info_cached(self, digest: Digest) -> ObjectInfo | None:
        with self._lock:
            record = self._pending.get(digest) or self._sealing.get(digest)
            if record is not None:
                return ObjectInfo(
                    digest, record.flags, record.size, len(record.payload), time.time()
                )
            loc = self._index.get(digest)
        return None if loc is None else loc[1].info()

    def _loose_info(self, digest: Digest) -> ObjectInfo | None:
        key = self._loose_key(digest)

        def request() -> tuple[bytes, float]:
            response = self._io.client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes=0-{RECORD_HEADER.size - 1}"
            )
            return response["Body"].read(), response["LastModified"].timestamp()

        try:
            header, mtime = self._io.call("read", key, request)
        except MissingObjectError:
            return None
        if len(header) != RECORD_HEADER.size:
            raise StorageError(f"s3://{self.bucket}/{key}: truncated (no record header)")
        raw, flags, size, stored_len = RECORD_HEADER.unpack(header)
        if raw != digest.to_bytes():
            raise BlobCorruptError(
                f"s3://{self.bucket}/{key} holds the record of {raw.hex()}, not {digest}"
            )
        return ObjectInfo(digest, Flags(flags), size, stored_len, mtime)

    def _head_loose(self, digest: Digest) -> int | None:
        return self._io.head_size(self._loose_key(digest))

    def _loose_sizes(self, digests: Iterable[Digest]) -> dict[Digest, int]:
        """Object sizes of the loose objects among ``digests``."""
        wanted = list(digests)
        if len(wanted) <= _HEAD_MAX:
            sizes = self._map(self._head_loose, wanted)
            return {d: s for d, s in zip(wanted, sizes, strict=True) if s is not None}
        listed = self._list_loose()
        return {d: listed[d] for d in wanted if d in listed}

    def _loose_present(self, digests: Iterable[Digest]) -> set[Digest]:
        return set(self._loose_sizes(digests))

    def _list_loose(self) -> dict[Digest, int]:
        out: dict[Digest, int] = {}
        for rel, size, _ in self._io.list("loose/"):
            head, _, tail = rel.partition("/")
            try:
                out[Digest(head + tail)] = size
            except InvalidArgumentError:
                log.warning("%s: ignoring stray object loose/%s", self.url, rel)
        return out

    # -- deleting --------------------------------------------------------------------------

    def _delete_loose(self, targets: set[Digest]) -> int:
        sizes = self._loose_sizes(targets)
        self._io.delete_keys([self._loose_key(d) for d in sorted(sizes)])
        return sum(sizes.values())

    def _repack(self, pids: Sequence[str], targets: set[Digest]) -> int:
        """Rewrite the live records of ``pids`` into new packs, then delete the old ones."""
        freed = 0
        live: list[tuple[Record, float | None]] = []
        live_bytes = 0
        kept: set[Digest] = set()
        done: list[str] = []

        def commit() -> int:
            nonlocal live, live_bytes
            written = 0
            if live:
                written = self._upload_pack(live, buffered=False)
            with self._lock:
                self._drop_packs(done)
            self._io.delete_keys([self._idx_key(p) for p in done])  # unpublish first
            self._io.delete_keys([self._pack_key(p) for p in done])
            done.clear()
            live, live_bytes = [], 0
            return written

        for pid in pids:
            with self._lock:
                entries = list(self._packs.get(pid, []))
            try:
                data = self._io.get(self._pack_key(pid))
            except MissingObjectError:
                data = None  # already repacked by someone else: drop its index too
            if data is not None:
                for entry in entries:
                    if entry.digest in targets or entry.digest in kept:
                        continue
                    payload = data[entry.offset : entry.offset + entry.stored_len]
                    if len(payload) != entry.stored_len:
                        raise StorageError(
                            f"s3://{self.bucket}/{self._pack_key(pid)} is shorter than its "
                            f"index says ({len(data)} bytes)"
                        )
                    kept.add(entry.digest)
                    live.append(
                        (Record(entry.digest, entry.flags, entry.size, payload), entry.mtime)
                    )
                    live_bytes += RECORD_HEADER.size + entry.stored_len
                freed += len(data)
            freed += len(INDEX_MAGIC) + INDEX_ENTRY * len(entries)
            done.append(pid)
            if live_bytes >= self._pack_size:
                freed -= commit()
        if done or live:
            freed -= commit()
        return max(freed, 0)
