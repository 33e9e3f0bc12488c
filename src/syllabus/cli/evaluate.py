"""``syllabus evaluate`` and ``syllabus evaluations``: champion versus challenger with
intervals and paired tests, and the stored evaluations."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from syllabus.cli.output import (
    Format,
    emit_json,
    emit_rows,
    format_option,
    note,
    progress_bar,
)

__all__ = ["evaluate_command", "evaluations"]


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4g}" if signed else f"{value:.4g}"


def _print(evaluation: Any) -> None:
    e = evaluation
    against = f" against {e.champion_ref}" if e.champion_ref else ""
    click.echo(f"evaluation {e.id}: {e.model_ref}{against} on {e.dataset_ref} ({e.task}, "
               f"target {e.target}, {e.rows} rows)")  # fmt: skip
    if e.latency_ms_per_row is not None:
        click.echo(f"latency: {e.latency_ms_per_row:.4g} ms per row")
    level = f"{e.confidence:.0%}"
    if not e.comparisons:
        rows = [
            {"metric": m.name, "value": _num(m.value), level: f"[{_num(m.low)}, {_num(m.high)}]"}
            for m in e.metrics
        ]
        emit_rows(rows, ["metric", "value", level], "table")
        return
    champion = {c.metric: c for c in e.comparisons}
    rows = []
    for m in e.metrics:
        c = champion.get(m.name)
        rows.append(
            {
                "metric": m.name,
                "candidate": _num(m.value),
                level: f"[{_num(m.low)}, {_num(m.high)}]",
                "champion": _num(None if c is None else c.champion),
                "delta": _num(None if c is None else c.delta, True),
                "delta " + level: ""
                if c is None
                else f"[{_num(c.low, True)}, {_num(c.high, True)}]",
                "test": "" if c is None else c.test,
                "p": _num(None if c is None else c.p_value),
                "verdict": "" if c is None else c.verdict,
            }
        )  # fmt: skip
    columns = ["metric", "candidate", level, "champion", "delta", "delta " + level, "test", "p",
               "verdict"]  # fmt: skip
    emit_rows(rows, columns, "table")


@click.command("evaluate")
@click.argument("model")
@click.option("--data", "data", required=True, help="The labelled dataset version (holdout@3).")
@click.option("--target", required=True, help="The label column.")
@click.option("--against", help="The champion to compare with (churn@production).")
@click.option("--slice", "slice_column", help="Also score each value of this column.")
@click.option(
    "--task", type=click.Choice(["classification", "regression"]), help="Default: inferred."
)
@click.option("--confidence", type=float, default=0.95, show_default=True)
@click.option("--resamples", type=int, default=1000, show_default=True, help="Bootstrap size.")
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the HTML report here.",
)
@format_option(csv_ok=False)
def evaluate_command(  # noqa: PLR0917 - click passes every option positionally
    model: str,
    data: str,
    target: str,
    against: str | None,
    slice_column: str | None,
    task: str | None,
    confidence: float,
    resamples: int,
    html_file: Path | None,
    fmt: Format,
) -> None:
    """Evaluate a model version on labelled data, optionally against a champion.

    Every metric gets a bootstrap interval; with --against both models are scored on
    the same rows and each metric's delta gets a paired interval, a paired test and a
    verdict (better, worse, no significant difference). The evaluation is stored.

    Example:
        syllabus evaluate churn@2 --data holdout@latest --target label --against churn@1
    """
    from syllabus import Client

    with Client() as client:
        with progress_bar(f"Evaluating {model}", unit="rows") as progress:
            evaluation = client.evaluate(
                model,
                data,
                target,
                against=against,
                slice_column=slice_column,
                task=task,
                confidence=confidence,
                resamples=resamples,
                progress=progress,
            )
        if html_file is not None:
            html_file.write_text(client.evaluation_report(evaluation.id), encoding="utf-8")
            note(f"wrote {html_file}")
    if fmt == "json":
        emit_json(evaluation)
        return
    _print(evaluation)


@click.group()
def evaluations() -> None:
    """Stored evaluations: list them, show one, write its HTML report."""


@evaluations.command("list")
@click.option("--model", help="Only evaluations of this model version (churn@3).")
@click.option("--limit", type=int, default=100, show_default=True)
@format_option()
def list_command(model: str | None, limit: int, fmt: Format) -> None:
    """List evaluations, newest first.

    Example:
        syllabus evaluations list
    """
    from syllabus import Client

    with Client() as client:
        found = client.list_evaluations(model, limit=limit)
    rows = []
    for e in found:
        verdicts = ", ".join(f"{c.metric} {c.verdict}" for c in e.comparisons[:3]
                             if c.metric in ("roc_auc", "accuracy", "rmse", "r2"))  # fmt: skip
        rows.append(
            {
                "id": e.id if fmt == "json" else e.id[:12],
                "model": e.model_ref,
                "against": e.champion_ref,
                "data": e.dataset_ref,
                "target": e.target,
                "task": e.task,
                "rows": e.rows,
                "verdicts": verdicts,
                "created": _when(e.created_at),
            }
        )
    columns = ["id", "model", "against", "data", "target", "task", "rows", "verdicts", "created"]
    emit_rows(rows, columns, fmt, empty="no evaluations")


@evaluations.command("show")
@click.argument("evaluation_id")
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the HTML report here.",
)
@format_option(csv_ok=False)
def show_command(evaluation_id: str, html_file: Path | None, fmt: Format) -> None:
    """Show an evaluation (ID, a unique prefix, or latest): metrics, intervals, comparisons.

    Example:
        syllabus evaluations show latest
    """
    from syllabus import Client

    with Client() as client:
        evaluation = client.get_evaluation(evaluation_id)
        if html_file is not None:
            html_file.write_text(client.evaluation_report(evaluation.id), encoding="utf-8")
            note(f"wrote {html_file}")
        results = client.evaluation_results(evaluation.id) if fmt == "json" else None
    if fmt == "json":
        emit_json({"evaluation": evaluation, "results": results})
        return
    _print(evaluation)
