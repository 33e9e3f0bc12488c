"""The CodeStore contract on SQLite and PostgreSQL, directly and through a live server:
content-addressed rows, blob references declared with the rows, run links, numbered
checkpoints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from syllabus.code import SqlCodeStore
from syllabus.errors import InvalidArgumentError, NotFoundError
from syllabus.meta import BlobRefs, create_engine, ensure_schema
from tests.server.live import REMOTE_BACKENDS, db_url_for, live_server, remote_store

_ = live_server  # a fixture the remote parameters use

D = [f"{n:x}" * 64 for n in range(1, 6)]  # fake digests


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), *REMOTE_BACKENDS]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlCodeStore]:
    url = db_url_for(request, request.param, tmp_path)
    engine = create_engine(url)
    ensure_schema(engine)
    if not request.param.startswith("remote"):
        yield SqlCodeStore(engine)
    else:  # the same store through a live server
        yield remote_store(request, url, tmp_path, "code", engine)
    engine.dispose()


def refs(store: SqlCodeStore, owner_id: str) -> set[tuple[str, str]]:
    found = set()
    for digest in D:
        found |= {
            (r.digest, r.kind)
            for r in BlobRefs(store._engine).owners(digest)
            if r.owner_id == owner_id
        }
    return found


def test_snapshots_are_content_addressed(store: SqlCodeStore) -> None:
    args = {"kind": "git", "commit": "c" * 40, "branch": "main", "remote": None, "dirty": True}
    a = store.put_snapshot(digest=D[0], blobs=[D[1], D[2]], **args)  # type: ignore[arg-type]
    b = store.put_snapshot(digest=D[0], blobs=[D[1], D[2]], **args)  # type: ignore[arg-type]
    assert a == b
    assert refs(store, a.id) == {(D[0], "code"), (D[1], "code"), (D[2], "code")}
    assert store.get_snapshot(a.id[:10]) == a
    with pytest.raises(NotFoundError, match="code snapshot 'ffffff' not found"):
        store.get_snapshot("ffffff")
    with pytest.raises(NotFoundError, match="ids are hex"):
        store.get_snapshot("xyz")


def test_environments_are_content_addressed(store: SqlCodeStore) -> None:
    a = store.put_environment(
        digest=D[3], python="CPython 3.11.7", platform="Linux", package_count=3
    )
    b = store.put_environment(
        digest=D[3], python="CPython 3.11.7", platform="Linux", package_count=3
    )
    assert a == b
    assert store.get_environment(a.id) == a
    assert refs(store, a.id) == {(D[3], "environment")}


def test_run_links(store: SqlCodeStore) -> None:
    snap = store.put_snapshot(
        digest=D[0], kind="files", commit=None, branch=None, remote=None, dirty=False, blobs=[]
    )
    env = store.put_environment(digest=D[3], python="CPython", platform="x", package_count=0)
    run = "0" * 31 + "1"
    link = store.link_run(
        run,
        snapshot_id=snap.id,
        environment_id=env.id,
        checkpoint_id=None,
        root="/p",
        entry_point="train.py",
        argv=["--lr", "0.1"],
    )
    assert store.get_run_link(run[:8]) == link
    assert link.argv == ("--lr", "0.1")
    again = store.link_run(
        run,
        snapshot_id=snap.id,
        environment_id=None,
        checkpoint_id=None,
        root=None,
        entry_point=None,
        argv=[],
    )
    assert store.get_run_link(run) == again
    assert store.runs_with_snapshot(snap.id) == [run]
    with pytest.raises(NotFoundError, match="captured no code"):
        store.get_run_link("a" * 32)


def test_checkpoints_number_and_dedup(store: SqlCodeStore) -> None:
    kw = {"cell_count": 2, "outputs": True, "author": "me", "run_id": None}
    c1, new1 = store.add_checkpoint("nb.ipynb", digest=D[0], message="one", **kw)  # type: ignore[arg-type]
    c1b, new1b = store.add_checkpoint("nb.ipynb", digest=D[0], message="again", **kw)  # type: ignore[arg-type]
    c2, new2 = store.add_checkpoint("nb.ipynb", digest=D[1], message="two", **kw)  # type: ignore[arg-type]
    other, _ = store.add_checkpoint("dir/other.ipynb", digest=D[0], message="", **kw)  # type: ignore[arg-type]
    assert (new1, new1b, new2) == (True, False, True)
    assert c1b == c1
    assert (c1.version, c2.version, other.version) == (1, 2, 1)
    assert store.get_checkpoint("nb.ipynb") == c2
    assert store.get_checkpoint("nb.ipynb", 1) == c1
    assert store.get_checkpoint_by_id(c2.id) == c2
    assert [c.version for c in store.list_checkpoints("nb.ipynb")] == [2, 1]
    assert [(n.path, n.checkpoints, n.latest) for n in store.list_notebooks()] == [
        ("dir/other.ipynb", 1, 1),
        ("nb.ipynb", 2, 2),
    ]
    assert refs(store, c2.id) == {(D[1], "notebook")}
    with pytest.raises(NotFoundError):
        store.list_checkpoints("missing.ipynb")


def test_ambiguous_prefix(store: SqlCodeStore) -> None:
    made = [store.put_environment(digest=d, python="p", platform="x", package_count=0) for d in D]
    common = made[0].id[:6]
    if all(m.id.startswith(common) for m in made[:2]):
        with pytest.raises(InvalidArgumentError, match="ambiguous"):
            store.get_environment(common)


def test_a_run_links_to_stored_records_only(store: SqlCodeStore) -> None:
    run = "0" * 31 + "2"
    with pytest.raises(NotFoundError, match=r"code snapshot '0+' not found"):
        store.link_run(run, snapshot_id="0" * 32, environment_id=None, checkpoint_id=None,
                       root=None, entry_point=None, argv=[])  # fmt: skip
    snap = store.put_snapshot(
        digest=D[0], kind="files", commit=None, branch=None, remote=None, dirty=False, blobs=[]
    )
    with pytest.raises(NotFoundError, match="environment"):
        store.link_run(run, snapshot_id=snap.id, environment_id="f" * 32, checkpoint_id=None,
                       root=None, entry_point=None, argv=[])  # fmt: skip
    with pytest.raises(NotFoundError, match="captured no code"):
        store.get_run_link(run)  # nothing was linked
