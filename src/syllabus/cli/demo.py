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
    "syllabus ui                          # the web UI: runs, models, deployments, monitoring",
    "syllabus runs list -e scans -c name,status,metrics.val_auc,params.model",
    "syllabus data diff scans@1 scans@2",
    "syllabus models history tumour",
    "syllabus models lineage tumour@production",
    "syllabus evaluations list",
    "syllabus monitor status tumour-production",
    "syllabus monitor report tumour-production --html report.html",
    "syllabus pipeline runs retrain",
    "syllabus deploy history tumour",
    "syllabus deploy apply deploy.yaml --env production   # serve it again",
    "syllabus maturity",
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

    Offline (servers on 127.0.0.1 only), on scikit-learn's breast-cancer data: versions the
    data, trains and registers three models in tracked runs (code and environment
    captured), reproduces one, promotes the best through a gated policy to production
    while a weaker one is refused, deploys it locally, sends traffic, monitors it; then a
    new scanner's data drifts, an alert fires, and the agent runs the retraining pipeline:
    the challenger beats the champion with significance and goes out as a canary, then
    alone. `syllabus maturity` reports level 3. Every server it starts is stopped.

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
    from rich.console import Console

    from syllabus.demo import run_demo

    steps = run_demo(folder)  # refuses a non-empty folder before anything is written
    console = Console(highlight=False)
    note(f"Syllabus demo in {folder}")
    total = 0.0
    for number, step in enumerate(steps, start=1):
        total += step.seconds
        title, *facts = render_step(number, step)
        console.print(title, style="bold", markup=False)
        for line in facts:
            console.print(line, markup=False, soft_wrap=True)
    click.echo(f"Demo finished in {total:.1f}s.")
