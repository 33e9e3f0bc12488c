"""Tracking over REST: experiments, runs, params, tags, metrics, artifacts' rows, inputs.

Metric batches carry a client-made ``batch_id``: a batch the server applied already is
answered without writing its points again, so clients may retry freely. The id is recorded
in the transaction that writes the points: a retry that arrives while the first attempt
still runs waits for it, then finds the id committed or, when that attempt failed and
rolled back, writes the points itself.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from syllabus.errors import NotFoundError
from syllabus.server.models import Principal, Role
from syllabus.server.routes._rpc import store_router

if TYPE_CHECKING:
    from fastapi import APIRouter

    from syllabus.server.state import ServerState, Workspace

__all__ = ["router"]

ROLES = {"purge_deleted": Role.ADMIN}
_FORGET_EVERY = 1000
_KEEP_BATCHES_MS = 24 * 3600 * 1000


def router(state: ServerState) -> APIRouter:
    from syllabus.server.sql import SqlAuthStore

    applied = 0

    def log_metrics(ws: Workspace, principal: Principal | None, args: dict[str, Any]) -> None:
        nonlocal applied
        points: dict[tuple[str, str], list[tuple[int, int, float]]] = {}
        total = 0
        for series in args["points"]:
            points.setdefault((series.run_id, series.key), []).extend(series.points)
            total += len(series.points)
        batch_id = args.get("batch_id")
        store = ws.backend.tracking_store
        if not batch_id:
            store.log_metrics(points, end=args.get("end"))
            state.metrics.add("metric_points_total", total)
            return
        batches = SqlAuthStore(ws.backend.engine)
        guard = batches.batch_guard(batch_id)
        missing_runs: NotFoundError | None = None
        try:
            store.log_metrics(points, end=args.get("end"), first=guard)
        except NotFoundError as exc:
            missing_runs = exc  # the points of live runs were written: the batch is applied
        if not guard.passed:
            state.metrics.add("metric_batches_replayed_total")
            return
        state.metrics.add("metric_points_total", total)
        applied += 1
        if applied % _FORGET_EVERY == 0:
            batches.forget_batches(int(time.time() * 1000) - _KEEP_BATCHES_MS)
        if missing_runs is not None:
            raise missing_runs

    return store_router(
        state,
        "tracking",
        lambda ws: ws.backend.tracking_store,
        roles=ROLES,
        handlers={"log_metrics": log_metrics},
    )
