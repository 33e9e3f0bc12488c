"""Monitoring: monitors, windows, alert rules and alerts (syllabus.monitoring).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 15:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _monitor_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["monitor_id"],
        ["monitors.id"],
        name=op.f(f"fk_{table}_monitor_id_monitors"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    """Create the monitoring tables."""
    op.create_table(
        "monitor_profiles",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("columns", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_profiles")),
        sa.UniqueConstraint("key", name=op.f("uq_monitor_profiles_key")),
    )
    op.create_table(
        "monitors",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("service", sa.String(length=128), nullable=False),
        sa.Column("log_path", sa.Text(), nullable=True),
        sa.Column("deployment", sa.String(length=128), nullable=True),
        sa.Column("env", sa.String(length=64), nullable=True),
        sa.Column("model_ref", sa.String(length=160), nullable=True),
        sa.Column("reference", sa.String(length=250), nullable=True),
        sa.Column("profile_id", sa.String(length=32), nullable=True),
        sa.Column("window_kind", sa.String(length=8), nullable=False),
        sa.Column("window_size", sa.BigInteger(), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("rows_seen", sa.BigInteger(), nullable=False),
        sa.Column("lock_owner", sa.String(length=64), nullable=True),
        sa.Column("lock_until", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_id"],
            ["monitor_profiles.id"],
            name=op.f("fk_monitors_profile_id_monitor_profiles"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitors")),
        sa.UniqueConstraint("name", name=op.f("uq_monitors_name")),
    )
    with op.batch_alter_table("monitors", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_monitors_deployment_env"), ["deployment", "env"], unique=False
        )
    op.create_table(
        "monitor_segments",
        sa.Column("monitor_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("processed_at", sa.BigInteger(), nullable=False),
        _monitor_fk("monitor_segments"),
        sa.PrimaryKeyConstraint("monitor_id", "kind", "name", name=op.f("pk_monitor_segments")),
    )
    op.create_table(
        "monitor_windows",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("monitor_id", sa.String(length=32), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("end", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("labels", sa.String(length=64), nullable=True),
        sa.Column("labelled", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        _monitor_fk("monitor_windows"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_windows")),
        sa.UniqueConstraint(
            "monitor_id", "start", name=op.f("uq_monitor_windows_monitor_id_start")
        ),
    )
    op.create_table(
        "monitor_rules",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("monitor_id", sa.String(length=32), nullable=False),
        sa.Column("expr", sa.String(length=500), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        _monitor_fk("monitor_rules"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_rules")),
        sa.UniqueConstraint("monitor_id", "expr", name=op.f("uq_monitor_rules_monitor_id_expr")),
    )
    op.create_table(
        "monitor_alerts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("monitor_id", sa.String(length=32), nullable=False),
        sa.Column("rule_id", sa.String(length=32), nullable=False),
        sa.Column("rule", sa.String(length=500), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("resolved_at", sa.BigInteger(), nullable=True),
        _monitor_fk("monitor_alerts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_alerts")),
    )
    with op.batch_alter_table("monitor_alerts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_monitor_alerts_monitor_id_state"), ["monitor_id", "state"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_monitor_alerts_rule_id"), ["rule_id"], unique=False)
    op.create_table(
        "monitor_events",
        sa.Column("seq", _BIGINT_ID, autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.String(length=32), nullable=False),
        sa.Column("monitor_id", sa.String(length=32), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.String(length=500), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        _monitor_fk("monitor_events"),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_monitor_events")),
    )
    with op.batch_alter_table("monitor_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_monitor_events_monitor_id_seq"), ["monitor_id", "seq"], unique=False
        )


def downgrade() -> None:
    """Drop the monitoring tables."""
    with op.batch_alter_table("monitor_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitor_events_monitor_id_seq"))
    op.drop_table("monitor_events")
    with op.batch_alter_table("monitor_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitor_alerts_rule_id"))
        batch_op.drop_index(batch_op.f("ix_monitor_alerts_monitor_id_state"))
    op.drop_table("monitor_alerts")
    op.drop_table("monitor_rules")
    op.drop_table("monitor_windows")
    op.drop_table("monitor_segments")
    with op.batch_alter_table("monitors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitors_deployment_env"))
    op.drop_table("monitors")
    op.drop_table("monitor_profiles")
