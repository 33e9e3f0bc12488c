"""Engines from URLs: SQLite (embedded workspace) and PostgreSQL (team), tuned once here.

:func:`create_engine` accepts ``sqlite:///path`` and ``postgresql://...`` (driven by psycopg
3). Every SQLite connection gets WAL journaling, foreign keys, a busy timeout and
``synchronous=NORMAL``; transactions are opened by SQLAlchemy rather than by the ``sqlite3``
module, as ``BEGIN IMMEDIATE`` by default, so that several writer processes queue on the
busy timeout instead of failing with "database is locked" when a read lock cannot be
upgraded. Read-only work opts into a plain (deferred) ``BEGIN`` with the
:data:`READONLY` execution option, which :func:`syllabus.meta.tx.transaction` sets.

Engines are safe across ``fork``: the child drops (without closing) the connections it
inherited, so it never talks over the parent's sockets or file handles.

Expected failures (a malformed URL, an unreachable server, a database file that cannot be
opened) raise :class:`~syllabus.errors.DatabaseError` with a one-line message.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
import weakref
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import Pool

from syllabus.errors import DatabaseError

__all__ = [
    "BUSY_TIMEOUT_S",
    "READONLY",
    "backend_name",
    "create_engine",
    "one_line",
    "redact",
]

BUSY_TIMEOUT_S: Final = 30.0
"""How long a SQLite connection waits for another writer before giving up."""

READONLY: Final = "syllabus_readonly"
"""Execution option: when true on a SQLite connection, its transactions use a deferred
``BEGIN`` (a snapshot that never blocks writers) instead of ``BEGIN IMMEDIATE``."""

_PG_CONNECT_TIMEOUT_S: Final = 10
_PG_POOL_SIZE: Final = 10
_PG_MAX_OVERFLOW: Final = 20
_PG_POOL_RECYCLE_S: Final = 1800
_PG_PING_IDLE_S: Final = 10.0
"""A pooled PostgreSQL connection idle for longer is pinged before use (one that was used
just now is not: a ping per checkout is a round trip on every request of a busy server)."""

_EXPECTED = "expected sqlite:///path/to/file.db or postgresql://user@host:port/database"


def redact(url: str | URL) -> str:
    """``url`` fit for display and logs: any password is replaced by ``***``."""
    if not isinstance(url, URL):
        try:
            url = make_url(url)
        except (ArgumentError, ValueError):
            # Not parseable: hide whatever sits between "user:" and "@" in the authority.
            return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", str(url))
    if "password" in url.query:
        url = url.update_query_dict({"password": "***"})
    # Show the URL as users write it: postgresql://, not postgresql+psycopg://.
    url = url.set(drivername=url.get_backend_name())
    return url.render_as_string(hide_password=True).replace("=%2A%2A%2A", "=***")


def one_line(exc: BaseException) -> str:
    """The message of a driver exception on one line (drivers like multi-line messages)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    # psycopg appends hints on indented lines; SQLAlchemy appends "(Background on ...)".
    text = re.sub(r"\s*\(Background on this error at: [^)]*\)", "", text)
    parts = [" ".join(p.split()) for p in text.splitlines() if p.strip()]
    return "; ".join(parts) or type(orig).__name__


def backend_name(engine: Engine) -> str:
    """``"sqlite"`` or ``"postgresql"``."""
    return engine.dialect.name


def _parse(url: str) -> URL:
    if not isinstance(url, str) or not url.strip():
        raise DatabaseError(f"empty database URL ({_EXPECTED})")
    try:
        parsed = make_url(url.strip())
    except (ArgumentError, ValueError) as exc:
        raise DatabaseError(f"invalid database URL {redact(url)!r} ({_EXPECTED})") from exc
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise DatabaseError(
                f"unsupported PostgreSQL driver {driver!r} in {redact(parsed)!r}; "
                "Syllabus uses psycopg 3 (write postgresql://...)"
            )
        if not parsed.database:
            raise DatabaseError(f"database URL {redact(parsed)!r} names no database ({_EXPECTED})")
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise DatabaseError(
                f"unsupported SQLite driver {driver!r} in {redact(parsed)!r} ({_EXPECTED})"
            )
        if not parsed.database:
            raise DatabaseError(
                f"database URL {redact(parsed)!r} names no file; in-memory SQLite is not "
                f"supported ({_EXPECTED})"
            )
        return parsed.set(drivername="sqlite+pysqlite")
    raise DatabaseError(f"unsupported database URL {redact(parsed)!r} ({_EXPECTED})")


def create_engine(url: str) -> Engine:
    """An engine for ``url`` (``sqlite:///path`` or ``postgresql://...``), ready for Syllabus.

    Nothing connects yet; a connection failure surfaces on first use as a
    :class:`~syllabus.errors.DatabaseError`. Raises ``DatabaseError`` at once when the URL
    is malformed or names an unsupported backend.
    """
    parsed = _parse(url)
    engine: Engine
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed)
        _configure_sqlite(engine)
    else:
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = _PG_CONNECT_TIMEOUT_S
        engine = sa.create_engine(
            parsed,
            pool_size=_PG_POOL_SIZE,
            max_overflow=_PG_MAX_OVERFLOW,
            pool_recycle=_PG_POOL_RECYCLE_S,
            connect_args=connect_args,
        )
        event.listen(engine.pool, "checkin", _pg_on_checkin)
        event.listen(engine.pool, "checkout", _pg_on_checkout)
    event.listen(engine, "handle_error", _translate_connect_error)
    _track_for_fork(engine)
    return engine


# --- SQLite -------------------------------------------------------------------------------


def _configure_sqlite(engine: Engine) -> None:
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy emits BEGIN itself (see _sqlite_on_begin); stop sqlite3 from doing it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switch the database to WAL (a no-op once it is: the mode is stored in the file).

    Switching needs an exclusive lock, and SQLite reports "database is locked" at once,
    without consulting the busy timeout, when several processes open a new database
    together; so retry with backoff for up to the busy timeout.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.002
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        else:
            return


def _sqlite_on_begin(conn: sa.Connection) -> None:
    if conn.get_execution_options().get(READONLY):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


# --- PostgreSQL ---------------------------------------------------------------------------

_IDLE_SINCE: Final = "syllabus_idle_since"


def _pg_on_checkin(_dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info[_IDLE_SINCE] = time.monotonic()


def _pg_on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Ping a connection that sat idle in the pool for a while (the server may have closed
    it, or restarted); a dead one is replaced before the caller sees it."""
    since = record.info.get(_IDLE_SINCE)
    if since is None or time.monotonic() - since < _PG_PING_IDLE_S:
        return
    try:
        dbapi_connection.execute("SELECT 1")
        dbapi_connection.rollback()
    except Exception as exc:  # any failure: the pool makes a new connection
        raise sa.exc.DisconnectionError(one_line(exc)) from exc


# --- errors -------------------------------------------------------------------------------


def _translate_connect_error(context: ExceptionContext) -> BaseException | None:
    """Turn a failure to connect into a one-line DatabaseError; leave the rest alone."""
    if context.connection is not None or context.engine is None:
        return None
    exc = context.original_exception
    if not isinstance(exc, Exception) or isinstance(exc, DatabaseError):
        return None
    url = context.engine.url
    if url.get_backend_name() == "sqlite":
        where = f"SQLite database {url.database}"
    else:
        where = f"PostgreSQL at {redact(url)}"
    return DatabaseError(f"cannot open {where}: {one_line(exc)}")


# --- fork safety --------------------------------------------------------------------------

_engines: weakref.WeakSet[Engine] = weakref.WeakSet()
_engines_lock = threading.Lock()
_inherited: list[Pool] = []
_fork_hook_installed = False


def _track_for_fork(engine: Engine) -> None:
    global _fork_hook_installed  # noqa: PLW0603 - one process-wide fork hook
    with _engines_lock:
        _engines.add(engine)
        if not _fork_hook_installed:
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _fork_hook_installed = True


def _after_fork_in_child() -> None:
    """Give every engine a fresh pool in the child; the parent's connections stay untouched.

    The inherited pools are kept referenced (never closed, never used) so that garbage
    collection in the child cannot close sockets or SQLite handles the parent still uses.
    """
    global _engines_lock  # noqa: PLW0603 - the parent's lock may have been held at fork
    _engines_lock = threading.Lock()
    for engine in list(_engines):
        _inherited.append(engine.pool)
        engine.dispose(close=False)
