"""Transfers between backends: only missing records, byte for byte, resumable, with progress."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from syllabus.blobs import transfer as transfer_mod
from syllabus.blobs.backend import Flags, ObjectBackend, ObjectInfo, Record
from syllabus.blobs.digest import Digest, hash_bytes
from syllabus.blobs.local import LocalBackend
from syllabus.blobs.s3 import S3Backend
from syllabus.blobs.store import BlobStore
from syllabus.blobs.transfer import TransferReport, transfer, transfer_roots
from syllabus.errors import BlobNotFoundError, InvalidArgumentError
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
