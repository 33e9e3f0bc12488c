"""``syllabus maturity``: which MLOps maturity level (0-3) the workspace has reached."""

from __future__ import annotations

import click

from syllabus.cli.output import Format, emit_json, format_option

__all__ = ["maturity_command"]


@click.command("maturity")
@format_option(csv_ok=False)
def maturity_command(fmt: Format) -> None:
    """Check the workspace against maturity levels 0-3 and say what is missing.

    0: runs are tracked. 1: data and models are versioned and linked. 2: runs carry code
    and environments, and a run was reproduced. 3: a triggered pipeline, monitoring with
    alert rules and gated promotions are active. Each criterion is met or missing, with
    the command that would meet it.

    Example:
        syllabus maturity
        syllabus maturity --json
    """
    from rich.console import Console
    from rich.markup import escape

    from syllabus import Client
    from syllabus.client.maturity import LEVELS

    with Client() as client:
        report = client.maturity()
    if fmt == "json":
        emit_json(report.to_dict())
        return
    console = Console(soft_wrap=True, highlight=False)
    if report.level < 0:
        console.print("[bold]maturity: below level 0[/bold] (no runs yet)")
    else:
        console.print(f"[bold]maturity: level {report.level}[/bold] ({LEVELS[report.level]})")
    for n, text in LEVELS.items():
        console.print(f"\n[bold]level {n}[/bold]: {text}")
        for c in report.criteria:
            if c.level != n:
                continue
            mark = "[green]met    [/green]" if c.met else "[red]missing[/red]"
            console.print(f"  {mark} {escape(c.title)}: {escape(c.evidence)}")
            if not c.met:
                console.print(f"          to meet it: {escape(c.command)}")
