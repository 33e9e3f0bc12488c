"""Run in child processes by the concurrency tests (importable for the spawn start method)."""

from __future__ import annotations

from pathlib import Path

from syllabus.blobs.store import open_blob_store
from syllabus.datasets import DatasetService, SqlDatasetStore
from syllabus.meta import create_engine


def add_version(db_url: str, blobs_url: str, cache: str, folder: str) -> int:
    engine = create_engine(db_url)
    with open_blob_store(blobs_url) as blobs:
        service = DatasetService(SqlDatasetStore(engine), blobs, cache_dir=Path(cache))
        result = service.add("shared", folder, message=folder, profile=False)
    engine.dispose()
    return result.version.version
