"""The deploy store contract on SQLite and PostgreSQL, directly and through a live server:
numbered revisions per
(name, env), live and latest, statuses, and the link to model versions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from syllabus.deploy.models import RevisionSpec
from syllabus.deploy.sql import SqlDeployStore
from syllabus.errors import InvalidArgumentError, NotFoundError
from syllabus.meta import create_engine, ensure_schema
from syllabus.registry.models import VersionSpec
from syllabus.registry.sql import SqlRegistryStore
from syllabus.registry.store import Audit
from tests.server.live import REMOTE_BACKENDS, db_url_for, live_server, remote_store

_ = live_server  # a fixture the remote parameters use


@pytest.fixture(params=["sqlite", "postgresql", *REMOTE_BACKENDS])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return db_url_for(request, request.param, tmp_path)


@pytest.fixture
def engine(url: str) -> Iterator[sa.Engine]:
    eng = create_engine(url)
    ensure_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def store(
    request: pytest.FixtureRequest, url: str, engine: sa.Engine, tmp_path: Path
) -> Iterator[SqlDeployStore]:
    if not str(request.node.callspec.params["url"]).startswith("remote"):
        yield SqlDeployStore(engine)
        return
    yield remote_store(request, url, tmp_path, "deploy")  # the same store through a live server


def _versions(engine: sa.Engine) -> list[str]:
    registry = SqlRegistryStore(engine)
    out = []
    for n in (1, 2, 3):
        spec = VersionSpec(
            tree=f"{n:064x}", size=1, flavor="sklearn", serialization="skops", unsafe=False,
            model_path="model.skops", model_digest=f"{n + 9:064x}", signature=None, source="/m",
        )  # fmt: skip
        out.append(registry.create_version("churn", spec, Audit("t")).id)
    return out


def _spec(versions: list[str], primary: int, canary: int | None = None) -> RevisionSpec:
    return RevisionSpec(
        target="local",
        model_version_id=versions[primary - 1],
        model_ref=f"churn@{primary}",
        spec="service: churn\n",
        config={"service": "churn", "workers": 1, "monitoring": {"window": "1h"}},
        canary_version_id=None if canary is None else versions[canary - 1],
        canary_ref=None if canary is None else f"churn@{canary}",
        canary_percent=None if canary is None else 10.0,
        monitoring={"window": "1h"},
    )


def test_contract(engine: sa.Engine, store: SqlDeployStore) -> None:
    versions = _versions(engine)
    with pytest.raises(NotFoundError, match="no deployment named 'churn'"):
        store.get_deployment("churn", "staging")
    r1 = store.create_revision("churn", "staging", _spec(versions, 1), "ann")
    assert (r1.revision, r1.status, r1.created_by, r1.ref) == (
        1,
        "pending",
        "ann",
        "churn/staging#1",
    )
    assert r1.config["workers"] == 1
    assert r1.monitoring == {"window": "1h"}
    store.update_revision("churn", "staging", 1, "live", runtime={"pid": 5}, live=True)
    r2 = store.create_revision("churn", "staging", _spec(versions, 2, canary=3), "bob")
    p1 = store.create_revision("churn", "production", _spec(versions, 1), "ann")
    assert (r2.revision, p1.revision) == (2, 1)  # numbered per environment
    d = store.get_deployment("churn", "staging")
    assert d.live is not None
    assert (d.live.revision, d.latest.revision, d.status) == (1, 2, "live")
    assert d.live.runtime == {"pid": 5}
    store.update_revision("churn", "staging", 2, "failed", reason="not ready")
    store.update_revision("churn", "staging", 1, "stopped", live=False)
    d = store.get_deployment("churn", "staging")
    assert (d.live, d.status, d.latest.reason) == (None, "failed", "not ready")
    assert [(x.name, x.env) for x in store.list_deployments()] == [
        ("churn", "production"), ("churn", "staging"),
    ]  # fmt: skip
    assert [r.revision for r in store.list_revisions("churn", "staging")] == [2, 1]
    assert len(store.list_revisions("churn")) == 3
    assert store.get_revision("churn", "staging", 2).canary_percent == 10.0
    with pytest.raises(NotFoundError, match="has no revision 9 \\(revisions are 1 to 2\\)"):
        store.get_revision("churn", "staging", 9)
    with pytest.raises(NotFoundError, match="has no environment 'dev' \\(it has production"):
        store.get_deployment("churn", "dev")
    with pytest.raises(InvalidArgumentError, match="unknown status"):
        store.update_revision("churn", "staging", 1, "sleeping")
    # linked to model versions as primary or canary
    assert [(r.env, r.revision) for r in store.revisions_of_versions((versions[2],))] == [
        ("staging", 2)
    ]
    assert len(store.revisions_of_versions((versions[0],))) == 2


def test_concurrent_applies_get_distinct_numbers(engine: sa.Engine, store: SqlDeployStore) -> None:
    versions = _versions(engine)
    numbers: list[int] = []
    errors: list[BaseException] = []

    def apply() -> None:
        try:
            numbers.append(store.create_revision("churn", "prod", _spec(versions, 1), "t").revision)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=apply) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(numbers) == [1, 2, 3, 4, 5, 6]


def test_revisions_name_stored_model_versions(engine: sa.Engine, store: SqlDeployStore) -> None:
    versions = _versions(engine)
    with pytest.raises(NotFoundError, match=r"model version '0+' not found"):
        store.create_revision("churn", "staging", _spec(["0" * 32], 1), "ann")
    with pytest.raises(NotFoundError, match=r"model version 'f+' not found"):
        store.create_revision("churn", "staging", _spec([versions[0], "f" * 32], 1, canary=2), "a")
    with pytest.raises(NotFoundError, match="no deployment named 'churn'"):
        store.get_deployment("churn", "staging")  # nothing was made
