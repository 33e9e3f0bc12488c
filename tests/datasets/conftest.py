from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from syllabus.blobs.store import BlobStore, open_blob_store
from syllabus.datasets import DatasetService, SqlDatasetStore
from syllabus.meta import create_engine, ensure_schema


def make_service(db_url: str, blobs: BlobStore, cache: Path) -> DatasetService:
    engine = create_engine(db_url)
    ensure_schema(engine)
    return DatasetService(SqlDatasetStore(engine), blobs, cache_dir=cache, user="tester")


@pytest.fixture
def blobs(tmp_path: Path) -> Iterator[BlobStore]:
    store = open_blob_store(str(tmp_path / "blobs"))
    yield store
    store.close()


@pytest.fixture
def service(tmp_path: Path, blobs: BlobStore) -> DatasetService:
    return make_service(f"sqlite:///{tmp_path / 'meta.db'}", blobs, tmp_path / "cache")


def make_tree(root: Path) -> Path:
    """A folder with text, binary, an executable, a link, nested and empty folders."""
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty" / "nested-empty").mkdir(parents=True)
    (root / "a.txt").write_text("hello\n")
    (root / "zero.bin").write_bytes(b"")
    (root / "sub" / "b.bin").write_bytes(bytes(range(256)) * 400)
    (root / "sub" / "deeper" / "c.csv").write_text("id,x\n1,2\n")
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    (root / "sub" / "link").symlink_to("b.bin")
    return root


def snapshot(root: Path) -> dict[str, object]:
    """Everything a round trip must keep: bytes, executable bits, links, empty folders."""
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        dirnames[:] = [d for d in dirnames if d not in (".syllabus", ".git")]
        if not dirnames and not filenames and rel_dir != Path("."):
            out[f"{rel_dir.as_posix()}/"] = "dir"
        for name in dirnames:
            p = Path(dirpath) / name
            if p.is_symlink():
                out[(rel_dir / name).as_posix()] = ("link", os.readlink(p))
        for name in filenames:
            p = Path(dirpath) / name
            rel = (rel_dir / name).as_posix()
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            else:
                out[rel] = (p.read_bytes(), bool(p.stat().st_mode & 0o100))
    return out
