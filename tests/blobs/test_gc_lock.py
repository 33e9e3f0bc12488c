"""gc and writers: a record a writer deduplicated against is never deleted under it."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from syllabus.blobs import BlobStore, Digest, LocalBackend
from syllabus.blobs.gclock import LOCK_NAME
from syllabus.errors import StorageError

HOLDER = Path(__file__).with_name("_holder.py")
OLD = b"an old record nobody references yet" * 10


def old_record(store: BlobStore) -> Digest:
    """Store OLD and close the writer, as an earlier process would have."""
    digest = store.put_bytes(OLD)
    store.close()  # releases the writers' lock of this instance
    return digest


def start_holder(store_dir: Path, *extra: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, str(HOLDER), str(store_dir), OLD.hex(), *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    assert line[:1] == ["ready"], proc.stderr.read() if proc.stderr else ""
    return proc, line


def finish(proc: subprocess.Popen[str]) -> None:
    out, err = proc.communicate("\n", timeout=30)
    assert proc.returncode == 0, err
    assert "closed" in out


def exclusive_lock_is_held(store_dir: Path) -> bool:
    fd = os.open(store_dir / LOCK_NAME, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@pytest.fixture
def gc_store(store_dir: Path) -> Iterator[BlobStore]:
    s = BlobStore(LocalBackend(store_dir))
    yield s
    s.close()


def test_gc_refuses_while_a_writer_that_deduplicated_is_open(store_dir: Path) -> None:
    digest = old_record(BlobStore(LocalBackend(store_dir)))
    proc, line = start_holder(store_dir)
    try:
        assert line[1:] == [digest, "1"]  # the writer found the record and skipped it
        gc = BlobStore(LocalBackend(store_dir))
        start = time.monotonic()
        with pytest.raises(StorageError, match=r"in use by other writers.*nothing was deleted"):
            gc.gc([], grace_seconds=0, dry_run=False, timeout=0.3)
        assert 0.3 <= time.monotonic() - start < 5
        assert "\n" not in str(gc_error(gc))
        assert gc.has(digest)
        dry = gc.gc([], grace_seconds=0)  # a dry run needs no exclusive lock
        assert digest in dry.unreferenced
        assert gc.has(digest)
    finally:
        finish(proc)
    # The writer committed its reference, then closed: gc reads keep under the lock.
    calls: list[bool] = []

    def keep() -> list[Digest]:
        calls.append(exclusive_lock_is_held(store_dir))
        return [digest]

    report = gc.gc(keep, grace_seconds=0, dry_run=False, timeout=0.3)
    assert calls == [True]
    assert report.count == 0
    assert gc.read_bytes(digest) == OLD
    report = gc.gc(list, grace_seconds=0, dry_run=False, timeout=0.3)
    assert report.unreferenced == (digest,)
    assert not gc.has(digest)
    gc.close()


def gc_error(store: BlobStore) -> StorageError:
    try:
        store.gc([], grace_seconds=0, dry_run=False, timeout=0)
    except StorageError as exc:
        return exc
    raise AssertionError("gc did not refuse")


def test_gc_waits_for_a_writer_that_closes(store_dir: Path) -> None:
    digest = old_record(BlobStore(LocalBackend(store_dir)))
    proc, _ = start_holder(store_dir, "0.5")
    gc = BlobStore(LocalBackend(store_dir))
    start = time.monotonic()
    report = gc.gc(lambda: [digest], grace_seconds=0, dry_run=False, timeout=30)
    assert time.monotonic() - start >= 0.2  # it waited for the writer
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert report.count == 0
    assert gc.read_bytes(digest) == OLD
    gc.close()


def test_gc_own_instance_may_have_written(gc_store: BlobStore) -> None:
    digest = gc_store.put_bytes(OLD)
    gc_store.flush()
    report = gc_store.gc([], grace_seconds=0, dry_run=False, timeout=0)
    assert report.unreferenced == (digest,)
    again = gc_store.put_bytes(OLD)  # writing after gc takes the shared lock again
    gc_store.flush()
    assert gc_store.read_bytes(again) == OLD
    other = BlobStore(LocalBackend(gc_store.url))
    with pytest.raises(StorageError, match="in use by other writers"):
        other.gc([], grace_seconds=0, dry_run=False, timeout=0)
    other.close()


def test_writers_wait_while_gc_deletes(store_dir: Path) -> None:
    digest = old_record(BlobStore(LocalBackend(store_dir)))
    gc_backend, writer = LocalBackend(store_dir), LocalBackend(store_dir)
    answered = threading.Event()
    seen: list[set[Digest]] = []

    def dedup() -> None:
        seen.append(writer.contains([digest]))
        answered.set()

    with gc_backend.gc_guard(timeout=0):
        thread = threading.Thread(target=dedup)
        thread.start()
        assert not answered.wait(0.3)  # blocked by the gc
        assert gc_backend.delete([digest]) > 0
    thread.join(10)
    assert seen == [set()]  # it sees the store as gc left it, and will write anew
    writer.close()
    gc_backend.close()


def test_force_skips_the_lock(store_dir: Path) -> None:
    digest = old_record(BlobStore(LocalBackend(store_dir)))
    proc, _ = start_holder(store_dir)
    try:
        gc = BlobStore(LocalBackend(store_dir))
        report = gc.gc([], grace_seconds=0, dry_run=False, force=True)
        assert report.unreferenced == (digest,)
        gc.close()
    finally:
        finish(proc)


def test_bad_arguments(gc_store: BlobStore) -> None:
    with pytest.raises(StorageError, match="timeout"):
        gc_store.gc([], grace_seconds=0, dry_run=False, timeout=-1)


def test_forked_child_does_not_keep_the_parents_lock(store_dir: Path) -> None:
    digest = old_record(BlobStore(LocalBackend(store_dir)))
    parent = BlobStore(LocalBackend(store_dir))
    parent.put_bytes(b"parent writes: holds the shared lock")
    parent.flush()
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            os.close(to_child_w)
            os.close(to_parent_r)
            os.write(to_parent_w, b"0")  # running: the fork handlers are done
            os.read(to_child_r, 1)  # parent closed its store: we must not hold its lock
            assert parent.backend.contains([digest]) == {digest}  # dedup: our own lock
            os.write(to_parent_w, b"1")
            os.read(to_child_r, 1)
            parent.close()
            code = 0
        finally:
            os._exit(code)
    os.close(to_child_r)
    os.close(to_parent_w)
    try:
        assert os.read(to_parent_r, 1) == b"0"
        parent.close()
        gc = BlobStore(LocalBackend(store_dir))
        dry = gc.gc([], grace_seconds=0)
        assert digest in dry.unreferenced
        with gc.backend.gc_guard(timeout=0):  # the child dropped its inherited lock
            pass
        gc.close()
        os.write(to_child_w, b"1")
        assert os.read(to_parent_r, 1) == b"1"
        gc = BlobStore(LocalBackend(store_dir))
        with pytest.raises(StorageError, match="in use by other writers"):
            gc.gc([], grace_seconds=0, dry_run=False, timeout=0.1)
        os.write(to_child_w, b"1")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        report = gc.gc(lambda: [digest], grace_seconds=0, dry_run=False, timeout=5)
        assert gc.has(digest)
        assert report.unreferenced  # the parent's unreferenced record went
        gc.close()
    finally:
        os.close(to_child_w)
        os.close(to_parent_r)
