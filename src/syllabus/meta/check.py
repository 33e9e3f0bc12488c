"""The fast schema check every command pays: one query, no Alembic.

Opening a store checks that the database is at the schema this code expects. Alembic (and
the migration scripts) take about 100 ms to import, so the common case, a database already
at head, is answered by reading the version table directly; only an empty, older, newer or
foreign database goes on to :func:`syllabus.meta.migrate.ensure_schema`.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Engine

from syllabus.errors import DatabaseError
from syllabus.meta.schema import SCHEMA_HEAD, VERSION_TABLE
from syllabus.meta.tx import transaction

__all__ = ["ensure_schema", "is_at_head"]


def is_at_head(engine: Engine) -> bool:
    """True when the database's one recorded revision is :data:`SCHEMA_HEAD`."""
    try:
        with transaction(engine, readonly=True) as conn:
            rows = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    except (sa.exc.DBAPIError, DatabaseError):  # no version table yet: take the slow path
        return False
    return len(rows) == 1 and rows[0][0] == SCHEMA_HEAD


def ensure_schema(engine: Engine) -> None:
    """Make sure the database has this code's schema, creating it when empty.

    See :func:`syllabus.meta.migrate.ensure_schema` for what happens when it is not at head.
    """
    if is_at_head(engine):
        return
    from syllabus.meta import migrate

    migrate.ensure_schema(engine)
