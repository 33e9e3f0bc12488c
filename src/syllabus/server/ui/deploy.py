"""Deployment pages: every deployment with its health, and one deployment's revisions,
traffic split (primary, canary, shadow), live spec, rollback and canary promotion."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from syllabus.errors import InvalidArgumentError

if TYPE_CHECKING:
    from syllabus.deploy.models import Revision
    from syllabus.server.ui.app import UI

__all__ = ["add_routes", "traffic"]

_ROLLBACK_FROM = ("superseded", "rolled-back", "stopped")


def traffic(revision: Revision | None) -> list[dict[str, Any]]:
    """The traffic split of a revision: who answers which share of requests, and the
    shadow that scores a copy of every request without answering."""
    if revision is None:
        return []
    canary = revision.canary_percent or 0.0 if revision.canary_ref else 0.0
    out = [{"role": "primary", "model": revision.model_ref, "percent": 100.0 - canary}]
    if revision.canary_ref:
        out.append({"role": "canary", "model": revision.canary_ref, "percent": canary})
    if revision.shadow_ref:
        out.append({"role": "shadow", "model": revision.shadow_ref, "percent": None})
    return out


def add_routes(router: APIRouter, ui: UI) -> list[tuple[str, str]]:
    def deployments(request: Request) -> Response:
        client = ui.client(request)
        return ui.render(
            request,
            "deployments.html",
            {"statuses": client.deployment_status()},
            title="Deployments",
        )

    def deployment(request: Request, name: str, env: str) -> Response:
        client = ui.client(request)
        found = client.get_deployment(name, env)
        health = next(
            (s.health for s in client.deployment_status(name) if s.deployment.env == env), None
        )
        history = client.deployment_history(name, env, limit=200)
        current = found.current
        targets = [
            r
            for r in history
            if r.revision < current.revision
            and r.status in _ROLLBACK_FROM
            and r.target == current.target
        ]
        return ui.render(
            request,
            "deployment.html",
            {
                "d": found,
                "health": health,
                "history": history,
                "split": traffic(found.live),
                "rollback_to": targets,
            },
            title=f"Deployment {name} ({env})",
        )

    def rollback(
        request: Request,
        name: str,
        env: str,
        *,
        csrf_token: Annotated[str, Form()] = "",
        to: Annotated[str, Form()] = "",
    ) -> Response:
        client = ui.form_client(request, csrf_token, "maintainer")
        target = None
        if to.strip():
            if not to.strip().isdigit():
                raise InvalidArgumentError(f"revision must be a number, not {to!r}")
            target = int(to)
        client.rollback_deployment(name, env, to=target)
        return ui.redirect(request, "ui_deployment", name=name, env=env)

    def promote_canary(
        request: Request, name: str, env: str, *, csrf_token: Annotated[str, Form()] = ""
    ) -> Response:
        ui.form_client(request, csrf_token, "maintainer").promote_canary(name, env)
        return ui.redirect(request, "ui_deployment", name=name, env=env)

    ui.add(router, "/deployments", deployments, "ui_deployments")
    ui.add(router, "/deployments/{name}/{env}", deployment, "ui_deployment")
    ui.add(
        router,
        "/deployments/{name}/{env}/rollback",
        rollback,
        "ui_deployment_rollback",
        methods=["POST"],
    )
    ui.add(
        router,
        "/deployments/{name}/{env}/promote-canary",
        promote_canary,
        "ui_deployment_promote_canary",
        methods=["POST"],
    )
    return [("Deployments", "ui_deployments")]
