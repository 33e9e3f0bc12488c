"""``syllabus notebook``: checkpoints of Jupyter notebooks (checkpoint, log, diff, show,
restore, list).

A notebook reference is ``PATH`` (the latest checkpoint), ``PATH@N`` or ``PATH@latest``.
"""

from __future__ import annotations

import json
import time

import click

from syllabus.cli.output import Format, emit_json, emit_rows, format_option, note
from syllabus.client import Client

__all__ = ["notebook"]


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


@click.group("notebook")
def notebook() -> None:
    """Checkpoint Jupyter notebooks (canonical: metadata noise makes no new checkpoint),
    compare checkpoints cell by cell, and restore them."""


@notebook.command("checkpoint")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("-m", "--message", default="", help="What changed.")
@format_option(csv_ok=False)
def checkpoint(path: str, message: str, fmt: Format) -> None:
    """Checkpoint the notebook at PATH (outputs kept or stripped by the notebook_outputs
    setting).

    \b
    Example:
      syllabus notebook checkpoint analysis.ipynb -m "baseline model"
    """
    with Client() as client:
        cp, created = client.checkpoint_notebook(path, message=message)
    if fmt == "json":
        emit_json({**_cp(cp), "created": created})
        return
    click.echo(cp.ref)
    if not created:
        note(f"no changes: {cp.ref} already has this content; no new checkpoint made")


def _cp(cp: object) -> dict[str, object]:
    from syllabus.cli.output import to_jsonable

    value = to_jsonable(cp)
    assert isinstance(value, dict)
    value["ref"] = getattr(cp, "ref", None)
    return value


@notebook.command("log")
@click.argument("path")
@format_option()
def log(path: str, fmt: Format) -> None:
    """List the checkpoints of the notebook PATH, newest first.

    \b
    Example:
      syllabus notebook log analysis.ipynb
    """
    with Client(create=False) as client:
        checkpoints = client.list_notebook_checkpoints(path)
    rows = [
        {
            "version": c.version,
            "cells": c.cell_count,
            "outputs": "kept" if c.outputs else "stripped",
            "author": c.author,
            "created": _when(c.created_at) if fmt == "table" else c.created_at,
            "run": (c.run_id or "")[:12] if fmt == "table" else c.run_id,
            "message": c.message,
        }
        for c in checkpoints
    ]
    emit_rows(rows, ["version", "cells", "outputs", "author", "created", "run", "message"], fmt)


@notebook.command("list")
@format_option()
def list_(fmt: Format) -> None:
    """List checkpointed notebooks.

    \b
    Example:
      syllabus notebook list
    """
    with Client(create=False) as client:
        found = client.list_notebooks()
    rows = [
        {
            "path": n.path,
            "checkpoints": n.checkpoints,
            "latest": n.latest,
            "updated": _when(n.updated_at) if fmt == "table" else n.updated_at,
        }
        for n in found
    ]
    emit_rows(rows, ["path", "checkpoints", "latest", "updated"], fmt, empty="no notebooks")


@notebook.command("diff")
@click.argument("a")
@click.argument("b", required=False)
@click.option("--all", "show_all", is_flag=True, help="Also list unchanged cells.")
@format_option(csv_ok=False)
def diff(a: str, b: str | None, show_all: bool, fmt: Format) -> None:
    """Compare checkpoint A with checkpoint B cell by cell (without B: with the notebook
    file as it is now): added, removed, moved and modified cells, source diffs and a
    summary of output changes.

    \b
    Example:
      syllabus notebook diff analysis.ipynb@1 analysis.ipynb@2
    """
    with Client(create=False) as client:
        result = client.diff_notebook(a, b)
    if fmt == "json":
        emit_json(result)
        return
    if not result:
        note(f"no differences between {result.a} and {result.b}")
        return
    for cell in result.cells if show_all else result.changes:
        where = cell.b_index if cell.b_index is not None else cell.a_index
        label = cell.summary or f"unchanged {cell.cell_type} cell"
        click.echo(f"[{(where or 0) + 1}] {label}")
        if cell.source_diff:
            for line in cell.source_diff.splitlines()[2:]:
                click.echo(f"    {line}")
    if result.metadata:
        click.echo(f"notebook metadata changed: {', '.join(result.metadata)}")
    note(
        f"{result.count('added')} added, {result.count('removed')} removed, "
        f"{result.count('modified')} modified, {result.count('moved')} moved"
    )


@notebook.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="Print the checkpoint's notebook JSON.")
def show(ref: str, as_json: bool) -> None:
    """Show checkpoint REF: its details and the first line of every cell.

    \b
    Example:
      syllabus notebook show analysis.ipynb@1
    """
    with Client(create=False) as client:
        cp = client.get_notebook_checkpoint(ref)
        data = client.read_notebook_checkpoint(ref)
    if as_json:
        click.echo(data.decode("utf-8"), nl=False)
        return
    click.echo(f"{cp.ref}  {cp.cell_count} cell(s)  {_when(cp.created_at)}  {cp.author}")
    if cp.message:
        click.echo(f"    {cp.message}")
    nb = json.loads(data)
    for n, cell in enumerate(nb["cells"], start=1):
        lines = "".join(cell.get("source", [])).strip().splitlines()
        first = lines[0] if lines else ""
        outputs = len(cell.get("outputs", []))
        extra = f"  ({outputs} output(s))" if outputs else ""
        click.echo(f"[{n}] {cell['cell_type']:<8} {first[:70]}{extra}")


@notebook.command("restore")
@click.argument("ref")
@click.option("--to", "to", type=click.Path(dir_okay=False), help="Write here instead.")
@click.option("--force", is_flag=True, help="Overwrite changes that are in no checkpoint.")
def restore(ref: str, to: str | None, force: bool) -> None:
    """Write checkpoint REF back to the notebook's path (or --to PATH). A notebook with
    changes that are in no checkpoint is kept unless --force.

    \b
    Example:
      syllabus notebook restore analysis.ipynb@1 --to analysis-v1.ipynb
    """
    with Client(create=False) as client:
        dest = client.restore_notebook(ref, to=to, force=force)
    click.echo(str(dest))
