"""The file-level blob store: content ids, chunking, compression and verified reads.

:class:`BlobStore` works over any :class:`~syllabus.blobs.backend.ObjectBackend`. A content
id is always the BLAKE3 of the logical content, so ``b3sum file`` gives the id of a stored
file. Files up to :data:`~syllabus.blobs.chunking.WHOLE_MAX` are one record; larger ones
are cut by content-defined chunking into one record per chunk plus a ``CHUNKLIST`` record
under the file's id (format in :mod:`syllabus.blobs.records`). Chunks already present are
not written again, so a re-ingest after a small edit writes only the touched chunks.

``put_file`` on a large file mmaps it and overlaps the work: the chunker (which holds the
GIL) runs on the calling thread while worker threads hash chunks, compress where it pays
and append to the backend, and one more hashes the whole file with BLAKE3's own threads.
While the chunker runs the GIL switch interval is short (see :mod:`syllabus.blobs.tuning`).
``put_file`` and ``put_tree`` return once their objects are durable; ``put_bytes`` is
buffered until :meth:`BlobStore.flush` (or ``close``).

Maintenance (``verify``, ``gc``, ``du``) lives in :mod:`syllabus.blobs.maintenance`.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import json
import logging
import mmap
import os
import stat
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, cast
from urllib.parse import unquote, urlparse

import blake3

from syllabus._utils.ids import new_id
from syllabus.blobs.backend import Flags, ObjectBackend, Record
from syllabus.blobs.chunking import WHOLE_MAX, chunk_spans
from syllabus.blobs.digest import Digest, hash_bytes
from syllabus.blobs.maintenance import (
    GC_TIMEOUT,
    DiskUsage,
    GcReport,
    Keep,
    VerifyReport,
    du,
    gc,
    verify,
)
from syllabus.blobs.manifest import MANIFEST_MAGIC, Manifest, ManifestEntry, check_link_target
from syllabus.blobs.reader import BlobReader
from syllabus.blobs.records import (
    decode_chunklist,
    encode_borrowed,
    encode_chunklist,
    encode_payload,
    encode_small_payloads,
    logical_bytes,
)
from syllabus.blobs.tuning import short_switch_interval
from syllabus.errors import (
    BlobNotFoundError,
    InvalidArgumentError,
    PathEscapeError,
    StorageError,
)
from syllabus.types import ProgressCallback, null_progress

__all__ = ["BlobStore", "FileEntry", "IgnoreSpec", "Tree", "open_blob_store"]

log = logging.getLogger(__name__)

IgnoreSpec = Callable[[str], bool] | Sequence[str] | None
"""What ``put_tree`` skips: a predicate on the relative POSIX path, or glob patterns
matched against the relative path and against the base name (``"*.tmp"``, ``".git"``)."""

_BATCH_BYTES = 32 * 1024 * 1024  # chunk bytes handed to a worker at once
_TREE_BATCH_FILES = 256
_PARALLEL_MIN_AVG = 64 * 1024
"""Batches of files this large on average are stored on worker threads. Smaller files
are read and hashed on the calling thread: per file that is a few system calls and a hash
that holds the GIL (BLAKE3 releases it only for large inputs), and on two cores the GIL
handoffs between threads around every system call cost more than the overlap gains (10,000
files of 1 KiB: 0.36-0.44 s of CPU time for the add on one thread, 0.51-0.61 s in the pool)."""
_COPY_BUFFER = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A stored file: its content id and size."""

    digest: Digest
    size: int


@dataclass(frozen=True, slots=True)
class Tree:
    """A stored folder: the content id of its manifest, and the manifest."""

    digest: Digest
    manifest: Manifest


def _is_ignored(rel: str, ignore: IgnoreSpec) -> bool:
    if ignore is None:
        return False
    if callable(ignore):
        return bool(ignore(rel))
    base = rel.rpartition("/")[2]
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(base, p) for p in ignore)


class BlobStore:
    """Content-addressed storage of byte strings, files and folders over an ObjectBackend.

    Thread-safe; usable from several processes on the same backend. Use as a context
    manager or call :meth:`close`.
    """

    def __init__(self, backend: ObjectBackend, *, threads: int | None = None) -> None:
        self.backend = backend
        self._threads = threads or max(2, os.cpu_count() or 2)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = os.getpid()
        self._pool_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"BlobStore({self.backend.url!r})"

    @property
    def url(self) -> str:
        """Where the backend stores."""
        return self.backend.url

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool_pid != os.getpid():  # threads do not survive fork
            self._pool, self._pool_pid, self._pool_lock = None, os.getpid(), threading.Lock()
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="syllabus-blobs")
            return self._pool

    # -- writing ------------------------------------------------------------------------

    def _whole_record(self, data: bytes | memoryview, digest: Digest | None = None) -> Record:
        digest = digest or hash_bytes(data)
        flags, payload = encode_payload(data)
        return Record(digest, flags, len(data), payload)

    def put_bytes(self, data: bytes | bytearray | memoryview) -> Digest:
        """Store bytes (chunked when large); returns their content id. Durable after flush()."""
        view = memoryview(data).cast("B")
        if len(view) <= WHOLE_MAX:
            digest = hash_bytes(view)
            if not self.backend.contains([digest]):
                self.backend.write([self._whole_record(view, digest)])
            return digest
        whole = blake3.blake3(max_threads=blake3.blake3.AUTO)
        whole.update(view)
        digest = Digest.from_bytes(whole.digest())
        if not self.backend.contains([digest]):
            refs = self._store_chunks(view, list(chunk_spans(view)))
            self._write_chunklist(digest, len(view), refs)
        return digest

    def _store_chunks(
        self, view: memoryview | mmap.mmap, spans: list[tuple[int, int]]
    ) -> list[tuple[Digest, int]]:
        """Hash chunks, write the ones the backend lacks; returns ``[(digest, length)]``."""
        # A backend that writes through on request takes the chunks' bytes straight from
        # ``view`` (the mapped file): no copy of each chunk in memory.
        write_through = getattr(self.backend, "write_through", None)
        with memoryview(view) as mv:
            refs = [(hash_bytes(mv[o : o + n]), n) for o, n in spans]
            present = self.backend.contains({d for d, _ in refs})
            records = []
            for (digest, n), (o, _) in zip(refs, spans, strict=True):
                if digest not in present:
                    present.add(digest)
                    if write_through is None:
                        flags, payload = encode_payload(mv[o : o + n])
                    else:
                        flags, borrowed = encode_borrowed(mv[o : o + n])
                        payload = cast(bytes, borrowed)  # written before ``mv`` is released
                    records.append(Record(digest, flags, n, payload))
            if records:
                if write_through is None:
                    self.backend.write(records)
                else:
                    write_through(records)
            del records
        return refs

    def _write_chunklist(self, digest: Digest, size: int, refs: list[tuple[Digest, int]]) -> None:
        flags, payload = encode_payload(encode_chunklist(refs))
        self.backend.write([Record(digest, flags | Flags.CHUNKLIST, size, payload)])

    def put_file(
        self, path: Path | str, *, progress: ProgressCallback = null_progress
    ) -> FileEntry:
        """Store one file; returns its content id (``b3sum``) and size, durably."""
        entry = self._put_file(Path(path), progress)
        self.backend.flush()
        return entry

    def _put_file(self, path: Path, progress: ProgressCallback) -> FileEntry:
        try:
            with path.open("rb") as fh:
                before = os.fstat(fh.fileno())
                if before.st_size <= WHOLE_MAX:
                    data = fh.read()
                    digest = hash_bytes(data)
                    if not self.backend.contains([digest]):
                        self.backend.write([self._whole_record(data, digest)])
                    progress(len(data), len(data))
                    return FileEntry(digest, len(data))
                with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                    entry = self._put_mapped(mm, progress)
                after = os.fstat(fh.fileno())
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise StorageError(f"{path} changed while it was being stored; store it again")
        return entry

    def _put_mapped(self, mm: mmap.mmap, progress: ProgressCallback) -> FileEntry:
        pool = self._executor()
        size = len(mm)

        def whole_digest() -> Digest:
            h = blake3.blake3(max_threads=blake3.blake3.AUTO)
            h.update(mm)
            return Digest.from_bytes(h.digest())

        digest_future = pool.submit(whole_digest)
        futures: list[tuple[Future[list[tuple[Digest, int]]], int]] = []
        reported = 0
        batch: list[tuple[int, int]] = []
        batch_bytes = 0
        with memoryview(mm) as view, short_switch_interval():
            for span in chunk_spans(view):
                batch.append(span)
                batch_bytes += span[1]
                if batch_bytes >= _BATCH_BYTES:
                    futures.append((pool.submit(self._store_chunks, mm, batch), batch_bytes))
                    batch, batch_bytes = [], 0
                    while reported < len(futures) - 1 and futures[reported][0].done():
                        progress(futures[reported][1], size)
                        reported += 1
        if batch:
            futures.append((pool.submit(self._store_chunks, mm, batch), batch_bytes))
        refs: list[tuple[Digest, int]] = []
        for i, (future, n) in enumerate(futures):
            refs.extend(future.result())
            if i >= reported:
                progress(n, size)
        digest = digest_future.result()
        if not self.backend.contains([digest]):
            self._write_chunklist(digest, size, refs)
        return FileEntry(digest, size)

    def put_files(
        self,
        paths: Sequence[Path | str],
        *,
        sizes: Sequence[int] | None = None,
        progress: ProgressCallback = null_progress,
        flush: bool = True,
    ) -> list[FileEntry]:
        """Store several files; returns their entries in the order of ``paths``.

        Files up to WHOLE_MAX are read and hashed in batches: on worker threads when they
        average :data:`_PARALLEL_MIN_AVG` bytes or more, else on the calling thread. Larger
        files are chunked one after the other. Everything becomes durable with one flush at
        the end (``flush=False`` leaves that to the caller's :meth:`flush`, so that it can
        store more first). ``sizes``: the files' sizes as just listed, which saves a
        ``stat`` each (a file that has changed size since is still stored whole and
        exactly). Progress counts bytes.
        """
        if sizes is None:
            sizes = [_size_of(p) for p in paths]
        elif len(sizes) != len(paths):
            raise InvalidArgumentError("put_files: sizes and paths differ in length")
        total = sum(sizes)
        out: list[FileEntry | None] = [None] * len(paths)
        small: list[tuple[int, str, int]] = []
        for i, (path, size) in enumerate(zip(paths, sizes, strict=True)):
            if size <= WHOLE_MAX:
                small.append((i, os.fspath(path), size))
            else:
                out[i] = self._put_file(Path(path), lambda n, _t: progress(n, total))
        batches = [
            small[i : i + _TREE_BATCH_FILES] for i in range(0, len(small), _TREE_BATCH_FILES)
        ]
        small_bytes = sum(size for _, _, size in small)
        if len(batches) > 1 and small_bytes >= _PARALLEL_MIN_AVG * len(small):
            results: Iterable[list[FileEntry]] = self._executor().map(
                self._put_small_batch, batches
            )
        else:
            results = map(self._put_small_batch, batches)
        for batch, stored in zip(batches, results, strict=True):
            for (i, _, _), entry in zip(batch, stored, strict=True):
                out[i] = entry
            progress(sum(e.size for e in stored), total)
        if flush:
            self.backend.flush()
        return out  # type: ignore[return-value]  # every slot is filled above

    def put_tree(
        self,
        folder: Path | str,
        *,
        progress: ProgressCallback = null_progress,
        ignore: IgnoreSpec = None,
    ) -> Tree:
        """Store a folder's files, links and empty folders and its manifest; returns the
        tree, durably.

        Symbolic links are kept as links when their target stays inside ``folder``
        (PathEscapeError otherwise); sockets, FIFOs and devices are skipped. Progress
        counts bytes of files.
        """
        root = Path(folder)
        if not root.is_dir():
            raise InvalidArgumentError(f"{root} is not a folder")
        files, others = _scan(root, ignore)
        stored = self.put_files(
            [path for _, path, _, _ in files],
            sizes=[size for _, _, size, _ in files],
            progress=progress,
            flush=False,
        )
        entries: list[ManifestEntry] = list(others)
        for (rel, _, _, executable), entry in zip(files, stored, strict=True):
            entries.append(ManifestEntry.file(rel, entry.digest, entry.size, executable=executable))
        manifest = Manifest(entries, validated=True)  # from the checking constructors
        digest = self.put_bytes(manifest.serialize())
        self.backend.flush()
        return Tree(digest, manifest)

    def _put_small_batch(self, batch: list[tuple[int, str, int]]) -> list[FileEntry]:
        # The per-file loop of a folder of small files: names bound once, digests made
        # from the raw hash without re-validating them (tens of thousands of calls).
        datas = _read_small_files(batch)
        blake, new_digest = blake3.blake3, str.__new__
        digests = [new_digest(Digest, blake(data).hexdigest()) for data in datas]
        present = self.backend.contains(set(digests))
        fresh: dict[Digest, bytes] = {}
        for digest, data in zip(digests, datas, strict=True):
            if digest not in present and digest not in fresh:
                fresh[digest] = data
        if fresh:
            payloads = encode_small_payloads(list(fresh.values()))
            self.backend.write(
                [
                    Record(digest, flags, len(data), payload)
                    for (digest, data), (flags, payload) in zip(
                        fresh.items(), payloads, strict=True
                    )
                ]
            )
        return [FileEntry(d, len(data)) for d, data in zip(digests, datas, strict=True)]

    def flush(self) -> None:
        """Make everything stored so far durable."""
        self.backend.flush()

    # -- reading ------------------------------------------------------------------------

    def _record(self, digest: Digest) -> Record:
        return self.backend.read(Digest(digest))

    def open(self, digest: Digest) -> BlobReader:
        """A streaming binary reader that verifies content ids (BlobCorruptError on mismatch)."""
        digest = Digest(digest)
        return BlobReader(self.backend, digest, self._record(digest))

    def read_bytes(self, digest: Digest) -> bytes:
        """The whole content, verified."""
        with self.open(digest) as reader:
            return reader.readall()

    def get_file(
        self,
        digest: Digest,
        dest: Path | str,
        *,
        progress: ProgressCallback = null_progress,
        mode: int | None = None,
        fsync: bool = True,
    ) -> None:
        """Write a blob to ``dest`` atomically (temp file in the same folder, then rename).

        Nothing appears at ``dest`` unless every byte verified. ``mode`` sets permission bits.
        """
        dest = Path(dest)
        tmp = dest.parent / f".{dest.name}.{new_id()}.tmp"
        digest = Digest(digest)
        try:
            # The temp file is renamed only after the whole file's content id checked out,
            # so chunks need no check of their own (each byte is hashed once).
            record = self._record(digest)
            with BlobReader(self.backend, digest, record, verify_chunks=False) as reader:
                total = reader.size
                with tmp.open("wb") as out:
                    _copy(reader, out, lambda n: progress(n, total))
                    if mode is not None:
                        os.fchmod(out.fileno(), mode)
                    out.flush()
                    if fsync:
                        os.fsync(out.fileno())
            tmp.replace(dest)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def get_manifest(self, digest: Digest) -> Manifest:
        """The manifest stored under ``digest`` (validated: paths never escape)."""
        return Manifest.parse(self.read_bytes(digest), source=f"manifest {Digest(digest)}")

    def materialize(
        self,
        tree_digest: Digest,
        folder: Path | str,
        *,
        progress: ProgressCallback = null_progress,
    ) -> Manifest:
        """Write every file and link of a tree into ``folder`` (created if missing).

        Files already there are replaced; files not in the tree are left alone. A path that
        would leave ``folder`` (also through a symlink already inside it) raises
        PathEscapeError before anything is written there.
        """
        manifest = self.get_manifest(tree_digest)
        root = Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        real_root = root.resolve()
        total = manifest.total_size
        for entry in manifest.values():
            dest = root / entry.path
            # Resolve before creating anything, so a symlink already in the folder cannot
            # make mkdir create folders outside it.
            if not dest.parent.resolve().is_relative_to(real_root):
                raise PathEscapeError(f"path {entry.path!r} leaves {root} through a symlink")
            if entry.kind == "dir":
                if not dest.resolve().is_relative_to(real_root):
                    raise PathEscapeError(f"path {entry.path!r} leaves {root} through a symlink")
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            if entry.kind == "link":
                assert entry.target is not None
                tmp = dest.parent / f".{dest.name}.{new_id()}.tmp"
                tmp.symlink_to(entry.target)
                tmp.replace(dest)
                continue
            if dest.is_dir() and not dest.is_symlink():
                raise StorageError(f"cannot write {entry.path!r}: a folder is in the way in {root}")
            self.get_file(
                entry.digest,
                dest,
                mode=entry.mode,
                fsync=False,
                progress=lambda n, _t: progress(n, total),
            )
        return manifest

    # -- queries ------------------------------------------------------------------------

    def has(self, digest: Digest) -> bool:
        """True if the blob's record is stored (its chunks are checked by ``verify``)."""
        return bool(self.backend.contains([Digest(digest)]))

    def missing(self, digests: Iterable[Digest]) -> set[Digest]:
        """The subset of ``digests`` not stored."""
        wanted = {Digest(d) for d in digests}
        return wanted - self.backend.contains(wanted)

    def size(self, digest: Digest) -> int:
        """Logical size of a blob; raises BlobNotFoundError."""
        return self.backend.info(Digest(digest)).size

    def chunks(self, digest: Digest) -> list[tuple[Digest, int]] | None:
        """``[(chunk digest, length)]`` of a chunked blob, or None for a whole one."""
        record = self._record(digest)
        if not record.flags & Flags.CHUNKLIST:
            return None
        return decode_chunklist(logical_bytes(record), digest=record.digest)

    def _manifest_bytes(self, record: Record) -> bytes | None:
        """The serialized manifest ``record`` holds, or None when it holds no manifest."""
        if record.flags & Flags.CHUNKLIST:
            refs = decode_chunklist(logical_bytes(record), digest=record.digest)
            try:
                first = logical_bytes(self.backend.read(refs[0][0])) if refs else b""
            except BlobNotFoundError:
                return None  # cannot tell; dangling() and verify() report the missing chunk
            if not first.startswith(MANIFEST_MAGIC):
                return None
            return self.read_bytes(record.digest)  # BlobNotFoundError: a damaged manifest
        data = logical_bytes(record)
        return data if data.startswith(MANIFEST_MAGIC) else None

    def _sniff_manifest(self, record: Record) -> Manifest | None:
        data = self._manifest_bytes(record)
        if data is None:
            return None
        try:
            return Manifest.parse(data)
        except InvalidArgumentError:
            return None  # a file that happens to start like a manifest

    def _sniff_files(self, record: Record) -> tuple[set[Digest], set[Digest]] | None:
        """A manifest's file digests and those of its files larger than WHOLE_MAX, read
        without building (and validating the paths of) a Manifest: a transfer needs only
        these. None when ``record`` holds no manifest."""
        data = self._manifest_bytes(record)
        if data is None:
            return None
        listed = _listed_files(data)
        if listed is not None:
            return listed
        try:
            manifest = Manifest.parse(data)
        except InvalidArgumentError:
            return None
        files = manifest.values()
        return (
            {e.digest for e in files if e.kind == "file"},
            {e.digest for e in files if e.kind == "file" and e.size > WHOLE_MAX},
        )

    def _parts(self, record: Record, *, strict: bool = True, sized: bool = False) -> set[Digest]:
        """Digests ``record`` refers to, stored or not: a chunked blob's chunks; for a
        manifest also its files and, for the files that are stored chunked, their chunks.

        ``strict``: a chunked manifest that cannot be read whole raises StorageError (gc
        must not guess what it references); otherwise only its chunks are returned.
        ``sized``: trust the manifest's file sizes to tell which files may be chunked (only
        those larger than WHOLE_MAX): a transfer's shortcut, never gc's."""
        parts: set[Digest] = set()
        if record.flags & Flags.CHUNKLIST:
            refs = decode_chunklist(logical_bytes(record), digest=record.digest)
            parts.update(d for d, _ in refs)
        try:
            if sized:  # only files larger than WHOLE_MAX are stored chunked
                listed = self._sniff_files(record)
            else:
                manifest = self._sniff_manifest(record)
                listed = None if manifest is None else (manifest.file_digests(),) * 2
        except BlobNotFoundError as exc:
            if not strict:
                return parts
            raise StorageError(
                f"manifest {record.digest} is missing chunks, so what it references is "
                "unknown; run verify"
            ) from exc
        if listed is not None:
            files, maybe_chunked = listed
            parts |= files
            for digest in self.backend.contains(maybe_chunked):
                if self.backend.info(digest).flags & Flags.CHUNKLIST:
                    parts.update(d for d, _ in self.chunks(digest) or [])
        return parts

    def expand(self, roots: Iterable[Digest]) -> set[Digest]:
        """Every stored record reachable from ``roots``: trees, files, chunk lists, chunks.

        A root that is a manifest brings in its files; a chunked blob its chunks. Roots
        and parts that are not stored are left out (:meth:`dangling` lists those).
        """
        out: set[Digest] = set()
        for root in {Digest(r) for r in roots}:
            if root in out:
                continue
            try:
                record = self._record(root)
            except BlobNotFoundError:
                continue
            out.add(root)
            out |= self._parts(record, sized=True)
        return self.backend.contains(out)

    def dangling(self, roots: Iterable[Digest]) -> dict[Digest, set[Digest]]:
        """For each stored root whose parts (files, chunks) are not all stored: the missing
        ones. Roots that are not stored at all are left out (see :meth:`missing`)."""
        out: dict[Digest, set[Digest]] = {}
        for root in {Digest(r) for r in roots}:
            try:
                record = self._record(root)
            except BlobNotFoundError:
                continue
            parts = self._parts(record, strict=False)
            lacking = parts - self.backend.contains(parts)
            if lacking:
                out[root] = lacking
        return out

    # -- maintenance --------------------------------------------------------------------

    def verify(self, *, progress: ProgressCallback = null_progress) -> VerifyReport:
        """Re-hash every record; see :func:`syllabus.blobs.maintenance.verify`."""
        return verify(self, progress=progress)

    def gc(
        self,
        keep: Keep,
        *,
        grace_seconds: float,
        dry_run: bool = True,
        timeout: float = GC_TIMEOUT,
        force: bool = False,
    ) -> GcReport:
        """Delete records unreachable from ``keep`` and older than the grace period.

        ``keep``: digests, or better a function returning them, called under the store's
        writers' lock. Deleting waits up to ``timeout`` seconds for other writers to close,
        else raises StorageError; see :func:`syllabus.blobs.maintenance.gc`.
        """
        return gc(
            self,
            keep,
            grace_seconds=grace_seconds,
            dry_run=dry_run,
            timeout=timeout,
            force=force,
        )

    def du(self) -> DiskUsage:
        """Counts and bytes by record kind."""
        return du(self)

    def close(self) -> None:
        """Flush, stop worker threads and close the backend."""
        try:
            self.backend.close()
        finally:
            if self._pool is not None and self._pool_pid == os.getpid():
                self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> BlobStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _copy(reader: BlobReader, out: IO[bytes], advance: Callable[[int], None]) -> None:
    buf = bytearray(_COPY_BUFFER)
    view = memoryview(buf)
    while True:
        n = reader.readinto(view)
        if not n:
            break
        out.write(view[:n])
        advance(n)


def _size_of(path: Path | str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc


_OPEN_SMALL: Final = os.O_RDONLY | os.O_CLOEXEC
_NOATIME: Final = getattr(os, "O_NOATIME", 0)  # Linux: reading need not dirty the inode


def _read_small_files(batch: Sequence[tuple[int, str, int]]) -> list[bytes]:
    """The bytes of small files ``(_, path, size as scanned)``, one ``read`` each when a
    file still has its scanned size (os calls on string paths: pathlib's per-call overhead
    is most of the cost here). Files are opened with ``O_NOATIME`` where allowed (the
    owner's files, or with the capability), so that reading them does not make the kernel
    write 10,000 inodes back for their access times."""
    flags = _OPEN_SMALL | _NOATIME
    open_, read, close = os.open, os.read, os.close
    out: list[bytes] = []
    append = out.append
    for _, path, size in batch:
        try:
            try:
                fd = open_(path, flags)
            except PermissionError as exc:
                if exc.errno != errno.EPERM or not flags & _NOATIME:
                    raise
                flags = _OPEN_SMALL  # not ours: O_NOATIME is refused, so go without it
                fd = open_(path, flags)
            try:
                data = read(fd, size + 1)
                if len(data) > size:  # grew since the scan: read to the end
                    parts = [data]
                    while chunk := read(fd, _COPY_BUFFER):
                        parts.append(chunk)
                    data = b"".join(parts)
            finally:
                close(fd)
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc
        append(data)  # a regular file returns a short read only at its end
    return out


def _read_small(path: str, size: int) -> bytes:
    """One small file's bytes (see :func:`_read_small_files`)."""
    return _read_small_files([(0, path, size)])[0]


def _scan(
    root: Path, ignore: IgnoreSpec
) -> tuple[list[tuple[str, str, int, bool]], list[ManifestEntry]]:
    """Files ``(rel, path, size, executable)``, and link and empty-folder entries under
    ``root`` (a folder whose every item is ignored counts as empty)."""
    files: list[tuple[str, str, int, bool]] = []
    others: list[ManifestEntry] = []
    stack = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        kept = 0
        with os.scandir(folder) as it:
            for item in it:
                rel = prefix + item.name
                if _is_ignored(rel, ignore):
                    continue
                kept += 1
                st = item.stat(follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    target = str(Path(item.path).readlink())
                    try:
                        check_link_target(rel, target)
                    except PathEscapeError as exc:
                        raise PathEscapeError(f"{root}: {exc}") from None
                    others.append(ManifestEntry.link(rel, target))
                elif stat.S_ISDIR(st.st_mode):
                    stack.append((Path(item.path), rel + "/"))
                elif stat.S_ISREG(st.st_mode):
                    files.append((rel, item.path, st.st_size, bool(st.st_mode & 0o100)))
                else:
                    kept -= 1
                    log.info("skipping %s: not a regular file, folder or link", item.path)
        if kept == 0 and prefix:
            others.append(ManifestEntry.dir(prefix.rstrip("/")))
    return files, others


def open_blob_store(url: str, *, endpoint_url: str | None = None) -> BlobStore:
    """A BlobStore for a folder path, a ``file://`` URL or ``s3://bucket/prefix``."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise InvalidArgumentError(f"blob store URL {url!r} names no bucket")
        from syllabus.blobs.s3 import S3Backend  # type: ignore[import-not-found,unused-ignore]

        backend: ObjectBackend = S3Backend(
            parsed.netloc, parsed.path.strip("/"), endpoint_url=endpoint_url
        )
        return BlobStore(backend)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise InvalidArgumentError(f"blob store URL {url!r}: only local file:// URLs work")
        return BlobStore(_local_backend(Path(unquote(parsed.path))))
    if "://" in url:
        raise InvalidArgumentError(
            f"blob store URL {url!r}: expected a folder, file:// or s3://bucket/prefix"
        )
    return BlobStore(_local_backend(Path(url).expanduser()))


def _local_backend(path: Path) -> ObjectBackend:
    from syllabus.blobs.local import LocalBackend

    return LocalBackend(path)


def _listed_files(data: bytes) -> tuple[set[Digest], set[Digest]] | None:
    """File digests (all, and of files larger than WHOLE_MAX) of a manifest in its
    one-entry-per-line form, with one ``json.loads``; None if any line is unexpected (the
    caller then parses it fully)."""
    body = data[len(MANIFEST_MAGIC) :]
    if not body.endswith(b"\n"):
        return None
    try:
        rows = json.loads(b"[" + body[:-1].replace(b"\n", b",") + b"]")
        files: set[Digest] = set()
        large: set[Digest] = set()
        for row in rows:
            if type(row) is not list:
                return None
            kind, size = row[1], row[3]
            if kind == "f" and len(row) == 5 and type(size) is int:
                digest = Digest(row[4])
                files.add(digest)
                if size > WHOLE_MAX:
                    large.add(digest)
            elif kind not in ("l", "d"):
                return None
    except (ValueError, TypeError, IndexError, KeyError, InvalidArgumentError):
        return None
    return files, large
