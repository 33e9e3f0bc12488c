"""``syllabus deploy``: apply deployment specs to environments, watch, roll back, stop,
promote canaries, render artifacts and score datasets in batch."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from syllabus.cli.output import Format, emit_json, emit_rows, format_option, note, progress_bar

__all__ = ["deploy"]


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _models(r: Any) -> str:
    text: str = r.model_ref
    if r.canary_ref:
        text += f" + canary {r.canary_ref} ({r.canary_percent:g}%)"
    if r.shadow_ref:
        text += f" + shadow {r.shadow_ref}"
    return text


def _revision_row(r: Any) -> dict[str, Any]:
    action = r.action if r.based_on is None else f"{r.action} of {r.based_on}"
    return {
        "service": r.name,
        "env": r.env,
        "revision": r.revision,
        "status": r.status,
        "models": _models(r),
        "target": r.target,
        "action": action,
        "applied by": r.created_by,
        "applied at": _when(r.created_at),
        "reason": r.reason or "",
    }


def _done(r: Any) -> None:
    where = r.runtime.get("url") or r.runtime.get("folder") or ""
    note(
        f"{r.name} ({r.env}) revision {r.revision} is {r.status}: {_models(r)}"
        + (f" at {where}" if where else "")
    )


@click.group("deploy")
def deploy() -> None:
    """Deploy models: one spec for every environment, revisions, rollback, batch scoring."""


@deploy.command("apply")
@click.argument("spec", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--env", "env", required=True, help="The environment (declared in the spec).")
@format_option(csv_ok=False)
def apply_command(spec: Path, env: str, fmt: Format) -> None:
    """Apply a deployment spec to an environment as a new revision and roll it out.

    The model references are pinned to the versions they name now. On the local target
    the new revision starts next to the live one and replaces it once ready; if it never
    becomes ready it is stopped, marked failed, and the live one keeps serving.

    Example:
        syllabus deploy apply deploy.yaml --env staging
    """
    from syllabus import Client

    with Client() as client:
        revision = client.apply_deployment(spec, env)
    if fmt == "json":
        emit_json(revision)
        return
    _done(revision)


@deploy.command("status")
@click.argument("name", required=False)
@format_option()
def status_command(name: str | None, fmt: Format) -> None:
    """Show deployments: live revision, models, process, address and health.

    Example:
        syllabus deploy status churn
    """
    from syllabus import Client

    with Client() as client:
        found = client.deployment_status(name)
    rows = []
    for s in found:
        d, h = s.deployment, s.health
        r = d.current
        rows.append(
            {
                "service": d.name,
                "env": d.env,
                "revision": r.revision,
                "status": d.status,
                "models": _models(r),
                "target": r.target,
                "pid": h.pid,
                "url": h.url or r.runtime.get("url"),
                "health": h.state,
                "detail": h.detail,
                "applied by": r.created_by,
                "applied at": _when(r.created_at),
            }
        )
    columns = ["service", "env", "revision", "status", "models", "target", "pid", "url",
               "health", "applied by", "applied at"]  # fmt: skip
    if fmt != "table":
        columns.append("detail")
    emit_rows(rows, columns, fmt, empty="no deployments; `syllabus deploy apply SPEC --env ENV`")


@deploy.command("history")
@click.argument("name")
@click.option("--env", "env", help="Only this environment.")
@click.option("--limit", type=int, default=100, show_default=True)
@format_option()
def history_command(name: str, env: str | None, limit: int, fmt: Format) -> None:
    """List the revisions of a service, newest first: who applied what, when, and how it went.

    Example:
        syllabus deploy history churn --env staging
    """
    from syllabus import Client

    with Client() as client:
        revisions = client.deployment_history(name, env, limit=limit)
    columns = ["service", "env", "revision", "status", "models", "target", "action",
               "applied by", "applied at", "reason"]  # fmt: skip
    emit_rows([_revision_row(r) for r in revisions], columns, fmt)


@deploy.command("rollback")
@click.argument("name")
@click.option("--env", "env", required=True)
@click.option("--to", "to", type=click.IntRange(1), help="The revision to restore.")
@format_option(csv_ok=False)
def rollback_command(name: str, env: str, to: int | None, fmt: Format) -> None:
    """Serve an earlier revision again (default: the one before the live revision).

    The rollback is itself a new revision, serving the model versions the earlier one
    served, with its configuration.

    Example:
        syllabus deploy rollback churn --env staging
    """
    from syllabus import Client

    with Client() as client:
        revision = client.rollback_deployment(name, env, to=to)
    if fmt == "json":
        emit_json(revision)
        return
    _done(revision)


@deploy.command("stop")
@click.argument("name")
@click.option("--env", "env", required=True)
@format_option(csv_ok=False)
def stop_command(name: str, env: str, fmt: Format) -> None:
    """Stop the live revision of a service in an environment (its history stays).

    Example:
        syllabus deploy stop churn --env staging
    """
    from syllabus import Client

    with Client() as client:
        revision = client.stop_deployment(name, env)
    if fmt == "json":
        emit_json(revision)
        return
    note(f"{name} ({env}) revision {revision.revision} stopped")


@deploy.command("promote-canary")
@click.argument("name")
@click.option("--env", "env", required=True)
@format_option(csv_ok=False)
def promote_canary_command(name: str, env: str, fmt: Format) -> None:
    """Make the live revision's canary the primary model (a new revision, no canary).

    Example:
        syllabus deploy promote-canary churn --env staging
    """
    from syllabus import Client

    with Client() as client:
        revision = client.promote_canary(name, env)
    if fmt == "json":
        emit_json(revision)
        return
    _done(revision)


@deploy.command("render")
@click.argument("spec", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--env", "env", required=True, help="The environment (declared in the spec).")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write into.",
)
def render_command(spec: Path, env: str, out: Path) -> None:
    """Write what an environment would get, without recording or starting anything.

    Local: the server config. Docker: the Dockerfile and build context. Kubernetes: the
    manifests and the image's build context.

    Example:
        syllabus deploy render deploy.yaml --env production --out rendered
    """
    from syllabus import Client

    with Client() as client:
        files = client.render_deployment(spec, env, out)
    for path in files:
        click.echo(str(path))


@deploy.command("batch")
@click.argument("model")
@click.option("--data", "data", required=True, help="The dataset version to score (new@2).")
@click.option("--output", "output", required=True, help="The dataset to add the scores to.")
@click.option("--chunk-rows", type=click.IntRange(1), default=100_000, show_default=True)
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--workers", type=click.IntRange(1), help="Parallel workers (default: CPUs).")
@format_option(csv_ok=False)
def batch_command(  # noqa: PLR0917 - click passes every option positionally
    model: str,
    data: str,
    output: str,
    chunk_rows: int,
    executor: str,
    workers: int | None,
    fmt: Format,
) -> None:
    """Score a dataset version with a model version into a new dataset version.

    The output has the input columns plus prediction (and score for classifiers). The
    scoring is a run in experiment batch-scoring whose inputs are the model and data
    versions and whose output is the new version.

    Example:
        syllabus deploy batch churn@2 --data new@1 --output scored --chunk-rows 10
    """
    from syllabus import Client

    with Client() as client, progress_bar("scoring", unit="rows") as progress:
        result = client.batch_score(
            model,
            data,
            output,
            chunk_rows=chunk_rows,
            executor=executor,
            workers=workers,
            progress=progress,
        )
    if fmt == "json":
        emit_json(
            {
                "output": result.output.ref,
                "model": result.model_ref,
                "data": result.data_ref,
                "rows": result.rows,
                "chunks": result.chunks,
                "run_id": result.run_id,
                "seconds": result.seconds,
                "executor": result.executor,
            }
        )
        return
    note(
        f"scored {result.rows} rows of {result.data_ref} with {result.model_ref} into "
        f"{result.output.ref} ({result.chunks} chunks, {result.seconds:.1f}s, run "
        f"{result.run_id[:8]})"
    )
