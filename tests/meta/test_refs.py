"""BlobRefs on SQLite and PostgreSQL, and several writer processes on SQLite."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from syllabus.errors import InvalidArgumentError
from syllabus.meta import BlobRef, BlobRefs, ensure_schema, transaction
from syllabus.meta.schema import blob_refs
from tests.meta._workers import digest, refs_worker, run_workers


@pytest.fixture
def refs(engine: sa.Engine) -> BlobRefs:
    ensure_schema(engine)
    return BlobRefs(engine)


D1, D2, D3 = digest(1), digest(2), digest(3)


def test_add_ignores_duplicates_and_owners_lists_them(refs: BlobRefs) -> None:
    refs.add(
        [
            BlobRef(D1, "dataset", "dataset_version", "v1"),
            BlobRef(D1, "dataset", "dataset_version", "v1"),
            BlobRef(D1, "dataset", "dataset_version", "v2"),
            BlobRef(D2, "model", "model_version", "m1"),
        ]
    )
    refs.add([BlobRef(D1, "dataset", "dataset_version", "v1")])  # already there
    assert refs.owners(D1) == [
        BlobRef(D1, "dataset", "dataset_version", "v1"),
        BlobRef(D1, "dataset", "dataset_version", "v2"),
    ]
    assert refs.owners(D3) == []
    assert refs.count_by_kind() == {"dataset": (1, 2), "model": (1, 1)}


def test_add_nothing_is_fine(refs: BlobRefs) -> None:
    refs.add([])
    assert list(refs.digests()) == []
    assert refs.count_by_kind() == {}


def test_digests_are_distinct_sorted_and_streamed(refs: BlobRefs) -> None:
    numbers = list(range(2500, 0, -1))  # more than one insert batch, unsorted
    refs.add(BlobRef(digest(n), "artifact", "run", f"r{n % 7}") for n in numbers)
    refs.add(BlobRef(digest(n), "code", "snapshot", "s1") for n in range(1, 100))
    stream = refs.digests()
    assert next(stream) == digest(1)
    stream.close()  # abandoning the stream releases its connection
    assert list(refs.digests()) == [digest(n) for n in range(1, 2501)]
    assert refs.count_by_kind() == {"artifact": (2500, 2500), "code": (99, 99)}


def test_digests_by_kind(refs: BlobRefs) -> None:
    refs.add(
        [
            BlobRef(D2, "model", "model_version", "m1"),
            BlobRef(D1, "model", "model_version", "m2"),
            BlobRef(D1, "model", "model_version", "m3"),
            BlobRef(D1, "dataset", "dataset_version", "v1"),
        ]
    )
    assert list(refs.digests_by_kind()) == [("dataset", D1), ("model", D1), ("model", D2)]


def test_remove_owner(refs: BlobRefs) -> None:
    refs.add(
        [
            BlobRef(D1, "artifact", "run", "a"),
            BlobRef(D2, "artifact", "run", "a"),
            BlobRef(D2, "artifact", "run", "b"),
        ]
    )
    assert refs.remove_owner("run", "a") == 2
    assert refs.remove_owner("run", "a") == 0
    assert list(refs.digests()) == [D2]
    assert refs.owners(D2) == [BlobRef(D2, "artifact", "run", "b")]


def test_refs_join_the_callers_transaction(engine: sa.Engine, refs: BlobRefs) -> None:
    class AbortError(Exception):
        pass

    def add_then_fail() -> None:
        with transaction(engine) as conn:
            refs.add([BlobRef(D1, "model", "model_version", "m1")], conn)
            assert refs.owners(D1, conn) == [BlobRef(D1, "model", "model_version", "m1")]
            raise AbortError

    with pytest.raises(AbortError):
        add_then_fail()
    assert refs.owners(D1) == []
    with transaction(engine) as conn:
        refs.add([BlobRef(D1, "model", "model_version", "m1")], conn)
        assert refs.remove_owner("model_version", "m1", conn) == 1
        refs.add([BlobRef(D2, "model", "model_version", "m1")], conn)
    assert list(refs.digests()) == [D2]


def test_created_at_is_recorded(engine: sa.Engine, refs: BlobRefs) -> None:
    refs.add([BlobRef(D1, "dataset", "dataset_version", "v1")])
    with transaction(engine, readonly=True) as conn:
        created = conn.scalar(sa.select(blob_refs.c.created_at))
    assert isinstance(created, int)
    assert created > 1_600_000_000_000


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("ABC", "dataset", "run", "r"), "invalid blob digest 'ABC'"),
        (("AB" * 32, "dataset", "run", "r"), "invalid blob digest"),
        ((D1, "", "run", "r"), "invalid blob reference kind ''"),
        ((D1, "Data Set", "run", "r"), "invalid blob reference kind"),
        ((D1, "dataset", "x" * 33, "r"), "invalid blob reference owner_type"),
        ((D1, "dataset", "run", ""), "invalid blob reference owner_id"),
        ((D1, "dataset", "run", "r" * 65), "invalid blob reference owner_id"),
    ],
)
def test_bad_refs_are_rejected(args: tuple[str, str, str, str], fragment: str) -> None:
    with pytest.raises(InvalidArgumentError, match=fragment):
        BlobRef(*args)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_four_processes_write_refs_at_once(db_url: str, refs: BlobRefs) -> None:
    rounds = 200
    results = run_workers(refs_worker, 4, db_url, rounds)
    failures = "\n".join(detail for _, status, detail in results if status != "ok")
    assert [(i, status) for i, status, _ in results] == [(i, "ok") for i in range(4)], failures
    kinds = refs.count_by_kind()
    # Shared digests 0..rounds-1 (dataset), one model digest per worker and round,
    # one scratch artifact per worker left from its last tenth round.
    assert kinds["dataset"] == (rounds, rounds * 4 + rounds)
    assert kinds["model"] == (rounds * 4, rounds * 4)
    assert kinds["artifact"] == (1, 4)
