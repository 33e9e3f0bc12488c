"""Tables of the data-versioning component (``syllabus.datasets``).

A version costs one row however many files it holds: its files are in the manifest blob
(``tree``), which the blob store chunks by content, so a new version of a large folder
stores only the manifest chunks that changed. Tabular profiles are files of a second
manifest (``profiles``: path -> profile JSON), shared the same way.

``datasets``
    one row per name.
``dataset_versions``
    versions 1, 2, 3 ... per dataset; ``(dataset_id, version)`` is unique, which is what
    serialises two concurrent adds (the loser retries with the next number). Soft-deleted
    versions keep their row (``deleted_at``) until purged.
``dataset_tags``
    movable names for versions (``churn@gold``), one per name per dataset.
``remotes``
    named blob stores (a folder or ``s3://bucket/prefix``) to push to and pull from.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

from syllabus.meta.schema import metadata

__all__ = ["dataset_tags", "dataset_versions", "datasets", "remotes"]

datasets: Final = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("created_at", sa.BigInteger(), nullable=False),  # Unix milliseconds
    sa.UniqueConstraint("name"),
)

dataset_versions: Final = sa.Table(
    "dataset_versions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "dataset_id",
        sa.String(32),
        sa.ForeignKey("datasets.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("tree", sa.String(64), nullable=False),  # manifest digest
    sa.Column("profiles", sa.String(64), nullable=True),  # manifest of profile JSON blobs
    sa.Column("kind", sa.String(8), nullable=False),  # "file" or "folder"
    sa.Column("file_count", sa.BigInteger(), nullable=False),
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Column("empty_dirs", sa.Text(), nullable=True),  # JSON list, usually NULL
    sa.Column("source", sa.Text(), nullable=True),  # where it was added from (informative)
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("author", sa.String(128), nullable=False),
    sa.Column("created_at", sa.BigInteger(), nullable=False),
    sa.Column("deleted_at", sa.BigInteger(), nullable=True),
    sa.UniqueConstraint("dataset_id", "version"),
    sa.Index(None, "deleted_at"),
)

dataset_tags: Final = sa.Table(
    "dataset_tags",
    metadata,
    sa.Column(
        "dataset_id",
        sa.String(32),
        sa.ForeignKey("datasets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("tag", sa.String(64), primary_key=True),
    sa.Column(
        "version_id",
        sa.String(32),
        sa.ForeignKey("dataset_versions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("created_at", sa.BigInteger(), nullable=False),
    sa.Index(None, "version_id"),
)

remotes: Final = sa.Table(
    "remotes",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("url", sa.Text(), nullable=False),
    sa.Column("created_at", sa.BigInteger(), nullable=False),
)
