"""Evaluations over REST (the results blob goes through the blob routes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from syllabus.server.routes._rpc import store_router

if TYPE_CHECKING:
    from fastapi import APIRouter

    from syllabus.server.state import ServerState

__all__ = ["router"]


def router(state: ServerState) -> APIRouter:
    return store_router(state, "evaluation", lambda ws: ws.backend.evaluation_store)
