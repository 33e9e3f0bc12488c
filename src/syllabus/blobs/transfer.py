"""Copy records between two backends: only the missing ones, in parallel, resumably.

Records are opaque here: they move byte for byte (no decompression, no re-hashing), so a
pack on one side and a loose object on the other hold the same record. The destination is
asked which digests it already has in batches; the rest are read from the source in
batches by a pool of workers and written to the destination, which is flushed every so
often (and when the transfer stops on an error or an interrupt). What was flushed stays,
so running the same transfer again copies only what is still missing. Between two local
stores, records that lie side by side in the source's packs go first, as runs of pack
bytes copied by the kernel into new packs (:meth:`LocalBackend.copy_runs`, committed
before it returns); the rest as above.

``push`` and ``pull`` compute the digests with ``BlobStore.expand(roots)``;
:func:`transfer_roots` does both steps.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Final, Protocol

from syllabus.blobs.backend import ObjectBackend, Record
from syllabus.blobs.digest import Digest
from syllabus.blobs.local import LocalBackend
from syllabus.blobs.reader import read_order
from syllabus.errors import BlobNotFoundError, InvalidArgumentError
from syllabus.types import ProgressCallback, null_progress

__all__ = ["TransferReport", "transfer", "transfer_roots"]

log = logging.getLogger(__name__)

CHECK_BATCH: Final = 4096
"""Digests asked of the destination's ``contains`` at once (each call that misses may
re-list the destination's packs)."""
COPY_BATCH: Final = 256
"""Digests one worker reads with one ``read_many``."""
WRITE_BYTES: Final = 8 * 1024 * 1024
"""A worker hands what it has read to the destination once it holds this many bytes."""
FLUSH_BYTES: Final = 64 * 1024 * 1024
FLUSH_RECORDS: Final = 50_000
FLUSH_SECONDS: Final = 30.0
"""The destination is flushed after this many bytes, records or seconds of copying: what a
resumed transfer copies again at most. Each flush costs syncs (local) or a pack upload
(S3), so small records go in large packs: 10,000 files of 1 KiB are one pack."""


@dataclass(frozen=True, slots=True)
class TransferReport:
    """What a transfer did. Bytes are stored (payload) bytes."""

    copied: int = 0
    copied_bytes: int = 0
    skipped: int = 0  # already in the destination
    skipped_bytes: int = 0

    @property
    def total(self) -> int:
        """Distinct digests considered."""
        return self.copied + self.skipped


class _Expanding(Protocol):
    """What :func:`transfer_roots` needs of a blob store (``BlobStore`` fits)."""

    @property
    def backend(self) -> ObjectBackend: ...

    def expand(self, roots: Iterable[Digest]) -> set[Digest]: ...


class _Tally:
    """Counters kept by the coordinating thread (workers only return values)."""

    def __init__(self, dst: ObjectBackend, progress: ProgressCallback, total: int) -> None:
        self.dst = dst
        self.progress = progress
        self.total = total
        self.copied = self.copied_bytes = self.skipped = self.skipped_bytes = 0
        self.unflushed_records = self.unflushed_bytes = 0
        self.last_flush = time.monotonic()

    def copied_batch(self, digests: int, records: int, nbytes: int) -> None:
        """Count one finished copy of ``digests`` digests (``records`` written)."""
        self.copied += records
        self.copied_bytes += nbytes
        self.unflushed_records += records
        self.unflushed_bytes += nbytes
        self.progress(digests, self.total)
        if (
            self.unflushed_bytes >= FLUSH_BYTES
            or self.unflushed_records >= FLUSH_RECORDS
            or time.monotonic() - self.last_flush >= FLUSH_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        self.dst.flush()
        self.unflushed_records = self.unflushed_bytes = 0
        self.last_flush = time.monotonic()

    def report(self) -> TransferReport:
        return TransferReport(self.copied, self.copied_bytes, self.skipped, self.skipped_bytes)


def _copy(src: ObjectBackend, dst: ObjectBackend, digests: list[Digest]) -> tuple[int, int]:
    """Copy ``digests`` from ``src`` to ``dst``; returns ``(records, bytes)`` written."""
    records = nbytes = 0
    buffer: list[Record] = []
    buffered = 0
    for record in src.read_many(digests):
        buffer.append(record)
        buffered += len(record.payload)
        if buffered >= WRITE_BYTES:
            dst.write(buffer)
            records, nbytes = records + len(buffer), nbytes + buffered
            buffer, buffered = [], 0
    if buffer:
        dst.write(buffer)
        records, nbytes = records + len(buffer), nbytes + buffered
    return records, nbytes


def _copy_runs(
    src: ObjectBackend, dst: ObjectBackend, wanted: list[Digest], tally: _Tally
) -> list[Digest]:
    """Between two local stores, copy the wanted records that lie side by side in the
    source's packs as runs of bytes (:meth:`LocalBackend.copy_runs`); returns the digests
    still to copy one by one (all of them between other backends)."""
    if not (isinstance(src, LocalBackend) and isinstance(dst, LocalBackend)):
        return wanted
    if src.root == dst.root:
        return wanted
    copied, nbytes = dst.copy_runs(src, wanted, lambda n: tally.progress(n, tally.total))
    if not copied:
        return wanted
    tally.copied += len(copied)  # progress was told run by run; committed: nothing to flush
    tally.copied_bytes += nbytes
    return [d for d in wanted if d not in copied]


def _stored_bytes(backend: ObjectBackend, digests: list[Digest]) -> int:
    total = 0
    for digest in digests:
        # A digest deleted since contains() said it was there has nothing to count.
        with contextlib.suppress(BlobNotFoundError):
            total += backend.info(digest).stored_size
    return total


def transfer(
    src: ObjectBackend,
    dst: ObjectBackend,
    digests: Iterable[Digest],
    *,
    jobs: int = 8,
    progress: ProgressCallback = null_progress,
) -> TransferReport:
    """Copy the records of ``digests`` that ``dst`` lacks from ``src``, with ``jobs`` workers.

    ``progress(advance, total)`` counts digests (copied or skipped) and is called from the
    calling thread only. On an error or an interrupt, running copies finish, ``dst`` is
    flushed so that their records are kept, and the error propagates; a second call copies
    only what is still missing. A digest missing from ``src`` raises
    :class:`~syllabus.errors.BlobNotFoundError`.
    """
    if jobs < 1:
        raise InvalidArgumentError(f"jobs must be at least 1, not {jobs}")
    # In the order the source reads fastest: records stored side by side are read together
    # (and land side by side in the destination, for whoever reads them there next).
    wanted = read_order(src, dict.fromkeys(Digest(d) for d in digests))
    tally = _Tally(dst, progress, len(wanted))
    if not wanted:
        return tally.report()
    wanted = _copy_runs(src, dst, wanted, tally)
    inflight: dict[Future[tuple[int, int]], int] = {}
    measuring: list[Future[int]] = []

    def settle(block_until: str) -> None:
        done, _ = wait(inflight, return_when=block_until)
        for future in done:
            n = inflight.pop(future)
            records, nbytes = future.result()
            tally.copied_batch(n, records, nbytes)

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="syllabus-transfer") as pool:
        try:
            for start in range(0, len(wanted), CHECK_BATCH):
                batch = wanted[start : start + CHECK_BATCH]
                present = dst.contains(batch)
                missing = [d for d in batch if d not in present]
                if present:
                    tally.skipped += len(present)
                    progress(len(present), tally.total)
                    measuring.append(pool.submit(_stored_bytes, dst, sorted(present)))
                for i in range(0, len(missing), COPY_BATCH):
                    chunk = missing[i : i + COPY_BATCH]
                    inflight[pool.submit(_copy, src, dst, chunk)] = len(chunk)
                    while len(inflight) >= 2 * jobs:
                        settle(FIRST_COMPLETED)
            while inflight:
                settle(FIRST_COMPLETED)
            tally.skipped_bytes = sum(f.result() for f in measuring)
            tally.flush()
        except BaseException:
            for pending in inflight:
                pending.cancel()
            for measure in measuring:
                measure.cancel()
            wait(inflight)  # copies already running finish their writes...
            try:
                dst.flush()  # ...and are kept for the next run
            except Exception:
                log.warning("could not flush %s after a failed transfer", dst.url, exc_info=True)
            raise
    log.debug("transfer %s -> %s: %s", src.url, dst.url, tally.report())
    return tally.report()


def transfer_roots(
    src_store: _Expanding,
    dst_store: _Expanding,
    roots: Iterable[Digest],
    *,
    jobs: int = 8,
    progress: ProgressCallback = null_progress,
) -> TransferReport:
    """Copy everything reachable from ``roots`` in ``src_store`` (files, manifests, chunks)."""
    digests = src_store.expand(roots)
    return transfer(src_store.backend, dst_store.backend, digests, jobs=jobs, progress=progress)
