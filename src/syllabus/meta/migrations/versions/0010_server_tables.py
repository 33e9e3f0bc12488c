"""Server: users, API tokens and workspace roles of the team server (syllabus.server).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 15:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the server tables: users, tokens, roles and applied metric batches."""
    op.create_table(
        "server_users",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("disabled_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_users")),
        sa.UniqueConstraint("name", name=op.f("uq_server_users_name")),
    )
    op.create_table(
        "server_batches",
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_server_batches")),
    )
    with op.batch_alter_table("server_batches", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_server_batches_created_at"), ["created_at"], unique=False
        )
    op.create_table(
        "server_roles",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("workspace", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("granted_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["server_users.id"],
            name=op.f("fk_server_roles_user_id_server_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "workspace", name=op.f("pk_server_roles")),
    )
    op.create_table(
        "server_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("workspace", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.Column("last_used_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["server_users.id"],
            name=op.f("fk_server_tokens_user_id_server_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_tokens")),
        sa.UniqueConstraint("hash", name=op.f("uq_server_tokens_hash")),
    )
    with op.batch_alter_table("server_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_server_tokens_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    """Drop the server tables."""
    with op.batch_alter_table("server_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_server_tokens_user_id"))
    op.drop_table("server_tokens")
    op.drop_table("server_roles")
    with op.batch_alter_table("server_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_server_batches_created_at"))
    op.drop_table("server_batches")
    op.drop_table("server_users")
