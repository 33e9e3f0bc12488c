"""``syllabus runs``: list, show, compare, read metrics, delete/restore and fetch artifacts.

A RUN argument is an id, a unique id prefix of at least 6 characters, ``latest`` (the
newest run) or ``latest~N`` (the N-th before it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from syllabus._utils.ids import abbreviate
from syllabus.cli.output import Format, emit_json, emit_rows, format_bytes, format_option, note
from syllabus.client import Client
from syllabus.errors import InvalidArgumentError, NotFoundError

__all__ = ["runs"]

_LATEST = re.compile(r"latest(?:~(\d+))?")
_DEFAULT_COLUMNS = ("id", "name", "experiment", "status", "started", "duration")


def _resolve(client: Client, ref: str) -> str:
    m = _LATEST.fullmatch(ref)
    if m is None:
        return ref
    back = int(m.group(1) or 0)
    page = client.search_runs(
        order_by=["start_time desc", "id desc"], max_results=back + 1, deleted="all"
    )
    if len(page) <= back:
        raise NotFoundError(f"there is no run {ref!r} (only {len(page)} run(s) in this store)")
    return page[back].id


def _time(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(ms: int | None) -> str:
    if ms is None:
        return ""
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def _number(value: float) -> str:
    if math.isnan(value):
        return "nan"
    return f"{value:.6g}"


def _cell(run: Any, column: str, exp_names: dict[str, str], full: bool) -> Any:
    if column.startswith(("metrics.", "metric.")):
        metric = run.metrics.get(column.split(".", 1)[1])
        if metric is None:
            return None
        return metric.value if full else _number(metric.value)
    if column.startswith(("params.", "param.")):
        return run.params.get(column.split(".", 1)[1])
    if column.startswith(("tags.", "tag.")):
        return run.tags.get(column.split(".", 1)[1])
    values = {
        "id": run.id if full else run.id[:12],
        "name": run.name,
        "experiment": exp_names.get(run.experiment_id, run.experiment_id[:12]),
        "status": run.status.value,
        "started": run.start_time if full else _time(run.start_time),
        "ended": run.end_time if full else _time(run.end_time),
        "duration": run.duration_ms if full else _duration(run.duration_ms),
        "user": run.user,
        "host": run.host,
        "parent": run.parent_id if full or run.parent_id is None else run.parent_id[:12],
    }
    if column not in values:
        raise InvalidArgumentError(
            f"unknown column {column!r} (use {', '.join(values)}, metrics.KEY, params.KEY "
            "or tags.KEY)"
        )
    return values[column]


@click.group("runs")
def runs() -> None:
    """Runs: their params, metrics, tags and artifacts."""


@runs.command("list")
@click.option("-e", "--experiment", "experiments", multiple=True, help="Name or id (repeatable).")
@click.option("-f", "--filter", "filter_", metavar="FILTER", help='e.g. "metrics.auc > 0.8".')
@click.option(
    "-o", "--order-by", multiple=True, metavar="FIELD [asc|desc]", help="Sort key (repeatable)."
)
@click.option(
    "-c", "--columns", metavar="LIST", help="Comma-separated, e.g. name,status,metrics.auc."
)
@click.option("--parent", metavar="RUN", help="Only the children of this run.")
@click.option("--deleted", is_flag=True, help="List deleted runs instead.")
@click.option("-n", "--max-results", default=100, show_default=True, help="Rows to show.")
@format_option()
def list_command(  # noqa: PLR0917 - click passes each option
    experiments: tuple[str, ...],
    filter_: str | None,
    order_by: tuple[str, ...],
    columns: str | None,
    parent: str | None,
    deleted: bool,
    max_results: int,
    fmt: Format,
) -> None:
    """List runs, newest first, filtered and ordered in the database.

    The filter language is in docs/tracking.md: comparisons, and/or/not, parentheses,
    in, like/ilike, is null, on metrics.*, params.*, tags.* and attributes such as
    status, name and start_time.

    \b
    Examples:
      syllabus runs list
      syllabus runs list -e Default -f "metrics.acc > 0.5 and status = 'finished'"
      syllabus runs list -o "metrics.acc desc" -c name,status,metrics.acc,params.lr
    """
    with Client(create=False) as client:
        parent_id = _resolve(client, parent) if parent else None
        page = client.search_runs(
            list(experiments) or None,
            filter=filter_,
            order_by=list(order_by),
            max_results=max_results,
            parent=parent_id,
            deleted="deleted" if deleted else "active",
        )
        exp_names = {e.id: e.name for e in client.search_experiments(deleted="all")}
    if fmt == "json" and columns is None:
        emit_json([_run_json(r) for r in page])
        return
    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    if cols is None:
        metric_keys = sorted({k for r in page for k in r.metrics if not k.startswith("system/")})
        cols = [*_DEFAULT_COLUMNS, *(f"metrics.{k}" for k in metric_keys[:4])]
    full = fmt != "table"
    rows = [{c: _cell(r, c, exp_names, full) for c in cols} for r in page]
    emit_rows(rows, cols, fmt, empty="no runs")
    if page.next_page_token and fmt == "table":
        note(f"showing the first {len(page)} runs; raise --max-results to see more")


def _run_json(run: Any) -> dict[str, Any]:
    from syllabus.cli.output import to_jsonable

    value = to_jsonable(run)
    assert isinstance(value, dict)
    value["metrics"] = {k: to_jsonable(m) for k, m in run.metrics.items()}
    return value


@runs.command("show")
@click.argument("run")
@format_option(csv_ok=False)
def show(run: str, fmt: Format) -> None:  # noqa: PLR0912 - one branch per section
    """Everything about RUN: attributes, params, tags, metrics with a history summary,
    artifacts and inputs.

    \b
    Example:
      syllabus runs show latest
    """
    with Client(create=False) as client:
        found = client.get_run(_resolve(client, run))
        histories = {k: client.get_metric_history(found.id, k) for k in sorted(found.metrics)}
        artifacts = client.list_artifacts(found.id)
        inputs = client.list_inputs(found.id)
        exp = client.get_experiment(found.experiment_id)
    summary: dict[str, dict[str, Any]] = {
        key: {
            "points": len(points),
            "first_step": points[0].step if points else None,
            "last_step": points[-1].step if points else None,
            "min": min((p.value for p in points if not math.isnan(p.value)), default=None),
            "max": max((p.value for p in points if not math.isnan(p.value)), default=None),
            "last": found.metrics[key].value,
        }
        for key, points in histories.items()
    }
    if fmt == "json":
        emit_json(
            {
                **_run_json(found),
                "experiment": exp.name,
                "metric_history": summary,
                "artifacts": artifacts,
                "inputs": inputs,
            }
        )
        return
    lines = [
        ("id", found.id),
        ("name", found.name),
        ("experiment", f"{exp.name} ({exp.id[:12]})"),
        ("status", found.status.value + (" (deleted)" if found.deleted else "")),
        ("started", _time(found.start_time)),
        ("ended", _time(found.end_time)),
        ("duration", _duration(found.duration_ms)),
        ("user", f"{found.user}@{found.host}"),
    ]
    if found.parent_id:
        lines.append(("parent", found.parent_id))
    for label, value in lines:
        click.echo(f"{label:<11} {value}")
    if found.error:
        click.echo("error       " + found.error.strip().splitlines()[-1])
    if found.params:
        click.echo("\nparams")
        for key, value in sorted(found.params.items()):
            click.echo(f"  {key} = {value}")
    if found.tags:
        click.echo("\ntags")
        for key, value in sorted(found.tags.items()):
            click.echo(f"  {key} = {value}")
    if summary:
        click.echo("\nmetrics")
        rows = [
            {
                "key": key,
                "last": _number(s["last"]),
                "min": "" if s["min"] is None else _number(s["min"]),
                "max": "" if s["max"] is None else _number(s["max"]),
                "points": f"{s['points']:,}",
                "steps": f"{s['first_step']}..{s['last_step']}",
            }
            for key, s in summary.items()
        ]
        emit_rows(rows, ["key", "last", "min", "max", "points", "steps"], "table")
    if artifacts:
        click.echo("\nartifacts")
        for a in artifacts:
            click.echo(f"  {a.path}  {format_bytes(a.size)}")
    if inputs:
        click.echo("\ninputs")
        for i in inputs:
            click.echo(f"  {i.role}: {i.kind} {i.name or ''} {i.target_id}")


@runs.command("compare")
@click.argument("run_refs", metavar="RUN...", nargs=-1, required=True)
@click.option("--all", "show_all", is_flag=True, help="Also show params that are the same.")
@format_option()
def compare(run_refs: Sequence[str], show_all: bool, fmt: Format) -> None:
    """Compare runs: params that differ and metrics side by side.

    \b
    Example:
      syllabus runs compare latest latest~1
    """
    with Client(create=False) as client:
        result = client.compare_runs([_resolve(client, r) for r in run_refs], all_params=show_all)
    short = abbreviate(r.id for r in result.runs)
    heads = [f"{r.name} ({short[r.id]})" for r in result.runs]
    rows: list[dict[str, Any]] = [
        {"field": f"params.{key}", **dict(zip(heads, values, strict=True))}
        for key, values in result.params
    ]
    for key, numbers in result.metrics:
        shown = [v if fmt != "table" or v is None else _number(v) for v in numbers]
        rows.append({"field": f"metrics.{key}", **dict(zip(heads, shown, strict=True))})
    emit_rows(rows, ["field", *heads], fmt, empty="nothing differs")


@runs.command("metrics")
@click.argument("run")
@click.option("-k", "--key", "keys", multiple=True, help="Metric key (repeatable; default all).")
@format_option()
def metrics(run: str, keys: tuple[str, ...], fmt: Format) -> None:
    """The full history of a run's metrics: key, step, timestamp, value.

    \b
    Examples:
      syllabus runs metrics latest
      syllabus runs metrics latest --key acc --csv
    """
    with Client(create=False) as client:
        found = client.get_run(_resolve(client, run))
        wanted = list(keys) or sorted(found.metrics)
        rows: list[dict[str, Any]] = [
            {"key": p.key, "step": p.step, "timestamp": p.timestamp, "value": p.value}
            for key in wanted
            for p in client.get_metric_history(found.id, key)
        ]
    if fmt == "table":
        for row in rows:
            row["timestamp"] = _time(row["timestamp"])
            row["value"] = _number(row["value"])
    emit_rows(rows, ["key", "step", "timestamp", "value"], fmt, empty="no metric points")


@runs.command("delete")
@click.argument("run_refs", metavar="RUN...", nargs=-1, required=True)
def delete(run_refs: Sequence[str]) -> None:
    """Soft-delete runs: hidden from listings, restorable; `store gc` removes them later.

    \b
    Example:
      syllabus runs delete latest
    """
    with Client(create=False) as client:
        for ref in run_refs:
            run_id = _resolve(client, ref)
            client.delete_run(run_id)
            note(f"deleted run {run_id}; `syllabus runs restore {run_id[:12]}` undoes it")


@runs.command("restore")
@click.argument("run_refs", metavar="RUN...", nargs=-1, required=True)
def restore(run_refs: Sequence[str]) -> None:
    """Restore soft-deleted runs.

    \b
    Example:
      syllabus runs restore latest
    """
    with Client(create=False) as client:
        for ref in run_refs:
            run_id = _resolve(client, ref)
            client.restore_run(run_id)
            note(f"restored run {run_id}")


@runs.command("artifacts")
@click.argument("run")
@click.argument("path", default="")
@format_option()
def artifacts(run: str, path: str, fmt: Format) -> None:
    """List a run's artifacts (under PATH when given).

    \b
    Example:
      syllabus runs artifacts latest
    """
    with Client(create=False) as client:
        found = client.list_artifacts(_resolve(client, run), path)
    if fmt == "table":
        rows: list[dict[str, Any]] = [
            {"path": a.path, "size": format_bytes(a.size), "digest": a.digest[:12]} for a in found
        ]
    else:
        rows = [{"path": a.path, "size": a.size, "digest": a.digest} for a in found]
    emit_rows(rows, ["path", "size", "digest"], fmt, empty="no artifacts")


@runs.command("download")
@click.argument("run")
@click.argument("path", default="")
@click.option(
    "-d", "--dest", type=click.Path(path_type=Path), default=Path(), help="Folder to write to."
)
def download(run: str, path: str, dest: Path) -> None:
    """Download a run's artifact PATH (a file or folder; everything when omitted) into
    DEST, verifying every byte.

    \b
    Example:
      syllabus runs download latest notes.txt --dest out
    """
    with Client(create=False) as client:
        written = client.download_artifacts(_resolve(client, run), path, dest)
    click.echo(str(written))
