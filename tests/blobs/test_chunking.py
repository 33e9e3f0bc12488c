"""Content-defined chunking: coverage, bounds, determinism and resynchronisation."""

from __future__ import annotations

import itertools

from syllabus.blobs.backend import LOOSE_MIN
from syllabus.blobs.chunking import CHUNK_AVG, CHUNK_MAX, CHUNK_MIN, WHOLE_MAX, chunk_spans

from .conftest import random_bytes


def test_uses_the_compiled_chunker() -> None:
    from syllabus.blobs import chunking

    list(chunk_spans(b"x" * 10_000))
    assert chunking._fastcdc is not None
    assert chunking._fastcdc.__module__ == "fastcdc.fastcdc_cy"


def test_parameters_are_consistent() -> None:
    assert CHUNK_MIN < CHUNK_AVG < CHUNK_MAX <= WHOLE_MAX < LOOSE_MIN


def test_spans_cover_the_data_within_bounds() -> None:
    data = random_bytes(12 * CHUNK_AVG, seed=1)
    spans = list(chunk_spans(data))
    assert spans[0][0] == 0
    for (o1, n1), (o2, _) in itertools.pairwise(spans):
        assert o1 + n1 == o2
    assert sum(n for _, n in spans) == len(data)
    assert all(CHUNK_MIN <= n <= CHUNK_MAX for _, n in spans[:-1])
    assert spans == list(chunk_spans(memoryview(data)))


def test_empty_data_has_no_chunks() -> None:
    assert list(chunk_spans(b"")) == []


def test_insertion_changes_only_nearby_chunks() -> None:
    data = random_bytes(4 * 1024 * 1024, seed=2)
    edited = data[:1000] + b"inserted" + data[1000:]

    def pieces(b: bytes) -> set[bytes]:
        return {b[o : o + n] for o, n in chunk_spans(b, avg_size=16 * 1024)}

    before, after = pieces(data), pieces(edited)
    new = sum(len(p) for p in after - before)
    assert len(after - before) <= 2
    assert new <= 2 * 64 * 1024
