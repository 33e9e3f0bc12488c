"""transaction(): commit, rollback, and a one-line error when SQLite stays locked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from syllabus.errors import DatabaseError
from syllabus.meta import ensure_schema, transaction
from syllabus.meta.schema import workspace


def _value(engine: sa.Engine, key: str) -> str | None:
    with transaction(engine, readonly=True) as conn:
        return conn.scalar(sa.select(workspace.c.value).where(workspace.c.key == key))


def test_commit_on_success(engine: sa.Engine) -> None:
    ensure_schema(engine)
    with transaction(engine) as conn:
        conn.execute(sa.insert(workspace).values(key="k", value="v"))
    assert _value(engine, "k") == "v"


def test_rollback_on_error(engine: sa.Engine) -> None:
    ensure_schema(engine)

    def insert_then_fail() -> None:
        with transaction(engine) as conn:
            conn.execute(sa.insert(workspace).values(key="k", value="v"))
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        insert_then_fail()
    assert _value(engine, "k") is None


def test_constraint_violations_pass_through(engine: sa.Engine) -> None:
    ensure_schema(engine)
    with pytest.raises(sa.exc.IntegrityError), transaction(engine) as conn:
        conn.execute(sa.insert(workspace).values(key="workspace_id", value="again"))


def test_ddl_is_transactional(engine: sa.Engine) -> None:
    def create_then_fail() -> None:
        with transaction(engine) as conn:
            conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
            raise RuntimeError

    with pytest.raises(RuntimeError):
        create_then_fail()
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []


def test_locked_too_long_is_a_one_line_database_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_engine: Callable[[str], sa.Engine]
) -> None:
    monkeypatch.setattr("syllabus.meta.engine.BUSY_TIMEOUT_S", 0.05)
    monkeypatch.setattr("syllabus.meta.tx.BUSY_TIMEOUT_S", 0.05)
    url = f"sqlite:///{tmp_path / 'x.db'}"
    first, second = make_engine(url), make_engine(url)
    ensure_schema(first)
    with transaction(first) as conn:
        conn.execute(sa.insert(workspace).values(key="k", value="v"))
        with pytest.raises(DatabaseError) as info, transaction(second):
            pass
    message = str(info.value)
    assert "database is locked" in message
    assert "\n" not in message
