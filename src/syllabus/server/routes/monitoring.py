"""Monitoring over REST: the monitoring store method by method, and two operations the
server does itself because the prediction log is beside it.

- Reads (monitors, windows, processed segments, rules, alerts, events): viewer. Webhook
  secrets in a monitor's settings are blanked for viewers.
- Creating and updating monitors, alert rules, profiles and what a run writes: editor.
  Deleting a monitor: maintainer.
- ``run_monitors`` (editor): process the prediction log segments not seen yet, as
  ``syllabus monitor run`` does locally, on the server's prediction log.
- ``monitor_status`` (viewer): a monitor's latest window, firing alerts and the number of
  log segments not processed yet.

The server's prediction log is the ``predictions`` setting of the server process
(``SYLLABUS_PREDICTIONS``), else the ``predictions`` folder of the workspace the server was
started in; a monitor made with a log path reads that path on the server.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoint signatures at runtime.

import contextlib
import dataclasses
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from syllabus.errors import ConfigError
from syllabus.server.models import Principal, Role
from syllabus.server.routes._rpc import ERROR_RESPONSES, WORKSPACE_PATH, RoleRule, store_router
from syllabus.server.state import ServerState, Workspace

if TYPE_CHECKING:
    from syllabus.client import Client
    from syllabus.monitoring.models import Monitor

__all__ = ["router"]

ROLES: dict[str, RoleRule] = {
    "processed": Role.VIEWER,
    "windows": Role.VIEWER,
    "events": Role.VIEWER,
    "delete_monitor": Role.MAINTAINER,
}


class RunMonitors(BaseModel, extra="forbid"):
    name: str | None = Field(
        None, min_length=1, max_length=128, description="one monitor; null: every monitor"
    )


class MonitorName(BaseModel, extra="forbid"):
    name: str = Field(min_length=1, max_length=128)


def _redact(monitor: "Monitor") -> "Monitor":
    hooks = monitor.config.get("webhooks")
    if not hooks:
        return monitor
    config = dict(monitor.config)
    config["webhooks"] = [{**dict(h), "secret": ""} for h in hooks if isinstance(h, Mapping)]
    return dataclasses.replace(monitor, config=config)


def _reader(principal: Principal | None, workspace: str) -> bool:
    """Whether the caller only reads here (then webhook secrets are not theirs to see)."""
    if principal is None:
        return False
    role = principal.role_in(workspace)
    return role is None or role < Role.EDITOR


def router(state: ServerState) -> APIRouter:
    clients: dict[str, tuple[Workspace, Client]] = {}
    lock = threading.Lock()

    def client_of(ws: Workspace) -> "Client":
        """A client over the workspace's own backend (its engine and blob store), whose
        settings (the prediction log) are the server process's."""
        with lock:
            found = clients.get(ws.name)
            if found is not None and found[0] is ws:
                return found[1]
            from syllabus.client import Client

            client = Client(
                ws.db_url,
                blobs=ws.blobs_url,
                create=False,
                s3_endpoint_url=ws.settings.s3_endpoint_url,
            )
            client._backend = ws.backend  # owned and closed by the workspace
            clients[ws.name] = (ws, client)
            return client

    def read_one(ws: Workspace, principal: Principal | None, args: dict[str, Any]) -> Any:
        monitor = _store(ws).get_monitor(**args)
        return _redact(monitor) if _reader(principal, ws.name) else monitor

    def read_all(ws: Workspace, principal: Principal | None, args: dict[str, Any]) -> Any:
        monitors = _store(ws).list_monitors(**args)
        return [_redact(m) for m in monitors] if _reader(principal, ws.name) else monitors

    r = store_router(
        state,
        "monitoring",
        _store,
        roles=ROLES,
        handlers={"get_monitor": read_one, "list_monitors": read_all},
    )

    def open_ws(request: Request, workspace: str, role: Role, what: str) -> Workspace:
        state.auth.require(request, workspace, role, what)
        return state.workspace(workspace)

    def answer(value: Any, which: int) -> bytes:
        from syllabus.client.remote import monitoring_answers

        model: Any = monitoring_answers()[which]  # built on first use: the server starts fast
        return bytes(model(value).model_dump_json(warnings=False).encode())

    @r.post(
        "/monitoring/run_monitors",
        responses={**ERROR_RESPONSES, 200: _json("run results, one per monitor", "array")},
        operation_id="monitoring_run_monitors",
        summary="Run monitors over the server's prediction log",
        description="Process the log segments not seen yet (one monitor, or every monitor "
        "after attaching monitors to deployments) and evaluate alert rules.\n\n"
        "Role needed: editor.",
    )
    async def run_monitors(
        request: Request,
        workspace: WORKSPACE_PATH,
        body: RunMonitors = Body(),  # noqa: B008
    ) -> Response:
        def call() -> bytes:
            ws = open_ws(request, workspace, Role.EDITOR, "monitoring.run_monitors")
            with _log_root_named(ws):
                results = client_of(ws).run_monitor(body.name)
            return answer(results, 0)

        return Response(await run_in_threadpool(call), media_type="application/json")

    @r.post(
        "/monitoring/monitor_status",
        responses={**ERROR_RESPONSES, 200: _json("the monitor's status", "object")},
        operation_id="monitoring_monitor_status",
        summary="A monitor's status",
        description="Its latest window, window count, firing alerts and the number of "
        "prediction log segments not processed yet.\n\nRole needed: viewer.",
    )
    async def monitor_status(
        request: Request,
        workspace: WORKSPACE_PATH,
        body: MonitorName = Body(),  # noqa: B008
    ) -> Response:
        def call() -> bytes:
            ws = open_ws(request, workspace, Role.VIEWER, "monitoring.monitor_status")
            principal = state.auth.principal(request)
            with _log_root_named(ws):
                status = client_of(ws).monitor_status(body.name)
            if _reader(principal, ws.name):
                status = dataclasses.replace(status, monitor=_redact(status.monitor))
            return answer(status, 1)

        return Response(await run_in_threadpool(call), media_type="application/json")

    return r


@contextlib.contextmanager
def _log_root_named(ws: Workspace) -> Iterator[None]:
    """A missing prediction log root is the server's to configure: say so."""
    try:
        yield
    except ConfigError as exc:
        raise ConfigError(
            f"the server has no prediction log for workspace {ws.name!r} ({exc}): set "
            "SYLLABUS_PREDICTIONS where `syllabus server` runs, or give the monitor a log "
            "path on the server"
        ) from None


def _json(description: str, kind: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"type": kind}}},
    }


def _store(ws: Workspace) -> Any:
    from syllabus.monitoring.sql import SqlMonitoringStore

    return SqlMonitoringStore(ws.backend.engine)
