"""``syllabus code``: the code a run was started from (show, diff, checkout).

A RUN argument is a run id, a unique id prefix of at least 6 characters, ``latest`` (the
newest run) or ``latest~N`` (the N-th before it).
"""

from __future__ import annotations

import re
import time
from typing import Any

import click

from syllabus.cli.output import Format, emit_json, emit_rows, format_bytes, format_option, note
from syllabus.client import Client
from syllabus.errors import NotFoundError

__all__ = ["code", "resolve_run"]

_LATEST = re.compile(r"latest(?:~(\d+))?")


def resolve_run(client: Client, ref: str) -> str:
    """A run id from an id, a prefix, ``latest`` or ``latest~N``."""
    m = _LATEST.fullmatch(ref)
    if m is None:
        return ref
    back = int(m.group(1) or 0)
    page = client.search_runs(order_by=["start_time desc", "id desc"], max_results=back + 1)
    if len(page) <= back:
        raise NotFoundError(f"there is no run {ref!r} (only {len(page)} run(s) in this store)")
    return page[back].id


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


@click.group("code")
def code() -> None:
    """The code runs were started from: git commit, branch, remote, uncommitted patch and
    untracked files (or a snapshot of source files outside git), and the entry point."""


@code.command("show")
@click.argument("run")
@click.option("--patch", is_flag=True, help="Print the uncommitted patch too.")
@format_option(csv_ok=False)
def show(run: str, patch: bool, fmt: Format) -> None:
    """Show what RUN was started from.

    \b
    Example:
      syllabus code show latest
    """
    with Client(create=False) as client:
        rc = client.get_run_code(resolve_run(client, run))
        text = client.read_code_patch(rc.run_id).decode("utf-8", "replace") if patch else ""
    if fmt == "json":
        emit_json({**_jsonable(rc), **({"patch": text} if patch else {})})
        return
    s, g = rc.snapshot, rc.snapshot.git
    rows: list[tuple[str, Any]] = [("run", rc.run_id), ("snapshot", s.id), ("kind", s.kind)]
    if g is not None:
        rows += [
            ("commit", g.commit or "(no commits yet)"),
            ("branch", g.branch or ("(detached HEAD)" if g.commit else "-")),
            ("remote", g.remote or "-"),
            ("dirty", "yes" if g.dirty else "no"),
        ]
        if g.patch:
            rows.append(("patch", format_bytes(g.patch_size)))
        if g.untracked_count:
            rows.append(("untracked files", g.untracked_count))
    if s.kind == "files":
        rows.append(("files", s.file_count))
    if s.skipped:
        shown = ", ".join(s.skipped[:5]) + (", ..." if len(s.skipped) > 5 else "")
        rows.append(("skipped (size)", shown))
    rows += [
        ("root", rc.root or "-"),
        ("entry point", rc.entry_point or "-"),
        ("arguments", " ".join(rc.argv) or "-"),
        ("environment", rc.environment.id if rc.environment else "-"),
        ("captured", _when(rc.created_at)),
    ]
    if rc.checkpoint_id:
        rows.append(("notebook checkpoint", rc.checkpoint_id))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")
    if text:
        click.echo()
        click.echo(text, nl=False)


def _jsonable(rc: Any) -> dict[str, Any]:
    from syllabus.cli.output import to_jsonable

    value = to_jsonable(rc)
    assert isinstance(value, dict)
    return value


@code.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--stat", is_flag=True, help="Only list the changed files.")
@format_option(csv_ok=False)
def diff(run_a: str, run_b: str, stat: bool, fmt: Format) -> None:
    """Show the source-level differences between the code of RUN_A and RUN_B.

    \b
    Example:
      syllabus code diff latest~1 latest
    """
    with Client(create=False) as client:
        result = client.diff_code(resolve_run(client, run_a), resolve_run(client, run_b))
    if fmt == "json":
        emit_json(result)
        return
    if not result:
        note("no differences: both runs used the same code")
        return
    if stat:
        rows = [
            *({"change": "added", "path": p} for p in result.added),
            *({"change": "removed", "path": p} for p in result.removed),
            *({"change": "modified", "path": p} for p in result.modified),
        ]
        emit_rows(rows, ["change", "path"], "table")
        return
    click.echo(result.patch, nl=False)
    note(
        f"{len(result.added)} added, {len(result.removed)} removed, {len(result.modified)} modified"
    )


@code.command("checkout")
@click.argument("run")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option(
    "--repo",
    "repos",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="A git repository holding the run's commit (repeatable; default: where it ran).",
)
def checkout(run: str, folder: str, repos: tuple[str, ...]) -> None:
    """Write the exact code of RUN into the new or empty FOLDER: its commit plus the
    uncommitted patch and untracked files, or the snapshot of source files.

    \b
    Example:
      syllabus code checkout latest restored-code
    """
    with Client(create=False) as client:
        result = client.checkout_code(resolve_run(client, run), folder, repos=repos)
    click.echo(str(result.path))
    what = f"commit {result.commit[:12]}" if result.commit else "snapshot"
    extra = " + patch" if result.patched else ""
    extra += f" + {result.untracked} untracked file(s)" if result.untracked else ""
    note(f"{result.files} file(s) from {what}{extra}")
