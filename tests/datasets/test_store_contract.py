"""The DatasetStore contract on SQLite and PostgreSQL, directly and through a live server,
including concurrent adds."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from syllabus.datasets import SqlDatasetStore, VersionSpec
from syllabus.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from syllabus.meta import BlobRefs, create_engine, ensure_schema
from tests.datasets import _workers
from tests.server.live import REMOTE_BACKENDS, db_url_for, live_server, remote_workspace

_ = live_server  # a fixture the remote parameters use


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), *REMOTE_BACKENDS]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return db_url_for(request, request.param, tmp_path)


@pytest.fixture
def store(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> Iterator[SqlDatasetStore]:
    engine = create_engine(db_url)
    ensure_schema(engine)
    if not str(request.node.callspec.params["db_url"]).startswith("remote"):
        yield SqlDatasetStore(engine)
    else:  # the same store through a live server
        from syllabus.client.remote import Http, RemoteStore

        http = Http(remote_workspace(request, db_url, tmp_path))
        over_http = RemoteStore(http, "datasets")
        over_http._engine = engine  # type: ignore[attr-defined] # the tests look into the database
        yield over_http  # type: ignore[misc]
        http.close()
    engine.dispose()


def _spec(n: int, **kw: object) -> VersionSpec:
    base: dict[str, object] = {
        "tree": f"{n:064x}", "kind": "folder", "file_count": n, "size": n * 10,
        "message": f"m{n}", "author": "me",
    }  # fmt: skip
    base.update(kw)
    return VersionSpec(**base)  # type: ignore[arg-type]


def test_versions_are_numbered_and_identical_content_is_not_repeated(
    store: SqlDatasetStore,
) -> None:
    v1, created = store.create_version("churn", _spec(1))
    assert (v1.version, created, v1.name) == (1, True, "churn")
    same, created = store.create_version("churn", _spec(1))
    assert (same.id, created) == (v1.id, False)
    v2, _ = store.create_version("churn", _spec(2, profiles=f"{7:064x}", empty_dirs=("e",)))
    assert v2.version == 2
    assert store.latest_version("churn") == v2
    assert store.get_version("churn", 1) == v1
    assert [v.version for v in store.list_versions("churn")] == [2, 1]
    (summary,) = store.list_datasets()
    assert (summary.name, summary.versions, summary.latest, summary.size) == ("churn", 2, 2, 20)
    assert store.latest_number("churn") == 2
    assert store.get_version("nope", 1) is None


def test_every_referenced_digest_is_declared(store: SqlDatasetStore) -> None:
    v, _ = store.create_version("d", _spec(3, profiles=f"{9:064x}"))
    refs = BlobRefs(store._engine)
    assert {r.owner_id for r in refs.owners(f"{3:064x}")} == {v.id}
    assert {r.kind for r in refs.owners(f"{9:064x}")} == {"dataset"}


def test_tags_move_and_go_with_deleted_versions(store: SqlDatasetStore) -> None:
    v1, _ = store.create_version("d", _spec(1))
    v2, _ = store.create_version("d", _spec(2))
    store.set_tag(v1.id, "gold")
    assert store.version_for_tag("d", "gold") == store.get_version("d", 1)
    store.set_tag(v2.id, "gold")
    found = store.version_for_tag("d", "gold")
    assert found is not None
    assert (found.version, found.tags) == (2, ("gold",))
    assert store.soft_delete([v2.id], 1) == 1
    assert store.version_for_tag("d", "gold") is None
    assert store.latest_version("d") == store.get_version("d", 1)
    assert store.remove_tag("d", "gold") is False


def test_purge_removes_old_deleted_versions_and_their_references(store: SqlDatasetStore) -> None:
    v1, _ = store.create_version("d", _spec(1))
    store.soft_delete([v1.id], 1000)
    assert store.purge_deleted(500) == 0
    assert store.purge_deleted(2000) == 1
    assert BlobRefs(store._engine).owners(f"{1:064x}") == []
    assert store.get_dataset("d") is None


def test_import_keeps_ids_numbers_and_times_and_reports_taken_numbers(
    store: SqlDatasetStore,
) -> None:
    from dataclasses import replace

    from syllabus._utils.ids import new_id

    mine, _ = store.create_version("d", _spec(1))
    theirs = replace(mine, id=new_id(), tree=f"{9:064x}", author="bo", created_at=5)
    two = replace(theirs, id=new_id(), version=2, created_at=6, message="two")
    four = replace(theirs, id=new_id(), version=4, created_at=7)
    imported, conflicting = store.import_versions("d", [mine, theirs, two, four])
    assert [v.version for v in imported] == [2, 4]
    assert conflicting == [theirs]
    got = store.get_version("d", 2)
    assert got is not None
    assert (got.id, got.author, got.created_at, got.message) == (two.id, "bo", 6, "two")
    assert store.create_version("d", _spec(5))[0].version == 5  # after the highest
    assert BlobRefs(store._engine).owners(f"{9:064x}")
    other = replace(two, name="fresh", id=new_id())
    (got_other,), none = store.import_versions("fresh", [other])
    assert (got_other.id, got_other.version, none) == (other.id, 2, [])
    assert store.import_versions("fresh", [other]) == ([], [])
    moved = replace(two, name="fresh", version=7)  # an id of dataset d: never imported
    assert store.import_versions("fresh", [moved]) == ([], [moved])


def test_tags_keep_when_they_were_set(store: SqlDatasetStore) -> None:
    v1, _ = store.create_version("d", _spec(1))
    v2, _ = store.create_version("d", _spec(2))
    store.set_tag(v1.id, "gold", at_ms=42)
    store.set_tag(v2.id, "new")
    tags = store.list_tags("d")
    assert [(t.tag, t.version, t.version_id) for t in tags] == [
        ("gold", 1, v1.id),
        ("new", 2, v2.id),
    ]
    assert tags[0].set_at == 42
    assert tags[1].set_at > 42
    store.soft_delete([v2.id], 1)
    assert [t.tag for t in store.list_tags("d")] == ["gold"]


def test_remotes(store: SqlDatasetStore) -> None:
    store.add_remote("b", "/tmp/b")
    store.add_remote("a", "s3://bucket/x")
    with pytest.raises(AlreadyExistsError, match="remote 'a' already exists"):
        store.add_remote("a", "/elsewhere")
    assert [(r.name, r.url) for r in store.list_remotes()] == [
        ("a", "s3://bucket/x"),
        ("b", "/tmp/b"),
    ]
    assert store.remove_remote("a") is True
    assert store.remove_remote("a") is False


def test_concurrent_adds_from_threads_get_consecutive_numbers(store: SqlDatasetStore) -> None:
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda n: store.create_version("race", _spec(n)), range(1, 13)))
    assert sorted(v.version for v, _ in results) == list(range(1, 13))
    assert all(created for _, created in results)


def test_concurrent_adds_from_processes(
    db_url: str, store: SqlDatasetStore, tmp_path: Path
) -> None:
    folders = []
    for i in range(4):
        folder = tmp_path / f"src{i}"
        folder.mkdir()
        (folder / "f.txt").write_text(f"content {i}")
        folders.append(str(folder))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        numbers = pool.starmap(
            _workers.add_version,
            [(db_url, str(tmp_path / "blobs"), str(tmp_path / "cache"), f) for f in folders],
        )
    assert sorted(numbers) == [1, 2, 3, 4]
    assert sorted(v.message for v in store.list_versions("shared")) == sorted(folders)


def test_tagging_a_missing_version_is_not_found_and_changes_nothing(
    store: SqlDatasetStore,
) -> None:
    v1, _ = store.create_version("d", _spec(1))
    store.set_tag(v1.id, "gold")
    with pytest.raises(NotFoundError, match="no dataset version with id 'nope'"):
        store.set_tag("nope", "gold")
    store.soft_delete([v1.id], 1)
    with pytest.raises(NotFoundError, match=v1.id):
        store.set_tag(v1.id, "silver")  # a deleted version takes no tags
    v2, _ = store.create_version("d", _spec(2))
    with pytest.raises(InvalidArgumentError, match="tag time"):
        store.set_tag(v2.id, "gold", at_ms=2**64)
    assert store.list_tags("d") == []


@pytest.mark.parametrize(
    "bad",
    [
        {"version": 2**40},
        {"version": 0},
        {"size": 2**64},
        {"file_count": -1},
        {"created_at": 10**30},
        {"tree": "not-a-digest"},
        {"kind": "weird"},
        {"author": "x" * 129},
    ],
)
def test_import_refuses_out_of_range_values_and_changes_nothing(
    store: SqlDatasetStore, bad: dict[str, object]
) -> None:
    from dataclasses import replace

    from syllabus._utils.ids import new_id

    mine, _ = store.create_version("d", _spec(1))
    good = replace(mine, id=new_id(), version=2)
    wrong = replace(mine, id=new_id(), **{"version": 3, **bad})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"imported version|invalid request"):
        store.import_versions("d", [good, wrong])
    assert [v.version for v in store.list_versions("d")] == [1]
    assert store.get_dataset("other") is None


def test_out_of_range_numbers_are_refused_or_match_nothing(store: SqlDatasetStore) -> None:
    store.create_version("d", _spec(1))
    assert store.get_version("d", 2**70) is None
    with pytest.raises(InvalidArgumentError, match="file_count"):
        store.create_version("d", _spec(2, file_count=2**64))
    with pytest.raises(InvalidArgumentError, match="deletion time"):
        store.soft_delete([store.list_versions("d")[0].id], 2**64)
    assert [v.version for v in store.list_versions("d")] == [1]
