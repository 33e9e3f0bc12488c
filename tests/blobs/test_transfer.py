"""Transfers between backends: only missing records, byte for byte, resumable, with progress."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from syllabus.blobs import local as local_mod
from syllabus.blobs import transfer as transfer_mod
from syllabus.blobs.backend import Flags, ObjectBackend, ObjectInfo, Record
from syllabus.blobs.digest import Digest, hash_bytes
from syllabus.blobs.local import LocalBackend
from syllabus.blobs.s3 import S3Backend
from syllabus.blobs.store import BlobStore
from syllabus.blobs.transfer import TransferReport, transfer, transfer_roots
from syllabus.errors import BlobCorruptError, BlobNotFoundError, InvalidArgumentError, StorageError
from tests.fixtures.s3 import S3Bucket


def recs(n: int, size: int = 120, seed: int = 0) -> list[Record]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        payload = rng.randbytes(size) + i.to_bytes(4, "big")
        flags = Flags.ZSTD if i % 3 == 0 else Flags.NONE
        out.append(Record(hash_bytes(payload), flags, 10 * len(payload), payload))
    return out


def filled(path: Path, records: list[Record]) -> LocalBackend:
    backend = LocalBackend(path)
    backend.write(records)
    backend.flush()
    return backend


class FailingSource:
    """A source that raises after handing out ``limit`` records (a dropped connection)."""

    def __init__(self, inner: ObjectBackend, limit: int) -> None:
        self.inner = inner
        self.limit = limit
        self.served = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.inner.url

    def read_many(self, digests: Iterable[Digest]) -> Iterator[Record]:
        for record in self.inner.read_many(digests):
            with self.lock:
                if self.served >= self.limit:
                    raise ConnectionResetError("connection dropped")
                self.served += 1
            yield record

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


class CountingFlushes:
    """A destination that counts flushes."""

    def __init__(self, inner: ObjectBackend) -> None:
        self.inner = inner
        self.flushes = 0

    @property
    def url(self) -> str:
        return self.inner.url

    def flush(self) -> None:
        self.flushes += 1
        self.inner.flush()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def make_tree(folder: Path) -> None:
    rng = random.Random(7)
    (folder / "data").mkdir(parents=True)
    for i in range(30):
        (folder / "data" / f"part-{i:02}.txt").write_bytes(rng.randbytes(rng.randrange(0, 3000)))
    (folder / "model.bin").write_bytes(rng.randbytes(3 * 1024 * 1024))  # chunked
    (folder / "README").write_text("hello\n")


@pytest.mark.s3
def test_local_to_s3_to_local(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    make_tree(tmp_path / "src")
    with BlobStore(LocalBackend(tmp_path / "a")) as origin:
        tree = origin.put_tree(tmp_path / "src")
        reachable = origin.expand([tree.digest])
        with BlobStore(S3Backend(s3_bucket.name, "remote", client=s3_bucket.client)) as remote:
            pushed = transfer_roots(origin, remote, [tree.digest], jobs=4)
        assert pushed.copied == len(reachable) > 30
        assert pushed.skipped == 0
        assert pushed.copied_bytes == sum(origin.backend.info(d).stored_size for d in reachable)

    with (
        BlobStore(S3Backend(s3_bucket.name, "remote", client=s3_bucket.client)) as remote,
        BlobStore(LocalBackend(tmp_path / "b")) as clone,
    ):
        pulled = transfer_roots(remote, clone, [tree.digest])
        assert (pulled.copied, pulled.copied_bytes) == (pushed.copied, pushed.copied_bytes)
        clone.materialize(tree.digest, tmp_path / "out")
    for path in (tmp_path / "src").rglob("*"):
        twin = tmp_path / "out" / path.relative_to(tmp_path / "src")
        assert path.is_dir() == twin.is_dir()
        if path.is_file():
            assert path.read_bytes() == twin.read_bytes()


@pytest.mark.s3
def test_records_are_copied_byte_for_byte(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    records = recs(40)
    src = filled(tmp_path / "src", records)
    dst = S3Backend(s3_bucket.name, client=s3_bucket.client)
    transfer(src, dst, [r.digest for r in records])
    fresh = S3Backend(s3_bucket.name, client=s3_bucket.client)
    assert list(fresh.read_many([r.digest for r in records])) == records
    back = LocalBackend(tmp_path / "back")
    transfer(fresh, back, [r.digest for r in records])
    assert list(back.read_many([r.digest for r in records])) == records


def test_second_transfer_copies_nothing(tmp_path: Path) -> None:
    records = recs(50)
    src = filled(tmp_path / "src", records)
    dst = LocalBackend(tmp_path / "dst")
    digests = [r.digest for r in records]
    first = transfer(src, dst, digests + digests[:5])  # repeats count once
    assert first == TransferReport(50, sum(len(r.payload) for r in records), 0, 0)
    second = transfer(src, LocalBackend(tmp_path / "dst"), digests)
    assert second == TransferReport(0, 0, 50, first.copied_bytes)
    assert second.total == 50


def test_only_missing_records_are_copied(tmp_path: Path) -> None:
    records = recs(30)
    src = filled(tmp_path / "src", records)
    dst = filled(tmp_path / "dst", records[::3])
    report = transfer(src, dst, [r.digest for r in records], jobs=3)
    assert (report.copied, report.skipped) == (20, 10)
    assert report.skipped_bytes == sum(len(r.payload) for r in records[::3])
    assert {i.digest for i in LocalBackend(tmp_path / "dst").iter_info()} == {
        r.digest for r in records
    }


def test_interrupted_transfer_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer_mod, "COPY_BATCH", 10)
    records = recs(200)
    digests = [r.digest for r in records]
    local = filled(tmp_path / "src", records)
    dst = LocalBackend(tmp_path / "dst")
    flaky = FailingSource(local, limit=95)
    with pytest.raises(ConnectionResetError):
        transfer(flaky, dst, digests, jobs=2)  # type: ignore[arg-type]
    dst.close()  # as if the process ended here

    kept = LocalBackend(tmp_path / "dst").contains(digests)
    assert 0 < len(kept) < len(records)  # what finished before the error was flushed
    again = transfer(local, LocalBackend(tmp_path / "dst"), digests, jobs=2)
    assert again.copied == len(records) - len(kept)
    assert again.skipped == len(kept)
    final = LocalBackend(tmp_path / "dst")
    assert list(final.read_many(digests)) == records


def test_destination_is_flushed_periodically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer_mod, "COPY_BATCH", 10)
    monkeypatch.setattr(transfer_mod, "FLUSH_RECORDS", 30)
    records = recs(120)
    dst = CountingFlushes(LocalBackend(tmp_path / "dst"))
    transfer(filled(tmp_path / "src", records), dst, [r.digest for r in records], jobs=2)  # type: ignore[arg-type]
    assert dst.flushes >= 4


def test_progress_counts_every_digest_once(tmp_path: Path) -> None:
    records = recs(2500, size=20)
    src = filled(tmp_path / "src", records)
    dst = filled(tmp_path / "dst", records[:700])
    calls: list[tuple[int, int | None]] = []
    threads: set[int] = set()

    def progress(advance: int, total: int | None) -> None:
        calls.append((advance, total))
        threads.add(threading.get_ident())

    report = transfer(src, dst, [r.digest for r in records], jobs=4, progress=progress)
    assert report.total == 2500
    assert sum(advance for advance, _ in calls) == 2500
    assert {total for _, total in calls} == {2500}
    assert threads == {threading.get_ident()}  # callbacks come from the caller's thread


def test_empty_transfer(tmp_path: Path) -> None:
    calls: list[tuple[int, int | None]] = []
    backend = LocalBackend(tmp_path / "x")
    report = transfer(backend, backend, [], progress=lambda a, t: calls.append((a, t)))
    assert report == TransferReport()
    assert calls == []


def test_missing_source_record(tmp_path: Path) -> None:
    records = recs(3)
    src = filled(tmp_path / "src", records)
    absent = hash_bytes(b"absent")
    with pytest.raises(BlobNotFoundError, match=absent):
        transfer(src, LocalBackend(tmp_path / "dst"), [records[0].digest, absent])


def test_jobs_must_be_positive(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path / "x")
    with pytest.raises(InvalidArgumentError, match="jobs"):
        transfer(backend, backend, [], jobs=0)


def test_report_bytes_are_stored_bytes(tmp_path: Path) -> None:
    record = Record(hash_bytes(b"logical"), Flags.ZSTD, 10_000, b"tiny")
    src = filled(tmp_path / "src", [record])
    report = transfer(src, LocalBackend(tmp_path / "dst"), [record.digest])
    assert report.copied_bytes == 4
    info: ObjectInfo = LocalBackend(tmp_path / "dst").info(record.digest)
    assert (info.flags, info.size, info.stored_size) == (Flags.ZSTD, 10_000, 4)


# -- runs of pack bytes between two local stores ---------------------------------------


def pack_files(root: Path, ext: str = ".pack") -> list[Path]:
    return sorted(p for p in (root / "packs").iterdir() if p.suffix == ext)


@pytest.fixture
def short_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of pack bytes from 2,000 bytes: a few small test records make one."""
    monkeypatch.setattr(local_mod, "RUN_MIN", 2000)


def read_back(path: Path, records: list[Record]) -> list[Record]:
    """``records`` as a fresh instance of the store at ``path`` reads them."""
    fresh = LocalBackend(path)
    try:
        return list(fresh.read_many(r.digest for r in records))
    finally:
        fresh.close()


def in_packs(path: Path, records: list[Record], per_pack: int) -> LocalBackend:
    """A store at ``path`` holding ``records`` in packs of ``per_pack`` (a writer each)."""
    for start in range(0, len(records), per_pack):
        filled(path, records[start : start + per_pack]).close()
    return LocalBackend(path)


def test_neighbours_go_as_runs_of_pack_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = recs(3000, size=400)  # ~1.3 MB side by side in one pack: one run
    src = filled(tmp_path / "src", records)
    dst = LocalBackend(tmp_path / "dst")
    monkeypatch.setattr(dst, "write", lambda _records: pytest.fail("copied record by record"))
    calls: list[int] = []
    report = transfer(src, dst, [r.digest for r in records], progress=lambda a, _t: calls.append(a))
    assert report == TransferReport(3000, sum(len(r.payload) for r in records), 0, 0)
    assert sum(calls) == 3000
    dst.close()
    # The run's bytes are the source's, from the first record to the last, in a new pack
    # that is committed (another instance reads every record from it).
    [copy] = pack_files(tmp_path / "dst")
    [original] = pack_files(tmp_path / "src")
    assert copy.read_bytes() == original.read_bytes()
    assert read_back(tmp_path / "dst", records) == records
    fresh = LocalBackend(tmp_path / "dst")
    infos = {i.digest: (i.flags, i.size, i.stored_size) for i in fresh.iter_info()}
    assert infos == {r.digest: (r.flags, r.size, len(r.payload)) for r in records}
    fresh.close()


def test_runs_skip_what_was_not_asked_for_and_what_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_mod, "RUN_MIN", 4000)
    records = recs(400, size=300)
    src = filled(tmp_path / "src", records)
    dst = filled(tmp_path / "dst", records[100:120])  # already there: ends a run
    wanted = records[:150] + records[200:]  # 150-199 not asked for
    report = transfer(src, dst, [r.digest for r in wanted])
    assert (report.copied, report.skipped) == (330, 20)
    dst.close()
    stored = b"".join(p.read_bytes() for p in pack_files(tmp_path / "dst"))
    for record in records[150:200]:
        assert record.payload not in stored  # no byte of a record not asked for
    fresh = LocalBackend(tmp_path / "dst")
    assert fresh.contains([r.digest for r in records]) == {r.digest for r in wanted}
    fresh.close()
    assert read_back(tmp_path / "dst", wanted) == wanted


def test_a_run_pack_rolls_and_short_runs_go_record_by_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, short_runs: None
) -> None:
    monkeypatch.setattr(local_mod, "PACK_ROLL_BYTES", 20_000)
    records = recs(300, size=200)
    src = in_packs(tmp_path / "src", records, 100)  # three packs
    lonely = recs(3, size=100, seed=9)  # alone in a pack: too short for a run
    src.write(lonely)
    src.flush()
    dst = LocalBackend(tmp_path / "dst")
    everything = records + lonely
    calls: list[int] = []
    report = transfer(
        src, dst, [r.digest for r in everything], progress=lambda a, _t: calls.append(a)
    )
    assert report.copied == 303
    assert sum(calls) == 303
    assert calls[:3] == [100, 100, 100]  # told run by run, before the record copies
    dst.close()
    assert len(pack_files(tmp_path / "dst", ".idx")) >= 4  # rolled, plus the record copy
    assert read_back(tmp_path / "dst", everything) == everything


def test_a_run_with_a_bad_header_is_refused_and_leaves_nothing_visible(
    tmp_path: Path, short_runs: None
) -> None:
    records = recs(50, size=200)
    filled(tmp_path / "src", records).close()
    [pack] = pack_files(tmp_path / "src")
    data = bytearray(pack.read_bytes())
    data[8 + 5] ^= 0xFF  # inside the first record's digest
    pack.write_bytes(bytes(data))
    with pytest.raises(BlobCorruptError, match=records[0].digest):
        transfer(
            LocalBackend(tmp_path / "src"),
            LocalBackend(tmp_path / "dst"),
            [r.digest for r in records],
        )
    assert LocalBackend(tmp_path / "dst").contains([r.digest for r in records]) == set()


def test_a_run_killed_before_its_index_is_written_is_garbage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, short_runs: None
) -> None:
    records = recs(60, size=200)
    src = filled(tmp_path / "src", records)
    digests = [r.digest for r in records]

    def no_index(fd: int, buffers: object) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(local_mod, "_write_all", no_index)
        with pytest.raises(StorageError, match="cannot commit pack"):
            transfer(src, LocalBackend(tmp_path / "dst"), digests)
    dst = LocalBackend(tmp_path / "dst")
    assert dst.contains(digests) == set()  # copied bytes, never indexed
    assert dst.repack() > 0  # unindexed: garbage
    assert transfer(src, dst, digests).copied == 60  # the transfer runs again
    dst.close()
    assert read_back(tmp_path / "dst", records) == records


def test_runs_copy_through_a_buffer_where_the_kernel_cannot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, short_runs: None
) -> None:
    def cross_device(*_args: object) -> int:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", cross_device, raising=False)
    records = recs(80, size=150)
    src = filled(tmp_path / "src", records)
    assert transfer(src, LocalBackend(tmp_path / "dst"), [r.digest for r in records]).copied == 80
    assert read_back(tmp_path / "dst", records) == records


def test_an_interrupted_run_copy_keeps_the_runs_copied_whole(
    tmp_path: Path, short_runs: None
) -> None:
    records = recs(200, size=200)
    src = in_packs(tmp_path / "src", records, 100)  # two packs: two runs
    digests = [r.digest for r in records]

    def interrupt(_advance: int, _total: int | None) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        transfer(src, LocalBackend(tmp_path / "dst"), digests, progress=interrupt)
    kept = LocalBackend(tmp_path / "dst").contains(digests)
    assert len(kept) == 100  # the first run, committed on the way out; not the second
    again = transfer(src, LocalBackend(tmp_path / "dst"), digests)
    assert (again.copied, again.skipped) == (100, 100)
    assert read_back(tmp_path / "dst", records) == records


def test_a_source_pack_repacked_away_goes_record_by_record(
    tmp_path: Path, short_runs: None
) -> None:
    records = recs(60, size=200)
    filled(tmp_path / "src", records).close()
    stale = LocalBackend(tmp_path / "src")
    digests = [r.digest for r in records[1:]]
    assert len(stale.contains(digests)) == 59  # its index names the first pack ...
    other = LocalBackend(tmp_path / "src")
    assert other.delete([records[0].digest]) > 0  # ... which another instance repacks away
    other.close()
    report = transfer(stale, LocalBackend(tmp_path / "dst"), digests)
    assert report.copied == 59
    assert read_back(tmp_path / "dst", records[1:]) == records[1:]
