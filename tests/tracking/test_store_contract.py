"""The TrackingStore contract, through the service, on SQLite and PostgreSQL, directly and
through a live server (the remote backend)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from syllabus.blobs.store import BlobStore, open_blob_store
from syllabus.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
)
from syllabus.meta import BlobRefs
from syllabus.meta.tables.tracking import CHUNK_POINTS, metric_chunks, metrics
from syllabus.tracking.models import Metric, RunInput, RunStatus
from syllabus.tracking.service import TrackingService
from syllabus.tracking.sql import SqlTrackingStore
from syllabus.tracking.store import RunEnd
from tests.server.live import REMOTE_BACKENDS, db_url_for, live_server, remote_workspace

_ = live_server  # a fixture the remote parameters use


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), *REMOTE_BACKENDS]
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return db_url_for(request, request.param, tmp_path)


@pytest.fixture
def remote(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> str | None:
    """The server URI of this test's workspace when the backend is remote."""
    if not str(request.node.callspec.params["db_url"]).startswith("remote"):
        return None
    return remote_workspace(request, db_url, tmp_path)


@pytest.fixture
def store(engine: sa.Engine, remote: str | None) -> Iterator[SqlTrackingStore]:
    if remote is None:
        yield SqlTrackingStore(engine)
        return
    from syllabus.client.remote import Http, RemoteTrackingStore

    http = Http(remote)
    over_http = RemoteTrackingStore(http)
    over_http.engine = engine  # type: ignore[attr-defined] # the tests look into the database
    yield over_http  # type: ignore[misc]
    http.close()


@pytest.fixture
def blobs(tmp_path: Path, remote: str | None) -> Iterator[BlobStore]:
    if remote is None:
        store = open_blob_store(str(tmp_path / "blobs"))
        yield store
        store.close()
        return
    from syllabus.client.remote import Http, RemoteObjectBackend

    http = Http(remote)
    store = BlobStore(RemoteObjectBackend(http))
    yield store
    store.close()
    http.close()


def test_experiments_create_rename_delete_restore_and_reuse_names(
    service: TrackingService,
) -> None:
    exp = service.create_experiment("churn", "first try")
    assert service.get_experiment("churn") == exp
    assert service.get_experiment(exp.id[:8]) == exp
    with pytest.raises(AlreadyExistsError, match="'churn' already exists"):
        service.create_experiment("churn")
    renamed = service.rename_experiment("churn", "churn-v1")
    assert renamed.name == "churn-v1"
    deleted = service.delete_experiment("churn-v1")
    assert deleted.deleted
    assert [e.name for e in service.search_experiments()] == []
    again = service.create_experiment("churn-v1")  # the name is free once deleted
    assert again.id != exp.id
    with pytest.raises(AlreadyExistsError):
        service.restore_experiment(exp.id)  # a live experiment holds the name now
    service.rename_experiment(again.id, "churn-v2")
    assert service.restore_experiment(exp.id).name == "churn-v1"
    assert [e.name for e in service.search_experiments(name_like="churn%")] == [
        "churn-v1",
        "churn-v2",
    ]


def test_run_lifecycle_params_tags_metrics(service: TrackingService) -> None:
    run = service.create_run("exp", name="first", params={"lr": 0.1}, tags={"team": "risk"})
    assert run.status is RunStatus.RUNNING
    assert run.params == {"lr": "0.1"}
    service.log_params(run.id, {"lr": "0.1", "depth": 3})  # same value again is fine
    with pytest.raises(ConflictError, match=r"param 'lr' .* already '0\.1'.*'0\.2' was refused"):
        service.log_params(run.id, {"lr": 0.2})
    service.set_tags(run.id, {"team": "growth", "note": "ünïcødé ✓"})
    for step in range(10):
        service.log_metric(run.id, "loss", 1 / (step + 1), step=step)
    service.log_metric(run.id, "nan", math.nan)
    service.log_metric(run.id, "inf", math.inf)
    service.log_metrics(run.id, {"acc": 0.5, "auc": 0.75}, step=3)
    got = service.get_run(run.id[:10])
    assert got.params == {"lr": "0.1", "depth": "3"}
    assert got.tags == {"team": "growth", "note": "ünïcødé ✓"}
    assert got.metrics["loss"].value == pytest.approx(0.1)
    assert got.metrics["loss"].step == 9
    assert math.isnan(got.metrics["nan"].value)
    assert got.metrics["inf"].value == math.inf
    history = service.get_metric_history(run.id, "loss")
    assert [p.step for p in history] == list(range(10))
    assert service.get_metric_history(run.id, "missing") == []
    service.end_run(run.id, "failed", error="ValueError: boom")
    ended = service.get_run(run.id)
    assert ended.status is RunStatus.FAILED
    assert ended.error == "ValueError: boom"
    assert ended.end_time is not None
    assert ended.end_time >= ended.start_time


def test_latest_metric_is_highest_step_not_last_logged(service: TrackingService) -> None:
    run = service.create_run()
    now = int(time.time() * 1000)
    service.log_batch(
        run.id,
        metrics=[Metric("x", 5.0, 5, now), Metric("x", 1.0, 1, now + 10), ("x", 3.0, 3, now)],
        synchronous=True,
    )
    assert service.get_run(run.id).metrics["x"] == Metric("x", 5.0, 5, now)
    service.log_metric(run.id, "x", 9.0, step=9)
    assert service.get_run(run.id).metrics["x"].value == 9.0


def test_run_ids_resolve_by_unique_prefix(service: TrackingService) -> None:
    run = service.create_run()
    assert service.get_run(run.id[:6]).id == run.id
    with pytest.raises(NotFoundError, match="at least 6"):
        service.get_run(run.id[:5])
    with pytest.raises(NotFoundError, match="not found"):
        service.get_run("f" * 32)
    others = [service.create_run() for _ in range(3)]
    shared = run.id[:6]
    if all(o.id.startswith(shared) for o in others):  # same millisecond prefix: ambiguous
        with pytest.raises(InvalidArgumentError, match="ambiguous"):
            service.get_run(shared)


def test_nested_runs_and_search_by_parent(service: TrackingService) -> None:
    parent = service.create_run("sweep", name="parent")
    children = [service.create_run("sweep", parent=parent.id, name=f"c{i}") for i in range(3)]
    found = service.search_runs("sweep", parent=parent.id)
    assert sorted(r.name for r in found) == ["c0", "c1", "c2"]
    assert all(r.parent_id == parent.id for r in found)
    assert {r.id for r in service.search_runs(filter=f"parent_id = '{parent.id}'")} == {
        c.id for c in children
    }
    assert [r.name for r in service.search_runs("sweep", filter="parent_id is null")] == ["parent"]


def test_artifacts_are_blobs_with_references(
    service: TrackingService, store: SqlTrackingStore, blobs: BlobStore, tmp_path: Path
) -> None:
    run = service.create_run()
    (tmp_path / "model.bin").write_bytes(b"\x00" * 1000)
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")
    service.log_artifact(run.id, tmp_path / "model.bin", "model/model.bin")
    service.log_artifacts(run.id, folder, "plots")
    service.log_bytes(run.id, b"hello", "notes.txt")
    paths = [a.path for a in service.list_artifacts(run.id)]
    assert paths == ["model/model.bin", "notes.txt", "plots/a.txt", "plots/sub/b.txt"]
    assert [a.path for a in service.list_artifacts(run.id, "plots")] == [
        "plots/a.txt",
        "plots/sub/b.txt",
    ]
    assert service.read_artifact(run.id, "notes.txt") == b"hello"
    out = service.download_artifacts(run.id, "plots", tmp_path / "out")
    assert (out / "sub" / "b.txt").read_text() == "b"
    digests = {a.digest for a in service.list_artifacts(run.id)}
    refs = BlobRefs(store.engine)
    assert digests <= set(refs.digests())
    for bad in ("../x", "/etc/passwd", "a/../../b"):
        with pytest.raises(InvalidArgumentError):
            service.log_bytes(run.id, b"x", bad)


def _stored_rows(engine: sa.Engine, run_pk: int | None = None) -> int:
    """Rows of both points tables (``metrics`` on SQLite, ``metric_chunks`` on
    PostgreSQL), of one run or of all."""
    total = 0
    with engine.connect() as conn:
        for table in (metrics, metric_chunks):
            stmt = sa.select(sa.func.count()).select_from(table)
            if run_pk is not None:
                stmt = stmt.where(table.c.run_pk == run_pk)
            total += int(conn.execute(stmt).scalar_one())
    return total


def _in_order(logged: list[tuple[int, int, float]]) -> list[tuple[int, int, float | None]]:
    """``logged`` points (in logging order) as a history reads them: by step, timestamp,
    then logging order; NaN as None, to compare."""
    order = sorted(range(len(logged)), key=lambda i: (logged[i][0], logged[i][1], i))
    return [_comparable(logged[i]) for i in order]


def _comparable(point: tuple[int, int, float]) -> tuple[int, int, float | None]:
    step, ts, value = point
    return step, ts, None if math.isnan(value) else value


def _history(
    service: TrackingService, run_id: str, key: str
) -> list[tuple[int, int, float | None]]:
    return [
        _comparable((m.step, m.timestamp, m.value)) for m in service.get_metric_history(run_id, key)
    ]


def _series(start: int, n: int, *, ts: int = 1000) -> list[tuple[int, int, float]]:
    """``n`` points, steps from ``start`` down (out of order), some ties, NaN and
    infinities among them."""
    specials = {3: math.nan, 4: math.inf, 5: -math.inf, n - 1: math.nan}
    return [(start - (i // 2), ts + (i % 3 == 0), specials.get(i, float(i) / 7)) for i in range(n)]


@pytest.mark.parametrize("n", [1, CHUNK_POINTS, CHUNK_POINTS + 1, 3 * CHUNK_POINTS + 7])
def test_histories_of_large_batches_out_of_order_across_batches(
    service: TrackingService, store: SqlTrackingStore, n: int
) -> None:
    """Batches of one run (several series, some larger than a PostgreSQL chunk) whose steps
    go down within a batch and interleave across batches: every point comes back once, by
    step, timestamp and logging order; the latest value is the highest (step, timestamp),
    the last logged of equals."""
    run = service.create_run()
    logged: dict[str, list[tuple[int, int, float]]] = {"a": [], "b": []}
    for start in (n, n // 2, n):  # the third batch ties the first's steps and timestamps
        batch = {"a": _series(start, n), "b": _series(start + 1, n // 2 + 1, ts=5)}
        store.log_metrics({(run.id, key): points for key, points in batch.items()})
        for key, points in batch.items():
            logged[key] += points
    got = service.get_run(run.id).metrics
    for key, points in logged.items():
        expected = _in_order(points)
        assert _history(service, run.id, key) == expected
        assert _comparable((got[key].step, got[key].timestamp, got[key].value)) == expected[-1]


def test_batches_of_several_runs_and_with_an_end_keep_order_and_latest(
    service: TrackingService, store: SqlTrackingStore
) -> None:
    """The general path (several runs in one batch; a run's last batch with its end):
    chunks of each run, numbered in logging order, after the one-run batches' points."""
    first, second = service.create_run(), service.create_run()
    n = 2 * CHUNK_POINTS + 3
    logged: dict[str, list[tuple[int, int, float]]] = {first.id: [], second.id: []}
    store.log_metrics({(first.id, "m"): _series(n, n)})
    logged[first.id] += _series(n, n)
    both = {(first.id, "m"): _series(n // 3, n), (second.id, "m"): _series(7, 9)}
    store.log_metrics(both)
    for (run_id, _), points in both.items():
        logged[run_id] += points
    last = [(n, 1001, 42.0), (n, 1001, 43.0)]  # ties the highest: the last logged wins
    store.log_metrics({(first.id, "m"): last}, end=RunEnd(first.id, "finished", 5))
    logged[first.id] += last
    for run_id, points in logged.items():
        expected = _in_order(points)
        assert _history(service, run_id, "m") == expected
        latest = service.get_run(run_id).metrics["m"]
        assert _comparable((latest.step, latest.timestamp, latest.value)) == expected[-1]
    assert service.get_run(first.id).metrics["m"].value == 43.0


def test_history_after_purging_another_run(
    service: TrackingService, store: SqlTrackingStore
) -> None:
    keep, gone = service.create_run(), service.create_run()
    n = CHUNK_POINTS + 5
    for run in (keep, gone):
        store.log_metrics({(run.id, "m"): _series(n, n)})
        store.log_metrics({(run.id, "m"): _series(n // 2, 11)})
    with store.engine.connect() as conn:
        pk_of = sa.text("SELECT pk FROM runs WHERE id = :id")
        gone_pk = int(conn.execute(pk_of, {"id": gone.id}).scalar_one())
    assert _stored_rows(store.engine, gone_pk) > 0
    service.delete_run(gone.id)
    assert service.purge_deleted(0) == 1
    assert _stored_rows(store.engine, gone_pk) == 0
    assert _history(service, keep.id, "m") == _in_order(_series(n, n) + _series(n // 2, 11))


def test_delete_restore_and_purge(service: TrackingService, store: SqlTrackingStore) -> None:
    keep = service.create_run("e")
    gone = service.create_run("e")
    service.log_bytes(gone.id, b"only in the deleted run", "x.txt")
    service.log_metric(gone.id, "m", 1.0)
    service.delete_run(gone.id)
    assert [r.id for r in service.search_runs("e")] == [keep.id]
    assert [r.id for r in service.search_runs("e", deleted="deleted")] == [gone.id]
    service.restore_run(gone.id)
    assert len(service.search_runs("e")) == 2
    service.delete_run(gone.id)
    assert service.purge_deleted(3600) == 0  # deleted too recently
    assert service.purge_deleted(0) == 1
    with pytest.raises(NotFoundError):
        service.get_run(gone.id)
    owners = {
        r.owner_id
        for d in BlobRefs(store.engine).digests()
        for r in BlobRefs(store.engine).owners(d)
    }
    assert gone.id not in owners
    assert service.get_run(keep.id).id == keep.id
    assert _stored_rows(store.engine) == 0  # the points went with the run


def test_inputs_both_ways(service: TrackingService) -> None:
    a = service.create_run()
    b = service.create_run()
    data = RunInput("dataset", "d" * 32, name="churn@3", digest="ab" * 32, role="train")
    service.log_inputs(a.id, [data])
    service.log_inputs(a.id, [data])  # idempotent
    service.log_inputs(b.id, [RunInput("dataset", "d" * 32, role="eval")])
    assert [(i.run_id, i.role) for i in service.runs_with_input("dataset", "d" * 32)] == [
        (a.id, "train"),
        (b.id, "eval"),
    ]
    assert service.list_inputs(a.id)[0].name == "churn@3"
    assert service.runs_with_input("dataset", "e" * 32) == []


def test_stale_heartbeat_reads_as_crashed(engine: object, blobs: BlobStore) -> None:
    import sqlalchemy as sa

    assert isinstance(engine, sa.Engine)
    store = SqlTrackingStore(engine, stale_after=0.2)
    service = TrackingService(store, lambda: blobs, heartbeat_interval=0.05)
    try:
        alive = service.create_run("hb")
        dead = store.create_run(
            service.get_experiment("hb").id,
            run_id="0" * 31 + "1",
            name="dead",
            user="u",
            host="h",
            start_time=int(time.time() * 1000) - 10_000,
        )
        time.sleep(0.4)
        assert store.get_run(dead.id).status is RunStatus.CRASHED
        assert store.get_run(alive.id).status is RunStatus.RUNNING  # heartbeats kept coming
        crashed = service.search_runs("hb", filter="status = 'crashed'")
        assert [r.id for r in crashed] == [dead.id]
        running = service.search_runs("hb", filter="status = 'running'")
        assert [r.id for r in running] == [alive.id]
    finally:
        service.close()


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("ünïcødé - 実験 🚀", True),
        ("x" * 255, True),
        ("x" * 256, False),
        ("", False),
        (" padded", False),
        ("tab\there", False),
    ],
)
def test_experiment_and_run_name_limits(service: TrackingService, name: str, ok: bool) -> None:
    if ok:
        exp = service.create_experiment(name)
        assert service.get_experiment(exp.id).name == name
        run = service.create_run(exp.id, name=name)
        assert service.get_run(run.id).name == name
    else:
        with pytest.raises(InvalidArgumentError, match="experiment name"):
            service.create_experiment(name)


def test_key_and_value_limits(service: TrackingService) -> None:
    run = service.create_run()
    long_key = "k" * 250
    service.log_params(run.id, {long_key: "v" * 8000, "ключ": "значение"})
    service.log_metric(run.id, "métrique/ü", 1.0)
    got = service.get_run(run.id)
    assert got.params[long_key] == "v" * 8000
    assert got.params["ключ"] == "значение"
    assert "métrique/ü" in got.metrics
    with pytest.raises(InvalidArgumentError, match="at most 250"):
        service.log_params(run.id, {"k" * 251: "v"})
    with pytest.raises(InvalidArgumentError, match=r"8001 characters \(at most 8000\)"):
        service.set_tags(run.id, {"t": "v" * 8001})
    with pytest.raises(InvalidArgumentError, match="needs a number"):
        service.log_metric(run.id, "m", "high")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="step must be an integer"):
        service.log_metric(run.id, "m", 1.0, step=1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="out of range"):
        service.log_metric(run.id, "m", 1.0, step=2**64)


def test_logging_to_an_unknown_run_fails_on_flush_and_is_dropped(
    service: TrackingService,
) -> None:
    service.log_metric("f" * 32, "m", 1.0)
    with pytest.raises(NotFoundError):
        service.flush()
    service.flush()  # dropped, not retried forever


def test_points_of_a_missing_run_do_not_take_other_runs_points_with_them(
    service: TrackingService,
) -> None:
    run = service.create_run()
    service.log_metric(run.id, "m", 1.0, step=1)
    service.log_metric("f" * 32, "m", 2.0)
    with pytest.raises(NotFoundError, match=r"f{32} not found"):
        service.flush()
    assert [p.value for p in service.get_metric_history(run.id, "m")] == [1.0]


def test_points_for_a_run_another_worker_purged_are_refused(
    service: TrackingService, engine: sa.Engine
) -> None:
    """A second store (another server worker) knows the run's key from an earlier batch;
    the run is purged through the first: the second's next batch is refused, nothing kept."""
    other = SqlTrackingStore(engine)
    run = service.create_run()
    other.log_metrics({(run.id, "m"): [(0, 1000, 1.0), (1, 1000, 2.0)]})
    other.log_metrics({(run.id, "m"): [(2, 1000, 3.0)]})
    assert [p.value for p in service.get_metric_history(run.id, "m")] == [1.0, 2.0, 3.0]
    service.delete_run(run.id)
    assert service.purge_deleted(0) == 1
    with pytest.raises(NotFoundError, match=f"{run.id} not found"):
        other.log_metrics({(run.id, "m"): [(3, 1000, 4.0)]})
    assert _stored_rows(engine) == 0


def test_equal_step_and_timestamp_points_are_all_kept_in_logging_order(
    service: TrackingService,
) -> None:
    run = service.create_run()
    same = [("m", float(v), 7, 1000) for v in range(300)]  # chunked inserts, several flushes
    service.log_batch(run.id, metrics=same[:290], synchronous=True)
    service.log_batch(run.id, metrics=same[290:], synchronous=True)
    service.log_metric(run.id, "m", math.nan, step=7, timestamp=1000)
    history = service.get_metric_history(run.id, "m")
    assert [p.value for p in history[:-1]] == [float(v) for v in range(300)]
    assert math.isnan(history[-1].value)
    assert math.isnan(service.get_run(run.id).metrics["m"].value)  # the last logged wins


def test_end_run_writes_its_last_points_and_ends_it(service: TrackingService) -> None:
    run = service.create_run()
    service.log_metrics(run.id, {f"k{i}": float(i) for i in range(20)}, step=2)
    service.end_run(run.id, "killed")
    ended = service.get_run(run.id)
    assert ended.status is RunStatus.KILLED
    assert len(ended.metrics) == 20
    with pytest.raises(NotFoundError):
        service.end_run("e" * 32)
