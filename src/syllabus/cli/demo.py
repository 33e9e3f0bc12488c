"""``syllabus demo``: the end-to-end demo on an embedded workspace."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from syllabus.cli.output import format_bytes, note

if TYPE_CHECKING:
    from syllabus.demo import DemoStep

__all__ = ["demo", "render_step"]

_EXPLORE = (
    "syllabus data diff churn@1 churn@2 --key customer_id",
    "syllabus runs list -e churn -c name,status,metrics.val_auc,params.data",
    "syllabus runs compare latest latest~1",
    "syllabus code show latest",
    "syllabus data show churn@2",
    "syllabus models history churn",
    "syllabus models lineage churn@production",
    "syllabus reproduce latest            # runs train.py again, compares the metrics",
)


@click.command("demo")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run in this (empty or new) folder and keep it to explore; default: a temporary "
    "folder, removed at the end.",
)
def demo(folder: Path | None) -> None:
    """Run the end-to-end demo on a fresh embedded workspace.

    Offline, it versions a generated churn table twice and diffs the versions, trains and
    registers a baseline and a challenger in tracked runs (code captured when git is
    installed), promotes the better one through a gated policy to production while the
    weaker one is refused, searches and compares the runs, and checks the store.

    \b
    Example:
      syllabus demo --dir ./demo
    """
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="syllabus-demo-") as tmp:
            _run(Path(tmp) / "demo")
        click.echo("The workspace was temporary; `syllabus demo --dir DIR` keeps one to explore.")
    else:
        _run(folder)
        click.echo(f"Explore it: cd {folder}, then")
        for command in _EXPLORE:
            click.echo(f"  {command}")


def _value(key: str, value: object) -> str:
    if key.endswith("bytes") and isinstance(value, int):
        return format_bytes(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def render_step(number: int, step: DemoStep) -> list[str]:
    """The lines ``syllabus demo`` prints for one step."""
    lines = [f"{number:>2}. {step.title} [{step.seconds:.2f}s]"]
    for key, value in step.facts.items():
        label = key.replace("_", " ")
        if isinstance(value, list):
            lines.append(f"      {label}:")
            lines.extend(f"        {item}" for item in value or ["(none)"])
        else:
            lines.append(f"      {label}: {_value(key, value)}")
    return lines


def _run(folder: Path) -> None:
    from syllabus.demo import run_demo

    steps = run_demo(folder)  # refuses a non-empty folder before anything is written
    note(f"Syllabus demo in {folder}")
    total = 0.0
    for number, step in enumerate(steps, start=1):
        total += step.seconds
        click.echo("\n".join(render_step(number, step)))
    click.echo(f"Demo finished in {total:.1f}s.")
