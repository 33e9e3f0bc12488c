"""The registry store contract on SQLite and PostgreSQL, directly and through a live server:
versions, references, the one
production version under concurrent promotions (enforced by the database), retirement."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from syllabus.errors import ConflictError, InvalidArgumentError, NotFoundError
from syllabus.meta import BlobRefs, create_engine, ensure_schema
from syllabus.meta.tables.registry import model_versions
from syllabus.refs import Ref, SelectorKind, Stage, parse_ref
from syllabus.registry.models import VersionSpec
from syllabus.registry.sql import SqlRegistryStore
from syllabus.registry.store import Audit
from tests.server.live import REMOTE_BACKENDS, db_url_for, live_server, remote_workspace

_ = live_server  # a fixture the remote parameters use

AUDIT = Audit("tester")


@pytest.fixture(params=["sqlite", "postgresql", *REMOTE_BACKENDS])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return db_url_for(request, request.param, tmp_path)


@pytest.fixture
def stores(
    request: pytest.FixtureRequest, url: str, tmp_path: Path
) -> Iterator[Callable[[], SqlRegistryStore]]:
    """Makes stores over the test's database: directly, or through a live server."""
    closers: list[Callable[[], None]] = []
    remote = None
    if str(request.node.callspec.params["url"]).startswith("remote"):
        remote = remote_workspace(request, url, tmp_path)

    def make() -> SqlRegistryStore:
        if remote is None:
            engine = create_engine(url)
            ensure_schema(engine)
            closers.append(engine.dispose)
            return SqlRegistryStore(engine)
        from syllabus.client.remote import Http, RemoteStore

        http = Http(remote)
        closers.append(http.close)
        return RemoteStore(http, "registry")  # type: ignore[return-value]

    yield make
    for close in closers:
        close()


@pytest.fixture
def engine(url: str) -> Iterator[sa.Engine]:
    eng = create_engine(url)
    ensure_schema(eng)
    yield eng
    eng.dispose()


def _spec(n: int) -> VersionSpec:
    return VersionSpec(
        tree=f"{n:064x}",
        size=10,
        flavor="python",
        serialization="pickle",
        unsafe=True,
        model_path="model.pkl",
        model_digest=f"{n + 1000:064x}",
        signature=None,
        source="/tmp/m",
    )


def test_contract(engine: sa.Engine, stores: Callable[[], SqlRegistryStore]) -> None:
    store = stores()
    v1 = store.create_version("churn", _spec(1), AUDIT)
    v2 = store.create_version("churn", _spec(2), AUDIT)
    assert (v1.version, v2.version) == (1, 2)
    assert store.resolve(parse_ref("churn")).version == 2
    assert [v.version for v in store.versions_with_digest(f"{1001:064x}")] == [1]
    store.set_alias("churn", "champion", 1, AUDIT)
    assert store.resolve(parse_ref("churn@champion")).version == 1
    with pytest.raises(NotFoundError, match=r"has no version 7 \(latest is 2\)"):
        store.resolve(parse_ref("churn@7"))
    store.transition("churn", 1, Stage.PRODUCTION, AUDIT)
    _, archived = store.transition("churn", 2, Stage.PRODUCTION, AUDIT)
    assert [v.version for v in archived] == [1]
    assert store.get_model("churn").rollback_version == 1
    with pytest.raises(ConflictError, match="moved from staging to production"):
        store.transition("churn", 2, Stage.ARCHIVED, AUDIT, expect=Stage.STAGING)
    refs = BlobRefs(engine)
    assert refs.owners(v1.tree)
    store.retire("churn", 1, AUDIT)
    assert not refs.owners(v1.tree)
    assert store.get_model("churn").rollback_version is None
    events = [e.event for e in store.list_events("churn")]
    assert events.count("stage_changed") == 3
    assert events[-1] == "retired"
    policy = store.add_policy("churn", "policy: churn\n", "d1", AUDIT)
    assert store.add_policy("churn", "policy: churn\n", "d1", AUDIT).version == policy.version
    assert store.add_policy("churn", "policy: churn\n# x\n", "d2", AUDIT).version == 2


def test_database_refuses_two_exclusive_production_versions(engine: sa.Engine) -> None:
    store = SqlRegistryStore(engine)
    v1 = store.create_version("churn", _spec(1), AUDIT)
    v2 = store.create_version("churn", _spec(2), AUDIT)

    def occupy(v: object, conn: sa.Connection) -> None:
        assert isinstance(v, type(v1))
        conn.execute(
            sa.update(model_versions)
            .where(model_versions.c.id == v.id)
            .values(stage="production", production_slot=v.model_id)
        )

    with engine.begin() as conn:
        occupy(v1, conn)
    with engine.begin() as conn, pytest.raises(IntegrityError):
        occupy(v2, conn)


def test_concurrent_promotions_leave_one(stores: Callable[[], SqlRegistryStore]) -> None:
    four = [stores() for _ in range(4)]
    for n in range(4):
        four[0].create_version("churn", _spec(n + 1), AUDIT)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def promote(store: SqlRegistryStore, version: int) -> None:
        barrier.wait()
        try:
            store.transition("churn", version, Stage.PRODUCTION, AUDIT)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=promote, args=(s, n + 1)) for n, s in enumerate(four)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(four[0].list_versions("churn", stage=Stage.PRODUCTION)) == 1
    assert len(four[0].list_versions("churn", stage=Stage.ARCHIVED)) == 3


def test_inconsistent_references_and_bad_webhooks_are_refused(
    stores: Callable[[], SqlRegistryStore],
) -> None:
    store = stores()
    store.create_version("churn", _spec(1), AUDIT)
    for bad in [
        Ref("churn", SelectorKind.STAGE),  # a stage reference without a stage
        Ref("churn", SelectorKind.VERSION),
        Ref("churn", SelectorKind.VERSION, version=0),
        Ref("churn", SelectorKind.ALIAS),
        Ref("churn", SelectorKind.LATEST, version=1),
        Ref("", SelectorKind.LATEST),
    ]:
        with pytest.raises(InvalidArgumentError, match="reference"):
            store.resolve(bad)
    with pytest.raises(NotFoundError, match="has no version"):
        store.resolve(Ref("churn", SelectorKind.VERSION, version=2**70))
    assert store.get_policy("default", 2**70) is None
    for url in ["", "http://", "gopher://127.0.0.1/"]:
        with pytest.raises(InvalidArgumentError, match="webhook URL"):
            store.add_webhook(url, "s", [], None, AUDIT)
    with pytest.raises(InvalidArgumentError, match="shared secret"):
        store.add_webhook("http://127.0.0.1:9/", "", [], None, AUDIT)
    assert store.list_webhooks() == []
    assert "webhook_added" not in [e.event for e in store.list_events()]
