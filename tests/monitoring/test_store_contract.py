"""The monitoring store contract on SQLite and PostgreSQL, directly and through a live
server: monitors, processed segments
recorded with their windows (a segment twice rolls back), the run lock, rules, alerts
deduplicated while firing, numbered events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from syllabus.errors import AlreadyExistsError, ConflictError, InvalidArgumentError, NotFoundError
from syllabus.meta import create_engine, ensure_schema
from syllabus.monitoring.models import WindowUpdate
from syllabus.monitoring.sql import SqlMonitoringStore
from tests.server.live import REMOTE_BACKENDS, db_url_for, live_server, remote_store

_ = live_server  # a fixture the remote parameters use

DIGEST = "ab" * 32


@pytest.fixture(params=["sqlite", "postgresql", *REMOTE_BACKENDS])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return db_url_for(request, request.param, tmp_path)


@pytest.fixture
def store(request: pytest.FixtureRequest, url: str, tmp_path: Path) -> Iterator[SqlMonitoringStore]:
    eng = create_engine(url)
    ensure_schema(eng)
    if not str(request.node.callspec.params["url"]).startswith("remote"):
        yield SqlMonitoringStore(eng)
    else:  # the same store through a live server
        yield remote_store(request, url, tmp_path, "monitoring", eng)
    eng.dispose()


def _monitor(store: SqlMonitoringStore, name: str = "m") -> str:
    profile = store.add_profile("k" * 64, "ref.parquet", 10, 2, DIGEST)
    assert store.add_profile("k" * 64, "again", 1, 1, DIGEST).id == profile.id  # reused
    values = {"name": name, "service": "svc", "profile_id": profile.id, "window_kind": "rows",
              "window_size": 100, "config": {"features": ["a"]}}  # fmt: skip
    return store.create_monitor(values, "me").id


def test_monitors_segments_and_windows(store: SqlMonitoringStore) -> None:
    mid = _monitor(store)
    with pytest.raises(AlreadyExistsError):
        _monitor(store)
    with pytest.raises(NotFoundError, match="monitor list"):
        store.get_monitor("nope")
    w = WindowUpdate(0, 100, 100, True, DIGEST, {"drift_share": 0.5}, 0, None)
    store.commit_run(mid, [("predictions", "seg-1", 100)], [w], 100)
    assert store.processed(mid, "predictions") == {"seg-1": 100}
    assert store.get_monitor("m").rows_seen == 100
    with pytest.raises(ConflictError):
        store.commit_run(mid, [("predictions", "seg-1", 100), ("predictions", "seg-2", 5)],
                         [w], 200)  # fmt: skip
    assert store.processed(mid, "predictions") == {"seg-1": 100}  # rolled back whole
    store.commit_run(mid, [], [WindowUpdate(0, 100, 100, True, DIGEST, {"drift_share": 0.7})],
                     None)  # fmt: skip
    (window,) = store.windows(mid, closed=True)
    assert window.summary == {"drift_share": 0.7}
    store.delete_monitor(mid)
    assert store.list_monitors() == []


def test_run_lock(store: SqlMonitoringStore) -> None:
    mid = _monitor(store)
    assert store.acquire(mid, "a", 60_000)
    assert not store.acquire(mid, "b", 60_000)
    store.release(mid, "a")
    assert store.acquire(mid, "b", 60_000)
    assert store.acquire(mid, "c", -1) is False
    store.release(mid, "b")


def test_alerts_fire_once_and_events_are_numbered(store: SqlMonitoringStore) -> None:
    mid = _monitor(store)
    rule = store.add_rule(mid, "drift_share > 0.3", "user", "me")
    assert store.add_rule(mid, "drift_share > 0.3", "user", "me").id == rule.id
    fired = store.apply_alerts(mid, [(rule, 0.5, 0)], [], [])
    assert [e.event for e in fired] == ["fired"]
    assert store.apply_alerts(mid, [(rule, 0.6, 100)], [], []) == []  # already firing
    (alert,) = store.list_alerts(monitor_id=mid, state="firing")
    store.apply_alerts(mid, [], [(alert.id, 0.7, 200)], [])
    assert store.list_alerts(state="firing")[0].value == 0.7
    resolved = store.apply_alerts(mid, [], [], [(alert.id, 0.1, 300)])
    assert [e.event for e in resolved] == ["resolved"]
    events = store.events()
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert store.events(after=events[0].seq) == events[1:]
    assert store.list_alerts(after=alert.id) == []
    store.remove_rule(rule.id)
    assert store.list_rules(mid) == []


def test_tables_are_in_the_schema(store: SqlMonitoringStore) -> None:
    names = set(sa.inspect(store._engine).get_table_names())
    assert {"monitors", "monitor_windows", "monitor_alerts", "monitor_events"} <= names


def test_unknown_ids_and_settings_are_refused(store: SqlMonitoringStore) -> None:
    mid = _monitor(store)
    nobody = "0" * 32
    with pytest.raises(NotFoundError, match="monitor id"):
        store.update_monitor(nobody, {"service": "x"})
    with pytest.raises(NotFoundError, match="monitor id"):
        store.add_rule(nobody, "drift_share > 0.3", "user", "me")
    with pytest.raises(NotFoundError, match="monitor id"):
        store.commit_run(nobody, [("predictions", "seg-1", 1)], [], 1)
    with pytest.raises(NotFoundError, match="monitor id"):
        store.apply_alerts(nobody, [], [], [])
    with pytest.raises(InvalidArgumentError, match="no setting 'rows_seen'"):
        store.update_monitor(mid, {"rows_seen": 5})
    with pytest.raises(InvalidArgumentError, match="needs service"):
        store.create_monitor({"name": "x", "window_kind": "rows", "window_size": 1}, "me")
    with pytest.raises(NotFoundError, match="profile"):
        store.update_monitor(mid, {"profile_id": nobody})
    assert store.update_monitor(mid, {"service": "svc2"}).service == "svc2"
    assert store.get_monitor("m").rows_seen == 0
