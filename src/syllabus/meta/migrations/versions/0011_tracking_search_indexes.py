"""Tracking: index live runs by start time so searches over every experiment read a page
from an index instead of sorting every run.

``ix_runs_start_time_id`` is ``(start_time, id)`` over live runs (``WHERE deleted_at IS
NULL``): ``deleted_at IS NULL ORDER BY start_time DESC, id DESC`` (the runs table without
an experiment, and its deep pages) walks it in order and stops at the page's end.
``ix_runs_deleted_at`` now holds deleted runs only (purging reads them): holding every
live run's NULL, SQLite's planner preferred it and sorted every run.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 17:07:23.110688
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_LIVE = sa.text("deleted_at IS NULL")
_DELETED = sa.text("deleted_at IS NOT NULL")


def upgrade() -> None:
    """A partial index of live runs by start time; the deleted_at index, deleted runs only."""
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_deleted_at"))
        batch_op.create_index(
            batch_op.f("ix_runs_deleted_at"),
            ["deleted_at"],
            unique=False,
            sqlite_where=_DELETED,
            postgresql_where=_DELETED,
        )
        batch_op.create_index(
            batch_op.f("ix_runs_start_time_id"),
            ["start_time", "id"],
            unique=False,
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        )


def downgrade() -> None:
    """Back to a plain index on ``deleted_at``."""
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runs_start_time_id"))
        batch_op.drop_index(batch_op.f("ix_runs_deleted_at"))
        batch_op.create_index(batch_op.f("ix_runs_deleted_at"), ["deleted_at"], unique=False)
