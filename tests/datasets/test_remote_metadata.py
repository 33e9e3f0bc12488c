"""Dataset metadata travels with push and pull: names, versions, messages, tags, profiles.

Each workspace here is a separate database and blob store (two machines); the remote is a
folder or an S3 prefix on the local moto server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import blake3
import pytest

from syllabus.blobs.backend import RefBackend
from syllabus.blobs.store import open_blob_store
from syllabus.datasets import DatasetService
from syllabus.datasets.remote_index import RemoteIndex, encode_index, read_index
from syllabus.errors import BlobCorruptError, ConflictError, NotFoundError
from tests.datasets.conftest import make_service, snapshot
from tests.fixtures.s3 import S3Bucket


class Workspaces:
    """Makes independent workspaces (own database, blob store and cache)."""

    def __init__(self, tmp_path: Path, endpoint: str | None = None) -> None:
        self.tmp_path = tmp_path
        self.endpoint = endpoint
        self.made: list[DatasetService] = []

    def new(self, name: str, user: str) -> DatasetService:
        root = self.tmp_path / name
        blobs = open_blob_store(str(root / "blobs"))
        service = make_service(f"sqlite:///{root}.db", blobs, root / "cache")
        service.user = user
        service.s3_endpoint_url = self.endpoint
        self.made.append(service)
        return service

    def close(self) -> None:
        for service in self.made:
            service.blobs.close()


@pytest.fixture
def spaces(tmp_path: Path) -> Iterator[Workspaces]:
    w = Workspaces(tmp_path)
    yield w
    w.close()


def _csv(path: Path, rows: int, scale: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("id,x,city\n" + "".join(f"{i},{i * scale},c{i % 3}\n" for i in range(rows)))
    return path


def _summary(service: DatasetService, name: str) -> list[tuple[object, ...]]:
    return [
        (v.version, v.id, v.tree, v.profiles, v.message, v.author, v.created_at, v.tags, v.size)
        for v in service.list_versions(name)
    ]


def _round_trip(alice: DatasetService, bob: DatasetService, url: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    _csv(data / "train.csv", 50)
    (data / "notes.txt").write_text("v1\n")
    alice.add("churn", data, message="first cut", tags=["gold"])
    _csv(data / "train.csv", 80, scale=2)
    alice.add("churn", data, message="more rows")
    alice.add("other/sub-set", data / "notes.txt", message="just notes")
    alice.add_remote("origin", url)
    pushed = alice.push("churn")
    assert pushed.versions == (1, 2)
    assert pushed.tags == ("gold -> churn@1",)
    assert pushed.conflicts == ()
    alice.push("other/sub-set")
    assert [(d.name, d.versions, d.latest) for d in alice.remote_datasets("origin")] == [
        ("churn", 2, 2),
        ("other/sub-set", 1, 1),
    ]

    bob.add_remote("origin", url)
    with pytest.raises(NotFoundError, match="no dataset"):
        bob.list_versions("churn")
    pulled = bob.pull("churn")
    assert pulled.versions == (1, 2)
    assert pulled.tags == ("gold -> churn@1",)
    assert pulled.copied > 0
    assert _summary(bob, "churn") == _summary(alice, "churn")
    assert bob.resolve("churn@gold").version == 1
    assert bob.profiles(bob.resolve("churn@2"))["train.csv"].rows == 80
    diff = bob.diff("churn@1", "churn@2")
    assert [t.path for t in diff.tables] == ["train.csv"]
    bob.checkout("churn@1", tmp_path / "bob-out")
    alice.checkout("churn@1", tmp_path / "alice-out")
    assert snapshot(tmp_path / "bob-out") == snapshot(tmp_path / "alice-out")
    again = bob.pull("churn")
    assert (again.copied, again.versions, again.tags) == (0, (), ())
    assert bob.pull("other/sub-set@1").versions == (1,)
    assert bob.resolve("other/sub-set").message == "just notes"


def test_a_clone_gets_names_versions_tags_and_profiles(spaces: Workspaces, tmp_path: Path) -> None:
    alice, bob = spaces.new("alice", "alice"), spaces.new("bob", "bob")
    _round_trip(alice, bob, str(tmp_path / "remote"), tmp_path)


@pytest.mark.s3
def test_metadata_travels_through_s3(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    w = Workspaces(tmp_path, s3_bucket.endpoint_url)
    try:
        alice, bob = w.new("alice", "alice"), w.new("bob", "bob")
        _round_trip(alice, bob, f"s3://{s3_bucket.name}/team", tmp_path)
        assert any(k.startswith("team/refs/datasets/churn/") for k in s3_bucket.keys("team/"))
    finally:
        w.close()


def test_pull_of_one_version_and_of_a_tag(spaces: Workspaces, tmp_path: Path) -> None:
    alice, bob = spaces.new("alice", "alice"), spaces.new("bob", "bob")
    f = tmp_path / "f.txt"
    for i in range(3):
        f.write_text(f"v{i}")
        alice.add("d", f, message=f"m{i}")
    alice.tag("d@2", "best")
    alice.add_remote("r", str(tmp_path / "remote"))
    alice.push("d")
    bob.add_remote("r", str(tmp_path / "remote"))
    assert bob.pull("d@best").versions == (2,)
    assert [v.version for v in bob.list_versions("d")] == [2]
    assert bob.resolve("d@best").message == "m1"
    assert bob.pull("d@latest").versions == (3,)
    with pytest.raises(NotFoundError, match="remote 'r' has no d@9 \\(latest there is 3\\)"):
        bob.pull("d@9")
    with pytest.raises(NotFoundError, match="no tag d@nope"):
        bob.pull("d@nope")
    with pytest.raises(NotFoundError, match="has no dataset 'missing'"):
        bob.pull("missing")
    assert bob.pull("d").versions == (1,)
    assert [v.version for v in bob.list_versions("d")] == [3, 2, 1]


def test_diverged_versions_are_conflicts_never_overwritten(
    spaces: Workspaces, tmp_path: Path
) -> None:
    alice, bob = spaces.new("alice", "alice"), spaces.new("bob", "bob")
    url = str(tmp_path / "remote")
    f = tmp_path / "f.txt"
    f.write_text("shared")
    alice.add("d", f, message="shared")
    alice.add_remote("r", url)
    bob.add_remote("r", url)
    alice.push("d")
    bob.pull("d")
    f.write_text("alice's")
    alice.add("d", f, message="alice 2")
    f.write_text("bob's")
    bob.add("d", f, message="bob 2")
    assert alice.push("d").versions == (2,)

    pushed = bob.push("d")  # bob's 2 cannot be published: the remote's 2 is alice's
    assert pushed.versions == ()
    assert len(pushed.conflicts) == 1
    assert "d@2 differs here (added by bob" in pushed.conflicts[0]
    assert "added by alice" in pushed.conflicts[0]
    assert pushed.conflicts[0].endswith("not pushed")
    with pytest.raises(ConflictError, match="d@2 differs here"):
        bob.push("d@2")
    pulled = bob.pull("d")
    assert pulled.versions == ()
    assert len(pulled.conflicts) == 1
    assert pulled.conflicts[0].endswith("not pulled")
    with pytest.raises(ConflictError, match="not pulled"):
        bob.pull("d@2")
    assert bob.resolve("d@2").message == "bob 2"  # kept
    f.write_text("bob's 3")
    bob.add("d", f, message="bob 3")  # a new number is free on the remote
    assert bob.push("d").versions == (3,)
    carol = spaces.new("carol", "carol")
    carol.add_remote("r", url)
    carol.pull("d")
    assert [(v.version, v.message) for v in carol.list_versions("d")] == [
        (3, "bob 3"),
        (2, "alice 2"),
        (1, "shared"),
    ]


def test_tags_move_to_the_most_recent_pointer(spaces: Workspaces, tmp_path: Path) -> None:
    alice, bob = spaces.new("alice", "alice"), spaces.new("bob", "bob")
    url = str(tmp_path / "remote")
    f = tmp_path / "f.txt"
    for i in range(3):
        f.write_text(f"v{i}")
        alice.add("d", f)
    alice.tag("d@1", "gold")
    for s in (alice, bob):
        s.add_remote("r", url)
    alice.push("d")
    bob.pull("d")
    assert bob.resolve("d@gold").version == 1
    bob.tag("d@3", "gold")  # bob moves it later: his push wins on the remote
    assert bob.push("d").tags == ("gold -> d@3",)
    assert alice.pull("d").tags == ("gold -> d@3",)
    assert alice.resolve("d@gold").version == 3
    alice.tag("d@2", "gold")
    bob.tag("d@1", "gold")  # set after alice's: when alice pushes, bob's pull keeps his
    alice.push("d")
    assert bob.pull("d").tags == ()
    assert bob.resolve("d@gold").version == 1


def _remote_backend(tmp_path: Path) -> RefBackend:
    backend = open_blob_store(str(tmp_path / "remote")).backend
    assert isinstance(backend, RefBackend)
    return backend


def test_concurrent_pushes_leave_indexes_a_pull_merges(spaces: Workspaces, tmp_path: Path) -> None:
    from syllabus.datasets.models import DatasetTag

    alice = spaces.new("alice", "alice")
    url = str(tmp_path / "remote")
    f = tmp_path / "a.txt"
    f.write_text("a")
    alice.add("ds", f)
    alice.add_remote("r", url)
    alice.push("ds")
    backend = _remote_backend(tmp_path)
    found = read_index(backend, "ds", where=url)
    assert found.index is not None
    # Another push that read the same index at the same moment wrote its own merge (here:
    # the same version with a tag); both stay until a later push merges them.
    v1 = found.index.versions[0]
    doc = encode_index(RemoteIndex("ds", (v1,), (DatasetTag("old", v1.id, 1, 5),)))
    backend.write_ref(f"datasets/ds/{blake3.blake3(doc).hexdigest()}", doc)
    f.write_text("a2")
    alice.add("ds", f)
    assert alice.push("ds").versions == (2,)  # read both, wrote one with everything
    assert len(backend.list_refs("datasets/ds/")) == 1
    backend.write_ref(f"datasets/ds/{blake3.blake3(doc).hexdigest()}", doc)
    assert len(backend.list_refs("datasets/ds/")) == 2
    carol = spaces.new("carol", "carol")
    carol.add_remote("r", url)
    pulled = carol.pull("ds")
    assert (pulled.versions, pulled.tags) == ((1, 2), ("old -> ds@1",))
    assert carol.resolve("ds@old").version == 1


def test_a_tampered_index_is_refused(spaces: Workspaces, tmp_path: Path) -> None:
    alice, bob = spaces.new("alice", "alice"), spaces.new("bob", "bob")
    url = str(tmp_path / "remote")
    f = tmp_path / "f.txt"
    f.write_text("x")
    alice.add("d", f)
    alice.add_remote("r", url)
    bob.add_remote("r", url)
    alice.push("d")
    backend = _remote_backend(tmp_path)
    (ref,) = backend.list_refs("datasets/d/")
    good = backend.read_ref(ref)
    assert good is not None
    backend.write_ref(ref, good.replace(b'"x"', b'"y"') + b" ")
    with pytest.raises(BlobCorruptError, match="does not match its content id"):
        bob.pull("d")
    backend.delete_refs([ref])
    bad = good.replace(b'"version":1', b'"version":-1')
    backend.write_ref(f"datasets/d/{blake3.blake3(bad).hexdigest()}", bad)
    with pytest.raises(BlobCorruptError, match="invalid dataset index"):
        bob.pull("d")
    backend.delete_refs(backend.list_refs("datasets/d/"))
    for evil in (b'"empty_dirs":["../outside"]', b'"size":-1', b'"created_at":1e300'):
        bad = good.replace(b'"empty_dirs":[]', evil) if b"empty" in evil else good
        if b"size" in evil:
            bad = re.sub(rb'"size":\d+', evil, good)
        if b"created_at" in evil:
            bad = re.sub(rb'"created_at":\d+', evil, good)
        assert bad != good
        ref = f"datasets/d/{blake3.blake3(bad).hexdigest()}"
        backend.write_ref(ref, bad)
        with pytest.raises(BlobCorruptError, match="invalid dataset index"):
            bob.pull("d")
        backend.delete_refs([ref])
    with pytest.raises(NotFoundError, match="no dataset 'd'"):
        bob.list_versions("d")  # nothing was imported


def test_an_interrupted_pull_imports_nothing_and_can_be_rerun(
    spaces: Workspaces, tmp_path: Path
) -> None:
    alice, bob = spaces.new("alice", "alice"), spaces.new("bob", "bob")
    src = tmp_path / "many"
    src.mkdir()
    for i in range(3000):
        (src / f"f{i}.bin").write_bytes(i.to_bytes(4, "big") * 32)
    alice.add("many", src, message="m")
    for s in (alice, bob):
        s.add_remote("r", str(tmp_path / "remote"))
    alice.push("many")

    def interrupt(_advance: int, _total: int | None) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bob.pull("many", progress=interrupt)
    with pytest.raises(NotFoundError):
        bob.list_versions("many")
    resumed = bob.pull("many")
    assert resumed.versions == (1,)
    assert resumed.skipped > 0
    bob.checkout("many@1", tmp_path / "out")
    assert snapshot(tmp_path / "out") == snapshot(src)
