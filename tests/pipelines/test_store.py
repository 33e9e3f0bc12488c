"""The pipeline store on SQLite and PostgreSQL, directly and through a live server: leases,
firing once, cache, triggers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from syllabus.meta import create_engine, ensure_schema
from syllabus.pipelines.models import CacheEntry
from syllabus.pipelines.sql import SqlPipelineStore
from tests.server.live import REMOTE_BACKENDS, db_url_for, live_server, remote_store

_ = live_server  # a fixture the remote parameters use


@pytest.fixture(params=["sqlite", "postgresql", *REMOTE_BACKENDS])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlPipelineStore]:
    url = db_url_for(request, request.param, tmp_path)
    engine = create_engine(url)
    ensure_schema(engine)
    if not request.param.startswith("remote"):
        yield SqlPipelineStore(engine)
    else:  # the same store through a live server
        yield remote_store(request, url, tmp_path, "pipelines", engine)
    engine.dispose()


def _trigger(store: SqlPipelineStore) -> str:
    info = store.save_pipeline("p", "flows.py:p", {"name": "p", "steps": []}, "d1")
    (t,) = store.sync_triggers(info.id, [("new-data", "dataset", {"dataset": "x"}, "x@1:a")])
    return t.id


def test_pipelines_and_triggers_are_upserted(store: SqlPipelineStore) -> None:
    first = store.save_pipeline("p", "flows.py:p", {"name": "p"}, "d1")
    again = store.save_pipeline("p", "flows.py:p", {"name": "p", "v": 2}, "d2")
    assert (again.id, again.digest, again.definition) == (first.id, "d2", {"name": "p", "v": 2})
    assert [p.name for p in store.list_pipelines()] == ["p"]
    made = store.sync_triggers(
        first.id,
        [("a", "cron", {"cron": "@daily"}, None), ("b", "dataset", {"dataset": "x"}, "s")],
    )
    assert [(t.name, t.state) for t in made] == [("a", None), ("b", "s")]
    kept = store.sync_triggers(first.id, [("b", "dataset", {"dataset": "y"}, "new")])
    assert [(t.name, t.spec, t.state) for t in kept] == [("b", {"dataset": "y"}, "s")]


def test_a_lease_has_one_holder_until_it_expires(store: SqlPipelineStore) -> None:
    tid = _trigger(store)
    assert store.claim_trigger(tid, "a", now=1000, ttl_ms=100)
    assert not store.claim_trigger(tid, "b", now=1050, ttl_ms=100)
    assert store.claim_trigger(tid, "a", now=1060, ttl_ms=100)  # renewed by its holder
    assert not store.claim_trigger(tid, "b", now=1150, ttl_ms=100)
    assert store.claim_trigger(tid, "b", now=1161, ttl_ms=100)  # expired: taken over
    store.release_trigger(tid, "a", checked_at=1170)  # not a's any more: no effect
    assert not store.claim_trigger(tid, "a", now=1170, ttl_ms=100)
    store.release_trigger(tid, "b", checked_at=1170)
    assert store.claim_trigger(tid, "a", now=1171, ttl_ms=100)


def test_concurrent_claims_have_one_winner(store: SqlPipelineStore) -> None:
    tid = _trigger(store)
    barrier = threading.Barrier(6)
    wins: list[str] = []

    def claim(owner: str) -> None:
        barrier.wait()
        if store.claim_trigger(tid, owner, now=5000, ttl_ms=60_000):
            wins.append(owner)

    threads = [threading.Thread(target=claim, args=(f"agent-{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1


def test_an_occurrence_fires_once(store: SqlPipelineStore) -> None:
    tid = _trigger(store)
    assert store.fire(tid, "a", "x@2:b", {}, now=1000, ttl_ms=100) is None  # no lease
    assert store.claim_trigger(tid, "a", now=1000, ttl_ms=100)
    firing = store.fire(tid, "a", "x@2:b", {"dataset": "x@2"}, now=1001, ttl_ms=100)
    assert firing is not None
    assert (firing.status, firing.detail) == ("running", {"dataset": "x@2"})
    assert store.list_triggers("p")[0].state == "x@2:b"
    # even a later holder that saw the old state cannot fire it again
    store.release_trigger(tid, "a", checked_at=1002)
    assert store.claim_trigger(tid, "b", now=1003, ttl_ms=100)
    assert store.fire(tid, "b", "x@2:b", {}, now=1004, ttl_ms=100) is None
    assert [f.id for f in store.list_firings("p")] == [firing.id]


def test_firings_are_renewed_ended_and_taken_over(store: SqlPipelineStore) -> None:
    tid = _trigger(store)
    assert store.claim_trigger(tid, "a", now=1000, ttl_ms=100)
    firing = store.fire(tid, "a", "x@2:b", {}, now=1000, ttl_ms=100)
    assert firing is not None
    assert store.update_firing(firing.id, "a", now=1050, ttl_ms=100)  # renewed to 1150
    assert store.claim_stale_firings("b", now=1100, ttl_ms=100) == []
    (taken,) = store.claim_stale_firings("b", now=1151, ttl_ms=100)
    assert taken.lease_owner == "b"
    assert not store.update_firing(firing.id, "a", now=1152, status="succeeded")  # lost it
    assert store.update_firing(firing.id, "b", now=1153, status="failed")
    assert store.claim_stale_firings("c", now=10_000, ttl_ms=100) == []
    assert store.list_firings()[0].status == "failed"


def test_cache_entries_are_replaced_and_reference_their_blob(store: SqlPipelineStore) -> None:
    key = "ab" * 32
    entry = CacheEntry(key, "s", "cd" * 32, "json", {"value": {}}, "r1", 1)
    store.put_cache(entry)
    store.put_cache(CacheEntry(key, "s", "ef" * 32, "pickle", {"value": {}}, "r2", 2))
    got = store.get_cache(key)
    assert got is not None
    assert (got.digest, got.format, got.step_run_id) == ("ef" * 32, "pickle", "r2")
    assert store.get_cache("00" * 32) is None
    with store._engine.connect() as conn:
        owners = conn.execute(
            sa.text("SELECT digest FROM blob_refs WHERE owner_type = 'step_cache'")
        ).all()
    assert {r.digest for r in owners} == {"ef" * 32}  # the replaced result may be collected


def test_unknown_pipeline_ids_are_not_found(store: SqlPipelineStore) -> None:
    from syllabus.errors import NotFoundError

    with pytest.raises(NotFoundError, match="pipeline id"):
        store.sync_triggers("0" * 32, [("a", "cron", {"cron": "@daily"}, None)])
