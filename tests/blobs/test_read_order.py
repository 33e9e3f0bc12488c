"""Reads in the order a store reads fastest: records stored next to each other, together."""

from __future__ import annotations

from pathlib import Path

from syllabus.blobs import LOOSE_MIN, Flags, LocalBackend, Record, hash_bytes
from syllabus.blobs.digest import Digest
from syllabus.blobs.reader import read_order
from syllabus.blobs.transfer import transfer

from .conftest import random_bytes


def _rec(payload: bytes) -> Record:
    return Record(hash_bytes(payload), Flags.NONE, len(payload), payload)


def test_read_order_is_pack_order_then_the_rest_as_given(backend: LocalBackend) -> None:
    first = [_rec(random_bytes(100, seed=i)) for i in range(20)]
    second = [_rec(random_bytes(100, seed=100 + i)) for i in range(20)]
    big = _rec(random_bytes(LOOSE_MIN, seed=7))
    backend.write(first)
    backend.flush()
    backend.write([*second, big])
    backend.flush()
    unknown = Digest(hash_bytes(b"not stored"))
    stored = [r.digest for r in first + second]
    asked = [unknown, *reversed(stored[::2]), big.digest, *stored[1::2]]
    ordered = read_order(backend, asked)
    assert sorted(ordered) == sorted(asked)
    # packed records in the order they were written (by pack, then offset), then the rest
    assert ordered[: len(stored)] == stored
    assert ordered[len(stored) :] == [unknown, big.digest]
    assert [r.digest for r in backend.read_many(ordered[: len(stored)])] == stored


def test_read_order_of_a_backend_that_cannot_tell_keeps_the_given_order() -> None:
    class Plain:
        pass

    digests = [Digest(hash_bytes(bytes([i]))) for i in range(5)]
    assert read_order(Plain(), digests[::-1]) == digests[::-1]  # type: ignore[arg-type]


def test_a_transfer_reads_the_source_in_its_order_and_keeps_it(
    backend: LocalBackend, tmp_path: Path
) -> None:
    """Digests asked in any order are copied in the source's pack order, so records that
    were neighbours there are neighbours in the destination too."""
    records = [_rec(random_bytes(100, seed=i)) for i in range(300)]
    backend.write(records)
    backend.flush()
    stored = [r.digest for r in records]
    dst = LocalBackend(tmp_path / "dst")
    try:
        report = transfer(backend, dst, sorted(stored), jobs=1)
        assert report.copied == len(stored)
        assert read_order(dst, sorted(stored)) == stored
    finally:
        dst.close()
