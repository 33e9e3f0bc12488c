"""Code: code_snapshots, environments, notebooks, notebook_checkpoints and run_code.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 13:20:50.532509
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the code-versioning tables."""
    op.create_table(
        "code_snapshots",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("git_commit", sa.String(length=64), nullable=True),
        sa.Column("git_branch", sa.String(length=255), nullable=True),
        sa.Column("git_remote", sa.Text(), nullable=True),
        sa.Column("dirty", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_code_snapshots")),
        sa.UniqueConstraint("digest", name=op.f("uq_code_snapshots_digest")),
    )
    with op.batch_alter_table("code_snapshots", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_code_snapshots_git_commit"), ["git_commit"], unique=False
        )

    op.create_table(
        "environments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("python", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=255), nullable=False),
        sa.Column("package_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_environments")),
        sa.UniqueConstraint("digest", name=op.f("uq_environments_digest")),
    )
    op.create_table(
        "notebooks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notebooks")),
        sa.UniqueConstraint("path", name=op.f("uq_notebooks_path")),
    )
    op.create_table(
        "notebook_checkpoints",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("notebook_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("cell_count", sa.Integer(), nullable=False),
        sa.Column("outputs", sa.Boolean(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=128), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["notebook_id"],
            ["notebooks.id"],
            name=op.f("fk_notebook_checkpoints_notebook_id_notebooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notebook_checkpoints")),
        sa.UniqueConstraint(
            "notebook_id", "version", name=op.f("uq_notebook_checkpoints_notebook_id_version")
        ),
    )
    with op.batch_alter_table("notebook_checkpoints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notebook_checkpoints_run_id"), ["run_id"], unique=False
        )

    op.create_table(
        "run_code",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("snapshot_id", sa.String(length=32), nullable=False),
        sa.Column("environment_id", sa.String(length=32), nullable=True),
        sa.Column("checkpoint_id", sa.String(length=32), nullable=True),
        sa.Column("root", sa.Text(), nullable=True),
        sa.Column("entry_point", sa.Text(), nullable=True),
        sa.Column("argv", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkpoint_id"],
            ["notebook_checkpoints.id"],
            name=op.f("fk_run_code_checkpoint_id_notebook_checkpoints"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["environment_id"],
            ["environments.id"],
            name=op.f("fk_run_code_environment_id_environments"),
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["code_snapshots.id"],
            name=op.f("fk_run_code_snapshot_id_code_snapshots"),
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_run_code")),
    )
    with op.batch_alter_table("run_code", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_run_code_checkpoint_id"), ["checkpoint_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_run_code_environment_id"), ["environment_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_run_code_snapshot_id"), ["snapshot_id"], unique=False)


def downgrade() -> None:
    """Drop the code-versioning tables."""
    with op.batch_alter_table("run_code", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_code_snapshot_id"))
        batch_op.drop_index(batch_op.f("ix_run_code_environment_id"))
        batch_op.drop_index(batch_op.f("ix_run_code_checkpoint_id"))

    op.drop_table("run_code")
    with op.batch_alter_table("notebook_checkpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notebook_checkpoints_run_id"))

    op.drop_table("notebook_checkpoints")
    op.drop_table("notebooks")
    op.drop_table("environments")
    with op.batch_alter_table("code_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_code_snapshots_git_commit"))

    op.drop_table("code_snapshots")
