"""The Alembic environment of Syllabus.

:mod:`syllabus.meta.migrate` passes an open connection (already inside a transaction and
holding the schema lock) in ``config.attributes["connection"]``. Without one, the URL in
the ``sqlalchemy.url`` option is used, through :func:`syllabus.meta.engine.create_engine`
so that the SQLite pragmas apply. ``--sql`` (offline) mode renders the DDL instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from syllabus.meta.engine import create_engine
from syllabus.meta.schema import VERSION_TABLE, metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run() -> None:
    config = context.config
    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"),
            target_metadata=metadata,
            version_table=VERSION_TABLE,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as conn:
            _configure(conn)
    finally:
        engine.dispose()


def _inside_alembic() -> bool:
    """True when Alembic is running this file (not when a tool merely imports it)."""
    try:
        context.config  # noqa: B018 - raises NameError outside an Alembic run
    except (NameError, AttributeError):
        return False
    return True


if _inside_alembic():
    _run()
