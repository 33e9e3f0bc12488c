"""``syllabus demo``: the end-to-end demo on an embedded workspace."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from syllabus.cli.output import format_bytes, note

__all__ = ["demo"]


@click.command("demo")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run in this (empty or new) folder and keep it; default: a temporary folder.",
)
def demo(folder: Path | None) -> None:
    """Run the end-to-end demo on a fresh embedded workspace.

    \b
    Example:
      syllabus demo --dir ./demo
    """
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="syllabus-demo-") as tmp:
            _run(Path(tmp) / "demo")
    else:
        _run(folder)


def _run(folder: Path) -> None:
    from syllabus.demo import run_demo

    note(f"Syllabus demo in {folder}")
    for number, step in enumerate(run_demo(folder), start=1):
        facts = ", ".join(
            f"{k}={format_bytes(v) if k.endswith('bytes') and isinstance(v, int) else v}"
            for k, v in step.facts.items()
        )
        click.echo(f"{number:>2}. {step.title} [{step.seconds:.2f}s]")
        if facts:
            click.echo(f"    {facts}")
    click.echo("Demo finished.")
