"""Tables of users, API tokens and workspace roles of the team server (syllabus.server).

``server_users``
    one row per user (``name`` unique). ``admin`` users manage users and tokens on every
    workspace; ``disabled_at`` refuses every token of a user without deleting them.
``server_tokens``
    API tokens. Only a SHA-256 ``hash`` of the random secret is stored (the secret is shown
    once, when created); ``prefix`` is its first characters, to recognise it in listings.
    A token may be limited to one ``workspace`` (NULL: every workspace its user has a role
    in), ``expires_at`` (NULL: never) and ``revoked_at``.
``server_roles``
    the role (viewer, editor, maintainer, admin) of a user in a workspace.
``server_batches``
    metric batches the server applied (or is applying), by the client-made ``batch_id``: a
    retried batch is answered without writing its points again. ``state`` is ``done``.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa

from syllabus.meta.schema import metadata

__all__ = ["server_batches", "server_roles", "server_tokens", "server_users"]

server_users: Final = sa.Table(
    "server_users",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("admin", sa.Boolean(), nullable=False),
    sa.Column("created_at", sa.BigInteger(), nullable=False),  # Unix milliseconds
    sa.Column("disabled_at", sa.BigInteger(), nullable=True),
)

server_tokens: Final = sa.Table(
    "server_tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "user_id",
        sa.String(32),
        sa.ForeignKey("server_users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False, unique=True),  # SHA-256 hex of the secret
    sa.Column("workspace", sa.String(64), nullable=True),
    sa.Column("created_at", sa.BigInteger(), nullable=False),
    sa.Column("expires_at", sa.BigInteger(), nullable=True),
    sa.Column("revoked_at", sa.BigInteger(), nullable=True),
    sa.Column("last_used_at", sa.BigInteger(), nullable=True),
)

server_roles: Final = sa.Table(
    "server_roles",
    metadata,
    sa.Column(
        "user_id",
        sa.String(32),
        sa.ForeignKey("server_users.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("workspace", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("granted_at", sa.BigInteger(), nullable=False),
)

server_batches: Final = sa.Table(
    "server_batches",
    metadata,
    sa.Column("batch_id", sa.String(64), primary_key=True),
    sa.Column("state", sa.String(8), nullable=False),  # pending | done
    sa.Column("created_at", sa.BigInteger(), nullable=False, index=True),
)
