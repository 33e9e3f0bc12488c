"""Migration 0012 (PostgreSQL's points as chunks): points stored one row each at 0011 read
back the same after the upgrade, on both backends, and new points follow them in order;
the downgrade puts them back as rows."""

from __future__ import annotations

import math

import pytest
import sqlalchemy as sa
from alembic import command

from syllabus.meta import create_engine, ensure_schema, upgrade
from syllabus.meta.migrate import alembic_config
from syllabus.meta.tables.tracking import metric_chunks, metrics
from syllabus.tracking.sql import SqlTrackingStore

_RUN = "a" * 32
# (key, step, timestamp, value) in logging order (seq): a flush of 400 points of "a" (more
# than one chunk), one of "b", then "a" again with steps that go back and tie, and NaN.
_LOGGED = (
    [("a", s, 1000, s / 10) for s in range(400)]
    + [("b", s, 2000, -1.0 - s) for s in range(5)]
    + [("a", 3, 1000, 7.5), ("a", 3, 1000, math.nan), ("a", 0, 999, 1.25), ("a", 450, 5, 9.0)]
)


def _build_0011_with_points(engine: sa.Engine) -> None:
    with engine.connect() as conn, conn.begin():
        command.upgrade(alembic_config(conn), "0011")
        conn.execute(
            sa.text(
                "INSERT INTO experiments (pk, id, name, active_name, created_at) "
                "VALUES (1, :id, 'e', 'e', 1)"
            ),
            {"id": "e" * 32},
        )
        conn.execute(
            sa.text(
                "INSERT INTO runs (pk, id, experiment_pk, name, status, user_name, host, "
                "start_time, heartbeat_at, next_seq) "
                "VALUES (1, :id, 1, 'r', 'running', 'u', 'h', 1, 1, :n)"
            ),
            {"id": _RUN, "n": len(_LOGGED)},
        )
        conn.execute(sa.text("INSERT INTO metric_keys (id, key) VALUES (1, 'a'), (2, 'b')"))
        conn.execute(
            sa.text(
                "INSERT INTO metrics (run_pk, key_id, step, timestamp, seq, value) "
                "VALUES (1, :k, :s, :t, :q, :v)"
            ),
            [
                {"k": 1 if key == "a" else 2, "s": s, "t": t, "q": q, "v": None if v != v else v}
                for q, (key, s, t, v) in enumerate(_LOGGED)
            ],
        )
        conn.execute(
            sa.text(
                "INSERT INTO latest_metrics (run_pk, key_id, step, timestamp, value) "
                "VALUES (1, 1, 450, 5, 9.0), (1, 2, 4, 2000, -5.0)"
            )
        )


def _expected(key: str, logged: list[tuple[str, int, int, float]]) -> list[tuple[int, int, str]]:
    points = [(s, t, q, v) for q, (k, s, t, v) in enumerate(logged) if k == key]
    return [(s, t, repr(v)) for s, t, _, v in sorted(points)]


def _history(store: SqlTrackingStore, key: str) -> list[tuple[int, int, str]]:
    return [(m.step, m.timestamp, repr(m.value)) for m in store.get_metric_history(_RUN, key)]


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_points_of_0011_read_the_same_after_the_upgrade(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        _build_0011_with_points(engine)
        upgrade(engine)
        store = SqlTrackingStore(engine)
        for key in ("a", "b"):
            assert _history(store, key) == _expected(key, _LOGGED)
        if engine.dialect.name == "postgresql":  # moved: a chunk per flush, cut at 320
            assert _count(engine, metrics) == 0
            assert _count(engine, metric_chunks) == 4  # a: 320 + 80, then 4; b: 5
        else:  # SQLite keeps its rows
            assert _count(engine, metrics) == len(_LOGGED)
            assert _count(engine, metric_chunks) == 0
        more = [(3, 1000, 8.5), (450, 5, 10.0)]  # new points come after the migrated ones
        store.log_metrics({(_RUN, "a"): more})
        logged = _LOGGED + [("a", s, t, v) for s, t, v in more]
        assert _history(store, "a") == _expected("a", logged)
        assert store.get_run(_RUN).metrics["a"].value == 10.0
    finally:
        engine.dispose()


def test_downgrade_to_0011_puts_the_points_back_as_rows(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        _build_0011_with_points(engine)
        upgrade(engine)
        with engine.connect() as conn, conn.begin():
            command.downgrade(alembic_config(conn), "0011")
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT seq, step, timestamp, value FROM metrics ORDER BY seq")
            ).all()
        assert [(q, s, t, repr(math.nan if v is None else v)) for q, s, t, v in rows] == [
            (q, s, t, repr(v)) for q, (_, s, t, v) in enumerate(_LOGGED)
        ]
    finally:
        engine.dispose()


def _chunk_storage(engine: sa.Engine) -> tuple[list[str], list[str]]:
    with engine.connect() as conn:
        storage = conn.execute(
            sa.text(
                "SELECT attstorage FROM pg_attribute WHERE attrelid = 'metric_chunks'::regclass "
                "AND attname IN ('steps', 'timestamps', 'vals') ORDER BY attname"
            )
        ).scalars()
        options = conn.execute(
            sa.text("SELECT reloptions FROM pg_class WHERE oid = 'metric_chunks'::regclass")
        ).scalar_one()
    return [str(s) for s in storage], list(options or [])


@pytest.mark.postgres
def test_chunks_are_stored_uncompressed_in_the_page_fresh_or_migrated(
    pg_url: str,
) -> None:
    """STORAGE EXTERNAL (no compression) and toast_tuple_target 8160, whether the database
    was created at head from the metadata or upgraded from 0011."""
    fresh = create_engine(pg_url)
    try:
        ensure_schema(fresh)
        assert _chunk_storage(fresh) == (["e", "e", "e"], ["toast_tuple_target=8160"])
        with fresh.connect() as conn, conn.begin():
            command.downgrade(alembic_config(conn), "0011")
        upgrade(fresh)
        assert _chunk_storage(fresh) == (["e", "e", "e"], ["toast_tuple_target=8160"])
    finally:
        fresh.dispose()
