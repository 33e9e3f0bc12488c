"""LocalBackend: packs, loose objects, visibility across instances, repack, fork safety."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from syllabus.blobs import LOOSE_MIN, Flags, LocalBackend, Record, hash_bytes
from syllabus.blobs.local import FORMAT_LINE, _write_all
from syllabus.blobs.pack import INDEX_ENTRY, IndexEntry, encode_index_entries, encode_index_entry
from syllabus.errors import BlobCorruptError, BlobNotFoundError, StorageError

from .conftest import random_bytes


def rec(payload: bytes) -> Record:
    return Record(hash_bytes(payload), Flags.NONE, len(payload), payload)


def packs(root: Path, ext: str = ".pack") -> list[Path]:
    return sorted(p for p in (root / "packs").iterdir() if p.suffix == ext)


def test_layout_and_format(backend: LocalBackend, store_dir: Path) -> None:
    assert (store_dir / "FORMAT").read_text().strip() == FORMAT_LINE
    for sub in ("packs", "loose", "tmp"):
        assert (store_dir / sub).is_dir()
    assert backend.url == str(store_dir.absolute())


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / "FORMAT").write_text("syllabus-blobs 99\n")
    with pytest.raises(StorageError, match="unknown format"):
        LocalBackend(tmp_path)


def test_write_flush_read(backend: LocalBackend, store_dir: Path) -> None:
    records = [rec(random_bytes(100 + i, seed=i)) for i in range(50)]
    backend.write(records)
    assert backend.contains([r.digest for r in records]) == {r.digest for r in records}
    assert backend.read(records[3].digest) == records[3]  # readable before flush
    backend.flush()
    assert list(backend.read_many([r.digest for r in records])) == records
    assert len(packs(store_dir)) == 1
    info = backend.info(records[0].digest)
    assert (info.size, info.stored_size, info.flags) == (100, 100, Flags.NONE)


def test_large_records_are_loose(backend: LocalBackend, store_dir: Path) -> None:
    big = rec(random_bytes(LOOSE_MIN, seed=1))
    backend.write([big])
    d = big.digest
    assert (store_dir / "loose" / d[:2] / d[2:]).is_file()
    assert backend.read(d) == big
    assert backend.info(d).stored_size == LOOSE_MIN
    assert not list((store_dir / "tmp").iterdir())


def test_writes_are_idempotent(backend: LocalBackend, store_dir: Path) -> None:
    r = rec(b"same")
    backend.write([r, r])
    backend.flush()
    backend.write([r])
    backend.flush()
    assert [i.digest for i in backend.iter_info()] == [r.digest]
    assert (store_dir / "packs").stat().st_size >= 0
    idx = packs(store_dir, ".idx")[0]
    assert idx.stat().st_size == 8 + INDEX_ENTRY


def test_missing_raises(backend: LocalBackend) -> None:
    d = hash_bytes(b"nope")
    assert backend.contains([d]) == set()
    with pytest.raises(BlobNotFoundError, match=d):
        backend.read(d)
    with pytest.raises(BlobNotFoundError):
        backend.info(d)


def test_other_instances_see_flushed_records_only(store_dir: Path) -> None:
    a, b = LocalBackend(store_dir), LocalBackend(store_dir)
    r1, r2 = rec(b"one"), rec(b"two")
    assert b.contains([r1.digest]) == set()  # loads b's (empty) index
    a.write([r1])
    assert b.contains([r1.digest]) == set()
    a.flush()
    assert b.contains([r1.digest]) == {r1.digest}  # refreshed on a miss
    a.write([r2])
    a.flush()  # same pack grew: b reads only the new tail
    assert b.read(r2.digest) == r2
    assert len(packs(store_dir)) == 1
    b.write([r2, rec(b"three")])
    b.close()
    a.close()
    assert len(packs(store_dir)) == 2  # one pack per writer


def test_each_writer_rolls_its_own_pack(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("syllabus.blobs.local.PACK_ROLL_BYTES", 1000)
    b = LocalBackend(store_dir)
    for i in range(5):
        b.write([rec(random_bytes(1000, seed=i))])
        b.flush()
    assert len(packs(store_dir)) == 5
    assert len(list(b.iter_info())) == 5
    b.close()


def test_delete_loose_and_repack_keeps_live_records(backend: LocalBackend, store_dir: Path) -> None:
    live = [rec(random_bytes(1000, seed=i)) for i in range(20)]
    dead = [rec(random_bytes(1000, seed=100 + i)) for i in range(10)]
    loose = rec(random_bytes(LOOSE_MIN, seed=7))
    backend.write([*live[:10], *dead, *live[10:], loose])
    backend.flush()
    other = LocalBackend(store_dir)  # has the old pack in its index
    assert other.read(live[0].digest) == live[0]
    old = packs(store_dir)
    freed = backend.delete([r.digest for r in dead] + [loose.digest])
    assert freed >= 10 * 1000 + LOOSE_MIN
    assert not set(old) & set(packs(store_dir))
    assert backend.contains([r.digest for r in [*dead, loose]]) == set()
    for r in live:
        assert backend.read(r.digest) == r
        assert other.read(r.digest) == r  # reloads after its pack vanished
    assert other.contains([dead[0].digest]) == set()  # notices its packs are gone
    assert {i.digest for i in backend.iter_info()} == {r.digest for r in live}
    other.close()


def test_repack_skips_packs_being_written(store_dir: Path) -> None:
    writer, gc = LocalBackend(store_dir), LocalBackend(store_dir)
    r = rec(b"in the writer's open pack")
    writer.write([r])
    writer.flush()
    assert gc.delete([r.digest]) == 0  # locked: skipped
    assert gc.read(r.digest) == r
    writer.close()  # releases the lock
    assert gc.delete([r.digest]) > 0
    assert gc.contains([r.digest]) == set()
    gc.close()


def test_delete_keeps_mtimes(backend: LocalBackend) -> None:
    a, b = rec(b"a"), rec(b"b")
    backend.write([a, b])
    backend.flush()
    before = backend.info(a.digest).mtime
    backend.delete([b.digest])
    assert backend.info(a.digest).mtime == before


def test_torn_index_tail_and_unindexed_garbage(backend: LocalBackend, store_dir: Path) -> None:
    good = rec(b"good")
    backend.write([good])
    backend.flush()
    backend.close()
    idx = packs(store_dir, ".idx")[0]
    pack = packs(store_dir)[0]
    with idx.open("ab") as fh:
        fh.write(b"\x01" * (INDEX_ENTRY - 3))  # a kill mid-append
    with pack.open("ab") as fh:
        fh.write(b"\x02" * 5000)  # bytes synced but never indexed
    fresh = LocalBackend(store_dir)
    assert fresh.read(good.digest) == good
    assert fresh.repack() >= 5000
    assert fresh.read(good.digest) == good
    assert packs(store_dir) != [pack]
    fresh.close()


def test_corrupt_header_is_detected(backend: LocalBackend, store_dir: Path) -> None:
    r = rec(b"x" * 100)
    backend.write([r])
    backend.close()
    pack = packs(store_dir)[0]
    data = bytearray(pack.read_bytes())
    data[8] ^= 0xFF  # first byte of the record's digest
    pack.write_bytes(bytes(data))
    with pytest.raises(BlobCorruptError, match=r.digest):
        LocalBackend(store_dir).read(r.digest)


def test_read_many_reads_neighbours_together_and_checks_each_header(
    backend: LocalBackend, store_dir: Path
) -> None:
    records = [rec(random_bytes(50 + i)) for i in range(20)]
    backend.write(records)
    backend.close()
    reader = LocalBackend(store_dir)
    order = [r.digest for r in records[::-1]] + [records[3].digest, records[3].digest]
    assert list(reader.read_many(order)) == [*records[::-1], records[3], records[3]]
    reader.close()
    pack = packs(store_dir)[0]
    data = bytearray(pack.read_bytes())
    data[8] ^= 0xFF  # first byte of the first record's digest
    pack.write_bytes(bytes(data))
    with pytest.raises(BlobCorruptError, match=records[0].digest):
        list(LocalBackend(store_dir).read_many([r.digest for r in records]))


def test_fork_child_starts_its_own_pack(backend: LocalBackend, store_dir: Path) -> None:
    parent_rec, child_rec = rec(b"parent"), rec(b"child")
    backend.write([parent_rec])  # buffered in the parent at fork time
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            backend.write([child_rec])
            backend.flush()
            code = 0 if backend.contains([parent_rec.digest]) == set() else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    backend.flush()
    assert backend.read(child_rec.digest) == child_rec
    assert backend.read(parent_rec.digest) == parent_rec
    assert len(packs(store_dir)) == 2
    assert sorted(i.digest for i in backend.iter_info()) == sorted(
        [parent_rec.digest, child_rec.digest]
    )


def test_fork_while_another_thread_holds_the_lock(backend: LocalBackend) -> None:
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with backend._locked():
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(10)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            backend.write([rec(b"from the child")])
            backend.flush()
            code = 0
        finally:
            os._exit(code)
    release.set()
    thread.join()
    deadline = time.monotonic() + 20
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child deadlocked on the parent's lock")
    assert os.waitstatus_to_exitcode(done[1]) == 0
    assert backend.read(hash_bytes(b"from the child")) == rec(b"from the child")


def test_stray_files_under_loose_are_ignored(backend: LocalBackend, store_dir: Path) -> None:
    big = rec(random_bytes(LOOSE_MIN, seed=2))
    backend.write([big])
    backend.flush()
    (store_dir / "loose" / big.digest[:2] / "not-an-object.txt").write_text("stray")
    (store_dir / "loose" / "zz").mkdir()
    (store_dir / "loose" / "zz" / "x").write_text("stray")
    assert [i.digest for i in backend.iter_info()] == [big.digest]


def test_write_through_keeps_no_borrowed_buffer(backend: LocalBackend, store_dir: Path) -> None:
    """Payloads handed to write_through may be views the caller releases (or reuses) right
    after: their bytes are already in the pack file, and commit with the next flush."""
    data = bytearray(random_bytes(3000, 9))
    view = memoryview(data)
    first, second = bytes(view[:1000]), bytes(view[1000:])
    records = [
        Record(hash_bytes(first), Flags.NONE, 1000, view[:1000]),  # type: ignore[arg-type]
        Record(hash_bytes(second), Flags.NONE, 2000, view[1000:]),  # type: ignore[arg-type]
    ]
    backend.write([rec(b"buffered before")])
    backend.write_through(records)
    del records
    view.release()  # BufferError if the backend still held a slice
    data[:] = bytes(len(data))  # the caller reuses its buffer
    assert backend.contains([hash_bytes(first)]) == {hash_bytes(first)}
    backend.flush()
    other = LocalBackend(store_dir)
    assert other.read(hash_bytes(first)).payload == first
    assert other.read(hash_bytes(second)).payload == second
    assert other.read(hash_bytes(b"buffered before")).payload == b"buffered before"
    other.close()


def test_only_write_through_advises_writeback(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transfer's plain writes spill without posix_fadvise (it would block the lock and
    drop pages a checkout reads next); write_through (a big add) still starts writeback."""
    import syllabus.blobs.local as local

    calls: list[int] = []
    monkeypatch.setattr(local, "SPILL_BYTES", 4096)
    monkeypatch.setattr(local, "_FADVISE", lambda fd, off, n, advice: calls.append(n))
    backend = LocalBackend(store_dir)
    try:
        backend.write([rec(random_bytes(3000, i)) for i in range(8)])
        backend.flush()
        assert calls == []
        backend.write_through([rec(random_bytes(3000, i)) for i in range(10, 18)])
        backend.flush()
        assert calls
    finally:
        backend.close()


def test_contains_sees_loose_objects_another_instance_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # contains() remembers which loose/<head>/ folders exist; a loose object written by
    # another instance afterwards (even in the same clock tick) must still be found, and
    # a listing older than the racy window must be trusted only while loose/ is unchanged.
    import syllabus.blobs.local as local

    monkeypatch.setattr(local, "LOOSE_MIN", 64)
    a, b = LocalBackend(tmp_path / "s"), LocalBackend(tmp_path / "s")
    first, second = rec(random_bytes(100, 1)), rec(random_bytes(100, 2))
    assert a.contains([first.digest, second.digest]) == set()
    b.write([first])
    b.flush()
    assert a.contains([first.digest]) == {first.digest}
    monkeypatch.setattr(local, "_RACY_NS", 0)  # as if the listing were seconds later
    assert a.contains([second.digest]) == set()
    assert a._loose_heads == {first.digest[:2]}
    b.write([second])
    b.flush()
    assert a.contains([first.digest, second.digest]) == {first.digest, second.digest}
    for backend in (a, b):
        backend.close()


def _pack_records(path: Path) -> list[tuple[str, int]]:
    from syllabus.blobs.pack import scan_pack

    with path.open("rb") as fh:
        return [(e.digest, e.stored_len) for e in scan_pack(fh)]


@pytest.mark.parametrize("fail_direct", [False, True])
def test_write_through_spills_past_the_page_cache(
    store_dir: Path, monkeypatch: pytest.MonkeyPatch, fail_direct: bool
) -> None:
    """write_through (a big add) writes its spills with O_DIRECT through an aligned buffer,
    rewriting the partial block at the pack's end; the pack holds exactly the records in
    order, whatever mix of buffered and direct spills wrote them. Where direct writes fail
    (no O_DIRECT on the filesystem), the same bytes are written buffered instead."""
    import errno

    import syllabus.blobs.local as local

    monkeypatch.setattr(local, "_DIRECT_MIN", 1)
    monkeypatch.setattr(local, "_DIRECT_STAGE", 8192)  # several stage fills per spill
    if fail_direct:
        real = local._pwrite_all
        calls: list[int] = []

        def fails_later(fd: int, stage: object, length: int, offset: int) -> None:
            calls.append(length)
            if len(calls) > 2:  # after some bytes went out directly
                raise OSError(errno.EINVAL, "no direct I/O here")
            real(fd, stage, length, offset)  # type: ignore[arg-type]

        monkeypatch.setattr(local, "_pwrite_all", fails_later)
    backend = LocalBackend(store_dir)
    try:
        order = [rec(b"buffered first, odd length")]
        backend.write(order)
        for i in range(6):
            batch = [rec(random_bytes(1000 + 3777 * j + i, 100 * i + j)) for j in range(4)]
            backend.write_through(batch)
            order += batch
            plain = rec(random_bytes(333 + i, 900 + i))
            backend.write([plain])
            order.append(plain)
            if i == 2:
                backend.flush()  # a commit between spills: the head block holds indexed bytes
        writer = backend._writer
        assert writer is not None
        if local._O_DIRECT and not fail_direct:
            assert writer.direct_ok, "this filesystem should take O_DIRECT writes"
        if fail_direct:
            assert not writer.direct_ok
        backend.flush()
        (pack,) = packs(store_dir)
        assert _pack_records(pack) == [(r.digest, len(r.payload)) for r in order]
        other = LocalBackend(store_dir)
        try:
            for r in order:
                assert other.read(r.digest).payload == r.payload
        finally:
            other.close()
    finally:
        backend.close()


def test_index_entries_encode_in_bulk_as_one_by_one() -> None:
    entries = [
        IndexEntry(
            hash_bytes(i.to_bytes(2, "little")), Flags(i % 4), i * 1000, 8 + i * 81, i * 3, 1.5 + i
        )
        for i in range(300)
    ]
    assert encode_index_entries(entries) == b"".join(encode_index_entry(e) for e in entries)
    assert encode_index_entries([]) == b""


def test_write_all_continues_after_short_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """writev may write less than asked (a signal, a full disk's last blocks): the rest
    follows, from the middle of the buffer it stopped in, and no buffer is written twice."""
    real_writev = os.writev
    calls = []

    def short_writev(fd: int, buffers: list[bytes]) -> int:
        calls.append(len(buffers))
        data = b"".join(bytes(b) for b in buffers)
        return real_writev(fd, [data[: max(1, len(data) // 3)]])

    buffers: list[bytes] = [random_bytes(1 + i % 7 * 50, seed=i) for i in range(3000)]
    buffers[5] = b""  # empty buffers are fine
    path = tmp_path / "out"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        monkeypatch.setattr(os, "writev", short_writev)
        _write_all(fd, buffers)
        monkeypatch.undo()
        _write_all(fd, [b"tail", memoryview(b"-view")])  # whole writes
    finally:
        os.close(fd)
    assert path.read_bytes() == b"".join(buffers) + b"tail-view"
    assert len(calls) > 3
