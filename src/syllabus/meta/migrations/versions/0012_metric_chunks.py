"""Tracking: PostgreSQL stores metric points as chunks, one row per series per flush.

``metric_chunks`` is ``(run_pk, key_id, first_seq)`` with the points' steps, timestamps
and values as arrays in logging order (see :mod:`syllabus.meta.tables.tracking`). On
PostgreSQL the points of ``metrics`` move into it, one chunk per stretch of consecutive
seqs of a series (what one flush wrote), of at most 320 points as the writer writes
them, and ``metrics`` is emptied: readers then read one table. On SQLite the table is
created empty and ``metrics`` keeps the points.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 13:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_INT8S = sa.LargeBinary().with_variant(postgresql.ARRAY(sa.BigInteger()), "postgresql")
_FLOAT8S = sa.LargeBinary().with_variant(
    postgresql.ARRAY(postgresql.DOUBLE_PRECISION()), "postgresql"
)
# The chunk size and storage as in syllabus.meta.tables.tracking at this revision.
_CHUNK_POINTS = 320
_STORAGE = (
    "ALTER TABLE metric_chunks ALTER COLUMN steps SET STORAGE EXTERNAL, "
    "ALTER COLUMN timestamps SET STORAGE EXTERNAL, ALTER COLUMN vals SET STORAGE EXTERNAL"
)
# Consecutive seqs of a series share seq - row_number(); each such stretch is also cut
# wherever the series' row number passes a multiple of _CHUNK_POINTS, so no chunk holds
# more (the cut need not fall where the writer's would: a chunk is any stretch).
_MOVE = f"""
INSERT INTO metric_chunks (run_pk, key_id, first_seq, steps, timestamps, vals)
SELECT run_pk, key_id, min(seq), array_agg(step ORDER BY seq),
       array_agg(timestamp ORDER BY seq), array_agg(value ORDER BY seq)
FROM (SELECT run_pk, key_id, step, timestamp, seq, value,
             seq - row_number() OVER w AS stretch,
             (row_number() OVER w - 1) / {_CHUNK_POINTS} AS part
      FROM metrics WINDOW w AS (PARTITION BY run_pk, key_id ORDER BY seq)) AS m
GROUP BY run_pk, key_id, stretch, part
"""
_MOVE_BACK = """
INSERT INTO metrics (run_pk, key_id, step, timestamp, seq, value)
SELECT c.run_pk, c.key_id, u.s, u.t, c.first_seq + u.o - 1, u.v
FROM metric_chunks AS c, unnest(c.steps, c.timestamps, c.vals) WITH ORDINALITY AS u(s, t, v, o)
"""


def upgrade() -> None:
    """Create ``metric_chunks``; on PostgreSQL move the points of ``metrics`` into it."""
    op.create_table(
        "metric_chunks",
        sa.Column("run_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("steps", _INT8S, nullable=False),
        sa.Column("timestamps", _INT8S, nullable=False),
        sa.Column("vals", _FLOAT8S, nullable=False),
        sa.PrimaryKeyConstraint("run_pk", "key_id", "first_seq", name=op.f("pk_metric_chunks")),
        postgresql_with={"toast_tuple_target": 8160},
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_STORAGE)
    op.execute(_MOVE)
    op.execute("TRUNCATE metrics")


def downgrade() -> None:
    """On PostgreSQL, the chunks' points back into ``metrics``; drop ``metric_chunks``."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_MOVE_BACK)
    op.drop_table("metric_chunks")
