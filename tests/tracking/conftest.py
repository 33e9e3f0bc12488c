"""Tracking fixtures: a real store on SQLite (always) and PostgreSQL (when configured)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from syllabus.blobs.store import BlobStore, open_blob_store
from syllabus.meta import create_engine, ensure_schema
from syllabus.tracking.service import TrackingService
from syllabus.tracking.sql import SqlTrackingStore


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tracking.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(db_url)
    ensure_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: sa.Engine) -> SqlTrackingStore:
    return SqlTrackingStore(engine)


@pytest.fixture
def blobs(tmp_path: Path) -> Iterator[BlobStore]:
    store = open_blob_store(str(tmp_path / "blobs"))
    yield store
    store.close()


@pytest.fixture
def service(store: SqlTrackingStore, blobs: BlobStore) -> Iterator[TrackingService]:
    svc = TrackingService(store, lambda: blobs, flush_interval=0.05)
    yield svc
    svc.close()
