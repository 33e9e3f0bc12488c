"""``syllabus init`` and ``syllabus info``."""

from __future__ import annotations

from pathlib import Path

import click

from syllabus.cli.output import Format, emit_json, format_bytes, format_option, note
from syllabus.client import Client, init_workspace

__all__ = ["info_command", "init_command"]


@click.command("init")
@click.argument(
    "folder", required=False, type=click.Path(file_okay=False, path_type=Path), default="."
)
def init_command(folder: Path) -> None:
    """Create a workspace (.syllabus/) in FOLDER (default: the current folder).

    \b
    Example:
      syllabus init
    """
    ws = init_workspace(folder)
    with Client(ws) as client:
        revision = client.open()
    note(f"Initialized an empty Syllabus workspace in {ws} (schema {revision})")


@click.command("info")
@format_option(csv_ok=False)
def info_command(fmt: Format) -> None:
    """Show the workspace, backends and versions, schema revision, object counts and sizes.

    \b
    Example:
      syllabus info --json
    """
    with Client(create=False) as client:
        info = client.info()
    if fmt == "json":
        emit_json(info)
        return
    db = info.database
    lines = [
        ("syllabus", info.version),
        ("workspace", info.workspace or "(none)"),
        ("database", f"{db.backend} {db.server_version}  {db.url}"),
        ("schema", f"{db.revision or '(empty)'} (this version expects {db.head})"),
        ("database size", format_bytes(db.size_bytes)),
        ("blobs", f"{info.blobs_backend}  {info.blobs_url}"),
        (
            "blob objects",
            f"{info.blob_objects:,} ({format_bytes(info.blob_stored_bytes)} stored, "
            f"{format_bytes(info.blob_logical_bytes)} of content)",
        ),
    ]
    lines += [(f"rows in {name}", f"{count:,}") for name, count in db.tables.items()]
    for name, setting in info.settings.items():
        lines.append((f"setting {name}", f"{setting['value']} ({setting['source']})"))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        click.echo(f"{key:<{width}}  {value}")
