"""Rendering for the CLI: one place for --json/--csv/table output, sizes, errors and progress.

stdout carries data; stderr carries everything else (errors, notes, progress bars). No
colour or bars when the stream is not a terminal.
"""

from __future__ import annotations

import csv
import dataclasses
import enum
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import click

__all__ = [
    "Format",
    "emit_json",
    "emit_rows",
    "format_bytes",
    "format_option",
    "note",
    "progress_bar",
    "to_jsonable",
]

Format = Literal["table", "json", "csv"]
F = TypeVar("F", bound=Callable[..., Any])


def format_option(*, csv_ok: bool = True) -> Callable[[F], F]:
    """``--json`` (and ``--csv`` for tabular listings) as one ``fmt`` parameter."""

    def decorate(func: F) -> F:
        func = click.option(
            "--json", "fmt", flag_value="json", help="Print JSON (the REST API's shape)."
        )(func)
        if csv_ok:
            func = click.option("--csv", "fmt", flag_value="csv", help="Print CSV.")(func)
        return click.option("--table", "fmt", flag_value="table", default=True, hidden=True)(func)

    return decorate


def to_jsonable(value: Any) -> Any:
    """Dataclasses, paths, enums, sets and tuples as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [to_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    return value


def emit_json(value: Any) -> None:
    click.echo(json.dumps(to_jsonable(value), indent=2, sort_keys=False))


def emit_rows(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    fmt: Format,
    *,
    title: str | None = None,
    empty: str = "nothing to show",
) -> None:
    """A listing as a table (terminal), JSON (a list of objects) or CSV (with a header)."""
    if fmt == "json":
        emit_json([{c: row.get(c) for c in columns} for row in rows])
        return
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
        return
    if not rows:
        note(empty)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    Console(soft_wrap=True).print(table)


def note(message: str) -> None:
    """A human note on stderr (never mixed into data on stdout)."""
    click.echo(message, err=True)


def format_bytes(n: int | float | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@contextmanager
def progress_bar(
    description: str, *, unit: str = "bytes"
) -> Iterator[Callable[[int, int | None], None]]:
    """A progress callback drawing a Rich bar on stderr when it is a terminal (else nothing)."""
    if not sys.stderr.isatty():
        yield lambda advance, total: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns: list[Any] = [TextColumn("{task.description}"), BarColumn()]
    if unit == "bytes":
        columns += [DownloadColumn(), TransferSpeedColumn()]
    else:
        columns += [MofNCompleteColumn()]
    columns.append(TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=None)

        def callback(advance: int, total: int | None) -> None:
            if total is not None:
                bar.update(task, total=total)
            bar.advance(task, advance)

        yield callback
