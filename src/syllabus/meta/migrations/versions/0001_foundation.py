"""Foundation: workspace facts and blob references.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import time
from importlib import metadata

import sqlalchemy as sa
from alembic import op

from syllabus._utils.ids import new_id

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _version() -> str:
    try:
        return metadata.version("syllabus")
    except metadata.PackageNotFoundError:  # pragma: no cover - source checkout
        return "unknown"


def upgrade() -> None:
    """Create ``workspace`` (with this database's facts) and ``blob_refs``."""
    workspace = op.create_table(
        "workspace",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_workspace")),
    )
    op.create_table(
        "blob_refs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("owner_type", sa.String(32), nullable=False),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blob_refs")),
        sa.UniqueConstraint(
            "digest", "owner_type", "owner_id", name=op.f("uq_blob_refs_digest_owner_type_owner_id")
        ),
    )
    op.create_index(
        op.f("ix_blob_refs_owner_type_owner_id"), "blob_refs", ["owner_type", "owner_id"]
    )
    assert workspace is not None
    op.bulk_insert(
        workspace,
        [
            {"key": "workspace_id", "value": new_id()},
            {"key": "created_at", "value": str(time.time_ns() // 1_000_000)},
            {"key": "created_by", "value": _version()},
        ],
    )


def downgrade() -> None:
    """Drop ``blob_refs`` and ``workspace``."""
    op.drop_index(op.f("ix_blob_refs_owner_type_owner_id"), table_name="blob_refs")
    op.drop_table("blob_refs")
    op.drop_table("workspace")
