"""Push and pull: only missing records, resumable, to a folder and to S3."""

from __future__ import annotations

from pathlib import Path

import pytest

from syllabus.blobs import local as local_backend
from syllabus.blobs.store import open_blob_store
from syllabus.datasets import DatasetService, SqlDatasetStore
from syllabus.errors import InvalidArgumentError, NotFoundError
from tests.datasets.conftest import make_tree, snapshot
from tests.fixtures.s3 import S3Bucket


def _many_files(root: Path, n: int) -> Path:
    root.mkdir()
    for i in range(n):
        (root / f"f{i:04d}.bin").write_bytes(i.to_bytes(4, "big") * 64)
    return root


def _fresh_clone(
    service: DatasetService, tmp_path: Path, endpoint: str | None = None
) -> DatasetService:
    """Same metadata, an empty local blob store (another machine sharing the database)."""
    store = service.store
    assert isinstance(store, SqlDatasetStore)
    blobs = open_blob_store(str(tmp_path / "clone-blobs"))
    return DatasetService(
        store, blobs, cache_dir=tmp_path / "clone-cache", s3_endpoint_url=endpoint
    )


def test_push_then_pull_into_an_empty_store(service: DatasetService, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    service.add("churn", src)
    service.add_remote("backup", str(tmp_path / "remote"))
    first = service.push("churn")
    assert first.copied > 0
    assert first.skipped == 0
    again = service.push("churn@1", "backup")
    assert (again.copied, again.skipped) == (0, first.copied)
    clone = _fresh_clone(service, tmp_path)
    pulled = clone.pull("churn@1")
    assert pulled.copied == first.copied
    clone.checkout("churn@1", tmp_path / "out")
    assert snapshot(tmp_path / "out") == snapshot(src)
    assert clone.pull("churn@1").copied == 0
    clone.blobs.close()


@pytest.mark.parametrize("runs", [False, True], ids=["records", "runs"])
def test_interrupted_push_resumes(
    service: DatasetService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runs: bool
) -> None:
    # More records than a transfer keeps in flight (2 x jobs batches of 256), interrupted
    # at the first progress report: the batches already running finish and are kept, the
    # rest are not started, whatever the machine's speed. Copied as runs of pack bytes
    # (a folder remote), the run copied whole is kept: here it is all of them.
    if not runs:
        monkeypatch.setattr(local_backend, "RUN_MIN", 1 << 62)
    src = _many_files(tmp_path / "src", 6000)
    service.add("many", src)
    service.add_remote("r", str(tmp_path / "remote"))

    def interrupt(advance: int, _total: int | None) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        service.push("many", progress=interrupt)
    resumed = service.push("many")
    assert resumed.skipped > 0
    if runs:  # one pack of the workspace: one run, kept whole on the way out
        assert resumed.copied == 0
    else:  # batches not started yet are copied now
        assert resumed.copied > 0
    total = resumed.copied + resumed.skipped
    assert total >= 6001  # every file and the manifest
    clone = _fresh_clone(service, tmp_path)
    clone.pull("many")
    clone.checkout("many", tmp_path / "out")
    assert snapshot(tmp_path / "out") == snapshot(src)
    clone.blobs.close()


def test_remote_errors(service: DatasetService, tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("x")
    service.add("d", f)
    with pytest.raises(NotFoundError, match="no remote configured"):
        service.push("d")
    service.add_remote("a", str(tmp_path / "a"))
    service.add_remote("b", str(tmp_path / "b"))
    with pytest.raises(InvalidArgumentError, match="several remotes"):
        service.push("d")
    with pytest.raises(NotFoundError, match="lacks"):
        service.pull("d", "a")
    with pytest.raises(InvalidArgumentError, match="names no bucket"):
        service.add_remote("c", "s3://")
    service.remove_remote("b")
    assert [r.name for r in service.list_remotes()] == ["a"]


@pytest.mark.s3
def test_s3_remote_round_trip(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    from tests.datasets.conftest import make_service

    blobs = open_blob_store(str(tmp_path / "blobs"))
    service = make_service(f"sqlite:///{tmp_path / 'meta.db'}", blobs, tmp_path / "cache")
    service.s3_endpoint_url = s3_bucket.endpoint_url
    src = make_tree(tmp_path / "src")
    service.add("churn", src)
    service.add_remote("s3", f"s3://{s3_bucket.name}/team")
    pushed = service.push("churn")
    assert pushed.copied > 0
    assert s3_bucket.keys("team/")
    clone = _fresh_clone(service, tmp_path, s3_bucket.endpoint_url)
    assert clone.pull("churn").copied == pushed.copied
    clone.checkout("churn", tmp_path / "out")
    assert snapshot(tmp_path / "out") == snapshot(src)
    clone.blobs.close()
    blobs.close()
