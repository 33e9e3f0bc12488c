"""Users, API tokens and roles of the team server."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

from syllabus.errors import InvalidArgumentError

__all__ = ["ROLE_NAMES", "Principal", "Role", "Token", "User", "parse_role"]


class Role(IntEnum):
    """What a user may do in a workspace; each role may do everything the lower ones may.

    - viewer: read everything.
    - editor: log runs, metrics, artifacts, data and code; register models.
    - maintainer: approve requests, promote to production, retire, apply deployments.
    - admin: manage users, tokens, policies and webhooks; maintenance (purge).
    """

    VIEWER = 1
    EDITOR = 2
    MAINTAINER = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        return self.name.lower()


ROLE_NAMES: Final = tuple(r.label for r in Role)


def parse_role(text: str) -> Role:
    """The role called ``text``; InvalidArgumentError lists the valid ones."""
    try:
        return Role[text.strip().upper()]
    except KeyError:
        raise InvalidArgumentError(
            f"unknown role {text!r} (expected one of {', '.join(ROLE_NAMES)})"
        ) from None


@dataclass(frozen=True, slots=True)
class User:
    """A server user; ``roles`` maps workspace names to role names."""

    id: str
    name: str
    admin: bool
    created_at: int
    disabled_at: int | None = None
    roles: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Token:
    """An API token as listed (never its secret; ``secret`` is set only when created)."""

    id: str
    user: str
    name: str
    prefix: str
    workspace: str | None
    created_at: int
    expires_at: int | None
    revoked_at: int | None
    last_used_at: int | None = None
    secret: str | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who sent a request: a user with their roles, through a token maybe bound to one
    workspace. ``name`` goes into audit logs."""

    name: str
    admin: bool
    roles: dict[str, Role]
    token_workspace: str | None = None

    def role_in(self, workspace: str) -> Role | None:
        if self.token_workspace is not None and self.token_workspace != workspace:
            return None
        if self.admin:
            return Role.ADMIN
        return self.roles.get(workspace)
