"""``syllabus policy``: promotion policies (YAML, versioned when applied)."""

from __future__ import annotations

from pathlib import Path

import click

from syllabus.cli.output import Format, emit_json, format_option

__all__ = ["policy"]


@click.group()
def policy() -> None:
    """Promotion policies: which stages a version may enter from where, and its gates."""


@policy.command("apply")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def apply_command(file: Path) -> None:
    """Validate and apply a policy file (a new version when it changed).

    Example:
        syllabus policy apply policy.yaml
    """
    from syllabus import Client

    with Client() as client:
        applied = client.apply_policy(file)
    click.echo(f"policy {applied.name} version {applied.version}")


@policy.command("show")
@click.argument("name")
@click.option("--version", type=int, help="A past version (default: the newest).")
@format_option(csv_ok=False)
def show_command(name: str, version: int | None, fmt: Format) -> None:
    """Print a policy as applied (NAME is a model name or `default`).

    Example:
        syllabus policy show churn
    """
    from syllabus import Client

    with Client() as client:
        found = client.get_policy(name, version=version)
    if fmt == "json":
        emit_json(found)
        return
    click.echo(f"# policy {found.name} version {found.version}, applied by {found.created_by}")
    click.echo(found.text, nl=False)
