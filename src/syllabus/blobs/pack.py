"""The pack format, shared by every backend.

A pack is an append-only file of records; its index is a separate append-only file of
fixed-size entries. A writer appends records to the pack, makes the pack durable (fsync, or
the upload completes), and only then appends their index entries and makes the index
durable: an entry never points at bytes that might be lost. A torn tail (a kill mid-append)
is detected by the per-entry CRC and ignored; records in the pack without an index entry
are garbage that ``repack``/gc removes.

Pack file::

    b"SYLPACK1"
    ( header: digest[32] flags[u8] size[u64] stored_len[u64]   payload[stored_len] )*

Index file::

    b"SYLIDX01"
    ( digest[32] flags[u8] size[u64] offset[u64] stored_len[u64] mtime[f64] crc32[u32] )*

``offset`` is where the payload starts in the pack; integers are little-endian; the CRC
covers the preceding 65 bytes of the entry. A loose object is one record (header and
payload) alone in its own file.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from typing import BinaryIO, Final, NamedTuple

from syllabus.blobs.backend import Flags, ObjectInfo, Record
from syllabus.blobs.digest import Digest
from syllabus.errors import StorageError

__all__ = [
    "INDEX_ENTRY",
    "INDEX_MAGIC",
    "PACK_MAGIC",
    "RECORD_HEADER",
    "IndexEntry",
    "decode_index",
    "decode_loose",
    "encode_index_entries",
    "encode_index_entry",
    "encode_loose",
    "encode_record_header",
    "scan_pack",
]

PACK_MAGIC: Final = b"SYLPACK1"
INDEX_MAGIC: Final = b"SYLIDX01"
RECORD_HEADER: Final = struct.Struct("<32sBQQ")
_ENTRY_BODY: Final = struct.Struct("<32sBQQQd")
INDEX_ENTRY: Final = _ENTRY_BODY.size + 4
_CRC: Final = struct.Struct("<I")


class IndexEntry(NamedTuple):
    """Where one record's payload sits inside a pack.

    A named tuple rather than a frozen dataclass: a store index holds one per record and an
    add of 10,000 files makes 10,000, and a tuple is built in a fraction of the time.
    """

    digest: Digest
    flags: Flags
    size: int
    offset: int
    stored_len: int
    mtime: float

    def info(self) -> ObjectInfo:
        return ObjectInfo(self.digest, self.flags, self.size, self.stored_len, self.mtime)


def encode_record_header(record: Record) -> bytes:
    """The header that precedes ``record.payload`` in a pack or a loose object."""
    return RECORD_HEADER.pack(
        record.digest.to_bytes(), int(record.flags), record.size, len(record.payload)
    )


def encode_index_entry(entry: IndexEntry) -> bytes:
    body = _ENTRY_BODY.pack(
        bytes.fromhex(entry.digest),
        entry.flags.value,
        entry.size,
        entry.offset,
        entry.stored_len,
        entry.mtime,
    )
    return body + _CRC.pack(zlib.crc32(body))


def encode_index_entries(entries: Sequence[IndexEntry]) -> bytes:
    """The index entries of ``entries``, in order (what :func:`encode_index_entry` gives
    each, joined): the digests decoded with one call, the entries packed into one buffer
    (a flush after an add of 10,000 small files encodes 10,000)."""
    raw = bytes.fromhex("".join([e.digest for e in entries]))
    out = bytearray(INDEX_ENTRY * len(entries))
    view = memoryview(out)
    pack_body, pack_crc, crc32, body = (
        _ENTRY_BODY.pack_into,
        _CRC.pack_into,
        zlib.crc32,
        _ENTRY_BODY.size,
    )
    pos = 0
    for i, (_, flags, size, offset, stored_len, mtime) in enumerate(entries):
        pack_body(out, pos, raw[32 * i : 32 * i + 32], flags, size, offset, stored_len, mtime)
        pack_crc(out, pos + body, crc32(view[pos : pos + body]))
        pos += INDEX_ENTRY
    view.release()
    return bytes(out)


def _flags(value: int) -> Flags:
    """``Flags(value)`` without the enum call's cost for the values in use."""
    found = _FLAG_VALUES.get(value)
    return Flags(value) if found is None else found


_FLAG_VALUES: Final = {int(f): f for f in (Flags(v) for v in range(4))}


def decode_index(data: bytes, *, source: str = "index") -> list[IndexEntry]:
    """Entries of an index file; stops quietly at a torn or corrupt tail."""
    if not data:
        return []
    if not data.startswith(INDEX_MAGIC):
        raise StorageError(f"{source}: not a Syllabus pack index (bad magic)")
    out: list[IndexEntry] = []
    view = memoryview(data)
    crc32, body_size, unpack_body = zlib.crc32, _ENTRY_BODY.size, _ENTRY_BODY.unpack_from
    unpack_crc, new_str, flag_values = _CRC.unpack_from, str.__new__, _FLAG_VALUES
    end = len(data) - INDEX_ENTRY
    pos = len(INDEX_MAGIC)
    while pos <= end:
        (crc,) = unpack_crc(view, pos + body_size)
        if crc32(view[pos : pos + body_size]) != crc:
            break
        raw, flags, size, offset, stored_len, mtime = unpack_body(view, pos)
        digest = new_str(Digest, raw.hex())  # 32 raw bytes: always a valid id
        flag = flag_values.get(flags)
        if flag is None:
            flag = Flags(flags)
        out.append(IndexEntry(digest, flag, size, offset, stored_len, mtime))
        pos += INDEX_ENTRY
    return out


def scan_pack(fh: BinaryIO, *, mtime: float = 0.0) -> Iterator[IndexEntry]:
    """Walk a pack's records from the start (recovery and verification); stops at a torn tail."""
    fh.seek(0, 2)
    total = fh.tell()
    fh.seek(0)
    if fh.read(len(PACK_MAGIC)) != PACK_MAGIC:
        raise StorageError("not a Syllabus pack (bad magic)")
    pos = len(PACK_MAGIC)
    while pos + RECORD_HEADER.size <= total:
        fh.seek(pos)
        raw, flags, size, stored_len = RECORD_HEADER.unpack(fh.read(RECORD_HEADER.size))
        start = pos + RECORD_HEADER.size
        if start + stored_len > total:
            return  # a torn payload: the file ends before the record does
        yield IndexEntry(Digest.from_bytes(raw), _flags(flags), size, start, stored_len, mtime)
        pos = start + stored_len


def encode_loose(record: Record) -> bytes:
    """A loose object's bytes: the record header followed by the payload."""
    return encode_record_header(record) + record.payload


def decode_loose(data: bytes, *, source: str = "loose object") -> Record:
    if len(data) < RECORD_HEADER.size:
        raise StorageError(f"{source}: truncated (no record header)")
    raw, flags, size, stored_len = RECORD_HEADER.unpack_from(data)
    payload = data[RECORD_HEADER.size :]
    if len(payload) != stored_len:
        raise StorageError(
            f"{source}: truncated ({len(payload)} of {stored_len} payload bytes present)"
        )
    return Record(Digest.from_bytes(raw), _flags(flags), size, payload)
