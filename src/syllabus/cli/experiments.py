"""``syllabus experiments``: list, create, rename, delete and restore experiments."""

from __future__ import annotations

import click

from syllabus.cli.output import Format, emit_json, emit_rows, format_option, note
from syllabus.client import Client

__all__ = ["experiments"]


def _ms(value: int | None) -> str:
    if value is None:
        return ""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


@click.group("experiments")
def experiments() -> None:
    """Named groups of runs."""


@experiments.command("list")
@click.option("--deleted", is_flag=True, help="List deleted experiments instead.")
@format_option()
def list_command(deleted: bool, fmt: Format) -> None:
    """List experiments, oldest first.

    \b
    Example:
      syllabus experiments list
    """
    with Client(create=False) as client:
        found = client.search_experiments(deleted="deleted" if deleted else "active")
    if fmt == "json":
        emit_json(found)
        return
    rows = [
        {
            "id": e.id if fmt == "csv" else e.id[:12],
            "name": e.name,
            "created": _ms(e.created_at),
            "description": e.description or "",
        }
        for e in found
    ]
    emit_rows(rows, ["id", "name", "created", "description"], fmt, empty="no experiments")


@experiments.command("create")
@click.argument("name")
@click.option("-d", "--description", help="What the experiment is about.")
@format_option(csv_ok=False)
def create(name: str, description: str | None, fmt: Format) -> None:
    """Create an experiment named NAME.

    \b
    Example:
      syllabus experiments create churn -d "churn model, 2025 data"
    """
    with Client() as client:
        exp = client.create_experiment(name, description=description)
    if fmt == "json":
        emit_json(exp)
    else:
        click.echo(exp.id)
        note(f"created experiment {exp.name!r}")


@experiments.command("rename")
@click.argument("experiment")
@click.argument("new_name")
def rename(experiment: str, new_name: str) -> None:
    """Rename EXPERIMENT (a name or id) to NEW_NAME.

    \b
    Example:
      syllabus experiments rename Default baseline
    """
    with Client(create=False) as client:
        exp = client.rename_experiment(experiment, new_name)
    note(f"renamed experiment {exp.id[:12]} to {exp.name!r}")


@experiments.command("delete")
@click.argument("experiment")
def delete(experiment: str) -> None:
    """Soft-delete EXPERIMENT and hide its runs; its name is free again at once.

    `experiments restore` undoes it; `store gc` removes it for good later.

    \b
    Example:
      syllabus experiments delete Default
    """
    with Client(create=False) as client:
        exp = client.delete_experiment(experiment)
    note(
        f"deleted experiment {exp.name!r} ({exp.id[:12]}); `syllabus experiments restore` undoes it"
    )


@experiments.command("restore")
@click.argument("experiment")
def restore(experiment: str) -> None:
    """Restore a deleted EXPERIMENT (its id, or its name when no live one has it).

    \b
    Example:
      syllabus experiments restore old-baseline
    """
    with Client(create=False) as client:
        exp = client.restore_experiment(experiment)
    note(f"restored experiment {exp.name!r} ({exp.id[:12]})")
