"""The registry over REST: models, versions, stages, policies, approvals, audit, webhooks.

Editors register versions and move them between the stages below production; maintainers
promote to production, approve or reject requests and retire versions; admins manage
policies and webhooks. The audit log records the authenticated user as the actor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from syllabus.refs import Stage
from syllabus.server.models import Role
from syllabus.server.routes._rpc import RoleRule, store_router

if TYPE_CHECKING:
    from fastapi import APIRouter

    from syllabus.server.state import ServerState

__all__ = ["router"]


def _stage_role(args: Mapping[str, Any]) -> Role:
    return Role.MAINTAINER if args.get("to") == Stage.PRODUCTION else Role.EDITOR


ROLES: dict[str, RoleRule] = {
    "transition": _stage_role,
    "decide": Role.MAINTAINER,
    "retire": Role.MAINTAINER,
    "add_policy": Role.ADMIN,
    "add_webhook": Role.ADMIN,
    "remove_webhook": Role.ADMIN,
    "list_webhooks": Role.ADMIN,  # they carry secrets
}


def router(state: ServerState) -> APIRouter:
    return store_router(
        state,
        "registry",
        lambda ws: ws.backend.registry_store,
        roles=ROLES,
    )
