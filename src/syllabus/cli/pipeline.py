"""``syllabus pipeline``: run cached pipelines, list them, show their runs and DAG."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import click

from syllabus.cli.output import Format, emit_json, emit_rows, format_option, note

__all__ = ["pipeline"]


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(ms: int | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.2f}s"


def _params(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--param")
        out[key.strip()] = value
    return out


def _print_result(result: Any) -> None:
    rows = [
        {
            "step": s.step,
            "status": s.status.value,
            "why": s.error if s.error and s.status.value == "failed" else s.reason,
            "run": (s.run_id or "")[:12],
            "time": _duration(s.duration_ms),
        }
        for s in result.steps
    ]
    emit_rows(rows, ["step", "status", "why", "run", "time"], "table")
    run = result.run
    counts = f"{len(result.ran)} ran, {len(result.cached)} cached"
    if result.failed:
        counts += f", {len(result.failed)} failed, {len(result.skipped)} skipped"
    note(f"pipeline run {run.id[:12]} {run.status.value} ({counts}); tracked run {run.run_id}")
    if not result.ok:
        note(f"continue it with: syllabus pipeline run {run.pipeline} --resume {run.id[:12]}")


@click.group()
def pipeline() -> None:
    """Run cached pipelines; list them, their runs and their DAG."""


@pipeline.command("run")
@click.argument("target")
@click.option("-p", "--param", "params", multiple=True, help="A pipeline param KEY=VALUE.")
@click.option("--force", "force", multiple=True, metavar="STEP", help="Re-run STEP anyway.")
@click.option(
    "--resume",
    is_flag=False,
    flag_value="last",
    default=None,
    metavar="[RUN]",
    help="Continue a failed run (default: the latest) keeping what succeeded.",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray", "inline"]),
    default=None,
    help="Where steps run (default: local, a process pool).",
)
@click.option("--workers", type=int, default=None, help="Worker processes of the local pool.")
@format_option(csv_ok=False)
def run_command(  # noqa: PLR0917 - click passes every option positionally
    target: str,
    params: tuple[str, ...],
    force: tuple[str, ...],
    resume: str | None,
    executor: str | None,
    workers: int | None,
    fmt: Format,
) -> None:
    """Run a pipeline: a registered NAME, FILE.py:FUNCTION, module:FUNCTION or FILE.yaml.

    Steps whose code, params and inputs are unchanged are not run again: their stored
    results are reused and listed as cached, with the reason each other step ran. A
    failed step stops the steps after it; --resume continues the run.

    Example:
        syllabus pipeline run flows.py:numbers
        syllabus pipeline run numbers -p power=3 --executor inline
        syllabus pipeline run numbers --force square --executor inline
    """
    from syllabus import Client

    def on_step(step: str, status: Any, reason: str) -> None:
        if status.value in ("running", "cached") and fmt != "json" and sys.stderr.isatty():
            note(f"  {step}: {status.value} ({reason})")

    with Client() as client:
        result = client.run_pipeline(
            target,
            params=_params(params),
            force=list(force),
            executor=executor,
            max_workers=workers,
            resume=resume,
            on_step=on_step,
        )
    if fmt == "json":
        emit_json(result.to_dict())
    else:
        _print_result(result)
    if not result.ok:
        sys.exit(1)


@pipeline.command("list")
@format_option()
def list_command(fmt: Format) -> None:
    """List registered pipelines with their last run.

    Example:
        syllabus pipeline list
    """
    from syllabus import Client

    rows = []
    with Client() as client:
        for info in client.list_pipelines():
            last = client.list_pipeline_runs(info.name, limit=1)
            triggers = client.list_triggers(info.name)
            rows.append(
                {
                    "name": info.name,
                    "steps": len(info.steps),
                    "triggers": ", ".join(f"{t.name} ({t.kind})" for t in triggers),
                    "source": info.source,
                    "last run": _when(last[0].started_at) if last else "-",
                    "status": last[0].status.value if last else "-",
                }
            )
    columns = ["name", "steps", "triggers", "source", "last run", "status"]
    emit_rows(rows, columns, fmt, empty="no pipelines; `syllabus pipeline run FILE.py:NAME`")


@pipeline.command("show")
@click.argument("name")
@format_option(csv_ok=False)
def show_command(name: str, fmt: Format) -> None:
    """Show a pipeline: params, steps, triggers and recent firings.

    Example:
        syllabus pipeline show numbers
    """
    from syllabus import Client
    from syllabus.pipelines.dag import render_text

    with Client() as client:
        info = client.get_pipeline(name)
        definition = client.pipeline_definition(name)
        triggers = client.list_triggers(name)
        firings = client.list_firings(name, limit=10)
    if fmt == "json":
        emit_json(
            {
                "pipeline": info,
                "definition": definition.to_json(),
                "triggers": triggers,
                "firings": firings,
            }
        )
        return
    click.echo(f"pipeline {info.name} (from {info.source or 'a stored definition'})")
    if definition.description:
        click.echo(definition.description)
    if definition.params:
        click.echo("params: " + ", ".join(f"{k}={v!r}" for k, v in definition.params.items()))
    click.echo(render_text(definition))
    if triggers:
        click.echo("triggers:")
        for t in triggers:
            spec = t.spec.get(t.kind)
            fired = _when(t.last_fired_at) if t.last_fired_at else "never"
            click.echo(f"  {t.name}: {t.kind} {spec!r}; last fired {fired}")
    for f in firings:
        click.echo(f"  fired {_when(f.fired_at)} for {f.occurrence}: {f.status}")


@pipeline.command("runs")
@click.argument("name", required=False)
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--run", "run_ref", help="Show one run's steps (id or unique prefix).")
@format_option()
def runs_command(name: str | None, limit: int, run_ref: str | None, fmt: Format) -> None:
    """List the runs of a pipeline (or of all), newest first; --run shows one run's steps.

    Example:
        syllabus pipeline runs numbers
    """
    from syllabus import Client

    with Client() as client:
        if run_ref is not None:
            result = client.get_pipeline_run(run_ref)
            if fmt == "json":
                emit_json(result.to_dict())
            else:
                _print_result(result)
            return
        runs = client.list_pipeline_runs(name, limit=limit)
    rows = [
        {
            "id": r.id if fmt == "json" else r.id[:12],
            "pipeline": r.pipeline,
            "status": r.status.value,
            "started": _when(r.started_at),
            "time": _duration(None if r.ended_at is None else r.ended_at - r.started_at),
            "executor": r.executor,
            "params": ", ".join(f"{k}={v}" for k, v in r.params.items()),
            "trigger": "yes" if r.firing_id else "",
            "resumes": (r.resumes or "")[:12],
            "error": r.error or "",
        }
        for r in runs
    ]
    columns = ["id", "pipeline", "status", "started", "time", "params"]
    if fmt != "table":
        columns += ["executor", "trigger", "resumes", "error"]
    emit_rows(rows, columns, fmt, empty="no pipeline runs")


@pipeline.command("dag")
@click.argument("name")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the DAG as an image: .svg (always) or .png (needs cairosvg).",
)
@click.option("--run", "run_ref", help="Colour steps by this run's statuses.")
def dag_command(name: str, output: Path | None, run_ref: str | None) -> None:
    """Print a pipeline's DAG as text; -o also draws it as an SVG image.

    Example:
        syllabus pipeline dag numbers
        syllabus pipeline dag numbers -o numbers.svg
    """
    from syllabus import Client
    from syllabus.errors import ConfigError
    from syllabus.pipelines.dag import render_svg, render_text

    with Client() as client:
        definition = client.pipeline_definition(name)
        statuses = None
        if run_ref is not None:
            result = client.get_pipeline_run(run_ref)
            statuses = {s.step: s.status.value for s in result.steps}
    click.echo(render_text(definition, statuses))
    if output is None:
        return
    svg = render_svg(definition, statuses)
    suffix = output.suffix.lower()
    if suffix == ".svg":
        output.write_text(svg, encoding="utf-8")
    elif suffix == ".png":
        try:
            import cairosvg  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            raise ConfigError(
                "writing PNG needs cairosvg (`pip install cairosvg`); -o FILE.svg needs nothing"
            ) from None
        cairosvg.svg2png(bytestring=svg.encode(), write_to=str(output))
    else:
        raise click.BadParameter("the image must end in .svg or .png", param_hint="--output")
    note(f"wrote {output}")
