"""Record payloads: compression where it pays, and the chunk-list format.

A record's *logical bytes* are what its digest names (for a chunk list: the list itself,
while the digest names the whole file). The payload is the logical bytes, or a zstd frame
of them when :data:`~syllabus.blobs.backend.Flags.ZSTD` is set.

Compression is tried only where it saves space. Payloads under 64 bytes are stored as is.
Up to 32 KiB, the whole payload is first compressed at zstd's fast level -1 (about 0.5 us
for 1 KiB, against 3-4 us at levels 1-3 whose context set-up dominates at this size); of
larger ones, two 8 KiB samples (start and middle) at level 1. Data that does not shrink by
at least 10% there is stored as is, so random or already-compressed data pays little. Data
that passes is compressed at :data:`ZSTD_LEVEL` and kept compressed only if the frame is
at least 10% smaller.

Chunk list (the logical bytes of a ``CHUNKLIST`` record)::

    b"SYLCHK01"  ( digest[32] length[u64 little-endian] )*

in file order; the file is the concatenation of the chunks, so offsets are running sums
and the file size is the sum of the lengths (40 bytes per chunk: 40 KiB for a 1 GiB file).
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Sequence
from typing import Final

import zstandard

from syllabus.blobs.backend import Flags, Record
from syllabus.blobs.digest import Digest, hash_bytes
from syllabus.errors import BlobCorruptError

__all__ = [
    "CHUNKLIST_MAGIC",
    "ZSTD_LEVEL",
    "decode_chunklist",
    "encode_borrowed",
    "encode_chunklist",
    "encode_payload",
    "encode_small_payloads",
    "logical_bytes",
    "verified_bytes",
]

ZSTD_LEVEL: Final = 3
CHUNKLIST_MAGIC: Final = b"SYLCHK01"
_CHUNK_REF: Final = struct.Struct("<32sQ")
_SAMPLE: Final = 8192
_MIN_GAIN: Final = 0.9  # keep compressed output only if at most 90% of the input
_MIN_SIZE: Final = 64  # below this, never compress
_PROBE_LEVEL: Final = -1  # zstd's fast mode: cheap enough to try on every small payload

_local = threading.local()


_Compressors = tuple[zstandard.ZstdCompressor, zstandard.ZstdCompressor, zstandard.ZstdCompressor]


def _compressors() -> _Compressors:
    """This thread's (probe, sample, best) compressors (a context is not thread-safe)."""
    try:
        trio: _Compressors = _local.cctx
    except AttributeError:
        trio = (
            zstandard.ZstdCompressor(level=_PROBE_LEVEL),
            zstandard.ZstdCompressor(level=1),
            zstandard.ZstdCompressor(level=ZSTD_LEVEL),
        )
        _local.cctx = trio
    return trio


def _decompressor() -> zstandard.ZstdDecompressor:
    dctx: zstandard.ZstdDecompressor | None = getattr(_local, "dctx", None)
    if dctx is None:
        dctx = _local.dctx = zstandard.ZstdDecompressor()
    return dctx


def encode_payload(data: bytes | memoryview) -> tuple[Flags, bytes]:
    """``(flags, payload)`` for logical bytes: zstd only if it saves at least 10%."""
    n = len(data)
    if _MIN_SIZE <= n <= 4 * _SAMPLE and type(data) is bytes:
        # The usual small file, inlined (one call per file of a folder of small files).
        if len(_compressors()[0].compress(data)) > n * _MIN_GAIN:
            return Flags.NONE, data
        packed = _compressors()[2].compress(data)
        return (Flags.ZSTD, packed) if len(packed) <= n * _MIN_GAIN else (Flags.NONE, data)
    flags, payload = encode_borrowed(data)
    return flags, payload if isinstance(payload, bytes) else bytes(payload)


def encode_small_payloads(datas: Sequence[bytes]) -> list[tuple[Flags, bytes]]:
    """:func:`encode_payload` of each of several payloads (a batch of a folder's small
    files), with the probe of the usual case inlined: one compressor looked up for the
    batch, no call per payload that does not compress.

    (A probe of the batch's concatenation instead of one per payload would cost less, but
    zstd's fast levels step over data faster the longer they find no repeat, so a text file
    after some random ones went unnoticed: it would have been stored as is.)"""
    probe = _compressors()[0].compress
    low, high = _MIN_SIZE, 4 * _SAMPLE
    out: list[tuple[Flags, bytes]] = []
    append = out.append
    for data in datas:
        n = len(data)
        if low <= n <= high and len(probe(data)) > n * _MIN_GAIN:
            append((Flags.NONE, data))  # the usual small file that does not compress
        else:
            append(encode_payload(data))
    return out


def encode_borrowed(data: bytes | memoryview) -> tuple[Flags, bytes | memoryview]:
    """Like :func:`encode_payload`, but data stored as is comes back as ``data`` itself,
    not a copy (for a caller that writes it out before releasing ``data``)."""
    n = len(data)
    if n < _MIN_SIZE:
        return Flags.NONE, data
    probe, fast, best = _compressors()
    if n <= 4 * _SAMPLE:
        if len(probe.compress(data)) > n * _MIN_GAIN:
            return Flags.NONE, data
    else:
        mid = n // 2
        sample_in = 2 * _SAMPLE
        sample_out = len(fast.compress(data[:_SAMPLE])) + len(
            fast.compress(data[mid : mid + _SAMPLE])
        )
        if sample_out > sample_in * _MIN_GAIN:
            return Flags.NONE, data
    packed = best.compress(data)
    if len(packed) <= n * _MIN_GAIN:
        return Flags.ZSTD, packed
    return Flags.NONE, data


def logical_bytes(record: Record) -> bytes:
    """The record's logical bytes (decompressed); BlobCorruptError if the frame is bad."""
    if not record.flags & Flags.ZSTD:
        return record.payload
    try:
        data: bytes = _decompressor().decompress(record.payload)
    except zstandard.ZstdError as exc:
        raise BlobCorruptError(f"object {record.digest}: bad zstd frame ({exc})") from exc
    return data


def verified_bytes(record: Record) -> bytes:
    """Logical bytes of a non-chunk-list record, checked against its digest and size."""
    data = logical_bytes(record)
    if len(data) != record.size or hash_bytes(data) != record.digest:
        raise BlobCorruptError(
            f"object {record.digest} is corrupt: its bytes do not hash to its content id"
        )
    return data


def encode_chunklist(chunks: Sequence[tuple[Digest, int]]) -> bytes:
    """The logical bytes of a chunk list."""
    parts = [CHUNKLIST_MAGIC]
    parts.extend(_CHUNK_REF.pack(d.to_bytes(), n) for d, n in chunks)
    return b"".join(parts)


def decode_chunklist(data: bytes, *, digest: Digest) -> list[tuple[Digest, int]]:
    """``[(chunk digest, length), ...]``; BlobCorruptError naming ``digest`` if malformed."""
    body = len(data) - len(CHUNKLIST_MAGIC)
    if not data.startswith(CHUNKLIST_MAGIC) or body % _CHUNK_REF.size:
        raise BlobCorruptError(f"object {digest}: malformed chunk list")
    return [
        (Digest.from_bytes(raw), n)
        for raw, n in _CHUNK_REF.iter_unpack(memoryview(data)[len(CHUNKLIST_MAGIC) :])
    ]
