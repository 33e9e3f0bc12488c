"""``syllabus store``: verify, garbage-collect and measure the blob store."""

from __future__ import annotations

import sys

import click

from syllabus.blobs.maintenance import KindUsage
from syllabus.cli.output import (
    Format,
    emit_json,
    emit_rows,
    format_bytes,
    format_option,
    note,
    progress_bar,
)
from syllabus.client import Client
from syllabus.config import parse_duration

__all__ = ["store"]


@click.group("store")
def store() -> None:
    """Check, clean and measure the content-addressed blob store."""


@store.command("fsck")
@format_option(csv_ok=False)
def fsck(fmt: Format) -> None:
    """Re-hash every blob and check every database reference to a blob.

    Exits 1 when anything is corrupt or missing.

    \b
    Example:
      syllabus store fsck
    """
    with Client(create=False) as client, progress_bar("Verifying") as progress:
        report = client.fsck(progress=progress)
    if fmt == "json":
        emit_json({**_jsonable_fsck(report), "ok": report.ok})
    else:
        click.echo(
            f"checked {report.records_checked:,} records ({format_bytes(report.bytes_checked)}) "
            f"and {report.references_checked:,} references"
        )
        for digest, reason in sorted(report.corrupt.items()):
            click.echo(f"corrupt  {digest}  {reason}")
        for digest, chunks in sorted(report.missing_chunks.items()):
            click.echo(f"broken   {digest}  {len(chunks)} chunk(s) missing")
        for ref in report.missing:
            click.echo(
                f"missing  {ref.digest}  {ref.reason} ({ref.kind}: {ref.owner_type} {ref.owner_id})"
            )
        click.echo("ok" if report.ok else f"{report.problems} problem(s) found")
    if not report.ok:
        sys.exit(1)


def _jsonable_fsck(report: object) -> dict[str, object]:
    from syllabus.cli.output import to_jsonable

    value = to_jsonable(report)
    assert isinstance(value, dict)
    return value


@store.command("gc")
@click.option("--yes", is_flag=True, help="Delete; without it gc only lists what it would delete.")
@click.option(
    "--grace",
    metavar="DURATION",
    help="Keep unreferenced blobs younger than this (default: the gc_grace setting, 24h).",
)
@click.option(
    "--wait",
    metavar="DURATION",
    default="5s",
    show_default=True,
    help="How long to wait for other processes writing to the store before giving up.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Skip the check for other writers (needed on S3; only when no one else is writing).",
)
@format_option()
def gc(yes: bool, grace: str | None, wait: str, force: bool, fmt: Format) -> None:
    """Delete unreferenced blobs older than a grace period (lists them unless --yes).

    With --yes, runs and dataset versions deleted longer ago than the grace period are
    purged first (and archived model versions past their policy's retention retired), so
    the blobs only they referenced are deleted too.

    \b
    Examples:
      syllabus store gc
      syllabus store gc --grace 1h --yes
    """
    with Client(create=False) as client:
        seconds = parse_duration(grace) if grace is not None else None
        result = client.gc(
            dry_run=not yes, grace_seconds=seconds, timeout=parse_duration(wait), force=force
        )
    report = result.blobs
    if fmt != "table":
        emit_rows([{"digest": d} for d in report.unreferenced], ["digest"], fmt)
        return
    for digest in report.unreferenced:
        click.echo(digest)
    size = format_bytes(report.unreferenced_bytes)
    if report.dry_run:
        note(
            f"would delete {report.count:,} unreferenced record(s), {size}; "
            "run with --yes to delete (that also purges runs and dataset versions deleted "
            "longer ago than the grace period, and frees what only they referenced)"
        )
    else:
        purged = ", ".join(f"{n:,} {what.replace('_', ' ')}" for what, n in result.purged.items())
        note(f"purged {purged}")
        note(f"deleted {report.count:,} record(s), freed {format_bytes(report.freed_bytes)}")


@store.command("du")
@format_option()
def du(fmt: Format) -> None:
    """Summarize blob space by kind of object and by record type.

    \b
    Example:
      syllabus store du
    """
    with Client(create=False) as client:
        report = client.du()
    groups: list[tuple[str, str, KindUsage]] = [
        *(("kind", name, usage) for name, usage in report.by_kind.items()),
        ("kind", "(unreferenced)", report.unreferenced),
        *(("record", name, usage) for name, usage in report.by_record.items()),
        ("total", "total", report.total),
    ]
    if fmt != "table":
        rows = [
            {
                "group": group,
                "name": name,
                "records": u.count,
                "stored_bytes": u.stored_bytes,
                "logical_bytes": u.logical_bytes,
            }
            for group, name, u in groups
        ]
        emit_rows(rows, ["group", "name", "records", "stored_bytes", "logical_bytes"], fmt)
        return
    shown = [
        {
            "group": group,
            "name": name,
            "records": f"{u.count:,}",
            "stored": format_bytes(u.stored_bytes),
            "content": format_bytes(u.logical_bytes),
        }
        for group, name, u in groups
    ]
    emit_rows(shown, ["group", "name", "records", "stored", "content"], fmt)
