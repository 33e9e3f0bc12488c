"""``syllabus db``: the metadata database's schema."""

from __future__ import annotations

import click

from syllabus.cli.output import Format, emit_json, emit_rows, format_option, note
from syllabus.client import Client

__all__ = ["db"]


@click.group("db")
def db() -> None:
    """Inspect and migrate the metadata database's schema."""


@db.command("current")
@format_option(csv_ok=False)
def current(fmt: Format) -> None:
    """Show the database's schema revision and the one this version expects.

    \b
    Example:
      syllabus db current
    """
    with Client(create=False) as client:
        revision, head = client.db_current()
    if fmt == "json":
        emit_json({"revision": revision, "head": head, "up_to_date": revision == head})
        return
    state = "up to date" if revision == head else "run `syllabus db upgrade`"
    if revision is None:
        state = "empty; created at head on first use"
    click.echo(f"{revision or '(empty)'}  (head {head}: {state})")


@db.command("upgrade")
@format_option(csv_ok=False)
def upgrade(fmt: Format) -> None:
    """Migrate the database to this version's schema (SQLite is backed up first).

    \b
    Example:
      syllabus db upgrade
    """
    with Client(create=False) as client:
        result = client.db_upgrade()
    if fmt == "json":
        emit_json(result)
        return
    if result.backup is not None:
        note(f"Backed up the database to {result.backup}")
    if result.created:
        click.echo(f"Created the schema at {result.to_revision}")
    elif result.applied:
        click.echo(
            f"Upgraded {result.from_revision} -> {result.to_revision} "
            f"({len(result.applied)} migration(s))"
        )
    else:
        click.echo(f"Already at {result.to_revision}")


@db.command("history")
@format_option()
def history(fmt: Format) -> None:
    """List the schema migrations this version ships, oldest first.

    \b
    Example:
      syllabus db history --csv
    """
    from syllabus.meta import history as list_history

    rows = [
        {
            "revision": r.revision,
            "follows": r.down_revision,
            "head": r.is_head,
            "message": r.message,
        }
        for r in list_history()
    ]
    emit_rows(rows, ["revision", "follows", "head", "message"], fmt)
