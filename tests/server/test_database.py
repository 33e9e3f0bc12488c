"""The server's PostgreSQL connections: pooled without a ping on every request, yet a
connection the database dropped while it sat idle is replaced before a request uses it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from syllabus.meta import create_engine
from syllabus.meta import engine as engine_module

pytestmark = pytest.mark.postgres


def _backend_pid(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def test_a_connection_dropped_while_idle_is_replaced_unseen(
    pg_url: str, pg_server: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(pg_url)
    try:
        first = _backend_pid(engine)
        assert _backend_pid(engine) == first  # pooled: the same connection again
        with pg_server.connect() as admin:  # the database drops it (a restart, a timeout)
            admin.exec_driver_sql(f"SELECT pg_terminate_backend({first})")
        monkeypatch.setattr(engine_module, "_PG_PING_IDLE_S", 0.0)  # it has been idle long
        second = _backend_pid(engine)  # no error: pinged, found dead, replaced
        assert second != first
    finally:
        engine.dispose()


def test_a_connection_used_just_now_is_not_pinged(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(pg_url)
    pings: list[str] = []
    try:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            execute = raw.execute

            def spy(query: str, *args: object, **kwargs: object) -> object:
                pings.append(query)
                return execute(query, *args, **kwargs)

            raw.execute = spy
        for _ in range(3):
            _backend_pid(engine)
        assert pings == []  # a busy server pays no round trip per request
        monkeypatch.setattr(engine_module, "_PG_PING_IDLE_S", 0.0)
        _backend_pid(engine)
        assert pings == ["SELECT 1"]
    finally:
        engine.dispose()
