"""Experiment tracking tables (used only by :mod:`syllabus.tracking.sql`).

Runs and experiments carry a public 32-hex id and an integer surrogate key (``pk``) that
every child row uses: metric points are the hot table, and a small integer run key plus a
metric-key id keep its rows and its index narrow. Times are Unix milliseconds.

``experiments``
    named groups of runs; ``active_name`` equals ``name`` while the experiment is live and
    is NULL once deleted, so a deleted experiment's name can be reused at once.
``runs``
    one row per run: status, times, user, host, heartbeat, parent run, soft deletion.
    Indexed by ``(experiment_pk, start_time)`` and, for live runs (a partial index),
    ``(start_time, id)``, so a search within an experiment or over all of them reads its
    page newest first from an index instead of sorting every run.
``metric_keys``
    the dictionary of metric names (``metrics.key_id`` points here).
``metrics``
    every logged point, appended in bulk: a clustered table (``WITHOUT ROWID`` on SQLite)
    keyed by ``(run_pk, key_id, step, timestamp, seq)``, so one B-tree both stores and
    orders a series. ``seq`` numbers a run's points in logging order (from
    ``runs.next_seq``), which keeps points with equal step and timestamp apart and breaks
    ties by logging order. The table declares no foreign keys, the hot path's biggest cost
    after the insert itself: the writer checks (and on PostgreSQL locks) the runs of each
    flush, and purging deletes a run's points with the run. SQLite only: on PostgreSQL
    points go to ``metric_chunks`` and this table stays empty.
``metric_chunks``
    PostgreSQL's points: one row per series per flush (split every
    :data:`CHUNK_POINTS` points), keyed by ``(run_pk, key_id, first_seq)``, holding the
    points' steps, timestamps and values (``vals``; NaN is a NULL element) as arrays in
    logging order; the point at index ``i`` (from 0) has seq ``first_seq + i``. A flush of
    1,000 points of a series writes 4 rows and 4 index entries instead of 1,000 of each,
    which was most of PostgreSQL's CPU per batch (4.1 ms of it per batch, 0.56 ms as
    chunks; a fifth of the space). The arrays are never compressed (``STORAGE
    EXTERNAL``: PostgreSQL's default tried to compress every chunk, at 3.2 ms of CPU per
    1,000 points) and a row stays in the table's page up to ``toast_tuple_target`` (8,160
    bytes, which a full chunk fits) instead of going to the TOAST table. On
    SQLite the table exists (one schema for both backends) but stays empty: its
    ``WITHOUT ROWID`` ``metrics`` already stores a series in one B-tree, and a run's
    history there is a range scan that needs no array type.
``latest_metrics``
    the point with the highest ``(step, timestamp)`` per run and key, kept up to date on
    every flush; search and ordering use it (indexed by key and value).
``params`` / ``tags``
    one value per run and key (params immutable, tags overwritable).
``artifacts``
    one row per stored file, by run-relative path, pointing at a blob digest (declared in
    ``blob_refs`` in the same transaction).
``run_inputs``
    lineage: what a run consumed (``kind`` such as ``"dataset"``, the target's id and
    digest), asked both ways (a run's inputs; the runs that used a target).
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from syllabus.meta.schema import BigIntId, metadata

__all__ = [
    "CHUNK_POINTS",
    "CHUNK_STORAGE_SQL",
    "artifacts",
    "experiments",
    "latest_metrics",
    "metric_chunks",
    "metric_keys",
    "metrics",
    "params",
    "run_inputs",
    "runs",
    "tags",
]

_CASCADE: Final = "CASCADE"
_LIVE: Final = sa.text("deleted_at IS NULL")
_DELETED: Final = sa.text("deleted_at IS NOT NULL")

experiments: Final = sa.Table(
    "experiments",
    metadata,
    sa.Column("pk", BigIntId, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(32), nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("active_name", sa.String(255), nullable=True, unique=True),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("created_at", sa.BigInteger(), nullable=False),
    sa.Column("deleted_at", sa.BigInteger(), nullable=True),
)

runs: Final = sa.Table(
    "runs",
    metadata,
    sa.Column("pk", BigIntId, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(32), nullable=False, unique=True),
    sa.Column(
        "experiment_pk",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("experiments.pk", ondelete=_CASCADE),
        nullable=False,
    ),
    sa.Column(
        "parent_pk",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("runs.pk", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("user_name", sa.String(255), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("start_time", sa.BigInteger(), nullable=False),
    sa.Column("end_time", sa.BigInteger(), nullable=True),
    sa.Column("heartbeat_at", sa.BigInteger(), nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("deleted_at", sa.BigInteger(), nullable=True),
    # the seq of the run's next metric point (see ``metrics``)
    sa.Column("next_seq", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Index(None, "experiment_pk", "start_time"),
    # Live runs newest first over every experiment (the runs table without an experiment,
    # its deep pages): walked in order and covering, so no sort of every run. Partial on
    # both backends: PostgreSQL cannot order by the columns after an `IS NULL` one.
    sa.Index(None, "start_time", "id", sqlite_where=_LIVE, postgresql_where=_LIVE),
    # Deleted runs only (purge, `deleted="deleted"`): an index holding every live run's
    # NULL would lure SQLite's planner away from the one above.
    sa.Index(None, "deleted_at", sqlite_where=_DELETED, postgresql_where=_DELETED),
)

_RUN_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _run_fk() -> sa.Column[int]:
    return sa.Column("run_pk", _RUN_PK, sa.ForeignKey("runs.pk", ondelete=_CASCADE), nullable=False)


metric_keys: Final = sa.Table(
    "metric_keys",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(250), nullable=False, unique=True),
)

metrics: Final = sa.Table(
    "metrics",
    metadata,
    sa.Column("run_pk", _RUN_PK, nullable=False),
    sa.Column("key_id", sa.Integer(), nullable=False),
    sa.Column("step", sa.BigInteger(), nullable=False),
    sa.Column("timestamp", sa.BigInteger(), nullable=False),
    sa.Column("seq", sa.BigInteger(), nullable=False, server_default="0"),
    # NULL is NaN: SQLite stores NaN as NULL, so both backends read NULL back as NaN.
    sa.Column("value", sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint("run_pk", "key_id", "step", "timestamp", "seq"),
    sqlite_with_rowid=False,
)

CHUNK_POINTS: Final = 320
"""The most points in one ``metric_chunks`` row: three arrays of 320 eight-byte numbers
with their headers (and a NULL bitmap) take 7,800 bytes, so a full chunk stays in the
table's page (under ``toast_tuple_target``, 8,160 bytes, with the row's header) and fills
most of it. Larger chunks would go to the TOAST table: as cheap to write (without
compression) but read through a second index."""

_TOAST_TARGET: Final = 8160
# PostgreSQL: no compression of the arrays, and out of line (TOAST) only past a page.
CHUNK_STORAGE_SQL: Final = (
    "ALTER TABLE metric_chunks ALTER COLUMN steps SET STORAGE EXTERNAL, "
    "ALTER COLUMN timestamps SET STORAGE EXTERNAL, ALTER COLUMN vals SET STORAGE EXTERNAL"
)
_INT8S = sa.LargeBinary().with_variant(postgresql.ARRAY(sa.BigInteger()), "postgresql")
_FLOAT8S = sa.LargeBinary().with_variant(
    postgresql.ARRAY(postgresql.DOUBLE_PRECISION()), "postgresql"
)

metric_chunks: Final = sa.Table(
    "metric_chunks",
    metadata,
    sa.Column("run_pk", _RUN_PK, nullable=False),
    sa.Column("key_id", sa.Integer(), nullable=False),
    sa.Column("first_seq", sa.BigInteger(), nullable=False),
    sa.Column("steps", _INT8S, nullable=False),
    sa.Column("timestamps", _INT8S, nullable=False),
    sa.Column("vals", _FLOAT8S, nullable=False),
    sa.PrimaryKeyConstraint("run_pk", "key_id", "first_seq"),
    postgresql_with={"toast_tuple_target": _TOAST_TARGET},
)
# A fresh database is created from this metadata (the migration runs the same statement).
_STORAGE_DDL: Final = sa.DDL(CHUNK_STORAGE_SQL)  # type: ignore[no-untyped-call]
sa.event.listen(metric_chunks, "after_create", _STORAGE_DDL.execute_if(dialect="postgresql"))

latest_metrics: Final = sa.Table(
    "latest_metrics",
    metadata,
    _run_fk(),
    sa.Column("key_id", sa.Integer(), sa.ForeignKey("metric_keys.id"), nullable=False),
    sa.Column("step", sa.BigInteger(), nullable=False),
    sa.Column("timestamp", sa.BigInteger(), nullable=False),
    sa.Column("value", sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint("run_pk", "key_id"),
    sa.Index(None, "key_id", "value"),
)

params: Final = sa.Table(
    "params",
    metadata,
    _run_fk(),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("value", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("run_pk", "key"),
)

tags: Final = sa.Table(
    "tags",
    metadata,
    _run_fk(),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("value", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("run_pk", "key"),
)

artifacts: Final = sa.Table(
    "artifacts",
    metadata,
    _run_fk(),
    sa.Column("path", sa.String(1024), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Column("created_at", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("run_pk", "path"),
)

run_inputs: Final = sa.Table(
    "run_inputs",
    metadata,
    sa.Column("pk", BigIntId, primary_key=True, autoincrement=True),
    _run_fk(),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("target_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(255), nullable=True),
    sa.Column("digest", sa.String(64), nullable=True),
    sa.Column("role", sa.String(64), nullable=False),
    sa.UniqueConstraint("run_pk", "kind", "target_id", "role"),
    sa.Index(None, "kind", "target_id"),
)
