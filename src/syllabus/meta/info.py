"""What ``syllabus info`` shows about the metadata database."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from syllabus.meta.engine import backend_name, redact
from syllabus.meta.migrate import current_revision, head_revision
from syllabus.meta.schema import VERSION_TABLE
from syllabus.meta.tx import transaction

__all__ = ["DbInfo", "info"]


@dataclass(frozen=True, slots=True)
class DbInfo:
    """The backend, its version, the schema revision, row counts and size on disk."""

    backend: str
    server_version: str
    url: str
    revision: str | None
    head: str
    tables: dict[str, int] = field(default_factory=dict)
    size_bytes: int | None = None


def _server_version(conn: Connection) -> str:
    if conn.dialect.name == "postgresql":
        return str(conn.scalar(sa.text("SHOW server_version")))
    return str(conn.scalar(sa.text("SELECT sqlite_version()")))


def _size(engine: Engine, conn: Connection) -> int | None:
    if conn.dialect.name == "postgresql":
        size = conn.scalar(sa.text("SELECT pg_database_size(current_database())"))
        return int(size) if size is not None else None
    database = engine.url.database
    if not database:
        return None
    total = 0
    for suffix in ("", "-wal"):
        path = Path(database + suffix)
        if path.exists():
            total += path.stat().st_size
    return total


def info(engine: Engine) -> DbInfo:
    """Describe ``engine``'s database: backend and server version, schema revision (and the
    head this code expects), the row count of every table, and its size on disk (SQLite:
    the file and its WAL; PostgreSQL: ``pg_database_size``)."""
    revision = current_revision(engine)
    with transaction(engine, readonly=True) as conn:
        names = sorted(n for n in sa.inspect(conn).get_table_names() if n != VERSION_TABLE)
        counts = {
            name: int(conn.scalar(sa.select(sa.func.count()).select_from(sa.table(name))) or 0)
            for name in names
        }
        return DbInfo(
            backend=backend_name(engine),
            server_version=_server_version(conn),
            url=redact(engine.url),
            revision=revision,
            head=head_revision(),
            tables=counts,
            size_bytes=_size(engine, conn),
        )
