"""``syllabus reproduce RUN``: re-run a run from its code and data and judge the result."""

from __future__ import annotations

import shlex
import sys

import click

from syllabus.cli.code import resolve_run
from syllabus.cli.output import emit_json, note
from syllabus.client import Client
from syllabus.client.reproduce import ReproducePlan, Verdict

__all__ = ["reproduce_command"]


def _show_plan(plan: ReproducePlan) -> None:
    rows = [
        ("run", plan.run_id),
        ("folder", plan.folder or "(a new temporary folder)"),
        ("code", f"snapshot {plan.snapshot_id[:12]} ({plan.kind})"),
    ]
    if plan.commit:
        rows.append(("commit", plan.commit + (" + uncommitted changes" if plan.dirty else "")))
    rows.append(("command", shlex.join(plan.command)))
    rows += [(f"param {k}", v) for k, v in plan.params.items()]
    rows += [(f"input {i.role}", f"{i.ref} -> {i.path} (${i.variable})") for i in plan.inputs]
    rows += [("not materialized", s) for s in plan.skipped]
    rows += [(f"metric {k}", f"{v:.6g}") for k, v in plan.metrics.items()]
    env = plan.environment
    if env is None:
        rows.append(("environment", "not recorded"))
    elif not env:
        rows.append(("environment", "same as this interpreter"))
    else:
        rows += [(f"env {k}", f"{a} recorded, {b} here") for k, (a, b) in env.changed.items()]
        rows += [(f"env {k}", f"{v} recorded, not installed here") for k, v in env.removed.items()]
        rows += [(f"env {k}", f"not recorded, {v} here") for k, v in env.added.items()]
        rows += [(f"env {k}", f"{a} recorded, {b} here") for k, (a, b) in env.other.items()]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")


def _show_verdict(verdict: Verdict) -> None:
    rows = [
        ("run", verdict.run_id),
        ("reproduction", verdict.new_run_id or "-"),
        ("folder", verdict.folder),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")
    if verdict.metrics:
        click.echo()
        click.echo(f"{'metric':<24} {'original':>14} {'reproduced':>14} {'difference':>12}  ok")
        for m in verdict.metrics:
            new = "missing" if m.new is None else f"{m.new:.8g}"
            diff = "-" if m.abs_diff is None else f"{m.abs_diff:.3g}"
            ok = "yes" if m.ok else "NO"
            click.echo(f"{m.key:<24} {m.original:>14.8g} {new:>14} {diff:>12}  {ok}")
    for key, (a, b) in verdict.params.items():
        click.echo(f"param {key}: {a!r} -> {b!r}")
    for text in verdict.notes:
        note(f"note: {text}")
    if verdict.returncode != 0 and verdict.output:
        note(f"output of the entry point (last lines, see {verdict.folder}/reproduce.log):")
        note("\n".join(verdict.output.splitlines()[-20:]))
    click.echo()
    click.echo(verdict.reason)


@click.command("reproduce")
@click.argument("run")
@click.option("--dry-run", is_flag=True, help="Show the plan; change nothing.")
@click.option(
    "--venv",
    is_flag=True,
    help="Run in a new virtual environment with the recorded package versions.",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=1e-6,
    show_default=True,
    help="Relative tolerance for each metric.",
)
@click.option(
    "--abs-tolerance",
    type=click.FloatRange(min=0),
    default=1e-6,
    show_default=True,
    help="Absolute tolerance for each metric.",
)
@click.option(
    "--folder",
    type=click.Path(file_okay=False),
    help="A new or empty folder to work in (default: a new temporary folder).",
)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), help="Seconds to allow.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the REST API's shape).")
def reproduce_command(  # noqa: PLR0917 - click passes each option
    run: str,
    dry_run: bool,
    venv: bool,
    tolerance: float,
    abs_tolerance: float,
    folder: str | None,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Re-run a run from its code and input data versions and compare its metrics.

    Materializes RUN's code snapshot and input dataset versions in a fresh folder,
    lists how this environment differs from the recorded one, runs the entry script
    with the same arguments, and compares the new run's metrics and params with RUN's.
    The new run is tagged syllabus.reproduces=RUN. Exits 0 when it reproduced, 1 when
    not.

    \b
    Example:
      syllabus reproduce latest --dry-run
    """
    with Client(create=False) as client:
        run_id = resolve_run(client, run)
        if dry_run:
            plan = client.plan_reproduction(run_id, folder=folder)
            if as_json:
                emit_json(plan)
            else:
                _show_plan(plan)
                note("dry run: nothing was run or changed")
            return
        verdict = client.reproduce(
            run_id,
            folder=folder,
            tolerance=tolerance,
            abs_tolerance=abs_tolerance,
            venv=venv,
            timeout=timeout,
        )
    if as_json:
        emit_json(verdict)
    else:
        _show_verdict(verdict)
    if not verdict.reproduced:
        sys.exit(1)
