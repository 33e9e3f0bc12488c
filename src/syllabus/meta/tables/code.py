"""Tables of the code component (``syllabus.code``): code snapshots, environments, which
run used which, and notebook checkpoints.

Snapshots and environments are content-addressed: their full description is a canonical
JSON blob whose digest is unique here, so capturing the same code (or environment) twice
adds no row and no bytes. The summary columns are copies of fields of that blob, for
listing and search.

``code_snapshots``
    one row per distinct snapshot record (``digest``): a git commit plus the uncommitted
    patch and untracked files, or a tree of source files outside git.
``environments``
    one row per distinct environment record: Python, platform, distributions, GPUs and
    allow-listed environment variables.
``run_code``
    which snapshot and environment a run used, with its entry point and arguments.
    ``run_id`` is the tracking run's id; the code component does not depend on tracking.
``notebooks`` and ``notebook_checkpoints``
    notebooks by project-relative path, and their checkpoints 1, 2, 3 ... (canonical
    notebook JSON in the blob ``digest``); ``(notebook_id, version)`` is unique.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

from syllabus.meta.schema import metadata

__all__ = [
    "code_snapshots",
    "environments",
    "notebook_checkpoints",
    "notebooks",
    "run_code",
]

code_snapshots: Final = sa.Table(
    "code_snapshots",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),  # the snapshot record blob
    sa.Column("kind", sa.String(8), nullable=False),  # "git" or "files"
    sa.Column("git_commit", sa.String(64), nullable=True),
    sa.Column("git_branch", sa.String(255), nullable=True),
    sa.Column("git_remote", sa.Text(), nullable=True),  # credentials stripped
    sa.Column("dirty", sa.Boolean(), nullable=False),
    sa.Column("created_at", sa.BigInteger(), nullable=False),  # Unix milliseconds
    sa.UniqueConstraint("digest"),
    sa.Index(None, "git_commit"),
)

environments: Final = sa.Table(
    "environments",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),  # the environment record blob
    sa.Column("python", sa.String(64), nullable=False),
    sa.Column("platform", sa.String(255), nullable=False),
    sa.Column("package_count", sa.Integer(), nullable=False),
    sa.Column("created_at", sa.BigInteger(), nullable=False),
    sa.UniqueConstraint("digest"),
)

notebooks: Final = sa.Table(
    "notebooks",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("path", sa.String(1024), nullable=False),  # project-relative POSIX path
    sa.Column("created_at", sa.BigInteger(), nullable=False),
    sa.UniqueConstraint("path"),
)

notebook_checkpoints: Final = sa.Table(
    "notebook_checkpoints",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "notebook_id",
        sa.String(32),
        sa.ForeignKey("notebooks.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),  # canonical notebook JSON
    sa.Column("cell_count", sa.Integer(), nullable=False),
    sa.Column("outputs", sa.Boolean(), nullable=False),  # outputs kept in the blob
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("author", sa.String(128), nullable=False),
    sa.Column("run_id", sa.String(32), nullable=True),  # the run it was taken for
    sa.Column("created_at", sa.BigInteger(), nullable=False),
    sa.UniqueConstraint("notebook_id", "version"),
    sa.Index(None, "run_id"),
)

run_code: Final = sa.Table(
    "run_code",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column(
        "snapshot_id",
        sa.String(32),
        sa.ForeignKey("code_snapshots.id"),
        nullable=False,
    ),
    sa.Column(
        "environment_id",
        sa.String(32),
        sa.ForeignKey("environments.id"),
        nullable=True,
    ),
    sa.Column(
        "checkpoint_id",
        sa.String(32),
        sa.ForeignKey("notebook_checkpoints.id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("root", sa.Text(), nullable=True),  # absolute folder captured from
    sa.Column("entry_point", sa.Text(), nullable=True),  # root-relative script or notebook
    sa.Column("argv", sa.Text(), nullable=True),  # JSON list of arguments after the script
    sa.Column("created_at", sa.BigInteger(), nullable=False),
    sa.Index(None, "snapshot_id"),
    sa.Index(None, "environment_id"),
    sa.Index(None, "checkpoint_id"),
)
