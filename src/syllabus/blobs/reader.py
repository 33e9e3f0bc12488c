"""A streaming, verifying reader of one blob."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

from syllabus.blobs.backend import Flags, ObjectBackend, Record
from syllabus.blobs.digest import Digest, hasher
from syllabus.blobs.records import decode_chunklist, logical_bytes, verified_bytes
from syllabus.errors import BlobCorruptError

__all__ = ["BlobReader", "read_order"]


def read_order(backend: ObjectBackend, digests: Iterable[Digest]) -> list[Digest]:
    """``digests`` in the order ``backend`` reads them fastest (where it can tell: records
    stored next to each other come with one read), else as given."""
    order = getattr(backend, "read_order", None)
    if not callable(order):
        return list(digests)
    ordered: list[Digest] = order(digests)
    return ordered


class BlobReader(io.RawIOBase):
    """Binary, read-only, forward-only file object over a stored blob.

    Whole records are checked against their content id when loaded; chunked files check
    every chunk as it is read and the whole file's BLAKE3 at EOF. A mismatch raises
    :class:`~syllabus.errors.BlobCorruptError` naming the digest, before any bad byte of
    that chunk is returned.

    ``verify_chunks=False`` skips the per-chunk check and keeps only the whole file's (each
    byte is hashed once instead of twice): for a caller that discards everything it read
    unless EOF is reached without an error, such as a write to a temp file renamed at the end.
    """

    def __init__(
        self, backend: ObjectBackend, digest: Digest, record: Record, *, verify_chunks: bool = True
    ) -> None:
        super().__init__()
        self._verify_chunks = verify_chunks
        self._backend = backend
        self.digest = digest
        self.size = record.size
        self._buf = b""
        self._pos = 0
        self._chunks: Iterator[tuple[tuple[Digest, int], Record]] | None = None
        self._whole = hasher() if record.flags & Flags.CHUNKLIST else None
        self._pending: Record | None = record
        self._loaded = 0

    def readable(self) -> bool:
        return True

    def _next_buffer(self) -> bool:
        """Load the next verified piece into the buffer; False at EOF (after the final check)."""
        if self._pending is not None:
            record, self._pending = self._pending, None
            if self._whole is None:
                self._buf = verified_bytes(record)
                return True
            refs = decode_chunklist(logical_bytes(record), digest=self.digest)
            records = self._backend.read_many([d for d, _ in refs])
            self._chunks = zip(refs, records, strict=True)
        if self._chunks is None:
            return False
        for (ref, length), chunk in self._chunks:
            if chunk.digest != ref or chunk.size != length:
                raise BlobCorruptError(f"object {self.digest}: chunk {ref} read back as another")
            try:
                data = verified_bytes(chunk) if self._verify_chunks else logical_bytes(chunk)
            except BlobCorruptError as exc:
                raise BlobCorruptError(
                    f"object {self.digest} is corrupt: chunk {ref} does not hash to its id"
                ) from exc
            if len(data) != length:
                raise BlobCorruptError(f"object {self.digest}: chunk {ref} has the wrong size")
            assert self._whole is not None
            self._whole.update(data)
            self._loaded += len(data)
            self._buf = data
            return True
        self._chunks = None
        assert self._whole is not None
        if self._loaded != self.size or self._whole.digest() != self.digest.to_bytes():
            raise BlobCorruptError(
                f"object {self.digest} is corrupt: its chunks do not hash to its content id"
            )
        return False

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while self._pos >= len(self._buf):
            self._pos = 0
            self._buf = b""
            if not self._next_buffer():
                return 0
        out = memoryview(buffer).cast("B")
        n = min(len(out), len(self._buf) - self._pos)
        out[:n] = memoryview(self._buf)[self._pos : self._pos + n]
        self._pos += n
        return n

    def readall(self) -> bytes:
        parts = [self._buf[self._pos :]] if self._pos < len(self._buf) else []
        while True:
            self._pos = 0
            self._buf = b""
            if not self._next_buffer():
                break
            parts.append(self._buf)
        return b"".join(parts)

    def close(self) -> None:
        self._chunks = None
        self._buf = b""
        super().close()
