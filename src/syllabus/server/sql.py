"""SQL of the team server's own tables: users, tokens, roles, applied metric batches."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from syllabus._utils.ids import new_id
from syllabus.errors import (
    AlreadyExistsError,
    AuthenticationError,
    InvalidArgumentError,
    NotFoundError,
)
from syllabus.meta.tables.server import server_batches, server_roles, server_tokens, server_users
from syllabus.meta.tx import transaction
from syllabus.server.models import Principal, Role, Token, User, parse_role

if TYPE_CHECKING:
    from syllabus.tracking.sql import Guard

__all__ = ["TOKEN_PREFIX", "SqlAuthStore", "hash_token"]

TOKEN_PREFIX = "syl_"  # noqa: S105 - the public prefix of every token, not a secret
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
_WORKSPACE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_BATCH_VALUES: Final[dict[str, Any]] = {
    "batch_id": sa.bindparam("batch_id"),
    "state": sa.bindparam("state"),
    "created_at": sa.bindparam("created_at"),
}
# RETURNING, not rowcount: the PostgreSQL driver does not count an upsert's rows
_RECORD_BATCH_PG: Final = (
    pg_insert(server_batches)
    .values(_BATCH_VALUES)
    .on_conflict_do_nothing()
    .returning(server_batches.c.batch_id)
)
_RECORD_BATCH: Final = (
    sqlite_insert(server_batches)
    .values(_BATCH_VALUES)
    .on_conflict_do_nothing()
    .returning(server_batches.c.batch_id)
)


def _now() -> int:
    return int(time.time() * 1000)


def hash_token(secret: str) -> str:
    """The stored form of a token: SHA-256 of the secret (a random 256-bit value, so a fast
    hash is enough; no salt needed, lookups are by hash)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def check_workspace_name(name: str) -> str:
    if not _WORKSPACE.match(name):
        raise InvalidArgumentError(
            f"invalid workspace name {name!r} (lowercase letters, digits, '-' and '_', at most 64)"
        )
    return name


class SqlAuthStore:
    """Users, tokens and roles in the server's main database."""

    def __init__(self, engine: Engine, clock: Callable[[], int] = _now) -> None:
        self.engine = engine
        self._clock = clock

    # -- users ---------------------------------------------------------------------------

    def add_user(self, name: str, *, admin: bool = False) -> User:
        if not _NAME.match(name):
            raise InvalidArgumentError(
                f"invalid user name {name!r} (letters, digits, '.', '_', '@', '-'; at most 128)"
            )
        user_id, now = new_id(), self._clock()
        try:
            with transaction(self.engine) as conn:
                conn.execute(
                    server_users.insert().values(id=user_id, name=name, admin=admin, created_at=now)
                )
        except IntegrityError:
            raise AlreadyExistsError(f"user {name!r} already exists") from None
        return User(user_id, name, admin, now)

    def _user_row(self, conn: sa.Connection, name: str) -> Any:
        row = conn.execute(sa.select(server_users).where(server_users.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"user {name!r} not found; `syllabus admin users list` shows users")
        return row

    def get_user(self, name: str) -> User:
        with transaction(self.engine, readonly=True) as conn:
            row = self._user_row(conn, name)
            roles = dict(
                conn.execute(
                    sa.select(server_roles.c.workspace, server_roles.c.role).where(
                        server_roles.c.user_id == row.id
                    )
                ).all()
            )
        return User(row.id, row.name, row.admin, row.created_at, row.disabled_at, roles)

    def list_users(self) -> list[User]:
        with transaction(self.engine, readonly=True) as conn:
            rows = conn.execute(sa.select(server_users).order_by(server_users.c.name)).all()
            grants: dict[str, dict[str, str]] = {}
            for uid, ws, role in conn.execute(
                sa.select(server_roles.c.user_id, server_roles.c.workspace, server_roles.c.role)
            ):
                grants.setdefault(uid, {})[ws] = role
        return [
            User(r.id, r.name, r.admin, r.created_at, r.disabled_at, grants.get(r.id, {}))
            for r in rows
        ]

    def count_users(self) -> int:
        with transaction(self.engine, readonly=True) as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(server_users)).scalar_one()
            )

    def set_user(
        self, name: str, *, admin: bool | None = None, disabled: bool | None = None
    ) -> User:
        values: dict[str, Any] = {}
        if admin is not None:
            values["admin"] = admin
        if disabled is not None:
            values["disabled_at"] = self._clock() if disabled else None
        with transaction(self.engine) as conn:
            row = self._user_row(conn, name)
            if values:
                conn.execute(
                    server_users.update().where(server_users.c.id == row.id).values(**values)
                )
        return self.get_user(name)

    def remove_user(self, name: str) -> None:
        with transaction(self.engine) as conn:
            row = self._user_row(conn, name)
            conn.execute(server_tokens.delete().where(server_tokens.c.user_id == row.id))
            conn.execute(server_roles.delete().where(server_roles.c.user_id == row.id))
            conn.execute(server_users.delete().where(server_users.c.id == row.id))

    def grant(self, name: str, workspace: str, role: str | Role) -> User:
        """Give ``name`` a role in ``workspace`` (replacing the one they had there)."""
        role_ = role if isinstance(role, Role) else parse_role(role)
        check_workspace_name(workspace)
        with transaction(self.engine) as conn:
            row = self._user_row(conn, name)
            conn.execute(
                server_roles.delete().where(
                    (server_roles.c.user_id == row.id) & (server_roles.c.workspace == workspace)
                )
            )
            conn.execute(
                server_roles.insert().values(
                    user_id=row.id, workspace=workspace, role=role_.label, granted_at=self._clock()
                )
            )
        return self.get_user(name)

    def revoke_role(self, name: str, workspace: str) -> bool:
        with transaction(self.engine) as conn:
            row = self._user_row(conn, name)
            result = conn.execute(
                server_roles.delete().where(
                    (server_roles.c.user_id == row.id) & (server_roles.c.workspace == workspace)
                )
            )
        return bool(result.rowcount)

    # -- tokens --------------------------------------------------------------------------

    def create_token(
        self,
        user: str,
        *,
        name: str = "",
        workspace: str | None = None,
        expires_in: float | None = None,
    ) -> Token:
        """A new random token for ``user``; its secret is in the result, and only there."""
        if workspace is not None:
            check_workspace_name(workspace)
        if expires_in is not None and expires_in <= 0:
            raise InvalidArgumentError("a token's lifetime must be positive")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        expires = None if expires_in is None else now + int(expires_in * 1000)
        token_id = new_id()
        with transaction(self.engine) as conn:
            row = self._user_row(conn, user)
            conn.execute(
                server_tokens.insert().values(
                    id=token_id,
                    user_id=row.id,
                    name=name[:128],
                    prefix=secret[: len(TOKEN_PREFIX) + 6],
                    hash=hash_token(secret),
                    workspace=workspace,
                    created_at=now,
                    expires_at=expires,
                )
            )
        return Token(
            token_id, user, name[:128], secret[:10], workspace, now, expires, None, None, secret
        )

    def list_tokens(self, user: str | None = None) -> list[Token]:
        query = (
            sa.select(server_tokens, server_users.c.name.label("user_name"))
            .join(server_users, server_users.c.id == server_tokens.c.user_id)
            .order_by(server_tokens.c.created_at)
        )
        if user is not None:
            query = query.where(server_users.c.name == user)
        with transaction(self.engine, readonly=True) as conn:
            rows = conn.execute(query).all()
        return [
            Token(
                r.id,
                r.user_name,
                r.name,
                r.prefix,
                r.workspace,
                r.created_at,
                r.expires_at,
                r.revoked_at,
                r.last_used_at,
            )
            for r in rows
        ]

    def revoke_token(self, ref: str) -> Token:
        """Revoke a token by id (or unique prefix of at least 6) or by its shown prefix."""
        matches = [
            t
            for t in self.list_tokens()
            if len(ref) >= 6 and (t.id.startswith(ref) or t.prefix == ref)
        ]
        if not matches:
            raise NotFoundError(
                f"token {ref!r} not found; `syllabus admin tokens list` shows tokens"
            )
        if len(matches) > 1:
            raise InvalidArgumentError(f"token {ref!r} is ambiguous; give more of its id")
        token = matches[0]
        with transaction(self.engine) as conn:
            conn.execute(
                server_tokens.update()
                .where((server_tokens.c.id == token.id) & server_tokens.c.revoked_at.is_(None))
                .values(revoked_at=self._clock())
            )
        return next(t for t in self.list_tokens() if t.id == token.id)

    def authenticate(self, secret: str) -> Principal:
        """The principal a token secret stands for; AuthenticationError when it is unknown,
        expired or revoked, or its user is disabled."""
        now = self._clock()
        digest = hash_token(secret)
        with transaction(self.engine, readonly=True) as conn:
            row = conn.execute(
                sa.select(
                    server_tokens.c.id,
                    server_tokens.c.workspace,
                    server_tokens.c.expires_at,
                    server_tokens.c.revoked_at,
                    server_tokens.c.last_used_at,
                    server_users.c.id.label("user_id"),
                    server_users.c.name,
                    server_users.c.admin,
                    server_users.c.disabled_at,
                )
                .join(server_users, server_users.c.id == server_tokens.c.user_id)
                .where(server_tokens.c.hash == digest)
            ).first()
            if row is None:
                raise AuthenticationError("unknown API token")
            if row.revoked_at is not None:
                raise AuthenticationError(f"API token of {row.name} was revoked")
            if row.expires_at is not None and row.expires_at <= now:
                raise AuthenticationError(
                    f"API token of {row.name} expired; `syllabus admin tokens create` makes "
                    "a new one"
                )
            if row.disabled_at is not None:
                raise AuthenticationError(f"user {row.name} is disabled")
            roles = {
                ws: parse_role(role)
                for ws, role in conn.execute(
                    sa.select(server_roles.c.workspace, server_roles.c.role).where(
                        server_roles.c.user_id == row.user_id
                    )
                )
            }
        if row.last_used_at is None or now - row.last_used_at > 60_000:
            with transaction(self.engine) as conn:
                conn.execute(
                    server_tokens.update()
                    .where(server_tokens.c.id == row.id)
                    .values(last_used_at=now)
                )
        return Principal(row.name, bool(row.admin), roles, row.workspace)

    # -- idempotent metric batches ---------------------------------------------------------

    def batch_guard(self, batch_id: str) -> Guard:
        """The guard that records a client-made batch id inside the transaction that
        writes the batch's points (see :meth:`SqlTrackingStore.log_metrics`): it lets the
        points in, or not when a request with this id committed already (a retry after a
        lost answer). The id commits or rolls back with the points, so a retry of a batch
        whose first attempt is still running waits for it (a second insert of a key waits
        for the transaction holding it: the row lock on PostgreSQL, the write lock on
        SQLite), then finds the id, or applies the points itself when the first attempt
        rolled back."""
        from syllabus.tracking.sql import Guard

        statement = _RECORD_BATCH_PG if self.engine.dialect.name == "postgresql" else _RECORD_BATCH
        params = {"batch_id": batch_id, "state": "done", "created_at": self._clock()}
        return Guard(statement, params)

    def forget_batches(self, older_than_ms: int) -> int:
        """Drop records of batches applied before ``older_than_ms`` (retries are long over)."""
        with transaction(self.engine) as conn:
            result = conn.execute(
                server_batches.delete().where(
                    (server_batches.c.created_at < older_than_ms)
                    & (server_batches.c.state == "done")
                )
            )
        return int(result.rowcount)
