"""The SQLAlchemy Core tables: the single source of DDL.

Components' tables are defined in :mod:`syllabus.meta.tables` on the same :data:`metadata`
(components import them from there into their ``sql.py``), each with an Alembic
migration; a test checks that the migrations produce exactly this metadata on SQLite and
PostgreSQL. Constraint and index names follow
:data:`NAMING_CONVENTION` so migrations name the same objects on both backends.

Foundation tables:

``workspace``
    key/value facts about the database: ``workspace_id``, ``created_at`` (Unix ms) and
    ``created_by`` (the Syllabus version that created it).
``blob_refs``
    the one table through which every component declares which blob digests its rows
    reference. ``store gc`` keeps every digest listed here and ``store fsck`` checks they
    exist.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

__all__ = [
    "NAMING_CONVENTION",
    "SCHEMA_HEAD",
    "VERSION_TABLE",
    "blob_refs",
    "metadata",
    "workspace",
]

NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SCHEMA_HEAD: Final = "0012"
"""The newest migration; ``new_revision`` updates it and a test checks it against Alembic's
head, so the everyday schema check needs one query and no Alembic import."""

VERSION_TABLE: Final = "syllabus_alembic_version"
"""Alembic's version table; its own name so a shared PostgreSQL schema cannot confuse it."""

metadata: Final = sa.MetaData(naming_convention=NAMING_CONVENTION)

# An auto-increment primary key that is SQLite's rowid there and a BIGINT elsewhere.
BigIntId: Final = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

workspace: Final = sa.Table(
    "workspace",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
)

blob_refs: Final = sa.Table(
    "blob_refs",
    metadata,
    sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("owner_type", sa.String(32), nullable=False),
    sa.Column("owner_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.BigInteger(), nullable=False),  # Unix milliseconds
    # Leftmost column ``digest``: also the index for "who references this digest" and for
    # streaming distinct digests in order, so no separate index on digest alone.
    sa.UniqueConstraint("digest", "owner_type", "owner_id"),
    sa.Index(None, "owner_type", "owner_id"),
)
