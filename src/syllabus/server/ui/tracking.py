"""Tracking pages: the overview, experiments, the runs table (filter language, sorting,
column chooser, pages from the database), a run (metrics charts, artifacts with previews,
code, environment, inputs) and the comparison of runs."""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from syllabus.errors import InvalidArgumentError, NotFoundError, SyllabusError
from syllabus.server.ui import previews

if TYPE_CHECKING:
    from syllabus.client import Client
    from syllabus.server.ui.app import UI
    from syllabus.tracking.models import Run
    from syllabus.tracking.store import DeletedFilter

__all__ = ["add_routes"]

PAGE_SIZES = (25, 50, 100, 200)
MAX_CHART_POINTS = 5000
MAX_DEFAULT_COLUMNS = 6
FIRST_PAGE = "-"
_ORDER = re.compile(r"[A-Za-z0-9_.\-/`' ]{1,300}")


def _order_items(order: str) -> list[str]:
    items = [item.strip() for item in order.split(",") if item.strip()]
    return items or ["start_time desc"]


def _metric_series(client: Client, run_id: str, key: str) -> dict[str, Any]:
    history = client.get_metric_history(run_id, key)
    if len(history) > MAX_CHART_POINTS:  # keep the shape: every n-th point and the last
        stride = math.ceil(len(history) / MAX_CHART_POINTS)
        history = [*history[::stride][:-1], history[-1]]

    def finite(v: float) -> float | None:
        return v if math.isfinite(v) else None

    return {
        "key": key,
        "step": [m.step for m in history],
        "time": [m.timestamp for m in history],
        "value": [finite(m.value) for m in history],
    }


def _experiment_names(client: Client) -> dict[str, str]:
    return {e.id: e.name for e in client.search_experiments(deleted="all")}


def _columns_of(runs: Sequence[Run]) -> tuple[list[str], list[str], list[str]]:
    metrics = sorted({k for r in runs for k in r.metrics})
    params = sorted({k for r in runs for k in r.params})
    tags = sorted({k for r in runs for k in r.tags})
    return metrics, params, tags


def _cell(run: Run, column: str) -> Any:
    kind, _, key = column.partition(".")
    if kind == "metrics":
        metric = run.metrics.get(key)
        return None if metric is None else metric.value
    if kind == "params":
        return run.params.get(key)
    if kind == "tags":
        return run.tags.get(key)
    return None


def add_routes(router: APIRouter, ui: UI) -> None:  # noqa: PLR0915 - one closure per page
    def home(request: Request) -> Response:
        client = ui.client(request)
        experiments = client.search_experiments()
        recent = client.search_runs(order_by=["start_time desc"], max_results=10)
        models = client.list_registered_models()
        datasets = client.list_datasets()
        pending = client.list_transition_requests(status="pending")
        return ui.render(
            request,
            "home.html",
            {
                "experiments": experiments,
                "recent": recent,
                "names": _experiment_names(client),
                "models": models,
                "datasets": datasets,
                "pending": pending,
            },
            title="Overview",
        )

    def experiments(request: Request, deleted: str = "active") -> Response:
        client = ui.client(request)
        which: DeletedFilter = "all" if deleted == "all" else "active"
        found = client.search_experiments(deleted=which)
        return ui.render(
            request,
            "experiments.html",
            {"experiments": found, "deleted": which},
            title="Experiments",
        )

    def runs(
        request: Request,
        *,
        experiment: Annotated[list[str] | None, Query()] = None,
        filter: str = "",
        order: str = "start_time desc",
        columns: Annotated[list[str] | None, Query()] = None,
        chosen: str = "",
        size: int = 50,
        token: str = FIRST_PAGE,
        back: Annotated[list[str] | None, Query()] = None,
    ) -> Response:
        client = ui.client(request)
        size = size if size in PAGE_SIZES else 50
        experiment = [e for e in (experiment or []) if e]
        back = list(back or [])
        exp_list = [client.get_experiment(e) for e in experiment]
        error = None
        page_runs: Sequence[Run] = ()
        next_token = None
        if not _ORDER.fullmatch(order):
            error, order = f"cannot sort by {order[:80]!r}", "start_time desc"
        try:
            page = client.search_runs(
                [e.id for e in exp_list] or None,
                filter=filter.strip() or None,
                order_by=_order_items(order),
                max_results=size,
                page_token=None if token == FIRST_PAGE else token,
            )
            page_runs, next_token = page.runs, page.next_page_token
        except InvalidArgumentError as exc:
            error = str(exc)
        metric_keys, param_keys, tag_keys = _columns_of(page_runs)
        available = [
            *(f"metrics.{k}" for k in metric_keys),
            *(f"params.{k}" for k in param_keys),
            *(f"tags.{k}" for k in tag_keys),
        ]
        if chosen:
            shown = [
                c for c in (columns or []) if c.partition(".")[0] in ("metrics", "params", "tags")
            ]
        else:
            shown = [f"metrics.{k}" for k in metric_keys if not k.startswith("system/")][
                :MAX_DEFAULT_COLUMNS
            ]
            shown += [f"params.{k}" for k in param_keys][:MAX_DEFAULT_COLUMNS]
        for c in shown:
            if c not in available:
                available.append(c)
        base = {
            "experiment": experiment or None,
            "filter": filter or None,
            "order": order if order != "start_time desc" else None,
            "columns": shown if chosen else None,
            "chosen": "1" if chosen else None,
            "size": size if size != 50 else None,
        }
        start = len(back) * size
        return ui.render(
            request,
            "runs.html",
            {
                "runs": page_runs,
                "experiments": exp_list,
                "all_experiments": client.search_experiments(),
                "names": _experiment_names(client),
                "filter": filter,
                "order": order,
                "shown": shown,
                "available": available,
                "chosen": bool(chosen),
                "size": size,
                "sizes": PAGE_SIZES,
                "error": error,
                "cell": _cell,
                "base": base,
                "first": start + 1,
                "last": start + len(page_runs),
                "next_url": ui.url(
                    request, "ui_runs", **base, token=next_token, back=[*back, token]
                )
                if next_token
                else None,
                "prev_url": ui.url(
                    request, "ui_runs", **base, token=back[-1], back=back[:-1] or None
                )
                if back
                else None,
                "sort_url": lambda column: ui.url(
                    request,
                    "ui_runs",
                    **{
                        **base,
                        "order": f"{column} asc"
                        if order.strip() == f"{column} desc"
                        else f"{column} desc",
                    },
                ),
            },
            status=400 if error else 200,
            title="Runs",
        )

    def run_page(request: Request, run_id: str) -> Response:
        client = ui.client(request)
        run = client.get_run(run_id)
        experiment = client.get_experiment(run.experiment_id)
        children = client.search_runs(parent=run.id, max_results=200, deleted="all")
        parent = None
        if run.parent_id:
            with contextlib.suppress(NotFoundError):
                parent = client.get_run(run.parent_id)
        inputs = client.list_inputs(run.id)
        keys = sorted(run.metrics)
        models = _models_of_run(client, run.id)
        return ui.render(
            request,
            "run.html",
            {
                "run": run,
                "tab": "overview",
                "experiment": experiment,
                "children": children,
                "parent": parent,
                "inputs": inputs,
                "models": models,
                "metric_keys": [k for k in keys if not k.startswith("system/")],
                "system_keys": [k for k in keys if k.startswith("system/")],
            },
            title=f"Run {run.name}",
        )

    def metric_history(request: Request, run_id: str, key: str) -> Response:
        client = ui.client(request)
        run = client.get_run(run_id)
        return JSONResponse(_metric_series(client, run.id, key) | {"run": run.name})

    def artifacts(request: Request, run_id: str, path: str = "") -> Response:
        client = ui.client(request)
        run = client.get_run(run_id)
        listing = client.list_artifacts(run.id)
        selected = next((a for a in listing if a.path == path), None)
        if path and selected is None:
            raise NotFoundError(f"run {run.name} has no artifact {path!r}")
        preview = None
        if selected is not None:
            preview = previews.preview(
                selected.path,
                selected.size,
                lambda: client.read_artifact(run.id, selected.path),
            )
        return ui.render(
            request,
            "run_artifacts.html",
            {
                "run": run,
                "tab": "artifacts",
                "tree": previews.tree([(a.path, a.size) for a in listing]),
                "selected": selected,
                "preview": preview,
            },
            title=f"Artifacts of {run.name}",
        )

    def artifact_raw(request: Request, run_id: str, path: str, download: str = "") -> Response:
        client = ui.client(request)
        run = client.get_run(run_id)
        known = {a.path for a in client.list_artifacts(run.id)}
        if path not in known:  # only a listed path is read: nothing else reaches the store
            raise NotFoundError(f"run {run.name} has no artifact {path!r}")
        return previews.raw_response(path, client.read_artifact(run.id, path), bool(download))

    def code(request: Request, run_id: str, against: str = "") -> Response:
        client = ui.client(request)
        run = client.get_run(run_id)
        run_code = None
        with contextlib.suppress(NotFoundError):
            run_code = client.get_run_code(run.id)
        patch = ""
        git = run_code.snapshot.git if run_code is not None else None
        if git is not None and git.dirty:
            with contextlib.suppress(SyllabusError):
                patch = client.read_code_patch(run.id).decode("utf-8", "replace")
        diff = None
        diff_error = None
        other = None
        if against.strip():
            try:
                other = client.get_run(against.strip())
                diff = client.diff_code(other.id, run.id)
            except SyllabusError as exc:
                diff_error = str(exc)
        checkpoint, cells = _notebook_of_run(client, run.id, run_code)
        return ui.render(
            request,
            "run_code.html",
            {
                "run": run,
                "tab": "code",
                "code": run_code,
                "checkpoint": checkpoint,
                "cells": cells,
                "patch": previews.diff_lines(patch),
                "against": against,
                "other": other,
                "diff": diff,
                "diff_lines": previews.diff_lines(diff.patch) if diff else [],
                "diff_error": diff_error,
            },
            title=f"Code of {run.name}",
        )

    def environment(request: Request, run_id: str) -> Response:
        client = ui.client(request)
        run = client.get_run(run_id)
        env = None
        with contextlib.suppress(NotFoundError):
            env = client.get_run_code(run.id).environment
        return ui.render(
            request,
            "run_environment.html",
            {"run": run, "tab": "environment", "env": env},
            title=f"Environment of {run.name}",
        )

    def compare(
        request: Request,
        runs: Annotated[list[str] | None, Query()] = None,
        all_params: str = "",
    ) -> Response:
        client = ui.client(request)
        ids = list(dict.fromkeys(r.strip() for r in (runs or []) if r.strip()))
        if len(ids) < 2:
            raise InvalidArgumentError(
                "choose at least two runs to compare (tick them in the table)"
            )
        if len(ids) > 50:
            raise InvalidArgumentError(f"compare at most 50 runs at once, not {len(ids)}")
        comparison = client.compare_runs(ids, all_params=bool(all_params))
        full = client.compare_runs(ids, all_params=True)
        code_diff = env_diff = None
        if len(ids) == 2:
            a, b = comparison.runs
            with contextlib.suppress(SyllabusError):
                code_diff = client.diff_code(a.id, b.id)
            with contextlib.suppress(SyllabusError):
                env_diff = client.diff_environments(a.id, b.id)
        keys = sorted(
            {k for r in comparison.runs for k in r.metrics if not k.startswith("system/")}
        )
        return ui.render(
            request,
            "compare.html",
            {
                "comparison": comparison,
                "all_params": bool(all_params),
                "metric_keys": keys,
                "parallel": _parallel(full),
                "code_diff": code_diff,
                "code_lines": previews.diff_lines(code_diff.patch) if code_diff else [],
                "env_diff": env_diff,
                "names": _experiment_names(client),
                "ids": ids,
            },
            title="Compare runs",
        )

    def notebooks(request: Request) -> Response:
        client = ui.client(request)
        return ui.render(
            request, "notebooks.html", {"notebooks": client.list_notebooks()}, title="Notebooks"
        )

    def notebook(request: Request, path: str, version: int | None = None) -> Response:
        client = ui.client(request)
        full = str(client.project_root / path)  # a key of the store, never opened as a file
        checkpoints = client.list_notebook_checkpoints(full)
        if not checkpoints:
            raise NotFoundError(f"no checkpoints of notebook {path!r}")
        chosen = next((c for c in checkpoints if c.version == version), checkpoints[0])
        data = client.read_notebook_checkpoint(f"{full}@{chosen.version}")
        return ui.render(
            request,
            "notebook.html",
            {
                "path": path,
                "checkpoints": checkpoints,
                "checkpoint": chosen,
                "cells": previews.notebook_cells(data),
            },
            title=f"Notebook {path}",
        )

    ui.add(router, "/", home, "ui_home")
    ui.add(router, "/experiments", experiments, "ui_experiments")
    ui.add(router, "/runs", runs, "ui_runs")
    ui.add(router, "/runs/{run_id}", run_page, "ui_run")
    ui.add(router, "/runs/{run_id}/metric", metric_history, "ui_metric")
    ui.add(router, "/runs/{run_id}/artifacts", artifacts, "ui_artifacts")
    ui.add(router, "/runs/{run_id}/artifact", artifact_raw, "ui_artifact_raw")
    ui.add(router, "/runs/{run_id}/code", code, "ui_code")
    ui.add(router, "/runs/{run_id}/environment", environment, "ui_environment")
    ui.add(router, "/compare", compare, "ui_compare")
    ui.add(router, "/notebooks", notebooks, "ui_notebooks")
    ui.add(router, "/notebook", notebook, "ui_notebook")


def _notebook_of_run(client: Client, run_id: str, code: Any) -> tuple[Any, list[previews.Cell]]:
    """The notebook checkpoint a run was started from or recorded (and its cells)."""
    wanted = getattr(code, "checkpoint_id", None)
    for notebook in client.list_notebooks():
        full = str(client.project_root / notebook.path)
        for cp in client.list_notebook_checkpoints(full):
            if cp.id == wanted or cp.run_id == run_id:
                data = client.read_notebook_checkpoint(f"{full}@{cp.version}")
                return cp, previews.notebook_cells(data)
    return None, []


def _models_of_run(client: Client, run_id: str) -> list[Any]:
    """Registered versions trained by this run (from each model's versions)."""
    out = []
    for model in client.list_registered_models():
        out += [v for v in client.list_model_versions(model.name) if v.run_id == run_id]
    return out


def _parallel(comparison: Any) -> dict[str, Any]:
    """Parallel-coordinates dimensions: every param (numbers as numbers, text as ticks)
    and every metric, one line per run."""
    dims: list[dict[str, Any]] = []
    for key, values in comparison.params:
        if len(set(values)) < 2:
            continue
        try:
            numbers = [float(v) if v is not None else None for v in values]
        except ValueError:
            labels = sorted({v for v in values if v is not None})
            index = {v: i for i, v in enumerate(labels)}
            dims.append(
                {
                    "label": f"params.{key}",
                    "values": [index.get(v) if v is not None else None for v in values],
                    "tickvals": list(range(len(labels))),
                    "ticktext": labels,
                }
            )
        else:
            dims.append({"label": f"params.{key}", "values": numbers})
    for key, mvalues in comparison.metrics:
        if key.startswith("system/"):
            continue
        dims.append(
            {
                "label": f"metrics.{key}",
                "values": [v if v is not None and math.isfinite(v) else None for v in mvalues],
            }
        )
    return {"runs": [r.name for r in comparison.runs], "dimensions": dims}
