"""create_engine: URLs, SQLite pragmas, connection errors, fork safety."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from syllabus.errors import DatabaseError
from syllabus.meta import create_engine, ensure_schema, redact, transaction
from syllabus.meta.engine import one_line

EngineFactory = Callable[[str], sa.Engine]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://bob:s3cret@db.example:5432/ml", "postgresql://bob:***@db.example:5432/ml"),
        ("postgresql+psycopg://bob:s3cret@h/ml", "postgresql://bob:***@h/ml"),
        ("postgresql://bob@h/ml?password=s3cret", "postgresql://bob@h/ml?password=***"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
        ("not a url://bob:s3cret@h", "not a url://bob:***@h"),
    ],
)
def test_redact_hides_passwords(url: str, shown: str) -> None:
    assert redact(url) == shown
    assert "s3cret" not in redact(url)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("", "empty database URL"),
        ("garbage", "invalid database URL 'garbage'"),
        ("mysql://u@h/db", "unsupported database URL"),
        ("postgresql+psycopg2://u@h/db", "unsupported PostgreSQL driver 'psycopg2'"),
        ("postgresql://u@h", "names no database"),
        ("sqlite://", "in-memory SQLite is not supported"),
        ("postgresql://u:hunter2@h:notaport/db", "invalid database URL"),
    ],
)
def test_malformed_url_is_a_clear_database_error(url: str, fragment: str) -> None:
    with pytest.raises(DatabaseError) as info:
        create_engine(url)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert "hunter2" not in message


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_postgresql_is_a_one_line_database_error() -> None:
    engine = create_engine(f"postgresql://u:hunter2@127.0.0.1:{_closed_port()}/syllabus")
    try:
        with pytest.raises(DatabaseError) as info:
            ensure_schema(engine)
    finally:
        engine.dispose()
    message = str(info.value)
    assert message.startswith("cannot open PostgreSQL at postgresql://u:***@127.0.0.1:")
    assert "refused" in message.lower()
    assert "\n" not in message
    assert "hunter2" not in message


def test_sqlite_in_a_missing_folder_is_a_database_error(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    try:
        with pytest.raises(DatabaseError, match=r"cannot open SQLite database .*unable to open"):
            ensure_schema(engine)
    finally:
        engine.dispose()


def test_a_file_that_is_not_sqlite_is_a_database_error(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(b"this is not a database, just some text" * 100)
    engine = create_engine(f"sqlite:///{path}")
    try:
        with pytest.raises(DatabaseError, match=r"cannot open SQLite database .*not a database"):
            ensure_schema(engine)
    finally:
        engine.dispose()


def test_postgres_scheme_is_accepted() -> None:
    engine = create_engine("postgres://u@127.0.0.1/db")
    try:
        assert engine.dialect.name == "postgresql"
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


def test_one_line_flattens_driver_messages() -> None:
    exc = RuntimeError("connection failed:  first\n\tIs the server running?\n")
    assert one_line(exc) == "connection failed: first; Is the server running?"


def test_sqlite_connections_are_tuned(tmp_path: Path, make_engine: EngineFactory) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
        }
    assert pragma == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 30000,
        "synchronous": 1,
    }


def test_sqlite_writers_begin_immediate_and_readers_do_not_block(
    tmp_path: Path, make_engine: EngineFactory
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    writer, reader = make_engine(url), make_engine(url)
    with transaction(writer) as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    with transaction(writer) as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        # The write lock is held from BEGIN on: a reader still sees the last commit.
        with transaction(reader, readonly=True) as rconn:
            assert rconn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
    with transaction(reader, readonly=True) as rconn:
        assert rconn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1


def test_sqlite_engine_is_shared_by_threads(tmp_path: Path, make_engine: EngineFactory) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with transaction(engine) as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            for j in range(20):
                with transaction(engine) as conn:
                    conn.exec_driver_sql("INSERT INTO t VALUES (?)", (i * 100 + j,))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with transaction(engine, readonly=True) as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 80


def _backend_session_id(conn: sa.Connection) -> int:
    if conn.dialect.name == "postgresql":
        return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())
    return id(conn.connection.driver_connection)


def test_forked_child_does_not_reuse_parent_connections(engine: sa.Engine) -> None:
    ensure_schema(engine)
    with transaction(engine) as conn:
        conn.execute(sa.text("CREATE TABLE forked (who VARCHAR(10), session BIGINT)"))
        parent_session = _backend_session_id(conn)
        conn.execute(sa.text("INSERT INTO forked VALUES ('parent', :s)"), {"s": parent_session})
    parent_pool = engine.pool
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            os.close(read_fd)
            assert engine.pool is not parent_pool
            with transaction(engine) as conn:
                session = _backend_session_id(conn)
                conn.execute(sa.text("INSERT INTO forked VALUES ('child', :s)"), {"s": session})
            os.write(write_fd, str(session).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as fh:
        child_session = fh.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's pooled connection still works, sees the child's row, and is not the child's.
    assert engine.pool is parent_pool
    with transaction(engine, readonly=True) as conn:
        assert _backend_session_id(conn) == parent_session
        rows = conn.execute(sa.text("SELECT who FROM forked ORDER BY who")).scalars().all()
    assert rows == ["child", "parent"]
    if engine.dialect.name == "postgresql":
        assert int(child_session) != parent_session
