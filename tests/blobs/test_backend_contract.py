"""The ObjectBackend contract, run against every backend (a local folder and S3 on moto).

A backend is created through ``env.make(location)``: two calls with the same location are
two instances (as two processes would have) over the same storage.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syllabus._utils.ids import new_id
from syllabus.blobs.backend import LOOSE_MIN, Flags, ObjectBackend, Record
from syllabus.blobs.digest import Digest, hash_bytes
from syllabus.errors import BlobNotFoundError

BACKENDS = ["local", "s3"]
SMALL_LOOSE_MIN = 512


def rec(payload: bytes, flags: Flags = Flags.NONE) -> Record:
    """A record whose digest is the hash of its payload."""
    return Record(hash_bytes(payload), flags, len(payload), payload)


def recs(n: int, size: int = 100, seed: int = 0) -> list[Record]:
    rng = random.Random(seed)
    return [rec(rng.randbytes(size) + i.to_bytes(4, "big")) for i in range(n)]


@dataclass
class Env:
    """Makes backend instances of one kind; closes them after the test."""

    kind: str
    factory: Callable[[str], ObjectBackend]
    made: list[ObjectBackend] = field(default_factory=list)

    def make(self, location: str = "main") -> ObjectBackend:
        backend = self.factory(location)
        self.made.append(backend)
        return backend


def _local_factory(tmp_path: Path) -> Callable[[str], ObjectBackend]:
    local = pytest.importorskip("syllabus.blobs.local", reason="LocalBackend not written yet")
    return lambda location: local.LocalBackend(tmp_path / location)


@pytest.fixture(params=BACKENDS)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    if request.param == "local":
        factory = _local_factory(tmp_path)
    else:
        from syllabus.blobs.s3 import S3Backend

        request.applymarker(pytest.mark.s3)
        bucket = request.getfixturevalue("s3_bucket")
        factory = lambda location: S3Backend(  # noqa: E731
            bucket.name, f"store/{location}", client=bucket.client
        )
    e = Env(request.param, factory)
    yield e
    for backend in e.made:
        backend.close()


@pytest.fixture
def backend(env: Env) -> ObjectBackend:
    return env.make()


@pytest.fixture
def small_loose(monkeypatch: pytest.MonkeyPatch) -> int:
    """Store payloads of SMALL_LOOSE_MIN bytes or more loose, so tests need no 8 MiB records.

    Backends read the module-level LOOSE_MIN at call time.
    """
    for module in ("syllabus.blobs.local", "syllabus.blobs.s3"):
        monkeypatch.setattr(f"{module}.LOOSE_MIN", SMALL_LOOSE_MIN, raising=False)
    return SMALL_LOOSE_MIN


def test_is_an_object_backend(backend: ObjectBackend) -> None:
    assert isinstance(backend, ObjectBackend)
    assert isinstance(backend.url, str)
    assert backend.url


def test_write_flush_read(env: Env) -> None:
    backend = env.make()
    records = [*recs(3), rec(b""), rec(b"zstd-ish", Flags.ZSTD | Flags.CHUNKLIST)]
    backend.write(records)
    backend.flush()
    digests = [r.digest for r in records]
    assert backend.contains(digests) == set(digests)
    for r in records:
        assert backend.read(r.digest) == r
    other = env.make()
    assert [other.read(d) for d in digests] == records


def test_records_are_opaque(backend: ObjectBackend) -> None:
    # The backend never hashes: a record is stored under the digest it carries.
    digest = Digest("ab" * 32)
    record = Record(digest, Flags.ZSTD, 10**12, b"not the content of that digest")
    backend.write([record])
    backend.flush()
    assert backend.read(digest) == record


def test_read_many_keeps_the_given_order(env: Env) -> None:
    records = recs(60)
    backend = env.make()
    backend.write(records[:30])
    backend.flush()
    backend.write(records[30:])  # two packs on every backend
    backend.flush()
    order = [r.digest for r in records]
    random.Random(1).shuffle(order)
    order += order[:5]  # repeats are answered again
    by_digest = {r.digest: r for r in records}
    for reader in (backend, env.make()):
        assert list(reader.read_many(order)) == [by_digest[d] for d in order]
    assert list(backend.read_many([])) == []


def test_writes_are_idempotent(env: Env) -> None:
    records = recs(5)
    a = env.make()
    a.write(records)
    a.write(records[:2])  # again before the flush
    a.flush()
    a.write(records)  # again after it
    a.flush()
    b = env.make()
    b.write(records[3:])  # from another instance
    b.flush()
    b.close()
    digests = [i.digest for i in env.make().iter_info()]
    assert sorted(digests) == sorted(r.digest for r in records)


def test_info_and_iter_info(env: Env) -> None:
    before = time.time()
    records = [*recs(4, size=300), rec(b"x" * 1000, Flags.ZSTD)]
    backend = env.make()
    backend.write(records)
    backend.flush()
    reader = env.make()
    for r in records:
        info = reader.info(r.digest)
        assert (info.digest, info.flags, info.size, info.stored_size) == (
            r.digest,
            r.flags,
            r.size,
            len(r.payload),
        )
        assert before - 5 <= info.mtime <= time.time() + 5
    infos = list(reader.iter_info())
    assert len(infos) == len({i.digest for i in infos}) == len(records)
    assert {i.digest: i.stored_size for i in infos} == {r.digest: len(r.payload) for r in records}


def test_loose_and_packed_around_loose_min(env: Env) -> None:
    packed = rec(b"p" * (LOOSE_MIN - 1))
    loose = rec(b"l" * LOOSE_MIN)
    backend = env.make()
    backend.write([packed, loose])
    backend.close()  # a local pack still open for writing is not repacked by others
    reader = env.make()
    assert reader.contains([packed.digest, loose.digest]) == {packed.digest, loose.digest}
    assert list(reader.read_many([loose.digest, packed.digest])) == [loose, packed]
    assert reader.info(loose.digest).stored_size == LOOSE_MIN
    assert reader.info(packed.digest).stored_size == LOOSE_MIN - 1
    assert {i.digest for i in reader.iter_info()} == {packed.digest, loose.digest}
    assert reader.delete([packed.digest, loose.digest]) >= 2 * LOOSE_MIN - 1
    assert reader.contains([packed.digest, loose.digest]) == set()


def test_delete_repacks_and_keeps_live_records(env: Env) -> None:
    records = recs(20, size=200)
    writer = env.make()
    writer.write(records[:10])
    writer.flush()
    writer.write(records[10:])
    writer.flush()
    writer.close()
    doomed = records[3:13]  # from both packs
    live = records[:3] + records[13:]
    backend = env.make()
    freed = backend.delete([r.digest for r in doomed])
    assert freed >= sum(len(r.payload) for r in doomed)
    assert backend.contains([r.digest for r in records]) == {r.digest for r in live}
    for reader in (backend, env.make()):
        assert list(reader.read_many([r.digest for r in live])) == live
        assert {i.digest for i in reader.iter_info()} == {r.digest for r in live}
        with pytest.raises(BlobNotFoundError):
            reader.read(doomed[0].digest)
    assert backend.delete([r.digest for r in doomed]) == 0  # already gone
    assert backend.delete([]) == 0


def test_delete_keeps_mtimes_of_repacked_records(env: Env) -> None:
    records = recs(3)
    backend = env.make()
    backend.write(records)
    backend.flush()
    before = backend.info(records[0].digest).mtime
    time.sleep(0.05)
    backend.delete([records[1].digest])
    assert env.make().info(records[0].digest).mtime == before


@pytest.mark.usefixtures("small_loose")
def test_delete_loose_records(env: Env) -> None:
    big = [rec(bytes([i]) * (SMALL_LOOSE_MIN + i)) for i in range(3)]
    small = recs(2)
    backend = env.make()
    backend.write(big + small)
    backend.flush()
    assert backend.delete([big[0].digest, small[0].digest]) >= SMALL_LOOSE_MIN + 100
    reader = env.make()
    expected = {r.digest for r in (*big[1:], *small[1:])}
    assert {i.digest for i in reader.iter_info()} == expected
    assert reader.contains([r.digest for r in big + small]) == expected


def test_flushed_writes_of_another_instance_are_visible(env: Env) -> None:
    records = recs(3)
    digests = [r.digest for r in records]
    writer = env.make()
    reader = env.make()
    assert reader.contains(digests) == set()  # the reader has loaded its index now
    writer.write(records)
    assert reader.contains(digests) == set()  # unflushed: not visible elsewhere
    with pytest.raises(BlobNotFoundError):
        reader.read(digests[0])
    writer.flush()
    assert reader.contains(digests) == set(digests)
    assert reader.read(digests[1]) == records[1]
    assert reader.info(digests[2]).size == records[2].size
    later = rec(b"later")
    writer.write([later])
    writer.flush()
    assert list(reader.read_many([later.digest, digests[0]])) == [later, records[0]]


def test_close_flushes(env: Env) -> None:
    records = recs(2)
    backend = env.make()
    backend.write(records)
    backend.close()
    assert env.make().contains([r.digest for r in records]) == {r.digest for r in records}


def test_missing_digest(backend: ObjectBackend) -> None:
    backend.write(recs(1))
    backend.flush()
    absent = hash_bytes(b"absent")
    assert backend.contains([absent]) == set()
    with pytest.raises(BlobNotFoundError, match=absent):
        backend.read(absent)
    with pytest.raises(BlobNotFoundError):
        backend.info(absent)
    with pytest.raises(BlobNotFoundError):
        list(backend.read_many([recs(1)[0].digest, absent]))


def test_concurrent_writers_in_threads(env: Env) -> None:
    records = recs(200, size=64)
    backend = env.make()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            mine = records[n * 20 : n * 20 + 60]  # overlapping slices
            backend.write(mine)
            if n % 2:
                backend.flush()
            assert backend.contains([r.digest for r in mine]) == {r.digest for r in mine}
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    backend.flush()
    reader = env.make()
    wanted = records[:200]
    assert list(reader.read_many([r.digest for r in wanted])) == wanted


_records = st.builds(
    Record,
    digest=st.binary(min_size=32, max_size=32).map(Digest.from_bytes),
    flags=st.sampled_from([Flags.NONE, Flags.ZSTD, Flags.CHUNKLIST, Flags.ZSTD | Flags.CHUNKLIST]),
    size=st.integers(min_value=0, max_value=2**64 - 1),
    payload=st.binary(max_size=2 * SMALL_LOOSE_MIN),
)


@pytest.mark.usefixtures("small_loose")
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(_records, max_size=12, unique_by=lambda r: r.digest))
def test_round_trip(env: Env, records: list[Record]) -> None:
    location = new_id()  # a fresh store per example
    writer = env.make(location)
    writer.write(records)
    writer.close()
    reader = env.make(location)
    order = [r.digest for r in reversed(records)]
    assert list(reader.read_many(order)) == records[::-1]
    assert {i.digest: (i.flags, i.size, i.stored_size) for i in reader.iter_info()} == {
        r.digest: (r.flags, r.size, len(r.payload)) for r in records
    }


def test_a_stale_reader_follows_a_repack(env: Env) -> None:
    records = recs(10)
    writer = env.make()
    writer.write(records)
    writer.close()
    stale = env.make()
    assert stale.contains([records[0].digest])  # its index is loaded before the repack
    env.make().delete([records[0].digest])
    assert list(stale.read_many([r.digest for r in records[1:]])) == records[1:]
    assert stale.info(records[9].digest).size == records[9].size


def test_refs_are_named_atomic_files(env: Env) -> None:
    from syllabus.blobs.backend import RefBackend
    from syllabus.errors import InvalidArgumentError

    backend = env.make()
    assert isinstance(backend, RefBackend)
    assert backend.list_refs("datasets/") == []
    assert backend.read_ref("datasets/a/x") is None
    backend.write_ref("datasets/a/x", b"one")
    backend.write_ref("datasets/a/y", b"")
    backend.write_ref("datasets/a~b/z", b"three")
    backend.write_ref("other", b"4")
    other = env.make()
    assert isinstance(other, RefBackend)
    assert other.list_refs("datasets/") == ["datasets/a/x", "datasets/a/y", "datasets/a~b/z"]
    assert other.list_refs("datasets/a/") == ["datasets/a/x", "datasets/a/y"]
    assert other.read_ref("datasets/a/x") == b"one"
    assert other.read_ref("datasets/a/y") == b""
    other.write_ref("datasets/a/x", b"replaced")
    assert backend.read_ref("datasets/a/x") == b"replaced"
    backend.delete_refs(["datasets/a/x", "datasets/a/missing"])
    assert other.list_refs("datasets/a/") == ["datasets/a/y"]
    assert env.make("elsewhere").list_refs("datasets/") == []  # type: ignore[attr-defined]
    for bad in ["", "../x", "a/../b", "/abs", "a//b", ".hidden", "a/b/", "x y"]:
        with pytest.raises(InvalidArgumentError, match="invalid ref name"):
            backend.write_ref(bad, b"")
        with pytest.raises(InvalidArgumentError, match="invalid ref name"):
            backend.read_ref(bad)
    # refs are not records: the record listing does not see them
    assert list(backend.iter_info()) == []
