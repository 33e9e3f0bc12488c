"""Metric batches at the store: latest values kept from the batches themselves, a guard
statement that admits a batch once (the server's idempotent batch ids), and reads on
PostgreSQL outside a transaction. On PostgreSQL a batch of one known run takes the
one-statement path and a batch of several runs the general one: both are checked."""

from __future__ import annotations

import math
import time

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from syllabus.errors import NotFoundError
from syllabus.server.sql import SqlAuthStore
from syllabus.tracking.models import Metric
from syllabus.tracking.sql import SqlTrackingStore


def _run(store: SqlTrackingStore, name: str = "r") -> str:
    exp = store.create_experiment(f"e-{name}-{time.time_ns()}")
    run_id = f"{time.time_ns():032x}"
    store.create_run(exp.id, run_id=run_id, name=name, user="u", host="h", start_time=1)
    return run_id


def _latest(store: SqlTrackingStore, run_id: str, key: str) -> Metric:
    return store.get_run(run_id).metrics[key]


def _recomputed(store: SqlTrackingStore, run_id: str, key: str) -> Metric:
    """The latest point by definition: highest (step, timestamp), the last logged of equals."""
    history = store.get_metric_history(run_id, key)  # by step, timestamp, then logging order
    return history[-1]


def test_latest_values_follow_step_then_time_then_logging_order(store: SqlTrackingStore) -> None:
    run = _run(store)
    store.log_metrics({(run, "x"): [(s, 100, float(s)) for s in range(10)]})
    assert _latest(store, run, "x") == Metric("x", 9.0, 9, 100)
    store.log_metrics({(run, "x"): [(3, 500, 30.0), (4, 500, 40.0)]})  # lower steps, later
    assert _latest(store, run, "x") == Metric("x", 9.0, 9, 100)
    store.log_metrics({(run, "x"): [(9, 50, -1.0)]})  # same step, earlier time
    assert _latest(store, run, "x") == Metric("x", 9.0, 9, 100)
    store.log_metrics({(run, "x"): [(9, 100, 42.0)]})  # a tie: the later logged wins
    assert _latest(store, run, "x") == Metric("x", 42.0, 9, 100)
    # Within one batch: the last of equal points, whichever comes first in the list; NaN.
    store.log_metrics(
        {
            (run, "x"): [(20, 7, 1.0), (19, 9, 5.0), (20, 7, 2.0), (20, 6, 3.0)],
            (run, "y"): [(5, 1, 1.0), (6, 1, math.nan), (2, 9, 4.0)],
        }
    )
    assert _latest(store, run, "x") == Metric("x", 2.0, 20, 7)
    y = _latest(store, run, "y")
    assert (y.step, y.timestamp, math.isnan(y.value)) == (6, 1, True)
    for key in ("x",):
        assert _latest(store, run, key) == _recomputed(store, run, key)


def test_latest_values_when_several_runs_share_a_batch(store: SqlTrackingStore) -> None:
    a, b = _run(store, "a"), _run(store, "b")
    store.log_metrics({(a, "x"): [(5, 1, 5.0)], (b, "x"): [(1, 1, 1.0)]})
    store.log_metrics({(a, "x"): [(4, 1, 4.0), (5, 1, 6.0)], (b, "x"): [(2, 1, 2.0)]})
    assert _latest(store, a, "x") == Metric("x", 6.0, 5, 1)
    assert _latest(store, b, "x") == Metric("x", 2.0, 2, 1)


@pytest.mark.parametrize("runs", [1, 2], ids=["one-run", "two-runs"])
def test_a_guard_admits_a_batch_once(store: SqlTrackingStore, runs: int) -> None:
    batches = SqlAuthStore(store.engine)
    run_ids = [_run(store, f"r{i}") for i in range(runs)]
    points = {(r, "x"): [(s, 1, 1.0) for s in range(3)] for r in run_ids}
    first = batches.batch_guard("b" * 32)
    store.log_metrics(points, first=first)
    assert first.passed
    again = batches.batch_guard("b" * 32)
    store.log_metrics(points, first=again)  # a retry: refused, nothing written
    assert not again.passed
    other = batches.batch_guard("c" * 32)
    store.log_metrics(points, first=other)
    assert other.passed
    for r in run_ids:
        assert len(store.get_metric_history(r, "x")) == 6
        assert store.get_run(r).metrics["x"] == Metric("x", 1.0, 2, 1)


def test_a_guarded_batch_of_a_purged_run_is_applied_without_its_points(
    store: SqlTrackingStore, engine: sa.Engine
) -> None:
    """Another worker purged the run while this store still knows its key: the batch
    id commits (a retry is answered as applied), the points are dropped, NotFoundError."""
    batches = SqlAuthStore(engine)
    run = _run(store)
    store.log_metrics({(run, "x"): [(0, 1, 1.0)]})
    other = SqlTrackingStore(engine)
    other.update_run(run, deleted=True)
    other.purge_deleted(int(time.time() * 1000) + 1000)
    guard = batches.batch_guard("d" * 32)
    with pytest.raises(NotFoundError, match="purged"):
        store.log_metrics({(run, "x"): [(1, 1, 2.0)]}, first=guard)
    assert guard.passed
    retry = batches.batch_guard("d" * 32)
    store.log_metrics({(run, "x"): [(1, 1, 2.0)]}, first=retry)  # answered as applied
    assert not retry.passed


def test_a_batch_past_64_bits_writes_nothing(store: SqlTrackingStore) -> None:
    run = _run(store)
    for bad in ([(2**63, 1, 1.0)], [(1, 1, 1.0), (-(2**63) - 1, 1, 1.0)], [(1, 2**64, 1.0)]):
        with pytest.raises(OverflowError):
            store.log_metrics({(run, "x"): bad})
    assert store.get_metric_history(run, "x") == []
    other = _run(store, "other")
    for bad in ([(2**63, 1, 1.0)], [(1, 1, 1.0)] * 400 + [(1, 2**64, 1.0)]):  # two runs
        with pytest.raises(OverflowError):
            store.log_metrics({(other, "x"): [(0, 1, 1.0)], (run, "x"): bad})
    assert store.get_metric_history(other, "x") == []
    store.log_metrics({(run, "x"): [(0, 1, 1.0)]})
    assert len(store.get_metric_history(run, "x")) == 1
    assert store.get_run(run).metrics["x"] == Metric("x", 1.0, 0, 1)


@pytest.mark.postgres
def test_reads_on_postgresql_take_no_transaction(pg_url: str) -> None:
    """Searches and run reads send no BEGIN and COMMIT (two round trips each): at READ
    COMMITTED each statement has its own snapshot anyway."""
    from syllabus.meta import create_engine, ensure_schema

    engine = create_engine(pg_url)
    ensure_schema(engine)
    try:
        store = SqlTrackingStore(engine)
        run = _run(store)
        store.log_metrics({(run, "x"): [(0, 1, 1.0)]})
        seen: list[bool] = []

        @event.listens_for(engine, "before_cursor_execute")
        def _autocommit(conn: sa.Connection, *_args: object) -> None:
            seen.append(bool(conn.connection.driver_connection.autocommit))  # type: ignore[union-attr]

        store.search_runs(None, filter="metrics.x > 0", order_by=["metrics.x DESC"])
        store.get_run(run)
        store.get_metric_history(run, "x")
        assert seen
        assert all(seen)
    finally:
        engine.dispose()


def test_a_page_ordered_by_a_compared_metric_leaves_out_nan_and_keeps_it_otherwise(
    store: SqlTrackingStore,
) -> None:
    """A filter that compares the order's metric matches no run whose value is NaN (so
    the page needs no second part for runs without a value); `is not null` does."""
    exp = store.create_experiment(f"e-{time.time_ns()}")
    ids = {}
    for name, value in (("a", 1.0), ("b", 3.0), ("nan", math.nan), ("c", 2.0)):
        ids[name] = f"{time.time_ns():032x}"
        store.create_run(exp.id, run_id=ids[name], name=name, user="u", host="h", start_time=1)
        store.log_metrics({(ids[name], "x"): [(0, 1, value)]})
    names = {v: k for k, v in ids.items()}

    def page(flt: str, limit: int = 10) -> list[str]:
        got = store.search_runs(
            [exp.id], filter=flt, order_by=["metrics.x DESC"], max_results=limit
        )
        return [names[r.id] for r in got.runs]

    assert page("metrics.x > 0") == ["b", "c", "a"]
    assert page("metrics.x != 5 and name != 'zz'") == ["b", "c", "a"]
    assert page("metrics.x in (1, 2)") == ["c", "a"]
    assert page("metrics.x is not null") == ["b", "c", "a", "nan"]
    assert page("metrics.x > 0 or metrics.x is not null") == ["b", "c", "a", "nan"]
    assert page("not metrics.x < 0") == ["b", "c", "a", "nan"]
    assert page("metrics.x is not null", limit=3) == ["b", "c", "a"]
    assert search_valued("metrics.x > 0 and (metrics.y < 1 or metrics.y > 2)") == {"x", "y"}
    assert search_valued("metrics.x > 0 or metrics.y > 0") == set()
    assert search_valued("metrics.x not in (1) and metrics.y is not null") == set()


def search_valued(flt: str) -> set[str]:
    from syllabus.tracking import search

    return search.metrics_valued(search.parse_filter(flt))


def test_a_search_in_an_experiment_purged_since_it_was_searched_is_not_found(
    store: SqlTrackingStore, engine: sa.Engine
) -> None:
    exp = store.create_experiment(f"e-{time.time_ns()}")
    run = f"{time.time_ns():032x}"
    store.create_run(exp.id, run_id=run, name="r", user="u", host="h", start_time=1)
    assert [r.id for r in store.search_runs([exp.id]).runs] == [run]
    other = SqlTrackingStore(engine)  # another worker purges it
    other.update_experiment(exp.id, deleted=True)
    other.purge_deleted(int(time.time() * 1000) + 1000)
    with pytest.raises(NotFoundError, match="not found"):
        store.search_runs([exp.id])
    with pytest.raises(NotFoundError, match="not found"):
        store.search_runs([exp.id], filter="metrics.x > 0", order_by=["metrics.x"])


def test_an_empty_guarded_batch_is_recorded_and_writes_nothing(store: SqlTrackingStore) -> None:
    run = _run(store)
    guard = SqlAuthStore(store.engine).batch_guard("e" * 32)
    store.log_metrics({(run, "x"): []}, first=guard)
    assert guard.passed
    assert store.get_metric_history(run, "x") == []
    assert "x" not in store.get_run(run).metrics
    again = SqlAuthStore(store.engine).batch_guard("e" * 32)
    store.log_metrics({(run, "x"): [(0, 1, 1.0)]}, first=again)
    assert not again.passed


def test_binary_arrays_match_what_postgresql_reads() -> None:
    """The packed arrays, unpacked as PostgreSQL reads them: NaN as NULL, empty arrays."""
    import struct

    from syllabus.tracking import pg_arrays

    def unpack(data: bytes) -> list[object]:
        ndim, _, _ = struct.unpack_from(">iii", data)
        if ndim == 0:
            return []
        n = struct.unpack_from(">i", data, 12)[0]
        out: list[object] = []
        at = 20
        for _ in range(n):
            size = struct.unpack_from(">i", data, at)[0]
            at += 4
            if size < 0:
                out.append(None)
                continue
            out.append(struct.unpack_from(">q" if data[11] == 20 else ">d", data, at)[0])
            at += size
        return out

    assert unpack(pg_arrays.int8s([1, -(2**63), 2**63 - 1])) == [1, -(2**63), 2**63 - 1]
    assert unpack(pg_arrays.int8s([])) == []
    assert unpack(pg_arrays.float8s([1.5, math.nan, -0.0])) == [1.5, None, -0.0]
    assert unpack(pg_arrays.float8s([math.inf])) == [math.inf]
    with pytest.raises(struct.error):
        pg_arrays.int8s([2**63])


def test_compiled_guards_stay_few_when_callers_make_new_statements(
    store: SqlTrackingStore,
) -> None:
    """Guards are compiled once per statement; a caller that builds a new statement for
    every batch does not grow the cache without end."""
    from syllabus.meta.tables.server import server_batches
    from syllabus.tracking.sql import Guard

    sqls = set()
    for i in range(40):
        statement = server_batches.insert().returning(server_batches.c.batch_id)
        sqls.add(store._one_run_sql(Guard(statement, {"batch_id": f"{i:032d}"})))
        assert len(store._guards) <= 16
    assert len(sqls) == 1  # the same SQL from each of them
