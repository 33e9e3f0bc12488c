"""Registry pages: models, a model's board of versions by stage with its pending requests
(approve and reject forms), audit timeline and policy; a version with its gate checks,
promotion and request forms, lineage graph and evaluations; evaluation reports."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from syllabus.errors import (
    InvalidArgumentError,
    NotFoundError,
    PromotionRefusedError,
    SyllabusError,
)
from syllabus.refs import Stage

if TYPE_CHECKING:
    from syllabus.client import Client
    from syllabus.registry.models import ApprovalRequest, Event, ModelVersion
    from syllabus.server.ui.app import UI

__all__ = ["add_routes", "lineage_graph"]

STAGES = tuple(s.value for s in Stage)
_REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


def _gates(event: Event) -> list[Mapping[str, Any]]:
    gates = event.details.get("gates") if isinstance(event.details, Mapping) else None
    return [g for g in gates if isinstance(g, Mapping)] if isinstance(gates, list) else []


def lineage_graph(lineage: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The lineage as columns from data to deployment: each a title and its nodes (label,
    detail, link kind and target)."""
    inputs = [i for i in lineage.get("inputs") or [] if isinstance(i, Mapping)]
    data = [
        {
            "label": str(i.get("name") or i.get("id")),
            "detail": f"{i.get('kind')} · {i.get('role')}",
            "kind": "dataset" if i.get("kind") == "dataset" else "",
            "target": str(i.get("name") or ""),
        }
        for i in inputs
    ]
    run = lineage.get("run")
    runs = []
    if isinstance(run, Mapping):
        runs.append(
            {
                "label": str(run.get("name")),
                "detail": str(run.get("status")),
                "kind": "run",
                "target": str(run.get("id")),
            }
        )
    model = [
        {
            "label": str(lineage.get("model")),
            "detail": f"{lineage.get('stage')} · {lineage.get('flavor')}",
            "kind": "",
            "target": "",
        }
    ]
    deployments = []
    for d in lineage.get("deployments") or []:
        if isinstance(d, Mapping):
            name = d.get("name") or d.get("deployment") or d.get("id")
            env = d.get("environment") or d.get("env") or ""
            detail = " · ".join(str(d[k]) for k in ("environment", "status", "traffic") if d.get(k))
            deployments.append(
                {
                    "label": str(name),
                    "detail": detail,
                    "kind": "deployment" if env else "",
                    "target": str(name),
                    "env": str(env),
                }
            )
        else:
            deployments.append({"label": str(d), "detail": "", "kind": "", "target": ""})
    return [
        {"title": "Data", "nodes": data},
        {"title": "Run", "nodes": runs},
        {"title": "Model", "nodes": model},
        {"title": "Deployments", "nodes": deployments},
    ]


def _deployments_of(client: Client, ref: str) -> list[dict[str, Any]]:
    """The newest revision of each deployment that serves or served this version."""
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    for r in client.model_deployments(ref):
        key = (r.name, r.env)
        if key not in newest:
            newest[key] = {
                "name": r.name,
                "environment": r.env,
                "status": f"revision {r.revision} {r.status}",
            }
    return list(newest.values())


def _board(versions: list[ModelVersion]) -> dict[str, list[ModelVersion]]:
    board: dict[str, list[ModelVersion]] = {s: [] for s in STAGES}
    for v in versions:
        board.setdefault(v.stage.value, []).append(v)
    return board


def _check_stage(to: str) -> None:
    if to not in STAGES:
        raise InvalidArgumentError(f"unknown stage {to!r}; one of {', '.join(STAGES)}")


def _next_stage(stage: str) -> str:
    """The stage a version usually goes to next (production stays, archived returns)."""
    order = ("development", "testing", "staging", "production")
    if stage in order[:-1]:
        return order[order.index(stage) + 1]
    return "archived" if stage == "production" else "development"


def add_routes(router: APIRouter, ui: UI) -> None:  # noqa: PLR0915 - one closure per page
    def models(request: Request) -> Response:
        client = ui.client(request)
        return ui.render(
            request,
            "models.html",
            {
                "models": client.list_registered_models(),
                "pending": client.list_transition_requests(status="pending"),
            },
            title="Models",
        )

    def model(request: Request, name: str) -> Response:
        client = ui.client(request)
        registered = client.get_registered_model(name)
        versions = client.list_model_versions(registered.name)
        history = list(reversed(client.model_history(registered.name)))
        policy = None
        for policy_name in (registered.name, "default"):
            with contextlib.suppress(NotFoundError):
                policy = client.get_policy(policy_name)
                break
        return ui.render(
            request,
            "model.html",
            {
                "model": registered,
                "board": _board(versions),
                "stages": STAGES,
                "pending": client.list_transition_requests(registered.name, status="pending"),
                "history": history,
                "gates_of": _gates,
                "policy": policy,
            },
            title=f"Model {registered.name}",
        )

    def version_page(request: Request, name: str, version: str, check: str = "") -> Response:
        client = ui.client(request)
        found = client.get_model_version(f"{name}@{version}")
        checked = None
        check_error = None
        if check:
            if check not in STAGES:
                raise InvalidArgumentError(f"unknown stage {check!r}; one of {', '.join(STAGES)}")
            try:
                checked = client.check_transition(found.ref, check)
            except SyllabusError as exc:  # e.g. already in that stage: a message
                check_error = str(exc)
        lineage = dict(client.model_lineage(found.ref))
        if not lineage.get("deployments"):
            lineage["deployments"] = _deployments_of(client, found.ref)
        history = [
            e for e in reversed(client.model_history(found.name)) if e.version == found.version
        ]
        evaluations = client.list_evaluations(found.ref)
        return ui.render(
            request,
            "model_version.html",
            {
                "version": found,
                "stages": STAGES,
                "next_stage": _next_stage(found.stage.value),
                "check": check,
                "checked": checked,
                "check_error": check_error,
                "lineage": lineage,
                "graph": lineage_graph(lineage),
                "history": history,
                "gates_of": _gates,
                "evaluations": evaluations,
                "requests": [
                    r
                    for r in client.list_transition_requests(found.name, status=None)
                    if r.version == found.version
                ],
            },
            title=f"Model {found.ref}",
        )

    def _decided(
        request: Request,
        req: ApprovalRequest,
        outcome: str,
        *,
        gates: Any = (),
        moved: Any = None,
    ) -> Response:
        return ui.render(
            request,
            "decision.html",
            {"req": req, "outcome": outcome, "gates": list(gates), "moved": moved},
            title=f"Request {outcome}",
        )

    def approve(
        request: Request,
        request_id: str,
        *,
        csrf_token: Annotated[str, Form()] = "",
        role: Annotated[str, Form()] = "",
        comment: Annotated[str, Form()] = "",
    ) -> Response:
        client = ui.form_client(request, csrf_token, "maintainer")
        req, result, gates = client.approve_transition(
            request_id, role=role.strip() or None, comment=comment.strip() or None
        )
        moved = result.version if result is not None else None
        return _decided(request, req, "approved", gates=gates, moved=moved)

    def reject(
        request: Request,
        request_id: str,
        *,
        csrf_token: Annotated[str, Form()] = "",
        role: Annotated[str, Form()] = "",
        comment: Annotated[str, Form()] = "",
    ) -> Response:
        client = ui.form_client(request, csrf_token, "maintainer")
        req = client.reject_transition(
            request_id, role=role.strip() or None, comment=comment.strip() or None
        )
        return _decided(request, req, "rejected")

    def ask(
        request: Request,
        name: str,
        version: str,
        *,
        csrf_token: Annotated[str, Form()] = "",
        to: Annotated[str, Form()] = "",
        comment: Annotated[str, Form()] = "",
    ) -> Response:
        client = ui.form_client(request, csrf_token, "editor")
        _check_stage(to)
        found = client.get_model_version(f"{name}@{version}")
        client.request_transition(found.ref, to, comment=comment.strip() or None)
        return ui.redirect(request, "ui_model", name=found.name)

    def promote(
        request: Request,
        name: str,
        version: str,
        *,
        csrf_token: Annotated[str, Form()] = "",
        to: Annotated[str, Form()] = "",
        comment: Annotated[str, Form()] = "",
    ) -> Response:
        client = ui.form_client(request, csrf_token, "maintainer")
        _check_stage(to)
        found = client.get_model_version(f"{name}@{version}")
        try:
            result = client.transition_stage(found.ref, to, comment=comment.strip() or None)
        except PromotionRefusedError as exc:
            return ui.render(
                request,
                "promotion.html",
                {"version": found, "to": to, "refused": str(exc), "gates": list(exc.results)},
                status=409,
                title="Promotion refused",
            )
        return ui.render(
            request,
            "promotion.html",
            {
                "version": result.version,
                "to": to,
                "refused": None,
                "gates": list(result.gates),
                "archived": result.archived,
            },
            title="Promoted",
        )

    def evaluation(request: Request, evaluation_id: str) -> Response:
        client = ui.client(request)
        found = client.get_evaluation(evaluation_id)
        return ui.render(request, "evaluation.html", {"e": found}, title="Evaluation")

    def evaluation_report(request: Request, evaluation_id: str) -> Response:
        client = ui.client(request)
        html = client.evaluation_report(evaluation_id)
        # The report is the library's own escaped HTML with no scripts; it is still shown
        # sandboxed, in a frame of its own.
        return Response(
            html,
            media_type="text/html",
            headers={"Content-Security-Policy": _REPORT_CSP, "X-Content-Type-Options": "nosniff"},
        )

    def evaluations(request: Request) -> Response:
        client = ui.client(request)
        return ui.render(
            request,
            "evaluations.html",
            {"evaluations": client.list_evaluations(limit=500)},
            title="Evaluations",
        )

    ui.add(router, "/models", models, "ui_models")
    ui.add(router, "/models/{name}", model, "ui_model")
    ui.add(router, "/models/{name}/{version}", version_page, "ui_model_version")
    ui.add(router, "/models/{name}/{version}/request", ask, "ui_request", methods=["POST"])
    ui.add(router, "/models/{name}/{version}/promote", promote, "ui_promote", methods=["POST"])
    ui.add(router, "/requests/{request_id}/approve", approve, "ui_approve", methods=["POST"])
    ui.add(router, "/requests/{request_id}/reject", reject, "ui_reject", methods=["POST"])
    ui.add(router, "/evaluations", evaluations, "ui_evaluations")
    ui.add(router, "/evaluations/{evaluation_id}", evaluation, "ui_evaluation")
    ui.add(router, "/evaluations/{evaluation_id}/report", evaluation_report, "ui_evaluation_report")
