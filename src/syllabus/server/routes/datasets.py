"""Data versioning over REST: datasets, versions, tags and remotes (bytes go through
the blob routes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from syllabus.server.models import Role
from syllabus.server.routes._rpc import store_router

if TYPE_CHECKING:
    from fastapi import APIRouter

    from syllabus.server.state import ServerState

__all__ = ["router"]

ROLES = {
    "purge_deleted": Role.ADMIN,
    "add_remote": Role.MAINTAINER,
    "remove_remote": Role.MAINTAINER,
}


def router(state: ServerState) -> APIRouter:
    return store_router(state, "datasets", lambda ws: ws.backend.datasets_store, roles=ROLES)
