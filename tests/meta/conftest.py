"""Fixtures for the meta tests: real SQLite files, and PostgreSQL when configured.

``SYLLABUS_TEST_PG`` names a PostgreSQL server URL. The session creates a fresh, uniquely
named database on it and drops it at the end; every test gets its own schema in that
database (through ``search_path``), so tests never see each other's tables. Without the
variable the PostgreSQL tests skip, unless ``SYLLABUS_REQUIRE_PG=1``, which turns a
missing or unreachable server into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from syllabus.meta import create_engine

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def _require_pg() -> bool:
    return os.environ.get("SYLLABUS_REQUIRE_PG", "").strip().lower() in ("1", "true", "yes")


def _admin_engine(server_url: str) -> sa.Engine:
    url = make_url(server_url).set(drivername="postgresql+psycopg")
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this session (dropped at the end)."""
    server = os.environ.get("SYLLABUS_TEST_PG", "").strip()
    if not server:
        if _require_pg():
            pytest.fail("SYLLABUS_REQUIRE_PG=1 but SYLLABUS_TEST_PG names no PostgreSQL URL")
        pytest.skip("PostgreSQL tests need SYLLABUS_TEST_PG=postgresql://... (unset)")
    name = f"syllabus_meta_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine(server)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        message = f"PostgreSQL at SYLLABUS_TEST_PG is unreachable: {str(exc.orig).strip()}"
        if _require_pg():
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test: ``"sqlite"`` or ``"postgresql"``."""
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of an empty database on ``backend``."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'syllabus.db'}"
        return
    base = request.getfixturevalue("pg_database_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine(base)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture
def make_engine() -> Iterator[Callable[[str], sa.Engine]]:
    """Build engines with :func:`syllabus.meta.create_engine`; all are disposed afterwards."""
    made: list[sa.Engine] = []

    def make(url: str) -> sa.Engine:
        engine = create_engine(url)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.dispose()


@pytest.fixture
def engine(db_url: str, make_engine: Callable[[str], sa.Engine]) -> sa.Engine:
    """An engine on an empty database of the backend under test."""
    return make_engine(db_url)
