"""Schema versions: create a fresh database at head, refuse an outdated one, upgrade it.

The migrations live in :mod:`syllabus.meta.migrations` and run through a programmatic
Alembic configuration (no ``alembic.ini``). The version is kept in
:data:`~syllabus.meta.schema.VERSION_TABLE`.

* :func:`ensure_schema` runs whenever Syllabus opens a database: an empty database is
  created at head in one step (``metadata.create_all`` and a stamp); a database at head
  passes; an older one raises :class:`~syllabus.errors.SchemaOutdatedError` naming
  ``syllabus db upgrade``; a newer one asks to upgrade Syllabus; a database holding other
  tables but no Syllabus schema is refused.
* :func:`upgrade` (``syllabus db upgrade``) applies the pending migrations in one
  transaction, after copying a SQLite database next to itself with the backup API.

Both are safe to call from several processes at once: PostgreSQL serialises them with a
transaction-scoped advisory lock, SQLite with ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Final, Literal

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from syllabus._utils.ids import new_id
from syllabus.errors import DatabaseError, SchemaOutdatedError
from syllabus.meta import tables as _tables  # noqa: F401 - registers component tables
from syllabus.meta.engine import BUSY_TIMEOUT_S, one_line, redact
from syllabus.meta.schema import VERSION_TABLE, metadata, workspace
from syllabus.meta.tx import transaction

__all__ = [
    "Revision",
    "UpgradeResult",
    "alembic_config",
    "current_revision",
    "ensure_schema",
    "head_revision",
    "history",
    "upgrade",
]

SCRIPT_LOCATION: Final = "syllabus.meta:migrations"
_ADVISORY_LOCK_KEY: Final = 0x5359_4C4C_4142_5553 >> 1  # "SYLLABUS", fits a signed bigint
_UPGRADE_HINT: Final = "run `syllabus db upgrade`"


@dataclass(frozen=True, slots=True)
class Revision:
    """One migration: its id, the one it follows, and its one-line description."""

    revision: str
    down_revision: str | None
    message: str
    is_head: bool


@dataclass(frozen=True, slots=True)
class UpgradeResult:
    """What :func:`upgrade` did.

    ``from_revision`` is None for a database that was empty (or at base); ``applied`` lists
    the migrations run, oldest first (empty when already at head or created at head);
    ``backup`` is the SQLite copy taken first, when one was.
    """

    from_revision: str | None
    to_revision: str
    applied: tuple[str, ...]
    backup: Path | None
    created: bool = False


def alembic_config(connection: Connection | None = None, *, url: str | None = None) -> Config:
    """A programmatic Alembic config for the shipped migrations.

    Pass an open ``connection`` (its transaction is used and not committed) or a ``url``.
    """
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision this version of Syllabus knows."""
    head = _script().get_current_head()
    assert head is not None, "the shipped migrations have no head"
    return head


def history() -> list[Revision]:
    """Every revision, oldest first."""
    script = _script()
    heads = set(script.get_heads())
    revs = list(script.walk_revisions("base", "heads"))
    revs.reverse()
    out = []
    for rev in revs:
        down = rev.down_revision
        if isinstance(down, tuple | list):  # merges are not used; keep the first parent
            down = down[0] if down else None
        out.append(
            Revision(
                revision=rev.revision,
                down_revision=down,
                message=(rev.doc or "").strip().splitlines()[0] if rev.doc else "",
                is_head=rev.revision in heads,
            )
        )
    return out


# --- state of a database ------------------------------------------------------------------

_Kind = Literal["empty", "foreign", "versioned"]


@dataclass(frozen=True, slots=True)
class _State:
    kind: _Kind
    revision: str | None = None
    tables: tuple[str, ...] = ()


def _state(conn: Connection) -> _State:
    inspector = sa.inspect(conn)
    tables = tuple(sorted(inspector.get_table_names()))
    if VERSION_TABLE not in tables:
        return _State("foreign" if tables else "empty", tables=tables)
    heads = MigrationContext.configure(
        conn, opts={"version_table": VERSION_TABLE}
    ).get_current_heads()
    if len(heads) > 1:
        raise DatabaseError(
            f"database schema has several heads ({', '.join(heads)}); it was not made by Syllabus"
        )
    return _State("versioned", heads[0] if heads else None, tables)


def _where(engine: Engine) -> str:
    return redact(engine.url)


def _check(engine: Engine, state: _State) -> None:
    """Raise unless ``state`` is a Syllabus schema at head."""
    head = head_revision()
    if state.kind == "foreign":
        shown = ", ".join(state.tables[:5]) + (", ..." if len(state.tables) > 5 else "")
        raise DatabaseError(
            f"database {_where(engine)} holds other tables ({shown}) and no Syllabus schema; "
            "point Syllabus at an empty database"
        )
    if state.revision == head:
        return
    known = {r.revision for r in history()}
    if state.revision is not None and state.revision not in known:
        raise SchemaOutdatedError(
            f"database {_where(engine)} has schema revision {state.revision}, newer than this "
            f"version of Syllabus knows (head {head}); upgrade Syllabus"
        )
    raise SchemaOutdatedError(
        f"database {_where(engine)} has schema revision {state.revision or 'base'}, older "
        f"than this version of Syllabus needs ({head}); {_UPGRADE_HINT}"
    )


def current_revision(engine: Engine) -> str | None:
    """The schema revision of the database (None when empty or at base)."""
    with transaction(engine, readonly=True) as conn:
        return _state(conn).revision


def _lock(conn: Connection) -> None:
    """Serialise schema work between processes (SQLite: BEGIN IMMEDIATE already did)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK_KEY})


def _syllabus_version() -> str:
    try:
        return importlib_metadata.version("syllabus")
    except importlib_metadata.PackageNotFoundError:  # pragma: no cover - source checkout
        return "unknown"


def _record_workspace(conn: Connection) -> None:
    """Insert the workspace facts that are missing (idempotent)."""
    present = set(conn.scalars(sa.select(workspace.c.key)))
    facts = {
        "workspace_id": new_id(),
        "created_at": str(time.time_ns() // 1_000_000),
        "created_by": _syllabus_version(),
    }
    rows = [{"key": k, "value": v} for k, v in facts.items() if k not in present]
    if rows:
        conn.execute(sa.insert(workspace), rows)


def _create_at_head(conn: Connection) -> None:
    metadata.create_all(conn)
    MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).stamp(_script(), "head")
    _record_workspace(conn)


def ensure_schema(engine: Engine) -> None:
    """Make sure the database has the schema this code expects, creating it when empty.

    Raises :class:`~syllabus.errors.SchemaOutdatedError` when the schema is older (the
    message names ``syllabus db upgrade``) or newer than this code, and
    :class:`~syllabus.errors.DatabaseError` for a database that is not a Syllabus one.
    """
    with transaction(engine, readonly=True) as conn:
        state = _state(conn)
    if state.kind != "empty":
        _check(engine, state)
        return
    try:
        with transaction(engine) as conn:
            _lock(conn)
            state = _state(conn)  # another process may have created it meanwhile
            if state.kind == "empty":
                _create_at_head(conn)
                return
    except sa.exc.DBAPIError as exc:  # e.g. no permission to create tables
        raise DatabaseError(
            f"cannot create the Syllabus schema in {_where(engine)}: {one_line(exc)}"
        ) from exc
    _check(engine, state)


# --- upgrade ------------------------------------------------------------------------------


def _sqlite_path(engine: Engine) -> Path | None:
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return None
    return Path(engine.url.database)


def _backup_sqlite(db_path: Path, revision: str | None, backup_dir: Path | None) -> Path:
    """Copy ``db_path`` with the backup API into a new file and return its path.

    Called while the upgrading connection holds the write lock but has not written yet, so
    a separate reading connection copies exactly the last committed state. (The locking
    connection itself cannot be the source: SQLite refuses to back up from a connection
    with an open write transaction.)
    """
    folder = backup_dir if backup_dir is not None else db_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = f"{db_path.name}.bak-{revision or 'base'}-{stamp}"
    target = folder / base
    n = 1
    while target.exists():
        n += 1
        target = folder / f"{base}-{n}"
    partial = target.with_name(target.name + ".partial")
    try:
        with (
            contextlib.closing(sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_S)) as source,
            contextlib.closing(sqlite3.connect(partial)) as dest,
        ):
            source.backup(dest)
        partial.replace(target)
    except (sqlite3.Error, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise DatabaseError(f"cannot back up {db_path} to {target}: {exc}") from exc
    return target


@contextlib.contextmanager
def _sqlite_foreign_keys_off(conn: Connection) -> Iterator[None]:
    """SQLite's recipe for schema changes: foreign keys off outside the transaction."""
    if conn.dialect.name != "sqlite":
        yield
        return
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        driver.execute("PRAGMA foreign_keys = ON")


def upgrade(engine: Engine, *, backup_dir: Path | None = None) -> UpgradeResult:
    """Bring the database to head (``syllabus db upgrade``); an empty one is created.

    A SQLite database is first copied with the backup API to
    ``<name>.bak-<revision>-<UTC timestamp>`` next to it (or into ``backup_dir``). All
    pending migrations run in one transaction: on failure nothing changes.
    """
    head = head_revision()
    with transaction(engine, readonly=True) as conn:
        state = _state(conn)
    if state.kind == "foreign":
        _check(engine, state)
    if state.kind == "versioned" and state.revision == head:
        return UpgradeResult(head, head, (), None)
    if state.kind == "versioned":
        _check_not_newer(engine, state)
    db_path = _sqlite_path(engine)
    try:
        with engine.connect() as conn, _sqlite_foreign_keys_off(conn), conn.begin():
            _lock(conn)
            state = _state(conn)
            if state.kind == "empty":
                _create_at_head(conn)
                return UpgradeResult(None, head, (), None, created=True)
            if state.kind == "foreign":
                _check(engine, state)
            if state.revision == head:
                return UpgradeResult(head, head, (), None)
            _check_not_newer(engine, state)
            backup = None
            if db_path is not None:
                backup = _backup_sqlite(db_path, state.revision, backup_dir)
            applied = _pending(state.revision)
            command.upgrade(alembic_config(conn), "head")
            if conn.dialect.name == "sqlite":
                problems = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if problems:
                    raise DatabaseError(
                        f"upgrade left {len(problems)} broken foreign key(s), first in table "
                        f"{problems[0][0]}; nothing was changed"
                    )
    except sa.exc.DBAPIError as exc:
        raise DatabaseError(f"upgrade of {_where(engine)} failed: {one_line(exc)}") from exc
    return UpgradeResult(state.revision, head, applied, backup)


def _check_not_newer(engine: Engine, state: _State) -> None:
    known = {r.revision for r in history()}
    if state.revision is not None and state.revision not in known:
        _check(engine, state)


def _pending(revision: str | None) -> tuple[str, ...]:
    revs = [r.revision for r in history()]
    start = 0 if revision is None else revs.index(revision) + 1
    return tuple(revs[start:])


def new_revision(message: str, *, versions_dir: Path | None = None) -> Path:
    """Autogenerate the next migration from the difference between ``metadata`` and a
    scratch database at the current head; returns the new file. For developers.
    """
    import re
    import tempfile

    from syllabus.meta.engine import create_engine

    next_id = f"{int(head_revision()) + 1:04d}"
    slug = re.sub(r"[^a-z0-9]+", "_", message.lower()).strip("_") or "change"
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'scratch.db'}")
        try:
            # Build the scratch database from the migrations, not from ``metadata`` (which
            # already holds the new tables and would leave nothing to generate).
            with engine.begin() as conn:
                command.upgrade(alembic_config(conn), "head")
            with engine.connect() as conn:
                cfg = alembic_config(conn)
                cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
                if versions_dir is not None:
                    from syllabus.meta import migrations

                    shipped = Path(migrations.__file__).parent / "versions"
                    cfg.set_main_option("path_separator", "os")
                    cfg.set_main_option(
                        "version_locations", os.pathsep.join([str(shipped), str(versions_dir)])
                    )
                script = command.revision(
                    cfg,
                    message=slug,
                    autogenerate=True,
                    rev_id=next_id,
                    version_path=str(versions_dir) if versions_dir else None,
                )
        finally:
            engine.dispose()
    assert script is not None
    assert not isinstance(script, list)
    _script.cache_clear()
    if versions_dir is None:
        _set_schema_head(next_id)
    return Path(script.path)


def _set_schema_head(revision: str) -> None:
    """Point :data:`syllabus.meta.schema.SCHEMA_HEAD` at a new revision (in the source)."""
    import re

    from syllabus.meta import schema

    path = Path(schema.__file__)
    text = path.read_text(encoding="utf-8")
    path.write_text(
        re.sub(
            r'^SCHEMA_HEAD: Final = "\d+"$',
            f'SCHEMA_HEAD: Final = "{revision}"',
            text,
            count=1,
            flags=re.MULTILINE,
        ),
        encoding="utf-8",
    )


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 2:
        sys.exit('usage: python -m syllabus.meta.migrate "what the migration does"')
    sys.stdout.write(f"{new_revision(sys.argv[1])}\n")
