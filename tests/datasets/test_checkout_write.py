"""Checkout writes many small files in batches: exact modes whatever the umask, and every
file's bytes verified against its content id before they are written."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from syllabus.blobs.backend import Record
from syllabus.blobs.digest import Digest
from syllabus.blobs.reader import read_order
from syllabus.datasets import DatasetService
from syllabus.datasets import checkout as checkout_module
from syllabus.datasets import service as service_module
from syllabus.datasets.status import Scan, scan
from syllabus.errors import BlobCorruptError
from tests.datasets.conftest import make_tree, snapshot


def _many(root: Path, n: int = 40) -> Path:
    for i in range(n):
        sub = root / f"d{i % 4}"
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"f{i:03d}.bin"
        path.write_bytes(os.urandom(100 + i))
        if i % 3 == 0:
            path.chmod(0o755)
    return root


def _modes(root: Path) -> dict[str, int]:
    return {
        p.relative_to(root).as_posix(): stat.S_IMODE(p.stat().st_mode)
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_checkout_sets_exact_modes_whatever_the_umask(
    service: DatasetService, tmp_path: Path, umask: int
) -> None:
    src = _many(tmp_path / "src")
    service.add("many", src)
    report = service.checkout("many@1", tmp_path / "out")
    assert report.written == 40
    modes = _modes(tmp_path / "out")
    assert modes == {p: 0o755 if int(p[-7:-4]) % 3 == 0 else 0o644 for p in modes}
    assert len(modes) == 40
    for path in modes:
        assert (tmp_path / "out" / path).read_bytes() == (src / path).read_bytes()


def test_checkout_refuses_a_corrupt_record_and_writes_nothing_of_it(
    service: DatasetService, tmp_path: Path
) -> None:
    src = _many(tmp_path / "src")
    version = service.add("many", src).version
    victim = service.manifest(version)["d1/f005.bin"]
    # A store whose copy of one file is damaged (as a bad remote could hand over).
    backend = service.blobs.backend
    good = backend.read(Digest(victim.digest))
    backend.delete([good.digest])
    backend.write([Record(good.digest, good.flags, good.size, b"x" * len(good.payload))])
    backend.flush()
    with pytest.raises(BlobCorruptError, match=victim.digest):
        service.checkout("many@1", tmp_path / "out")
    assert not (tmp_path / "out" / "d1" / "f005.bin").exists()


def _scanned_cache(service: DatasetService, root: Path, name: str) -> tuple[object, ...]:
    """What the stat cache would hold if it were filled from a fresh scan of ``root``."""
    cache = service._cache(root, name)
    found = scan(root)
    return (
        {p: st[:3] for p, st in cache.entries.items()},
        {p: (s.size, s.mtime_ns, s.inode) for p, s in found.files.items() if p in cache.entries},
        set(found.files) - set(cache.entries),
        cache.links,
        found.links,
        cache.empty_dirs,
        found.empty_dirs,
    )


def test_the_stat_cache_after_a_checkout_equals_a_fresh_scan(
    service: DatasetService, tmp_path: Path
) -> None:
    """A checkout records the stats of the files it creates as it writes them (no scan
    after): they, the untracked files, links, modes and empty folders must be what a scan
    finds, so that status recognises the folder from its stats alone."""
    src = make_tree(tmp_path / "src")
    _many(src / "many")
    service.add("t", src)
    (src / "a.txt").write_text("changed\n")  # replaced by the next checkout
    (src / "zero.bin").unlink()  # removed
    (src / "run.sh").chmod(0o644)  # mode only
    (src / "sub" / "link").unlink()
    (src / "sub" / "link").write_text("a file where the link was\n")
    (src / "empty" / "nested-empty").rmdir()  # its parent becomes the empty folder
    (src / "new-empty").mkdir()
    (src / "many" / "d9").mkdir()
    (src / "many" / "d9" / "x.bin").write_bytes(b"x" * 10)
    service.add("t", src)
    out = tmp_path / "out"
    out.mkdir()
    (out / "untracked.txt").write_text("mine\n")
    (out / "untracked-empty").mkdir()
    for ref in ("t@1", "t@2", "t@1"):
        service.checkout(ref, out)
        cached, scanned, uncached, links, found_links, dirs, found_dirs = _scanned_cache(
            service, out, "t"
        )
        assert cached == scanned, ref
        assert uncached == set(), ref
        assert links == found_links, ref
        assert dirs == found_dirs, ref
        report = service.status("t", out)
        assert report.hashed == 0, ref
        cache = service._cache(out, "t")
        assert cache.path is not None
        saved = cache.path.read_bytes()
        cache.path.unlink()
        assert service.status(ref, out).changes == report.changes, ref  # all hashed
        cache.path.write_bytes(saved)
        assert "untracked.txt" in [c.path for c in report.changes]


def test_a_checkout_into_an_empty_folder_does_not_scan_what_it_wrote(
    service: DatasetService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stats of created files come from their open descriptors: after the scan that
    finds the folder empty, no file is stat'ed by path again."""
    service.add("many", _many(tmp_path / "src"))
    scanned: list[int] = []
    real = service_module.scan

    def counting(root: Path, only: Iterable[str] | None = None) -> Scan:
        found = real(root, only)
        scanned.append(len(found.files))
        return found

    monkeypatch.setattr(service_module, "scan", counting)
    service.checkout("many@1", tmp_path / "out")
    assert scanned
    assert sum(scanned) == 0
    assert len(service._cache(tmp_path / "out", "many").entries) == 40


def test_a_checkout_reads_new_files_in_the_order_the_store_keeps_them(
    service: DatasetService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not in path order (a pull stores records in whatever order they came): neighbours
    in a pack are then read with one pread."""
    version = service.add("many", _many(tmp_path / "src")).version
    backend = service.blobs.backend
    asked: list[Digest] = []
    real = backend.read_many

    def recording(digests: Iterable[Digest]) -> Iterator[Record]:
        wanted = list(digests)
        asked.extend(wanted)
        return real(wanted)

    monkeypatch.setattr(backend, "read_many", recording)
    service.checkout("many@1", tmp_path / "out")
    files = {e.digest for e in service.manifest(version).values() if e.kind == "file"}
    assert set(asked) == files
    assert asked == read_order(backend, files)


def test_small_files_are_created_in_two_threads_once_read_larger_ones_in_threads(
    service: DatasetService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A window's batches of small files are split between the calling thread and one
    thread of the pool, and no window is read while they are being created (its Python
    work would hold the GIL against them); batches of files of 64 KiB and more on average
    are written in threads."""
    src = _many(tmp_path / "src")
    for i in range(8):
        (src / "large" / f"l{i}.bin").parent.mkdir(exist_ok=True)
        (src / "large" / f"l{i}.bin").write_bytes(os.urandom(100_000 + i))
    service.add("mixed", src)
    threads: dict[str, set[str]] = {}
    busy = [0]
    lock = threading.Lock()
    real_create, real_read = checkout_module._create, checkout_module._read_small

    def recording(blobs: object, parent: Path, *args: object) -> object:
        small = parent.name != "large"
        with lock:
            threads.setdefault(parent.name, set()).add(threading.current_thread().name)
            busy[0] += small
        try:
            return real_create(blobs, parent, *args)  # type: ignore[arg-type]
        finally:
            with lock:
                busy[0] -= small

    def reading(*args: object) -> object:
        assert busy[0] == 0, "a window read while small files were being created"
        return real_read(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(checkout_module, "_create", recording)
    monkeypatch.setattr(checkout_module, "_read_small", reading)
    monkeypatch.setattr(checkout_module, "_WINDOW", 12)  # several windows
    service.checkout("mixed@1", tmp_path / "out")
    assert threads.pop("large") != {threading.current_thread().name}
    assert set(threads) == {"d0", "d1", "d2", "d3"}
    used = set().union(*threads.values()) - {threading.current_thread().name}
    assert len(used) < len(set().union(*threads.values()))  # the calling thread took part
    assert used
    assert all(name.startswith("syllabus-checkout") for name in used)
    assert snapshot(tmp_path / "out") == snapshot(src)


def test_new_files_go_through_a_link_to_a_folder_inside_the_folder(
    service: DatasetService, tmp_path: Path
) -> None:
    """Only links leading out of the folder are refused (test_safety); one to a folder
    inside it is followed, as for any path there."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for i in range(8):
        (src / "sub" / f"x{i}.txt").write_text(f"data {i}")
    service.add("d", src)
    work = tmp_path / "work"
    (work / "real").mkdir(parents=True)
    (work / "sub").symlink_to("real")
    service.checkout("d@1", work)
    assert sorted(p.name for p in (work / "real").iterdir()) == [f"x{i}.txt" for i in range(8)]
