"""Fixtures of the blob-store tests: a local store in a temp folder, and data helpers."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from syllabus.blobs import BlobStore, LocalBackend


def random_bytes(n: int, seed: int = 0) -> bytes:
    """Deterministic incompressible bytes."""
    return random.Random(seed).randbytes(n)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def backend(store_dir: Path) -> Iterator[LocalBackend]:
    b = LocalBackend(store_dir)
    yield b
    b.close()


@pytest.fixture
def store(store_dir: Path) -> Iterator[BlobStore]:
    s = BlobStore(LocalBackend(store_dir))
    yield s
    s.close()
