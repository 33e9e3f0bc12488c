"""Transactions: one ``with`` block is one commit (or one rollback)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from syllabus.errors import DatabaseError
from syllabus.meta.engine import BUSY_TIMEOUT_S, READONLY, one_line

__all__ = ["transaction"]


@contextmanager
def transaction(engine: Engine, *, readonly: bool = False) -> Iterator[Connection]:
    """A connection inside a transaction: committed when the block ends, rolled back on error.

    On SQLite a writing transaction starts with ``BEGIN IMMEDIATE``, so it waits (up to
    :data:`~syllabus.meta.engine.BUSY_TIMEOUT_S`) for other writers up front instead of
    failing half-way. ``readonly=True`` starts a deferred snapshot that never blocks
    writers; use it for queries. Operational failures (locked for too long, connection
    lost) become :class:`~syllabus.errors.DatabaseError`; constraint violations pass
    through for the caller to translate.
    """
    try:
        with engine.connect() as conn:
            if readonly:
                conn.execution_options(**{READONLY: True})
            with conn.begin():
                yield conn
    except OperationalError as exc:
        message = one_line(exc)
        if "database is locked" in message:
            message += (
                f" (another process kept the SQLite database busy for over {BUSY_TIMEOUT_S:.0f} s)"
            )
        raise DatabaseError(f"database error: {message}") from exc
