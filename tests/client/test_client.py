"""The Client over real backends: embedded SQLite + folder, PostgreSQL + S3 (moto)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from alembic import command

from syllabus import Client, init_workspace
from syllabus.blobs import Digest
from syllabus.errors import (
    ConfigError,
    SchemaOutdatedError,
    StorageError,
    WorkspaceNotFoundError,
)
from syllabus.meta import BlobRef, BlobRefs, create_engine
from syllabus.meta.migrate import alembic_config
from tests.fixtures.s3 import S3Bucket


def _refer(client: Client, digest: str, kind: str = "dataset", owner: str = "v1") -> None:
    BlobRefs(client._open(write=True).engine).add([BlobRef(digest, kind, "test_owner", owner)])


def test_first_write_creates_a_workspace_and_says_so_once(
    workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="syllabus")
    with Client() as client:
        digest = client.blobs.put_bytes(b"hello")
        client.blobs.flush()
    with Client() as client:
        assert client.blobs.read_bytes(digest) == b"hello"
    assert (workdir / ".syllabus" / "config.toml").is_file()
    created = [r for r in caplog.records if "created a workspace" in r.getMessage()]
    assert len(created) == 1
    assert str(workdir / ".syllabus") in created[0].getMessage()


def test_reading_without_a_workspace_creates_nothing(workdir: Path) -> None:
    with (
        Client(create=False) as client,
        pytest.raises(WorkspaceNotFoundError, match="syllabus init"),
    ):
        client.info()
    with Client() as client, pytest.raises(WorkspaceNotFoundError):
        client.db_current()
    assert not (workdir / ".syllabus").exists()


def test_info_counts_objects(workdir: Path) -> None:
    init_workspace(workdir)
    with Client() as client:
        client.blobs.put_bytes(b"x" * 1000)
        client.blobs.put_bytes(b"y" * 10)
        client.blobs.flush()
        info = client.info()
    assert info.workspace == str(workdir / ".syllabus")
    assert info.database.backend == "sqlite"
    assert info.database.revision == info.database.head
    assert info.blob_objects == 2
    assert info.blob_logical_bytes == 1010
    assert info.settings["gc_grace"] == {"value": 86400.0, "source": "workspace"}


def test_fsck_finds_missing_and_corrupt_blobs(workdir: Path) -> None:
    init_workspace(workdir)
    (workdir / "data").mkdir()
    (workdir / "data" / "a.txt").write_bytes(b"a" * 5000)
    (workdir / "data" / "b.txt").write_bytes(b"b" * 7000)
    with Client() as client:
        tree = client.blobs.put_tree(workdir / "data")
        _refer(client, tree.digest)
        assert client.fsck().ok
        # A reference to something never stored, and a tree whose file went missing.
        ghost = Digest("0" * 64)
        _refer(client, ghost, kind="artifact", owner="run1")
        a_digest = tree.manifest["a.txt"].digest
        client.blobs.backend.delete([a_digest])
        report = client.fsck()
    assert not report.ok
    reasons = {m.digest: m.reason for m in report.missing}
    assert reasons[ghost] == "not in the blob store"
    assert "1 of its parts" in reasons[tree.digest]
    assert {m.owner_id for m in report.missing} == {"v1", "run1"}


def test_gc_keeps_what_the_database_references(workdir: Path) -> None:
    init_workspace(workdir)
    with Client() as client:
        kept = client.blobs.put_bytes(b"kept" * 100)
        dropped = client.blobs.put_bytes(b"dropped" * 100)
        client.blobs.flush()
        _refer(client, kept)
        dry = client.gc(dry_run=True, grace_seconds=0).blobs
        assert set(dry.unreferenced) == {dropped}
        assert client.blobs.has(dropped)
        young = client.gc(dry_run=False).blobs  # the default grace (24h) protects new blobs
        assert young.count == 0
        done = client.gc(dry_run=False, grace_seconds=0)
        assert done.purged == {"runs": 0, "dataset_versions": 0, "model_versions": 0}
        assert set(done.blobs.unreferenced) == {dropped}
        assert not client.blobs.has(dropped)
        assert client.blobs.read_bytes(kept) == b"kept" * 100
        assert client.fsck().ok


def test_du_by_kind(workdir: Path) -> None:
    init_workspace(workdir)
    with Client() as client:
        a = client.blobs.put_bytes(b"a" * 3000)
        b = client.blobs.put_bytes(b"b" * 5000)
        client.blobs.put_bytes(b"c" * 100)
        client.blobs.flush()
        _refer(client, a, kind="dataset")
        _refer(client, b, kind="model", owner="m1")
        report = client.du()
    assert report.by_kind["dataset"].logical_bytes == 3000
    assert report.by_kind["model"].logical_bytes == 5000
    assert report.unreferenced.count == 1
    assert report.total.count == 3


def test_an_older_database_is_refused_until_upgraded_with_a_backup(workdir: Path) -> None:
    ws = init_workspace(workdir)
    engine = create_engine(f"sqlite:///{ws / 'syllabus.db'}")
    with engine.connect() as conn, conn.begin():
        command.stamp(alembic_config(conn), "base")  # a database from before revision 0001
    engine.dispose()
    with Client() as client:
        with pytest.raises(SchemaOutdatedError, match="run `syllabus db upgrade`"):
            client.fsck()
        result = client.db_upgrade()
        assert result.from_revision is None
        assert result.to_revision == client.db_current()[1]
        assert result.backup is not None
        assert result.backup.is_file()
        assert result.backup.parent == ws
        assert client.fsck().ok


def test_unknown_scheme_and_remote_seam(workdir: Path) -> None:
    with pytest.raises(ConfigError, match="unsupported URI scheme 'mysql'"):
        Client("mysql://x/y", blobs=str(workdir / "b")).info()
    # info is asked of the server; store maintenance runs on the server itself
    with pytest.raises(ConfigError, match="names a Syllabus server"):
        Client("https://syllabus.example", blobs=str(workdir / "b")).fsck()


@pytest.mark.postgres
@pytest.mark.s3
def test_postgresql_and_s3_by_configuration_only(
    pg_url: str, s3_bucket: S3Bucket, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYLLABUS_URI", pg_url)
    monkeypatch.setenv("SYLLABUS_BLOBS", f"s3://{s3_bucket.name}/team")
    monkeypatch.setenv("SYLLABUS_S3_ENDPOINT_URL", s3_bucket.endpoint_url)
    (workdir / "data").mkdir()
    for i in range(20):
        (workdir / "data" / f"f{i}.txt").write_text(f"file {i}\n" * 100)
    with Client(create=False) as client:
        assert client.open() == client.db_current()[1]
        tree = client.blobs.put_tree(workdir / "data")
        _refer(client, tree.digest)
        info = client.info()
        report = client.fsck()
        client.blobs.materialize(tree.digest, workdir / "out")
    assert info.database.backend == "postgresql"
    assert info.blobs_backend == "S3Backend"
    assert info.workspace is None
    assert report.ok
    assert report.references_checked == 1
    assert (workdir / "out" / "f7.txt").read_text() == "file 7\n" * 100
    stored_keys = s3_bucket.keys("team/")
    assert any(k.startswith("team/packs/") for k in stored_keys)
    assert not (workdir / ".syllabus").exists()


def test_gc_waits_for_open_writers_and_honours_what_they_committed(workdir: Path) -> None:
    init_workspace(workdir)
    with Client() as first:
        old = first.blobs.put_bytes(b"old content " * 100)
        first.blobs.flush()
    writer = Client()
    # The writer deduplicates against the old, still unreferenced record ...
    assert writer.blobs.put_bytes(b"old content " * 100) == old
    with Client() as collector:
        with pytest.raises(StorageError, match="in use by other writers"):
            collector.gc(dry_run=False, grace_seconds=0, timeout=0.2)
        assert collector.blobs.has(old)
        # ... commits its reference and closes: gc reads references under the lock.
        _refer(writer, old)
        writer.close()
        report = collector.gc(dry_run=False, grace_seconds=0, timeout=2).blobs
        assert report.count == 0
        assert collector.blobs.read_bytes(old) == b"old content " * 100


def test_gc_purges_deleted_runs_and_frees_their_artifacts(workdir: Path) -> None:
    init_workspace(workdir)
    with Client() as client:
        run = client.create_run("exp")
        artifact = client.log_text(run.id, "only this run has these bytes\n" * 50, "notes.txt")
        client.end_run(run.id)
        client.delete_run(run.id)
        dry = client.gc(dry_run=True, grace_seconds=0)
        assert dry.purged == {}
        assert artifact.digest not in dry.blobs.unreferenced  # still referenced until purged
        done = client.gc(dry_run=False, grace_seconds=0)
        assert done.purged["runs"] == 1
        assert artifact.digest in done.blobs.unreferenced
        assert not client.blobs.has(artifact.digest)
        assert client.fsck().ok
