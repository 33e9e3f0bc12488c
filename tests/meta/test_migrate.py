"""Schema versions on SQLite and PostgreSQL: fresh, current, outdated, newer, foreign, upgrade."""

from __future__ import annotations

import itertools
import sqlite3
import uuid
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import make_url

from syllabus.errors import DatabaseError, SchemaOutdatedError
from syllabus.meta import (
    current_revision,
    ensure_schema,
    head_revision,
    history,
    metadata,
    transaction,
    upgrade,
)
from syllabus.meta.migrate import alembic_config
from syllabus.meta.schema import VERSION_TABLE, workspace
from tests.meta._workers import ensure_worker, run_workers

REVISIONS = [r.revision for r in history()]


def build_at(engine: sa.Engine, revision: str) -> None:
    """Make the database exactly as the migrations leave it at ``revision`` ("base": none)."""
    with engine.connect() as conn, conn.begin():
        cfg = alembic_config(conn)
        if revision == "base":
            command.stamp(cfg, "base")
        else:
            command.upgrade(cfg, revision)


def schema_diff(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE, "compare_type": True}
        )
        return list(compare_metadata(ctx, metadata))


def test_history_is_linear_from_0001_to_head() -> None:
    revs = history()
    assert revs[0].revision == "0001"
    assert revs[0].down_revision is None
    assert revs[-1].revision == head_revision()
    assert [r.is_head for r in revs] == [False] * (len(revs) - 1) + [True]
    for before, after in itertools.pairwise(revs):
        assert after.down_revision == before.revision
    assert all(r.message for r in revs)


def test_fresh_database_is_created_at_head(engine: sa.Engine) -> None:
    assert current_revision(engine) is None
    ensure_schema(engine)
    assert current_revision(engine) == head_revision()
    ensure_schema(engine)  # at head: nothing to do
    with transaction(engine, readonly=True) as conn:
        rows = conn.execute(sa.select(workspace.c.key, workspace.c.value)).all()
    facts = {str(k): str(v) for k, v in rows}
    assert set(facts) == {"workspace_id", "created_at", "created_by"}
    assert len(facts["workspace_id"]) == 32
    assert schema_diff(engine) == []


@pytest.mark.parametrize("revision", ["base", *REVISIONS[:-1]])
def test_older_database_is_refused_naming_db_upgrade(engine: sa.Engine, revision: str) -> None:
    build_at(engine, revision)
    with pytest.raises(SchemaOutdatedError) as info:
        ensure_schema(engine)
    message = str(info.value)
    assert "`syllabus db upgrade`" in message
    assert f"revision {revision}" in message
    assert "\n" not in message


def test_newer_database_is_refused_asking_to_upgrade_syllabus(engine: sa.Engine) -> None:
    ensure_schema(engine)
    with transaction(engine) as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    for call in (ensure_schema, upgrade):
        with pytest.raises(
            SchemaOutdatedError, match=r"revision 9999, newer .*; upgrade Syllabus$"
        ):
            call(engine)


def test_foreign_database_is_refused(engine: sa.Engine) -> None:
    with transaction(engine) as conn:
        conn.execute(sa.text("CREATE TABLE customers (id INTEGER PRIMARY KEY)"))
    for call in (ensure_schema, upgrade):
        with pytest.raises(
            DatabaseError, match=r"holds other tables \(customers\) and no Syllabus"
        ):
            call(engine)


@pytest.mark.parametrize("revision", ["base", *REVISIONS])
def test_upgrade_from_every_revision_reaches_head(engine: sa.Engine, revision: str) -> None:
    build_at(engine, revision)
    result = upgrade(engine)
    start = None if revision == "base" else revision
    assert result.from_revision == start
    assert result.to_revision == head_revision()
    pending = REVISIONS[REVISIONS.index(revision) + 1 :] if start else REVISIONS
    assert result.applied == tuple(pending)
    assert current_revision(engine) == head_revision()
    ensure_schema(engine)
    assert schema_diff(engine) == []
    with transaction(engine, readonly=True) as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(workspace)) == 3


def test_migrations_step_by_step_match_metadata(engine: sa.Engine) -> None:
    for revision in REVISIONS:
        build_at(engine, revision)
        assert current_revision(engine) == revision
    assert schema_diff(engine) == []


def test_downgrade_to_base_and_back(engine: sa.Engine) -> None:
    build_at(engine, "head")
    with engine.connect() as conn, conn.begin():
        command.downgrade(alembic_config(conn), "base")
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == [VERSION_TABLE]
    assert upgrade(engine).applied == tuple(REVISIONS)


def test_upgrade_at_head_does_nothing(engine: sa.Engine) -> None:
    ensure_schema(engine)
    result = upgrade(engine)
    assert (result.from_revision, result.applied, result.backup) == (head_revision(), (), None)


def test_upgrade_of_empty_database_creates_it(engine: sa.Engine) -> None:
    result = upgrade(engine)
    assert result.created
    assert result.backup is None
    assert current_revision(engine) == head_revision()


def test_upgrade_backs_up_sqlite_first(
    tmp_path: Path, make_engine: Callable[[str], sa.Engine]
) -> None:
    db = tmp_path / "syllabus.db"
    engine = make_engine(f"sqlite:///{db}")
    build_at(engine, "base")
    with transaction(engine) as conn:
        conn.execute(sa.text("CREATE TABLE precious (x INTEGER)"))
        conn.execute(sa.text("INSERT INTO precious VALUES (42)"))
    backups = tmp_path / "backups"
    result = upgrade(engine, backup_dir=backups)
    assert result.backup is not None
    assert result.backup.parent == backups
    assert result.backup.name.startswith("syllabus.db.bak-base-")
    with closing(sqlite3.connect(result.backup)) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert copy.execute("SELECT x FROM precious").fetchall() == [(42,)]
        tables = {r[0] for r in copy.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "blob_refs" not in tables  # the copy is of the database before the upgrade
    assert current_revision(engine) == head_revision()
    # Without backup_dir the copy lands next to the database.
    build_again = make_engine(f"sqlite:///{tmp_path / 'second.db'}")
    build_at(build_again, "base")
    second = upgrade(build_again)
    assert second.backup is not None
    assert second.backup.parent == tmp_path
    assert second.backup.exists()


def test_upgrade_does_not_back_up_postgresql(engine: sa.Engine) -> None:
    build_at(engine, "base")
    result = upgrade(engine)
    assert (result.backup is None) == (engine.dialect.name == "postgresql")


def test_concurrent_ensure_schema_on_a_fresh_database(db_url: str, engine: sa.Engine) -> None:
    results = run_workers(ensure_worker, 4, db_url)
    failures = "\n".join(detail for _, status, detail in results if status != "ok")
    assert [(i, status) for i, status, _ in results] == [(i, "ok") for i in range(4)], failures
    assert current_revision(engine) == head_revision()
    with transaction(engine, readonly=True) as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(workspace)) == 3


@pytest.mark.postgres
def test_no_permission_to_create_is_a_database_error(
    pg_database_url: str, make_engine: Callable[[str], sa.Engine]
) -> None:
    role = f"syllabus_nocreate_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        make_url(pg_database_url).set(drivername="postgresql+psycopg"),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
    )
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        conn.exec_driver_sql(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
    url = make_url(pg_database_url).set(username=role)
    url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with pytest.raises(DatabaseError) as info:
            ensure_schema(engine)
        message = str(info.value)
        assert message.startswith("cannot create the Syllabus schema in postgresql://")
        assert "permission denied" in message
        assert "\n" not in message
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
            conn.exec_driver_sql(f'DROP ROLE "{role}"')
        admin.dispose()


def test_failed_upgrade_changes_nothing(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    build_at(engine, "base")
    real_upgrade = command.upgrade

    def upgrade_then_fail(cfg: Config, revision: str) -> None:
        real_upgrade(cfg, revision)
        raise sa.exc.OperationalError("migration step", {}, RuntimeError("disk full"))

    monkeypatch.setattr("syllabus.meta.migrate.command.upgrade", upgrade_then_fail)
    with pytest.raises(DatabaseError, match=r"upgrade of .* failed: disk full"):
        upgrade(engine)
    assert current_revision(engine) is None
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == [VERSION_TABLE]


def test_new_revision_autogenerates_the_next_number(tmp_path: Path) -> None:
    from syllabus.meta.migrate import new_revision

    path = new_revision("Nothing changed yet", versions_dir=tmp_path)
    expected = f"{int(head_revision()) + 1:04d}"
    assert path.parent == tmp_path
    assert path.name == f"{expected}_nothing_changed_yet.py"
    text = path.read_text()
    assert f"revision = '{expected}'" in text or f'revision = "{expected}"' in text
    assert "pass" in text  # metadata equals the head schema: nothing to migrate


def test_schema_head_constant_matches_the_migrations() -> None:
    from syllabus.meta.schema import SCHEMA_HEAD

    assert head_revision() == SCHEMA_HEAD, (
        "update SCHEMA_HEAD in syllabus/meta/schema.py (new_revision does it for you)"
    )


def test_the_everyday_check_needs_no_alembic(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = tmp_path / "s.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    ensure_schema(engine)
    engine.dispose()
    code = (
        "import sys\n"
        "from syllabus.meta import create_engine, ensure_schema\n"
        f"e = create_engine('sqlite:///{db}')\n"
        "ensure_schema(e)\n"
        "print('alembic' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
