"""The local-folder backend: packs for small records, loose files for large ones.

Layout under the root folder::

    FORMAT                 "syllabus-blobs 1"
    packs/<id>.pack        append-only records (format: syllabus.blobs.pack)
    packs/<id>.idx         their index entries, appended only after the pack bytes are synced
    loose/ab/cdef...       one record per file for payloads of at least LOOSE_MIN bytes
    tmp/                   temp files of loose writes in progress
    refs/...               named files (``RefBackend``): what a remote publishes by name
    gc.lock                held shared by writers, exclusively by a deleting gc

Every writer (each backend instance in each process) appends to a pack of its own, named
with a fresh time-ordered id and held with an exclusive ``flock`` for as long as it is being
written: ``delete`` (repack) skips locked packs, so it never rewrites a pack under a writer.
Records are buffered in memory, spilled to the pack file when the buffer passes
:data:`SPILL_BYTES` and committed by :meth:`LocalBackend.flush`: fsync the pack, then append
the index entries and fsync the index. The spills of ``write_through`` (a big add) go
past the page cache with ``O_DIRECT`` where the filesystem allows it (bytes synced at the
next flush gain nothing from being cached, and filling the cache costs more CPU than the
disk write; see :meth:`LocalBackend._spill_direct`). A kill at any point leaves at worst
unindexed bytes at the end of a pack (garbage that repack drops) or a torn index tail
(ignored by its CRC).

Readers keep an in-memory index of every ``.idx`` file, loaded lazily and refreshed on a
miss (new files, and only the new tail of grown ones), so records written by other processes
become visible. A read whose pack disappeared under it (a concurrent repack) reloads the
index and retries once. The same digest may be in several packs (two writers stored the
same chunk); any copy serves.

Every instance that has written or asked ``contains`` holds a shared lock on ``gc.lock``
until it is closed, and a deleting gc needs the exclusive one (:mod:`syllabus.blobs.gclock`):
a gc never deletes a record that an open writer may have deduplicated against.

After ``fork`` the child notices the pid change and drops what it inherited (buffered
records, the writer's pack and lock, open read handles) before doing anything else.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import mmap
import operator
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from syllabus._utils.ids import new_id
from syllabus.blobs.backend import LOOSE_MIN, Flags, ObjectInfo, Record, check_ref_name
from syllabus.blobs.digest import Digest
from syllabus.blobs.gclock import WritersLock
from syllabus.blobs.pack import (
    INDEX_ENTRY,
    INDEX_MAGIC,
    PACK_MAGIC,
    RECORD_HEADER,
    IndexEntry,
    decode_index,
    decode_loose,
    encode_index_entries,
    encode_record_header,
)
from syllabus.errors import (
    BlobCorruptError,
    BlobNotFoundError,
    InvalidArgumentError,
    StorageError,
)

__all__ = ["FORMAT_LINE", "PACK_ROLL_BYTES", "SPILL_BYTES", "LocalBackend"]

log = logging.getLogger(__name__)

FORMAT_LINE: Final = "syllabus-blobs 1"
PACK_ROLL_BYTES: Final = 256 * 1024 * 1024
"""A writer starts a new pack once its current one has grown past this."""
SPILL_BYTES: Final = 8 * 1024 * 1024
"""Buffered record bytes written out to the pack file (not yet committed) past this."""
_MAX_READ_HANDLES: Final = 64
_READ_BATCH: Final = 512  # records read_many looks up under one lock hold
_READ_GAP: Final = 64 * 1024  # bytes between two records read_many reads through
_READ_SPAN: Final = 8 * 1024 * 1024  # bytes one read_many pread covers at most
_READ_ALONE: Final = 64 * 1024  # records this large are read alone, without a copy
_RACY_NS: Final = 2_000_000_000  # a folder changed this recently may change again unseen
_FADVISE: Final = getattr(os, "posix_fadvise", None)  # Linux and most Unixes; not macOS
_O_DIRECT: Final = getattr(os, "O_DIRECT", 0)  # Linux and some BSDs; not macOS
_DIRECT_ALIGN: Final = 4096  # offset, length and buffer address of a direct write
_DIRECT_STAGE: Final = 8 * 1024 * 1024  # the aligned buffer direct writes go through
_DIRECT_MIN: Final = 256 * 1024  # fewer buffered bytes than this are written buffered
_OFFSET: Final = operator.attrgetter("offset")
RUN_MIN: Final = 64 * 1024
"""Neighbouring records another local store holds are copied as one run of pack bytes
(:meth:`LocalBackend.copy_runs`) from this many bytes on."""
_COPY_PIECE: Final = 64 * 1024 * 1024  # bytes one copy_file_range call is asked for


def _listdir(path: Path) -> list[str]:
    return os.listdir(path)  # noqa: PTH208 - names only, faster than Path.iterdir on big folders


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(slots=True)
class _Writer:
    """The pack this backend instance appends to, locked for its lifetime."""

    pack_id: str
    pack_fd: int
    idx_fd: int
    offset: int  # bytes written to the pack file so far
    buffer: list[bytes] = field(default_factory=list)
    buffered: int = 0
    pending: dict[Digest, IndexEntry] = field(default_factory=dict)  # not yet indexed
    spilled: int = 0  # bytes of `pending` already written to the file (no fsync yet)
    direct_fd: int | None = None  # the pack opened with O_DIRECT (see _spill_direct)
    direct_ok: bool = True  # False once direct writes failed here: buffered from then on


class LocalBackend:
    """An :class:`~syllabus.blobs.backend.ObjectBackend` in a local folder.

    Safe for several threads (one lock per instance) and several processes (one pack per
    writer, ``flock``, append-only files). Created on first use when the folder is missing.
    """

    def __init__(self, root: Path | str) -> None:
        self._root = Path(root).absolute()
        self._packs = self._root / "packs"
        self._loose = self._root / "loose"
        self._loose_str = str(self._loose)
        self._tmp = self._root / "tmp"
        self._init_folder()
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._index: dict[Digest, tuple[str, IndexEntry]] = {}
        self._idx_pos: dict[str, int] = {}
        self._loaded = False
        self._writer: _Writer | None = None
        self._read_fds: dict[str, int] = {}
        self._loose_heads: set[str] | None = None  # see _look_at_loose
        self._loose_key: tuple[int, int] | None = None
        self._writers = WritersLock(self._root)
        self._stage: mmap.mmap | None = None  # see _spill_direct
        self._closed = False

    # -- set-up -------------------------------------------------------------------------

    def _init_folder(self) -> None:
        fmt = self._root / "FORMAT"
        try:
            text = fmt.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            text = None
        except OSError as exc:
            raise StorageError(f"blob store {self._root}: cannot read FORMAT ({exc})") from exc
        if text is not None and text != FORMAT_LINE:
            raise StorageError(
                f"blob store {self._root}: unknown format {text!r} (expected {FORMAT_LINE!r})"
            )
        try:
            for sub in (self._packs, self._loose, self._tmp):
                sub.mkdir(parents=True, exist_ok=True)
            if text is None:
                tmp = self._tmp / f"FORMAT.{new_id()}"
                tmp.write_text(FORMAT_LINE + "\n", encoding="utf-8")
                tmp.replace(fmt)
                _fsync_dir(self._root)
        except OSError as exc:
            raise StorageError(f"cannot create blob store in {self._root}: {exc}") from exc

    def _locked(self) -> threading.RLock:
        """This instance's lock, after forgetting what a forked child inherited.

        Checked before taking the lock: the parent's lock may have been held by another
        thread at fork time and would never be released in the child.
        """
        if os.getpid() != self._pid:
            self._after_fork()
        return self._lock

    def _after_fork(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.RLock()
        if self._writer is not None:
            # Close our copies only: never flock(LOCK_UN), that would unlock the parent's pack.
            for fd in (self._writer.pack_fd, self._writer.idx_fd, self._writer.direct_fd):
                if fd is None:
                    continue
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._writer = None  # its buffered records are the parent's to commit
        self._drop_read_fds()

    def _drop_read_fds(self) -> None:
        for fd in self._read_fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._read_fds = {}

    @property
    def url(self) -> str:
        """The store's folder."""
        return str(self._root)

    @property
    def root(self) -> Path:
        """The store's folder."""
        return self._root

    def __repr__(self) -> str:
        return f"LocalBackend({str(self._root)!r})"

    # -- index --------------------------------------------------------------------------

    def _refresh(self, *, full: bool = False) -> None:
        """Load new ``.idx`` files and the new tails of grown ones (all of them if ``full``)."""
        if full:
            self._index = {}
            self._idx_pos = {}
            self._drop_read_fds()
        try:
            names = _listdir(self._packs)
        except OSError as exc:
            raise StorageError(f"blob store {self._root}: cannot list packs ({exc})") from exc
        present = set()
        for name in names:
            if name.endswith(".idx"):
                present.add(name[:-4])
                self._load_idx(name[:-4])
        gone = [pid for pid in self._idx_pos if pid not in present]
        if gone:
            gone_set = set(gone)
            for pid in gone:
                del self._idx_pos[pid]
                fd = self._read_fds.pop(pid, None)
                if fd is not None:
                    os.close(fd)
            self._index = {d: loc for d, loc in self._index.items() if loc[0] not in gone_set}
        self._loaded = True

    def _load_idx(self, pack_id: str) -> None:
        """Add the entries of one index file past what was read of it before."""
        pos = self._idx_pos.get(pack_id, 0)
        path = self._packs / f"{pack_id}.idx"
        try:
            with path.open("rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size - max(pos, len(INDEX_MAGIC)) < INDEX_ENTRY:
                    return
                if pos == 0:
                    data = fh.read()
                else:
                    fh.seek(pos)
                    data = INDEX_MAGIC + fh.read()
        except FileNotFoundError:
            return  # removed by a concurrent repack
        except OSError as exc:
            raise StorageError(f"blob store {self._root}: cannot read {path.name} ({exc})") from exc
        entries = decode_index(data, source=str(path))
        for entry in entries:
            self._index.setdefault(entry.digest, (pack_id, entry))
        self._idx_pos[pack_id] = max(pos, len(INDEX_MAGIC)) + len(entries) * INDEX_ENTRY

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self._refresh()

    def _loose_path(self, digest: Digest) -> Path:
        head, tail = digest.fanout()
        return self._loose / head / tail

    def _has_local(self, digest: Digest) -> bool:
        """Present in the committed index, this writer's pending records, or loose."""
        if digest in self._index:
            return True
        w = self._writer
        if w is not None and digest in w.pending:
            return True
        if self._loose_heads is not None and digest[:2] not in self._loose_heads:
            return False  # no loose/<head>/ folder: not loose (see _look_at_loose)
        # os.stat on a string: pathlib costs ~10 us a call, and this runs for every miss.
        return os.path.exists(f"{self._loose_str}/{digest[:2]}/{digest[2:]}")  # noqa: PTH110

    def _look_at_loose(self) -> None:
        """Remember which ``loose/<head>/`` folders exist, so that a miss (the usual case:
        most records are packed) costs no ``stat``: a digest whose head folder is absent
        is not loose.

        A ``loose/`` with a link count of 2 has no subfolder at all (filesystems that count
        subfolders in it; btrfs says 1 and is not trusted): exact, whatever the timing.
        Otherwise a listing is trusted while ``loose/`` keeps the mtime and link count it
        had, and only if it was made well after that mtime (a folder made within the same
        clock tick would not change it); else every miss is looked up."""
        try:
            st = self._loose.stat()
        except OSError:
            self._loose_heads = None
            return
        key = (st.st_mtime_ns, st.st_nlink)
        if key == self._loose_key and self._loose_heads is not None:
            return
        self._loose_heads, self._loose_key = None, None
        if st.st_nlink == 2:
            self._loose_heads, self._loose_key = set(), key
            return
        if time.time_ns() - st.st_mtime_ns < _RACY_NS:
            return
        try:
            heads = set(_listdir(self._loose))
        except OSError:
            return
        self._loose_heads, self._loose_key = heads, key

    def contains(self, digests: Iterable[Digest]) -> set[Digest]:
        """The subset of ``digests`` that are stored (committed, or written by this instance)."""
        with self._locked():
            self._writers.hold_shared()  # before looking: the answer may be used to dedup
            self._ensure_loaded()
            wanted = set(digests)
            if not self._packs_exist({self._index[d][0] for d in wanted if d in self._index}):
                self._refresh(full=True)  # a repack removed packs we knew: forget them
            self._look_at_loose()
            found = {d for d in wanted if self._has_local(d)}
            if len(found) < len(wanted):
                self._refresh()
                found |= {d for d in wanted - found if d in self._index}
            return found

    def _packs_exist(self, pack_ids: set[str]) -> bool:
        w = self._writer
        return all(
            (w is not None and pid == w.pack_id) or (self._packs / f"{pid}.idx").exists()
            for pid in pack_ids
        )

    # -- writing ------------------------------------------------------------------------

    def _open_writer(self) -> _Writer:
        pack_id = new_id()
        pack_path = self._packs / f"{pack_id}.pack"
        idx_path = self._packs / f"{pack_id}.idx"
        try:
            # Read-write: a direct spill reads back the partial block it rewrites.
            pack_fd = os.open(pack_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            fcntl.flock(pack_fd, fcntl.LOCK_EX)
            os.write(pack_fd, PACK_MAGIC)
            idx_fd = os.open(idx_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            os.write(idx_fd, INDEX_MAGIC)
            _fsync_dir(self._packs)
        except OSError as exc:
            raise StorageError(f"blob store {self._root}: cannot start pack ({exc})") from exc
        return _Writer(pack_id, pack_fd, idx_fd, len(PACK_MAGIC))

    def write(self, records: Iterable[Record]) -> None:
        """Buffer records for the current pack (or write large ones loose); idempotent."""
        self._write(records, writeback=False)

    def _write(self, records: Iterable[Record], *, writeback: bool) -> None:
        with self._locked():
            self._writers.hold_shared()
            self._ensure_loaded()
            now = time.time()
            # The per-record loop of an add of many small files: names bound once.
            index, header_size, pack_header = self._index, RECORD_HEADER.size, RECORD_HEADER.pack
            fromhex, new_entry = bytes.fromhex, IndexEntry
            for record in records:
                digest, payload = record.digest, record.payload
                stored = len(payload)
                if stored >= LOOSE_MIN:
                    if not self._has_local(digest):
                        self._write_loose(record)
                    continue
                w = self._writer
                if digest in index or (w is not None and digest in w.pending):
                    continue  # a small record is never loose (a duplicate would be harmless)
                if w is None:
                    w = self._writer = self._open_writer()
                flags, size = record.flags, record.size
                start = w.offset + w.spilled + w.buffered + header_size
                w.pending[digest] = new_entry(digest, flags, size, start, stored, now)
                w.buffer.append(pack_header(fromhex(digest), flags, size, stored))
                w.buffer.append(payload)
                w.buffered += header_size + stored
                if w.buffered >= SPILL_BYTES:
                    self._spill(w, writeback=writeback)

    def write_through(self, records: Sequence[Record]) -> None:
        """:meth:`write`, then the buffered bytes go to the pack file (uncommitted until
        :meth:`flush`), so no payload is referenced once this returns: payloads may be
        borrowed buffers, such as memoryviews of a mapped file, saving a copy of each."""
        with self._locked():
            try:
                self._write(records, writeback=True)
                if self._writer is not None:
                    self._spill(self._writer, writeback=True)
            except BaseException:
                if self._writer is not None:  # keep no borrowed buffer past the call
                    self._writer.buffer = [bytes(b) for b in self._writer.buffer]
                raise

    def copy_runs(
        self,
        src: LocalBackend,
        digests: Iterable[Digest],
        progress: Callable[[int], object] = lambda _n: None,
    ) -> tuple[set[Digest], int]:
        """Copy the records of ``digests`` that lie side by side in ``src``'s packs, in runs
        of at least :data:`RUN_MIN` bytes with nothing else between them, byte for byte into
        new packs here (the kernel copies them: ``copy_file_range``); returns the digests
        now stored that way and their stored bytes. Each copied record's header is checked
        against its index entry; the packs are synced, then indexed, as :meth:`flush` does,
        so a kill leaves at worst unindexed bytes. The others (alone, loose, in short runs)
        are left to :meth:`write`; those stored here already are left out. No byte of a
        record not asked for is copied.

        What a transfer between two local stores does first: a pull of 10,000 small files
        costs one system call per run instead of a Python object and a header per record.
        ``progress(n)`` is called with the number of records of each run once it is copied.
        On an error or an interrupt (from ``progress`` too) the runs copied whole so far are
        committed, then the error propagates: a second call copies only the rest.
        """
        wanted = set(digests)
        wanted -= self.contains(wanted)
        with src._locked():
            src._ensure_loaded()
            located = [src._index.get(d) for d in wanted]
        runs = _runs(sorted((loc for loc in located if loc is not None), key=_pack_offset))
        committed: list[IndexEntry] = []
        if not runs:
            return set(), 0
        with self._locked():
            self._writers.hold_shared()
            self._ensure_loaded()
            w: _Writer | None = None
            entries: list[IndexEntry] = []  # copied to w's pack, not committed yet
            try:
                for pack_id, run in runs:
                    if w is None:
                        w = self._open_writer()
                    moved = self._copy_run(src, pack_id, run, w)
                    if moved is None:
                        continue  # repacked away meanwhile: left to the record copy
                    entries += moved
                    progress(len(moved))
                    if w.offset >= PACK_ROLL_BYTES:
                        full, w = w, None  # closed by the commit, committed or not
                        committed += self._commit_run_pack(full, entries)
                        entries = []
            except BaseException:
                if w is not None:  # keep the runs copied whole, as flush() keeps records
                    try:
                        self._commit_run_pack(w, entries)
                    except StorageError:
                        log.warning("could not commit runs copied to %s", self._root, exc_info=True)
                raise
            if w is not None:
                committed += self._commit_run_pack(w, entries)
        return {e.digest for e in committed}, sum(e.stored_len for e in committed)

    def _copy_run(
        self, src: LocalBackend, pack_id: str, run: list[IndexEntry], w: _Writer
    ) -> list[IndexEntry] | None:
        """Append the bytes of ``run`` (records side by side in ``src``'s pack ``pack_id``)
        to ``w``'s pack and check their headers; their entries here, or None if the pack
        is gone."""
        start = run[0].offset - RECORD_HEADER.size
        length = run[-1].offset + run[-1].stored_len - start
        try:
            src_fd = os.open(src._packs / f"{pack_id}.pack", os.O_RDONLY)
        except FileNotFoundError:
            return None
        shift = w.offset - start
        try:
            _copy_range(src_fd, w.pack_fd, length, start, w.offset)
            # The copy's headers read back through a mapping: no run held in memory whole.
            with mmap.mmap(w.pack_fd, w.offset + length, access=mmap.ACCESS_READ) as copy:
                _check_headers(copy, run, shift, f"pack {pack_id} of {src.url}")
        except OSError as exc:
            raise StorageError(f"blob store {self._root}: cannot copy pack bytes ({exc})") from exc
        finally:
            os.close(src_fd)
        now = time.time()
        w.offset += length
        return [
            IndexEntry(e.digest, e.flags, e.size, e.offset + shift, e.stored_len, now) for e in run
        ]

    def _commit_run_pack(self, w: _Writer, entries: list[IndexEntry]) -> list[IndexEntry]:
        """Commit ``entries`` (returned) as :meth:`flush` does; close ``w``'s files in any
        case (not committed: unindexed bytes, garbage to a repack)."""
        try:
            if entries:
                self._commit(w, entries)
                # Its whole index file is in the in-memory index: no refresh decodes it.
                self._idx_pos[w.pack_id] = len(INDEX_MAGIC) + len(entries) * INDEX_ENTRY
        finally:
            _close_pack_files(w)
        return entries

    def _spill(self, w: _Writer, *, writeback: bool = False) -> None:
        """Write buffered bytes to the pack file without syncing or indexing them.

        ``writeback`` (only :meth:`write_through`, the path of a big add): start writing a
        range of at least :data:`SPILL_BYTES` to disk at once. Not for :meth:`write`: a
        transfer flushes soon after anyway, and the advice blocks under the lock (every
        other worker waits) and drops cached pages that a checkout after a pull reads.
        """
        if not w.buffer:
            return
        direct = writeback and w.buffered >= _DIRECT_MIN and self._spill_direct(w)
        if not direct:
            try:
                _write_all(w.pack_fd, w.buffer)
            except OSError as exc:
                raise StorageError(f"blob store {self._root}: cannot write pack ({exc})") from exc
            if writeback and w.buffered >= SPILL_BYTES and _FADVISE is not None:
                # Start writing these pages to disk now (the kernel drops none that are
                # dirty), so that the fsync of the next flush finds little left to do: disk
                # writes overlap the chunking and hashing of what comes next.
                with contextlib.suppress(OSError):
                    _FADVISE(w.pack_fd, w.offset + w.spilled, w.buffered, os.POSIX_FADV_DONTNEED)
        w.spilled += w.buffered
        w.buffer = []
        w.buffered = 0

    def _spill_direct(self, w: _Writer) -> bool:
        """Write the buffered bytes to the pack with ``O_DIRECT``, past the page cache;
        False (nothing written, the caller writes buffered) where that is not possible.

        The path of a big add: bytes that are synced at the next flush anyway gain nothing
        from the page cache, and filling it costs (on the VMs measured here, new page-cache
        pages cost more than the disk write itself: 1 GiB buffered took 3.6 s, direct 0.5 s).
        Direct writes need aligned offsets, lengths and memory, so the bytes are copied
        into an aligned buffer starting at the block that holds the pack's current end (its
        partial head, read back, is rewritten with the same bytes); the last partial block
        is written buffered. Durability is unchanged: ``flush`` fsyncs the pack, which also
        commits the direct writes' allocations, before any index entry names them.
        """
        if not (_O_DIRECT and w.direct_ok):
            return False
        end = w.offset + w.spilled  # where the buffered bytes go
        base = end - end % _DIRECT_ALIGN
        try:
            if w.direct_fd is None:
                w.direct_fd = os.open(self._packs / f"{w.pack_id}.pack", os.O_WRONLY | _O_DIRECT)
            head = _pread_exact(w.pack_fd, end - base, base)
            if self._stage is None:  # anonymous mmap: page-aligned; used under the lock
                self._stage = mmap.mmap(-1, _DIRECT_STAGE)
            stage = self._stage
            fill = len(head)
            stage[:fill] = head
            for buf in w.buffer:
                view = memoryview(buf).cast("B")
                i = 0
                while i < len(view):
                    n = min(_DIRECT_STAGE - fill, len(view) - i)
                    stage[fill : fill + n] = view[i : i + n]
                    fill += n
                    i += n
                    if fill == _DIRECT_STAGE:
                        _pwrite_all(w.direct_fd, stage, fill, base)
                        base += fill
                        fill = 0
            full = fill - fill % _DIRECT_ALIGN
            if full:
                _pwrite_all(w.direct_fd, stage, full, base)
                base += full
            if fill > full:
                os.pwrite(w.pack_fd, stage[full:fill], base)
            os.lseek(w.pack_fd, end + w.buffered, os.SEEK_SET)
        except OSError as exc:
            # EINVAL: no O_DIRECT on this filesystem, or other alignment rules. What was
            # written is rewritten buffered, from the same offset.
            log.debug("direct pack writes off in %s: %s", self._root, exc)
            w.direct_ok = False
            self._close_direct(w)
            try:
                os.lseek(w.pack_fd, end, os.SEEK_SET)
            except OSError as err:
                raise StorageError(f"blob store {self._root}: cannot write pack ({err})") from err
            return False
        return True

    @staticmethod
    def _close_direct(w: _Writer) -> None:
        if w.direct_fd is not None:
            with contextlib.suppress(OSError):
                os.close(w.direct_fd)
            w.direct_fd = None

    def flush(self) -> None:
        """Sync the pack, then append and sync the index entries of every buffered record."""
        with self._locked():
            w = self._writer
            if w is None or not w.pending:
                return
            self._spill(w)
            self._commit(w, sorted(w.pending.values(), key=_OFFSET))  # added in order
            w.offset += w.spilled
            w.spilled = 0
            w.pending = {}
            if w.offset >= PACK_ROLL_BYTES:
                self._close_writer()

    def _commit(self, w: _Writer, entries: list[IndexEntry]) -> None:
        """Sync ``w``'s pack, then append and sync the index ``entries`` of what it holds
        (by offset), then add them to the in-memory index."""
        try:
            os.fsync(w.pack_fd)
            _write_all(w.idx_fd, [encode_index_entries(entries)])
            os.fsync(w.idx_fd)
        except OSError as exc:
            raise StorageError(f"blob store {self._root}: cannot commit pack ({exc})") from exc
        index, pack_id = self._index, w.pack_id
        index.update({e.digest: (pack_id, e) for e in entries if e.digest not in index})

    def _close_writer(self) -> None:
        w = self._writer
        if w is None:
            return
        self._writer = None
        self._close_direct(w)
        _close_pack_files(w)

    def _write_loose(self, record: Record) -> None:
        path = self._loose_path(record.digest)
        tmp = self._tmp / f"{record.digest.short}.{new_id()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                _write_all(fd, [encode_record_header(record), record.payload])
                os.fsync(fd)
            finally:
                os.close(fd)
            path.parent.mkdir(exist_ok=True)
            self._loose_heads = None  # a new head folder, maybe
            tmp.replace(path)
            _fsync_dir(path.parent)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StorageError(
                f"blob store {self._root}: cannot write object {record.digest.short} ({exc})"
            ) from exc

    # -- reading ------------------------------------------------------------------------

    def _read_fd(self, pack_id: str) -> int:
        fd = self._read_fds.get(pack_id)
        if fd is None:
            if len(self._read_fds) >= _MAX_READ_HANDLES:
                _, old = self._read_fds.popitem()
                os.close(old)
            fd = os.open(self._packs / f"{pack_id}.pack", os.O_RDONLY)
            self._read_fds[pack_id] = fd
        return fd

    def _locate(self, digest: Digest) -> tuple[str, IndexEntry] | None:
        loc = self._index.get(digest)
        if loc is None:
            w = self._writer
            if w is not None and digest in w.pending:
                self._spill(w)  # make its bytes readable from the file
                return w.pack_id, w.pending[digest]
        return loc

    def _read_packed(self, digest: Digest, pack_id: str, entry: IndexEntry) -> Record:
        start = entry.offset - RECORD_HEADER.size
        fd = self._read_fd(pack_id)
        source = f"object {digest} in pack {pack_id}"
        if entry.stored_len >= _READ_ALONE:  # header, then the payload: no copy of it
            header = os.pread(fd, RECORD_HEADER.size, start)
            payload = os.pread(fd, entry.stored_len, entry.offset)
            if len(header) != RECORD_HEADER.size or len(payload) != entry.stored_len:
                raise BlobCorruptError(f"{source} is truncated")
        else:
            data = os.pread(fd, RECORD_HEADER.size + entry.stored_len, start)
            if len(data) != RECORD_HEADER.size + entry.stored_len:
                raise BlobCorruptError(f"{source} is truncated")
            header, payload = data[: RECORD_HEADER.size], data[RECORD_HEADER.size :]
        raw, _flags, size, stored_len = RECORD_HEADER.unpack(header)
        if raw != digest.to_bytes() or stored_len != entry.stored_len or size != entry.size:
            raise BlobCorruptError(f"{source}: record header does not match the index")
        return Record(digest, entry.flags, entry.size, payload)

    def _read_loose(self, digest: Digest) -> Record | None:
        path = self._loose_path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read object {digest} at {path}: {exc}") from exc
        try:
            record = decode_loose(data, source=f"object {digest} at {path}")
        except StorageError as exc:
            raise BlobCorruptError(str(exc)) from exc
        if record.digest != digest:
            raise BlobCorruptError(f"object {digest} at {path} holds a record for another id")
        return record

    def read(self, digest: Digest) -> Record:
        """The stored record; raises BlobNotFoundError, or BlobCorruptError on a bad header."""
        with self._locked():
            self._ensure_loaded()
            for attempt in range(3):
                loc = self._locate(digest)
                if loc is None:
                    record = self._read_loose(digest)
                    if record is not None:
                        return record
                    if attempt == 2:
                        break
                    self._refresh()
                    if digest not in self._index:
                        record = self._read_loose(digest)
                        if record is not None:
                            return record
                        break
                    continue
                try:
                    return self._read_packed(digest, *loc)
                except FileNotFoundError:
                    self._refresh(full=True)  # the pack was repacked away: look again
            raise BlobNotFoundError(f"object {digest} is not in the blob store at {self._root}")

    def read_order(self, digests: Iterable[Digest]) -> list[Digest]:
        """``digests`` in the order :meth:`read_many` reads them fastest: packed records by
        pack and offset (neighbours come with one ``pread``), then the others as given."""
        packed: list[tuple[str, int, Digest]] = []
        rest: list[Digest] = []
        with self._locked():
            self._ensure_loaded()
            index = self._index
            for digest in digests:
                loc = index.get(digest)
                if loc is None:
                    rest.append(digest)
                else:
                    packed.append((loc[0], loc[1].offset, digest))
        packed.sort()
        return [digest for _, _, digest in packed] + rest

    def read_many(self, digests: Iterable[Digest]) -> Iterator[Record]:
        """Records for ``digests`` in the given order.

        Packed records are read in batches under one lock hold: neighbours in a pack (a
        transfer or an add writes related records together) come with one ``pread``.
        Anything unusual (loose, unknown, or a pack gone under us) goes through
        :meth:`read`, one by one.
        """
        wanted = list(digests)
        start = 0
        while start < len(wanted):
            records, start = self._read_batch(wanted, start)
            yield from records

    def _read_batch(self, wanted: list[Digest], start: int) -> tuple[list[Record], int]:
        """Records of ``wanted[start:stop]`` and ``stop``: at most :data:`_READ_BATCH`
        digests and about :data:`_READ_SPAN` bytes, so a batch of large chunks stays small."""
        found: dict[Digest, Record] = {}
        with self._locked():
            self._ensure_loaded()
            spans: list[tuple[str, IndexEntry]] = []
            stop, nbytes = start, 0
            while stop < len(wanted) and stop - start < _READ_BATCH and nbytes < _READ_SPAN:
                loc = self._index.get(wanted[stop])
                stop += 1
                if loc is not None:
                    spans.append(loc)
                    nbytes += loc[1].stored_len
            spans.sort(key=lambda loc: (loc[0], loc[1].offset))
            i = 0
            while i < len(spans):
                pack_id, first = spans[i]
                j, end = i + 1, first.offset + first.stored_len
                while first.stored_len < _READ_ALONE and j < len(spans):
                    nxt_pack, nxt = spans[j]  # small records that follow each other
                    gap = nxt.offset - RECORD_HEADER.size - end
                    if nxt_pack != pack_id or nxt.stored_len >= _READ_ALONE:
                        break
                    if (
                        not 0 <= gap <= _READ_GAP
                        or nxt.offset + nxt.stored_len - first.offset > _READ_SPAN
                    ):
                        break
                    end = nxt.offset + nxt.stored_len
                    j += 1
                with contextlib.suppress(FileNotFoundError):  # repacked away: read() retries
                    if j == i + 1:
                        found[first.digest] = self._read_packed(first.digest, pack_id, first)
                    else:
                        found.update(self._read_span(pack_id, spans[i:j]))
                i = j
        return [found.get(d) or self.read(d) for d in wanted[start:stop]], stop

    def _read_span(
        self, pack_id: str, entries: list[tuple[str, IndexEntry]]
    ) -> dict[Digest, Record]:
        """Records of ``entries`` (one pack, by offset) read with one ``pread``."""
        base = entries[0][1].offset - RECORD_HEADER.size
        last = entries[-1][1]
        length = last.offset + last.stored_len - base
        data = os.pread(self._read_fd(pack_id), length, base)
        if len(data) != length:
            raise BlobCorruptError(f"pack {pack_id} is truncated")
        view = memoryview(data)
        out = {}
        unpack = RECORD_HEADER.unpack_from
        for _, entry in entries:
            at = entry.offset - base
            raw, _flags, size, stored_len = unpack(view, at - RECORD_HEADER.size)
            if (
                raw != entry.digest.to_bytes()
                or stored_len != entry.stored_len
                or size != entry.size
            ):
                raise BlobCorruptError(
                    f"object {entry.digest} in pack {pack_id}: record header does not match "
                    "the index"
                )
            out[entry.digest] = Record(
                entry.digest, entry.flags, entry.size, data[at : at + stored_len]
            )
        return out

    def info(self, digest: Digest) -> ObjectInfo:
        """Metadata of one record; raises BlobNotFoundError."""
        with self._locked():
            self._ensure_loaded()
            loc = self._locate(digest)
            if loc is None:
                self._refresh()
                loc = self._index.get(digest)
            if loc is not None:
                return loc[1].info()
            info = self._loose_info(digest, self._loose_path(digest))
            if info is None:
                raise BlobNotFoundError(f"object {digest} is not in the blob store at {self._root}")
            return info

    def _loose_info(self, digest: Digest, path: Path) -> ObjectInfo | None:
        try:
            with path.open("rb") as fh:
                st = os.fstat(fh.fileno())
                header = fh.read(RECORD_HEADER.size)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read object {digest} at {path}: {exc}") from exc
        if len(header) < RECORD_HEADER.size:
            raise BlobCorruptError(f"object {digest} at {path} is truncated")
        _, flags, size, stored_len = RECORD_HEADER.unpack(header)
        return ObjectInfo(digest, Flags(flags), size, stored_len, st.st_mtime)

    def iter_info(self) -> Iterator[ObjectInfo]:
        """Every committed record once: packed ones, then loose ones."""
        with self._locked():
            self.flush()
            self._refresh()
            infos = [entry.info() for _, entry in self._index.values()]
        seen = {i.digest for i in infos}
        yield from infos
        for head in sorted(_listdir(self._loose)):
            sub = self._loose / head
            if len(head) != 2 or not sub.is_dir():
                continue
            for tail in sorted(_listdir(sub)):
                try:
                    digest = Digest(head + tail)
                except InvalidArgumentError:  # a stray file, not an object
                    continue
                if digest in seen:
                    continue
                info = self._loose_info(digest, sub / tail)
                if info is not None:
                    yield info

    # -- deleting -----------------------------------------------------------------------

    def delete(self, digests: Iterable[Digest]) -> int:
        """Remove records: unlink loose ones, repack packs holding any; returns bytes freed.

        Packs locked by a writer (in this or another process) are skipped, so records in
        them survive until a later call.
        """
        doomed = set(digests)
        if not doomed:
            return 0
        with self._locked():
            self.flush()
            self._close_writer()  # let our own pack be repacked too
            freed = 0
            for digest in doomed:
                path = self._loose_path(digest)
                with contextlib.suppress(FileNotFoundError):
                    freed += path.stat().st_size
                    path.unlink()
            freed += self._repack(doomed)
            self._refresh(full=True)
            return freed

    def repack(self, *, stale_tmp_seconds: float = 3600.0) -> int:
        """Rewrite packs that hold unindexed bytes and remove temp files older than
        ``stale_tmp_seconds`` (both left by killed writers); returns bytes freed."""
        with self._locked():
            self.flush()
            self._close_writer()
            freed = self._repack(set(), only_garbage=True)
            cutoff = time.time() - stale_tmp_seconds
            for name in _listdir(self._tmp):
                path = self._tmp / name
                with contextlib.suppress(FileNotFoundError):
                    st = path.stat()
                    if st.st_mtime < cutoff:
                        path.unlink()
                        freed += st.st_size
            self._refresh(full=True)
            return freed

    def _repack(self, doomed: set[Digest], *, only_garbage: bool = False) -> int:
        freed = 0
        for name in sorted(_listdir(self._packs)):
            if not name.endswith(".pack"):
                continue
            pack_id = name[:-5]
            pack_path = self._packs / name
            idx_path = self._packs / f"{pack_id}.idx"
            try:
                fd = os.open(pack_path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        continue  # a writer owns it
                    raise
                if not pack_path.exists():
                    continue  # another repacker removed it while we waited
                try:
                    entries = decode_index(idx_path.read_bytes(), source=str(idx_path))
                except FileNotFoundError:
                    entries = []
                pack_size = os.fstat(fd).st_size
                unique: dict[Digest, IndexEntry] = {}
                for e in entries:
                    unique.setdefault(e.digest, e)
                live = [e for e in unique.values() if e.digest not in doomed]
                used = len(PACK_MAGIC) + sum(RECORD_HEADER.size + e.stored_len for e in live)
                if (only_garbage and used >= pack_size) or (
                    not only_garbage and len(live) == len(unique)
                ):
                    continue
                if live:
                    self._copy_records(fd, live)
                idx_path.unlink(missing_ok=True)
                pack_path.unlink(missing_ok=True)
                freed += pack_size - (used if live else 0)
            finally:
                os.close(fd)
        if self._writer is not None:
            self.flush()
            self._close_writer()
        _fsync_dir(self._packs)
        return freed

    def _copy_records(self, src_fd: int, entries: list[IndexEntry]) -> None:
        """Append ``entries`` (read from ``src_fd``) to this instance's pack, keeping mtimes."""
        for entry in entries:
            length = RECORD_HEADER.size + entry.stored_len
            data = os.pread(src_fd, length, entry.offset - RECORD_HEADER.size)
            if len(data) != length:
                raise StorageError(f"object {entry.digest} in a pack being repacked is truncated")
            w = self._writer
            if w is None:
                w = self._writer = self._open_writer()
            start = w.offset + w.spilled + w.buffered + RECORD_HEADER.size
            w.pending[entry.digest] = _with_offset(entry, start)
            w.buffer.append(data)
            w.buffered += length
            if w.buffered >= SPILL_BYTES:
                self._spill(w)
            if w.offset + w.spilled + w.buffered >= PACK_ROLL_BYTES:
                self.flush()
                self._close_writer()
        self.flush()

    # -- refs (RefBackend) ---------------------------------------------------------------

    def _ref_path(self, name: str) -> Path:
        return self._root / "refs" / check_ref_name(name)

    def list_refs(self, prefix: str) -> list[str]:
        """Names of the refs under ``refs/`` starting with ``prefix``, sorted."""
        base = self._root / "refs"
        folder, _, _ = prefix.rpartition("/")
        top = base / check_ref_name(folder) if folder else base
        out = []
        for dirpath, _dirs, files in os.walk(top):
            rel_dir = os.path.relpath(dirpath, base).replace(os.sep, "/")
            for f in files:
                name = f if rel_dir == "." else f"{rel_dir}/{f}"
                if name.startswith(prefix) and not f.startswith("."):
                    out.append(name)
        return sorted(out)

    def read_ref(self, name: str) -> bytes | None:
        """The bytes of a ref (None when there is none)."""
        try:
            return self._ref_path(name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read ref {name} in {self._root}: {exc}") from exc

    def write_ref(self, name: str, data: bytes) -> None:
        """Create or replace a ref: temp file, fsync, rename, fsync of the folder."""
        path = self._ref_path(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.parent / f".{path.name}.{new_id()}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                _write_all(fd, [data])
                os.fsync(fd)
            finally:
                os.close(fd)
            tmp.replace(path)
            _fsync_dir(path.parent)
        except OSError as exc:
            raise StorageError(f"cannot write ref {name} in {self._root}: {exc}") from exc

    def delete_refs(self, names: Iterable[str]) -> None:
        """Remove refs (missing ones are no error)."""
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                self._ref_path(name).unlink()

    # -- life cycle ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _gc_guard(self, timeout: float) -> Iterator[None]:
        with self._locked(), self._writers.exclusive(timeout=timeout):
            yield

    def gc_guard(self, *, timeout: float) -> AbstractContextManager[None]:
        """Keep writers out while a gc deletes: the exclusive ``gc.lock``.

        Converts this instance's own shared lock, waits up to ``timeout`` seconds while
        other instances (in this or other processes) that wrote or deduplicated are still
        open, and raises StorageError if they stay open. Inside the block, writers of other
        instances wait, and other threads using this instance wait too.
        """
        return self._gc_guard(timeout)

    def close(self) -> None:
        """Flush, release the writer's pack and locks, and close read handles."""
        with self._locked():
            try:
                self.flush()
                self._close_writer()
                self._drop_read_fds()
                if self._stage is not None:
                    self._stage.close()
                    self._stage = None
            finally:
                self._writers.release()

    def __enter__(self) -> LocalBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _close_pack_files(w: _Writer) -> None:
    for fd in (w.idx_fd, w.pack_fd):  # closing the pack fd releases its flock
        with contextlib.suppress(OSError):
            os.close(fd)


def _runs(located: list[tuple[str, IndexEntry]]) -> list[tuple[str, list[IndexEntry]]]:
    """The runs of records side by side in one pack (sorted by pack and offset), each of
    at least :data:`RUN_MIN` bytes: ``(pack id, entries)``."""
    out: list[tuple[str, list[IndexEntry]]] = []
    header = RECORD_HEADER.size
    i = 0
    while i < len(located):
        pack_id, first = located[i]
        end = first.offset + first.stored_len
        j = i + 1
        while j < len(located):
            nxt_pack, nxt = located[j]
            if nxt_pack != pack_id or nxt.offset - header != end:
                break
            end = nxt.offset + nxt.stored_len
            j += 1
        if end - (first.offset - header) >= RUN_MIN:
            out.append((pack_id, [entry for _, entry in located[i:j]]))
        i = j
    return out


def _copy_range(src_fd: int, dst_fd: int, length: int, src_at: int, dst_at: int) -> None:
    """Copy ``length`` bytes between two files at the given offsets: in the kernel where
    it can (``copy_file_range``), else through a buffer."""
    copy = getattr(os, "copy_file_range", None)
    while length > 0:
        n = 0
        if copy is not None:
            try:
                n = copy(src_fd, dst_fd, min(length, _COPY_PIECE), src_at, dst_at)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                    raise
                copy = None
                continue
        else:
            data = _pread_exact(src_fd, min(length, _DIRECT_STAGE), src_at)
            n = os.pwrite(dst_fd, data, dst_at)
        if n <= 0:
            raise OSError(errno.EIO, f"short copy ({length} bytes left)")
        length, src_at, dst_at = length - n, src_at + n, dst_at + n


def _pack_offset(loc: tuple[str, IndexEntry]) -> tuple[str, int]:
    return loc[0], loc[1].offset


def _check_headers(copy: mmap.mmap, run: list[IndexEntry], shift: int, where: str) -> None:
    """Check that the record headers in ``copy`` (the pack ``run``'s records were copied
    to, ``shift`` bytes further than in their own pack) name the digests and lengths of
    ``run``'s entries."""
    unpack, header = RECORD_HEADER.unpack_from, RECORD_HEADER.size
    for entry in run:
        raw, _flags, size, stored_len = unpack(copy, entry.offset + shift - header)
        if raw != entry.digest.to_bytes() or stored_len != entry.stored_len or size != entry.size:
            raise BlobCorruptError(
                f"object {entry.digest} in {where}: record header does not match the index"
            )


def _with_offset(entry: IndexEntry, offset: int) -> IndexEntry:
    return IndexEntry(entry.digest, entry.flags, entry.size, offset, entry.stored_len, entry.mtime)


def _pread_exact(fd: int, length: int, offset: int) -> bytes:
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise OSError(errno.EIO, f"short read ({len(data)} of {length} bytes)")
    return data


def _pwrite_all(fd: int, stage: mmap.mmap, length: int, offset: int) -> None:
    """Write ``stage[:length]`` at ``offset``; a direct write's short write is retried
    from the next aligned position (a short count is always a whole number of blocks)."""
    view = memoryview(stage)
    done = 0
    try:
        while done < length:
            n = os.pwrite(fd, view[done:length], offset + done)
            if n <= 0 or (n % _DIRECT_ALIGN and done + n < length):
                raise OSError(errno.EIO, f"short direct write ({n} bytes)")
            done += n
    finally:
        view.release()


def _write_all(fd: int, buffers: Sequence[bytes | memoryview]) -> None:
    """Write every buffer with ``writev`` (as many at once as the system takes), continuing
    after short writes. The buffers are passed as they are: no memoryview of each (an add
    of 10,000 small files writes 20,000 buffers)."""
    i = 0
    while i < len(buffers):
        group = buffers[i : i + _IOV_MAX]
        n = os.writev(fd, group)
        if n == sum(map(len, group)):
            i += len(group)
            continue
        for buf in group:  # a short write: skip what was written whole ...
            if n < len(buf):
                break
            n -= len(buf)
            i += 1
        if n:  # ... and write the rest of the buffer written in part
            buffers = list(buffers)
            buffers[i] = memoryview(buffers[i]).cast("B")[n:]


def _iov_max() -> int:
    try:
        return max(16, min(os.sysconf("SC_IOV_MAX"), 1024))
    except (AttributeError, ValueError, OSError):
        return 16  # the POSIX minimum


_IOV_MAX: Final = _iov_max()
