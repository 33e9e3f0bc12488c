"""Checkout writes many small files in batches: exact modes whatever the umask, and every
file's bytes verified against its content id before they are written."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from syllabus.blobs.backend import Record
from syllabus.blobs.digest import Digest
from syllabus.datasets import DatasetService
from syllabus.errors import BlobCorruptError


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
