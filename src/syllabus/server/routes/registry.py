"""The registry over REST: models, versions, stages, policies, approvals, audit, webhooks.

Editors register versions and move them between the stages below production; maintainers
promote to production, approve or reject requests and retire versions; admins manage
policies and webhooks. The audit log records the authenticated user as the actor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from syllabus.errors import InvalidArgumentError
from syllabus.refs import Stage, parse_ref
from syllabus.server.models import Principal, Role
from syllabus.server.routes._rpc import RoleRule, store_router

if TYPE_CHECKING:
    from fastapi import APIRouter

    from syllabus.server.state import ServerState, Workspace

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


def _resolve(ws: Workspace, principal: Principal | None, args: dict[str, Any]) -> Any:
    ref = args["ref"]
    try:  # a reference from JSON may be inconsistent (kind stage without a stage): re-parse
        text = str(ref)
        checked = parse_ref(text)
    except (AttributeError, TypeError, ValueError):
        raise InvalidArgumentError(f"invalid model reference {ref!r}") from None
    if checked != ref:
        raise InvalidArgumentError(f"invalid model reference {ref!r} (reads as {text!r})")
    return ws.backend.registry_store.resolve(checked)


def _add_webhook(ws: Workspace, principal: Principal | None, args: dict[str, Any]) -> Any:
    url = urlsplit(args["url"])
    if url.scheme not in ("http", "https") or not url.netloc:
        raise InvalidArgumentError(f"webhook URL {args['url']!r} is not an http(s):// URL")
    return ws.backend.registry_store.add_webhook(**args)


def router(state: ServerState) -> APIRouter:
    return store_router(
        state,
        "registry",
        lambda ws: ws.backend.registry_store,
        roles=ROLES,
        handlers={"resolve": _resolve, "add_webhook": _add_webhook},
    )
