"""Pipeline and maturity pages: pipelines with their DAG (steps coloured by a run's status,
cache hits shown), runs and triggers; a pipeline run step by step; the workspace's
maturity level with its checklist."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import Response

from syllabus.errors import NotFoundError

if TYPE_CHECKING:
    from syllabus.client import Client
    from syllabus.pipelines.definition import Pipeline
    from syllabus.server.ui.app import UI

__all__ = ["add_routes"]

_SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


def _pipeline(client: Client, name: str) -> Pipeline:
    """The stored definition (JSON; nothing of the project is imported to show it)."""
    from syllabus.pipelines.definition import Pipeline

    info = client.get_pipeline(name)
    return Pipeline.from_json(info.definition, source=info.source)


def add_routes(router: APIRouter, ui: UI) -> list[tuple[str, str]]:
    def pipelines(request: Request) -> Response:
        client = ui.client(request)
        found = client.list_pipelines()
        last = {p.name: next(iter(client.list_pipeline_runs(p.name, limit=1)), None) for p in found}
        return ui.render(
            request,
            "pipelines.html",
            {
                "pipelines": found,
                "last": last,
                "runs": client.list_pipeline_runs(limit=50),
                "firings": client.list_firings(limit=20),
            },
            title="Pipelines",
        )

    def pipeline(request: Request, name: str) -> Response:
        client = ui.client(request)
        info = client.get_pipeline(name)
        definition = _pipeline(client, info.name)
        runs = client.list_pipeline_runs(info.name, limit=100)
        return ui.render(
            request,
            "pipeline.html",
            {
                "info": info,
                "p": definition,
                "runs": runs,
                "triggers": client.list_triggers(info.name),
                "firings": client.list_firings(info.name, limit=50),
                "latest": runs[0] if runs else None,
            },
            title=f"Pipeline {info.name}",
        )

    def pipeline_run(request: Request, run_id: str) -> Response:
        client = ui.client(request)
        result = client.get_pipeline_run(run_id)
        steps = {s.step: s for s in result.steps}
        try:
            order = _pipeline(client, result.run.pipeline).order()
        except NotFoundError:
            order = list(steps)
        return ui.render(
            request,
            "pipeline_run.html",
            {
                "result": result,
                "run": result.run,
                "steps": [steps[n] for n in order if n in steps]
                + [s for n, s in steps.items() if n not in order],
                "cached": sum(1 for s in result.steps if s.status.value == "cached"),
            },
            title=f"Pipeline run {result.run.id[:8]}",
        )

    def dag(request: Request, name: str, run: str = "") -> Response:
        from syllabus.pipelines.dag import render_svg

        client = ui.client(request)
        definition = _pipeline(client, name)
        statuses = None
        if run:
            statuses = {s.step: s.status.value for s in client.get_pipeline_run(run).steps}
        return Response(
            render_svg(definition, statuses),
            media_type="image/svg+xml",
            headers={"Content-Security-Policy": _SVG_CSP, "X-Content-Type-Options": "nosniff"},
        )

    def maturity(request: Request) -> Response:
        from syllabus.client.maturity import LEVELS

        report = ui.client(request).maturity()
        levels = [
            {
                "level": n,
                "text": text,
                "met": all(c.met for c in report.criteria if c.level == n),
                "criteria": [c for c in report.criteria if c.level == n],
            }
            for n, text in LEVELS.items()
        ]
        return ui.render(
            request,
            "maturity.html",
            {"report": report, "levels": levels, "description": LEVELS.get(report.level)},
            title="Maturity",
        )

    ui.add(router, "/pipelines", pipelines, "ui_pipelines")
    ui.add(router, "/pipelines/{name}", pipeline, "ui_pipeline")
    ui.add(router, "/pipelines/{name}/dag.svg", dag, "ui_pipeline_dag")
    ui.add(router, "/pipeline-runs/{run_id}", pipeline_run, "ui_pipeline_run")
    ui.add(router, "/maturity", maturity, "ui_maturity")
    return [("Pipelines", "ui_pipelines"), ("Maturity", "ui_maturity")]
