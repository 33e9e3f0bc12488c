"""``syllabus data``: versioned datasets (add, list, show, diff, checkout, status, push, pull)."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

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

__all__ = ["data"]


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return ", ".join(f"{k}:{n}" for k, n in value[:5])
    return str(value)


@click.group("data")
def data() -> None:
    """Version datasets: files and folders, with chunk-level deduplication and tabular
    profiles (schema and column statistics)."""


@data.command("add")
@click.argument("name")
@click.argument("path", type=click.Path(exists=True))
@click.option("-m", "--message", default="", help="What changed in this version.")
@click.option("--tag", "tags", multiple=True, help="Tag the new version (repeatable).")
@click.option(
    "--no-profile", is_flag=True, help="Skip profiling CSV, Parquet and JSON Lines files."
)
@format_option(csv_ok=False)
def add(
    *, name: str, path: str, message: str, tags: tuple[str, ...], no_profile: bool, fmt: Format
) -> None:
    """Add a new version of dataset NAME from a file or folder.

    Only new chunks are stored; adding content identical to the latest version makes no
    new version.

    \b
    Example:
      syllabus data add churn data/ -m "first cut" --tag baseline
    """
    with Client() as client, progress_bar(f"Adding {name}") as progress:
        result = client.add_dataset(
            name, path, message=message, tags=tags, profile=not no_profile, progress=progress
        )
    v = result.version
    if fmt == "json":
        emit_json({**_version_json(v), "created": result.created})
        return
    if result.created:
        click.echo(f"{v.ref}: {v.file_count:,} file(s), {format_bytes(v.size)}")
    else:
        click.echo(v.ref)
        note(f"no changes: {v.ref} already has this content; no new version made")


def _version_json(v: Any) -> dict[str, Any]:
    from syllabus.cli.output import to_jsonable

    value = to_jsonable(v)
    assert isinstance(value, dict)
    value["ref"] = v.ref
    return value


@data.command("list")
@click.option("--remote", help="List the datasets published on this remote instead.")
@format_option()
def list_(remote: str | None, fmt: Format) -> None:
    """List datasets with their latest version (here, or on a remote).

    \b
    Example:
      syllabus data list
      syllabus data list --remote backup
    """
    with Client(create=False) as client:
        rows = client.list_datasets() if remote is None else client.remote_datasets(remote)
    shown = [
        {
            "name": r.name,
            "versions": r.versions,
            "latest": r.latest,
            "files": r.file_count,
            "size": r.size if fmt != "table" else format_bytes(r.size),
            "updated": _when(r.updated_at) if fmt == "table" else r.updated_at,
        }
        for r in rows
    ]
    emit_rows(
        shown, ["name", "versions", "latest", "files", "size", "updated"], fmt, empty="no datasets"
    )


@data.command("versions")
@click.argument("name")
@format_option()
def versions(name: str, fmt: Format) -> None:
    """List the versions of dataset NAME, newest first.

    \b
    Example:
      syllabus data versions churn
    """
    with Client(create=False) as client:
        rows = client.list_dataset_versions(name)
    shown = [
        {
            "version": v.version,
            "tags": ",".join(v.tags),
            "files": v.file_count,
            "size": v.size if fmt != "table" else format_bytes(v.size),
            "author": v.author,
            "created": _when(v.created_at) if fmt == "table" else v.created_at,
            "message": v.message,
        }
        for v in rows
    ]
    columns = ["version", "tags", "files", "size", "author", "created", "message"]
    emit_rows(shown, columns, fmt, empty=f"dataset {name!r} has no versions")


@data.command("show")
@click.argument("ref")
@format_option(csv_ok=False)
def show(ref: str, fmt: Format) -> None:
    """Show a version: message, author, time, tags, files and table profiles.

    \b
    Example:
      syllabus data show churn@1
    """
    with Client(create=False) as client:
        v = client.get_dataset(ref)
        files = client.dataset_files(v.ref)
        profiles = client.dataset_profiles(v.ref)
    if fmt == "json":
        emit_json(
            {
                **_version_json(v),
                "files": [{"path": p, "size": s, "digest": d} for p, s, d in files],
                "profiles": profiles,
            }
        )
        return
    click.echo(f"{v.ref}  ({v.kind}, {v.file_count:,} file(s), {format_bytes(v.size)})")
    click.echo(f"author:   {v.author}")
    click.echo(f"created:  {_when(v.created_at)}")
    if v.tags:
        click.echo(f"tags:     {', '.join(v.tags)}")
    if v.message:
        click.echo(f"message:  {v.message}")
    if v.source:
        click.echo(f"source:   {v.source}")
    click.echo(f"tree:     {v.tree}")
    click.echo("")
    emit_rows(
        [{"path": p, "size": format_bytes(s)} for p, s, _ in files], ["path", "size"], "table"
    )
    for path, prof in sorted(profiles.items()):
        click.echo(f"\n{path}: {prof.rows:,} rows, {len(prof.columns)} columns")
        rows = [
            {
                "column": c.name,
                "type": c.type,
                "nulls": f"{c.null_rate:.1%}",
                "min": _short(c.min),
                "max": _short(c.max),
                "mean": _short(c.mean) if c.mean is not None else "",
                "distinct": c.distinct,
                "top": _short(c.top) if c.top else "",
            }
            for c in prof.columns
        ]
        emit_rows(
            rows, ["column", "type", "nulls", "min", "max", "mean", "distinct", "top"], "table"
        )


@data.command("tag")
@click.argument("ref")
@click.argument("tag")
@click.option("--remove", is_flag=True, help="Remove TAG from dataset REF instead.")
def tag(ref: str, tag: str, remove: bool) -> None:
    """Tag a version (NAME@TAG then names it); moves the tag if it named another.

    \b
    Example:
      syllabus data tag churn@1 gold
    """
    with Client(create=False) as client:
        if remove:
            client.untag_dataset(ref.split("@", 1)[0], tag)
            note(f"removed tag {tag!r}")
            return
        v = client.tag_dataset(ref, tag)
    click.echo(f"{v.name}@{tag} -> {v.ref}")


@data.command("rm")
@click.argument("ref")
@click.option("--all", "all_versions", is_flag=True, help="Remove every version of the dataset.")
def rm(ref: str, all_versions: bool) -> None:
    """Remove a version (soft: `syllabus store gc` frees its space later).

    \b
    Example:
      syllabus data rm churn@1
    """
    with Client(create=False) as client:
        removed = client.remove_dataset(ref, all_versions=all_versions)
    for v in removed:
        click.echo(f"removed {v.ref}")


@data.command("diff")
@click.argument("ref_a")
@click.argument("ref_b")
@click.option("--key", help="Key column(s), comma-separated, for a row-level diff of tables.")
@format_option(csv_ok=False)
def diff(ref_a: str, ref_b: str, key: str | None, fmt: Format) -> None:
    """Compare two versions: files, and for tables schema, rows and column statistics.

    \b
    Example:
      syllabus data diff churn@1 churn@2 --key id
    """
    keys = [k.strip() for k in key.split(",") if k.strip()] if key else []
    with Client(create=False) as client:
        result = client.diff_datasets(ref_a, ref_b, key=keys)
    if fmt == "json":
        emit_json(result)
        return
    click.echo(f"{result.a} -> {result.b}")
    if result.same:
        click.echo("no changes")
        return
    for c in result.added:
        click.echo(f"  added     {c.path}  ({format_bytes(c.size_b)})")
    for c in result.removed:
        click.echo(f"  removed   {c.path}  ({format_bytes(c.size_a)})")
    for c in result.modified:
        click.echo(f"  modified  {c.path}  ({format_bytes(c.size_a)} -> {format_bytes(c.size_b)})")
    for t in result.tables:
        _echo_table(t)


def _echo_table(t: Any) -> None:
    click.echo(f"\n{t.path}:")
    if t.rows_a is not None and t.rows_b is not None:
        click.echo(f"  rows: {t.rows_a:,} -> {t.rows_b:,} ({t.rows_delta:+,})")
    for col, typ in t.columns_added:
        click.echo(f"  + column {col} ({typ})")
    for col, typ in t.columns_removed:
        click.echo(f"  - column {col} ({typ})")
    for col, a, b in t.columns_retyped:
        click.echo(f"  ~ column {col}: {a} -> {b}")
    for s in t.stats:
        click.echo(f"  {s.column}.{s.stat}: {_short(s.a)} -> {_short(s.b)}")
    if t.rows is not None:
        r = t.rows
        click.echo(
            f"  rows by {', '.join(r.key)}: +{r.added:,} added, -{r.removed:,} removed, "
            f"~{r.changed:,} changed, {r.unchanged:,} unchanged"
        )
        for what in ("added", "removed", "changed"):
            if r.examples.get(what):
                click.echo(f"    {what}: {', '.join(r.examples[what])}")
        if r.duplicate_keys_a or r.duplicate_keys_b:
            click.echo(
                f"  note: duplicate keys ({r.duplicate_keys_a:,} before, {r.duplicate_keys_b:,} "
                "after); counts are per joined row"
            )


@data.command("checkout")
@click.argument("ref")
@click.argument("folder", required=False)
@click.option("--force", is_flag=True, help="Overwrite locally modified files.")
def checkout(ref: str, folder: str | None, force: bool) -> None:
    """Write a version into FOLDER (default: where the dataset was last added or checked
    out, else ./NAME). Refuses to overwrite local changes unless --force.

    \b
    Example:
      syllabus data checkout churn@1 work/
    """
    with Client(create=False) as client, progress_bar(f"Checking out {ref}") as progress:
        report = client.checkout_dataset(ref, folder, force=force, progress=progress)
    click.echo(
        f"{report.ref} -> {report.folder}: {report.written:,} written "
        f"({format_bytes(report.written_bytes)}), {report.unchanged:,} unchanged, "
        f"{report.removed:,} removed"
    )


@data.command("status")
@click.argument("ref")
@click.argument("folder", required=False)
@format_option()
def status(ref: str, folder: str | None, fmt: Format) -> None:
    """List what differs between a working folder and a version (by default the one last
    added or checked out there).

    \b
    Example:
      syllabus data status churn
    """
    with Client(create=False) as client:
        report = client.dataset_status(ref, folder)
    if fmt != "table":
        rows = [{"path": c.path, "state": c.state, "size": c.size} for c in report.changes]
        emit_rows(rows, ["path", "state", "size"], fmt)
        return
    click.echo(f"{report.folder} vs {report.ref}")
    if report.clean:
        click.echo("up to date")
        return
    for c in report.changes:
        click.echo(f"  {c.state:<9} {c.path}")


def _transfer(verb: str, ref: str, remote: str | None, fmt: Format) -> None:
    with (
        Client(create=False) as client,
        progress_bar(f"{verb.title()}ing {ref}", unit="records") as progress,
    ):
        method = client.push_dataset if verb == "push" else client.pull_dataset
        result = method(ref, remote, progress=progress)
    if fmt == "json":
        emit_json(result)
    else:
        where = "to" if verb == "push" else "from"
        done = "published" if verb == "push" else "imported"
        name = ref.partition("@")[0]
        versions = ", ".join(f"{name}@{n}" for n in result.versions) or "no new version"
        click.echo(
            f"{verb}ed {ref} {where} {result.remote}: {versions} {done}; "
            f"{result.copied:,} record(s) copied ({format_bytes(result.copied_bytes)}), "
            f"{result.skipped:,} already there"
        )
        for tag in result.tags:
            click.echo(f"  tag {tag}")
    for line in result.conflicts:
        note(f"conflict: {line}")
    if result.conflicts:
        note(
            f"{len(result.conflicts)} conflict(s) left as they were; add the content again "
            "to give it a new number, or remove the local version (data rm, then store gc)"
        )
        sys.exit(1)


@data.command("push")
@click.argument("ref")
@click.option("--remote", help="Remote name (needed when several are configured).")
@format_option(csv_ok=False)
def push(ref: str, remote: str | None, fmt: Format) -> None:
    """Copy a version (NAME alone: every version) to a remote; only what it lacks.

    The records go first, then the metadata (numbers, messages, authors, tags, profiles),
    merged into what the remote has. A number the remote already uses for another version
    is a conflict: reported, not overwritten (exit status 1).

    \b
    Example:
      syllabus data push churn --remote backup
    """
    _transfer("push", ref, remote, fmt)


@data.command("pull")
@click.argument("ref")
@click.option("--remote", help="Remote name (needed when several are configured).")
@format_option(csv_ok=False)
def pull(ref: str, remote: str | None, fmt: Format) -> None:
    """Copy a version (NAME alone: every version the remote has) from a remote: the
    records missing here, then its metadata and tags. Then `data checkout` it.

    A local version with the same number but other content is a conflict: reported and
    kept (exit status 1).

    \b
    Example:
      syllabus data pull churn@2 --remote backup
    """
    _transfer("pull", ref, remote, fmt)
