"""Pipelines over REST: definitions, triggers, runs, steps, the step cache and firings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from syllabus.server.routes._rpc import store_router

if TYPE_CHECKING:
    from fastapi import APIRouter

    from syllabus.server.state import ServerState

__all__ = ["router"]


def router(state: ServerState) -> APIRouter:
    return store_router(state, "pipelines", lambda ws: ws.backend.pipeline_store)
