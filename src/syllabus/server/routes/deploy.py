"""Deployments over REST: revisions and their state. Applying a deployment (creating a
revision) needs a maintainer; reading them, a viewer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from syllabus.server.models import Role
from syllabus.server.routes._rpc import store_router

if TYPE_CHECKING:
    from fastapi import APIRouter

    from syllabus.server.state import ServerState

__all__ = ["router"]

ROLES = {"create_revision": Role.MAINTAINER, "update_revision": Role.MAINTAINER}


def router(state: ServerState) -> APIRouter:
    return store_router(state, "deploy", lambda ws: ws.backend.deploy_store, roles=ROLES)
