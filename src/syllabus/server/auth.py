"""Who is calling and what they may do: bearer tokens, roles per workspace.

With auth enabled every API request needs ``Authorization: Bearer <token>``; the token's
user needs a role in the request's workspace at least as high as the route's (a token
bound to one workspace works only there; server admins have every role everywhere).
With auth disabled (a server on 127.0.0.1 with no users), requests are anonymous and
allowed, and audit records keep the name the client sent.

A token's principal is kept for :data:`CACHE_SECONDS` per process, so a client's requests
do not each look it up: a change made through this server (a revoked token, a new role)
applies at once, one made elsewhere (another worker, ``syllabus admin`` on the database)
within that time.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Final

from syllabus.errors import AuthenticationError, PermissionDeniedError
from syllabus.server.models import Principal, Role

if TYPE_CHECKING:
    from starlette.requests import Request

    from syllabus.server.sql import SqlAuthStore

__all__ = ["CACHE_SECONDS", "Auth", "bearer_token"]

CACHE_SECONDS: Final = 2.0
_CACHE_MAX: Final = 10_000


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


class Auth:
    """Authentication against the server's user table and role checks."""

    def __init__(self, store: SqlAuthStore, *, enabled: bool) -> None:
        self.store = store
        self.enabled = enabled
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop the principals kept (users, roles or tokens changed)."""
        with self._lock:
            self._cache.clear()

    def _authenticate(self, token: str) -> Principal:
        now = time.monotonic()
        with self._lock:
            kept = self._cache.get(token)
        if kept is not None and now - kept[0] < CACHE_SECONDS:
            return kept[1]
        principal = self.store.authenticate(token)
        with self._lock:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[token] = (now, principal)
        return principal

    def principal(self, request: Request) -> Principal | None:
        """The caller (None when auth is disabled); AuthenticationError without a valid token."""
        if not self.enabled:
            return None
        cached = getattr(request.state, "principal", None)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        token = bearer_token(request)
        if token is None:
            raise AuthenticationError(
                "this server needs an API token: set SYLLABUS_TOKEN (an admin makes one with "
                "`syllabus admin tokens create`)"
            )
        principal = self._authenticate(token)
        request.state.principal = principal
        return principal

    def require(self, request: Request, workspace: str, role: Role, what: str) -> Principal | None:
        """The caller, if they may do ``what`` (needing ``role``) in ``workspace``."""
        principal = self.principal(request)
        if principal is None:
            return None
        have = principal.role_in(workspace)
        if have is None:
            if principal.token_workspace not in (None, workspace):
                raise PermissionDeniedError(
                    f"this token of {principal.name} is for workspace "
                    f"{principal.token_workspace!r}, not {workspace!r}"
                )
            raise PermissionDeniedError(f"{principal.name} has no role in workspace {workspace!r}")
        if have < role:
            raise PermissionDeniedError(
                f"{principal.name} is {have.label} in workspace {workspace!r}; {what} needs "
                f"{role.label}"
            )
        return principal

    def require_admin(self, request: Request, what: str) -> Principal | None:
        principal = self.principal(request)
        if principal is not None and not principal.admin:
            raise PermissionDeniedError(f"{what} needs a server admin; {principal.name} is not one")
        return principal
