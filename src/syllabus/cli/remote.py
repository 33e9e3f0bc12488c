"""``syllabus remote``: named blob stores to push datasets to and pull them from."""

from __future__ import annotations

import click

from syllabus.cli.output import Format, emit_json, emit_rows, format_option, note
from syllabus.client import Client

__all__ = ["remote"]


@click.group("remote")
def remote() -> None:
    """Name blob stores (a folder or s3://bucket/prefix) for `data push` and `data pull`."""


@remote.command("add")
@click.argument("name")
@click.argument("url")
@format_option(csv_ok=False)
def add(name: str, url: str, fmt: Format) -> None:
    """Add a remote called NAME at URL (a folder or s3://bucket/prefix).

    S3-compatible stores take their endpoint from SYLLABUS_S3_ENDPOINT_URL.

    \b
    Example:
      syllabus remote add shared ../shared-store
    """
    with Client() as client:
        added = client.add_remote(name, url)
    if fmt == "json":
        emit_json(added)
    else:
        click.echo(f"{added.name} -> {added.url}")


@remote.command("list")
@format_option()
def list_(fmt: Format) -> None:
    """List remotes.

    \b
    Example:
      syllabus remote list
    """
    with Client(create=False) as client:
        rows = [{"name": r.name, "url": r.url} for r in client.list_remotes()]
    emit_rows(rows, ["name", "url"], fmt, empty="no remotes; add one with `syllabus remote add`")


@remote.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Forget remote NAME (its stored data is left as it is).

    \b
    Example:
      syllabus remote remove backup
    """
    with Client(create=False) as client:
        client.remove_remote(name)
    note(f"removed remote {name!r}")
