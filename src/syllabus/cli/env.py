"""``syllabus env``: the Python environment of a run (show, diff)."""

from __future__ import annotations

import click

from syllabus.cli.code import resolve_run
from syllabus.cli.output import Format, emit_json, emit_rows, format_option, note
from syllabus.client import Client
from syllabus.code import CodeService, Environment
from syllabus.errors import NotFoundError

__all__ = ["env"]


@click.group("env")
def env() -> None:
    """Python environments of runs: interpreter, platform, packages, GPUs and
    allow-listed environment variables."""


def _environment(client: Client, run: str | None) -> Environment:
    if run is None:
        return client.current_environment()
    rc = client.get_run_code(resolve_run(client, run))
    if rc.environment is None:
        raise NotFoundError(f"run {run!r} recorded no environment")
    return rc.environment


@env.command("show")
@click.argument("run", required=False)
@click.option("--packages", is_flag=True, help="List every installed package.")
@format_option()
def show(run: str | None, packages: bool, fmt: Format) -> None:
    """Show the environment RUN used (without RUN: this one).

    \b
    Example:
      syllabus env show latest --packages
    """
    with Client(create=False) as client:
        e = _environment(client, run)
    if fmt == "json":
        emit_json(e)
        return
    if packages:
        rows = [{"package": k, "version": v} for k, v in e.packages.items()]
        emit_rows(rows, ["package", "version"], fmt, empty="no packages recorded")
        return
    lines = [
        ("environment", e.id),
        ("python", f"{e.implementation} {e.python}"),
        ("platform", e.platform),
        ("packages", str(len(e.packages))),
        ("gpus", "; ".join(e.gpus) or "-"),
        ("cuda", e.cuda or "-"),
    ]
    lines += [(f"${k}", v) for k, v in e.variables.items()]
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        click.echo(f"{key:<{width}}  {value}")


@env.command("diff")
@click.argument("run_a")
@click.argument("run_b", required=False)
@format_option()
def diff(run_a: str, run_b: str | None, fmt: Format) -> None:
    """Show packages added, removed and changed from RUN_A's environment to RUN_B's
    (without RUN_B: to this one).

    \b
    Example:
      syllabus env diff latest~1 latest
    """
    with Client(create=False) as client:
        a = _environment(client, run_a)
        b = _environment(client, run_b)
    result = CodeService.diff_environments(a, b)
    if fmt == "json":
        emit_json(result)
        return
    rows = [
        *({"change": "added", "name": k, "a": "", "b": v} for k, v in result.added.items()),
        *({"change": "removed", "name": k, "a": v, "b": ""} for k, v in result.removed.items()),
        *(
            {"change": "changed", "name": k, "a": old, "b": new}
            for k, (old, new) in result.changed.items()
        ),
        *(
            {"change": "other", "name": k, "a": str(old), "b": str(new)}
            for k, (old, new) in result.other.items()
        ),
    ]
    if not rows:
        note("no differences: same environment")
        return
    emit_rows(rows, ["change", "name", "a", "b"], fmt)
