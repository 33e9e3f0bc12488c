"""``syllabus monitor``: drift between data sets, monitors over prediction logs, alert
rules, alerts and reports."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

from syllabus.cli.output import Format, emit_json, emit_rows, format_option, note

__all__ = ["monitor"]


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _feature_rows(features: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "feature": f["name"],
            "kind": f["kind"],
            "drifted": _num(f["drifted"]),
            "method": f["method"],
            "score": _num(f["score"]),
            "p": _num(f["p_value"]),
            "psi": _num(f["stats"].get("psi")),
            "null rate": _num(f["null_rate"]),
            "out of range": _num(f["out_of_range"]),
            "type errors": f["type_errors"],
        }
        for f in features
    ]


_FEATURE_COLUMNS = ["feature", "kind", "drifted", "method", "score", "p", "psi", "null rate",
                    "out of range", "type errors"]  # fmt: skip


@click.group()
def monitor() -> None:
    """Monitor drift, data quality and performance of data sets and deployed models."""


@monitor.command("compare")
@click.argument("reference")
@click.argument("current")
@click.option("--column", "columns", multiple=True, help="Compare only these columns.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the HTML report here.")  # fmt: skip
@format_option(csv_ok=False)
def compare_command(
    reference: str, current: str, columns: tuple[str, ...], html_file: Path | None, fmt: Format
) -> None:
    """Compare CURRENT with REFERENCE: drift and data quality per column.

    Each is a dataset version (churn-data@3) or a Parquet or CSV file. Numeric columns get
    PSI, Kolmogorov-Smirnov and normed Wasserstein; categorical ones chi-square,
    Jensen-Shannon and new or vanished categories; every column its null rate,
    out-of-range share and type errors. Exit status 0 either way.

    Example:
        syllabus monitor compare reference.parquet current.parquet
    """
    from syllabus import Client

    with Client() as client:
        report, html = client.compare_report(
            reference, current, columns=columns or None, html=html_file is not None
        )
    if html_file is not None and html is not None:
        html_file.write_text(html, encoding="utf-8")
        note(f"wrote {html_file}")
    if fmt == "json":
        emit_json(report.to_dict())
        return
    doc = report.to_dict()
    emit_rows(_feature_rows(doc["features"]), _FEATURE_COLUMNS, "table")
    click.echo(
        f"{len(report.drifted)} of {len(report.features)} columns drifted "
        f"(share {_num(doc['drift_share'])}): {', '.join(report.drifted) or 'none'}"
    )


@monitor.command("create")
@click.argument("name")
@click.option(
    "--model", help="The model version watched (churn@3); its lineage gives the reference."
)
@click.option(
    "--service", help="The service whose prediction log to read (default: the model's name)."
)
@click.option("--reference", help="Reference data: a dataset version or a Parquet/CSV file.")
@click.option(
    "--window", default="1h", show_default=True, help="A duration (1h) or a count (10000 rows)."
)
@click.option(
    "--feature", "features", multiple=True, help="Watch these inputs (default: the signature's)."
)
@click.option("--target", help="Reference column the predictions are compared with.")
@click.option("--rule", "rules", multiple=True, help="An alert rule (repeatable).")
@click.option(
    "--webhook", "webhooks", multiple=True, help="A URL that gets alert events (repeatable)."
)
@click.option("--log-path", help="The prediction log root (default: the predictions setting).")
@format_option(csv_ok=False)
def create_command(  # noqa: PLR0917 - click passes every option positionally
    name: str, model: str | None, service: str | None, reference: str | None, window: str,
    features: tuple[str, ...], target: str | None, rules: tuple[str, ...],
    webhooks: tuple[str, ...], log_path: str | None, fmt: Format,
) -> None:  # fmt: skip
    """Create a monitor of a service's prediction log.

    The reference profile (from --reference, or the model's training data through
    lineage) is computed once and stored. Deployments get a monitor automatically.

    Example:
        syllabus monitor create churn-2 --service churn --reference reference.parquet --window 1d
    """
    from syllabus import Client

    with Client() as client:
        created = client.create_monitor(
            name, model=model, service=service, reference=reference, window=window,
            features=features or None, target=target, rules=rules,
            webhooks=[{"url": u} for u in webhooks], log_path=log_path,
        )  # fmt: skip
    if fmt == "json":
        emit_json(created.to_dict())
        return
    click.echo(f"monitor {created.name}: service {created.service}, windows of "
               f"{created.window}, {len(created.features)} features, reference "
               f"{created.reference}")  # fmt: skip


@monitor.command("list")
@format_option()
def list_command(fmt: Format) -> None:
    """List monitors (deployments get theirs on the next run or list).

    Example:
        syllabus monitor list
    """
    from syllabus import Client

    with Client() as client:
        client.sync_monitors()
        monitors = client.list_monitors()
    if fmt == "json":
        emit_json([m.to_dict() for m in monitors])
        return
    rows = [{"name": m.name, "service": m.service, "model": m.model_ref or "-",
             "deployment": f"{m.deployment}/{m.env}" if m.deployment else "-",
             "window": m.window, "features": len(m.features),
             "reference": m.reference or "-"} for m in monitors]  # fmt: skip
    emit_rows(rows, ["name", "service", "model", "deployment", "window", "features",
                     "reference"], fmt)  # fmt: skip


@monitor.command("run")
@click.argument("name", required=False)
@format_option(csv_ok=False)
def run_command(name: str | None, fmt: Format) -> None:
    """Process new prediction-log segments (of NAME, or of every monitor).

    Only segments not processed before are read; windows are updated, feedback is
    joined to predictions, and alert rules are evaluated (webhooks get the events).

    Example:
        syllabus monitor run churn-local
    """
    from syllabus import Client

    with Client() as client:
        results = client.run_monitor(name)
    if fmt == "json":
        emit_json([r.to_dict() for r in results])
        return
    for r in results:
        click.echo(f"{r.monitor}: {r.segments} new segments ({r.rows} rows), "
                   f"{r.feedback_segments} feedback segments ({r.labelled} labelled), "
                   f"{len(r.windows)} windows updated")  # fmt: skip
        for e in r.events:
            click.echo(f"  alert {e.event}: {e.rule} (value {_num(e.value)})")


@monitor.command("status")
@click.argument("name")
@format_option(csv_ok=False)
def status_command(name: str, fmt: Format) -> None:
    """Summarize the latest window of a monitor and its firing alerts.

    Example:
        syllabus monitor status churn-local
    """
    from syllabus import Client

    with Client() as client:
        status = client.monitor_status(name)
    if fmt == "json":
        emit_json(status.to_dict())
        return
    m = status.monitor
    click.echo(f"monitor {m.name}: service {m.service}, windows of {m.window}, "
               f"{status.windows} windows, {status.pending_segments} segments waiting")  # fmt: skip
    w = status.latest
    if w is None:
        click.echo("no windows yet; run `syllabus monitor run`")
    else:
        s = w.summary
        start = str(w.start) if m.window_kind == "rows" else _when(w.start)
        click.echo(f"latest window {start} ({'closed' if w.closed else 'open'}): {s['rows']} "
                   f"rows, drift share {_num(s.get('drift_share'))}, latency p99 "
                   f"{_num(s.get('latency_p99'))} ms, {w.labelled} labelled")  # fmt: skip
        perf = {k: v for k, v in s.get("performance", {}).items() if k != "task"}
        if perf:
            click.echo("performance: " + ", ".join(f"{k} {_num(v)}" for k, v in perf.items()))
        emit_rows(_feature_rows(list(s["features"].values())), _FEATURE_COLUMNS, "table")
    for a in status.firing:
        click.echo(f"FIRING {a.rule} (value {_num(a.value)}, since {_when(a.started_at)})")


@monitor.command("report")
@click.argument("name")
@click.option("--last", help="Only the windows of this period (7d) or this many windows (24).")
@click.option(
    "--html",
    "html_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report here.",
)
def report_command(name: str, last: str | None, html_file: Path) -> None:
    """Write an HTML report: drift and performance over time, alerts, distributions.

    Example:
        syllabus monitor report churn-local --last 7d --html report.html
    """
    from syllabus import Client

    with Client() as client:
        html = client.monitor_report(name, last=last)
    html_file.write_text(html, encoding="utf-8")
    note(f"wrote {html_file}")


@monitor.group("rules")
def rules() -> None:
    """Alert rules of a monitor: add, list, remove."""


@rules.command("add")
@click.argument("name")
@click.argument("rule")
def rules_add(name: str, rule: str) -> None:
    """Add RULE to monitor NAME, e.g. "psi(age) > 0.2 for 2 windows".

    Example:
        syllabus monitor rules add churn-local "psi(age) > 0.2 for 2 windows"
    """
    from syllabus import Client

    with Client() as client:
        added = client.add_alert_rule(name, rule)
    click.echo(f"rule {added.id[:8]}: {added.expr}")


@rules.command("list")
@click.argument("name")
@format_option()
def rules_list(name: str, fmt: Format) -> None:
    """List the alert rules of monitor NAME.

    Example:
        syllabus monitor rules list churn-local
    """
    from syllabus import Client

    with Client() as client:
        found = client.list_alert_rules(name)
    if fmt == "json":
        emit_json([r.to_dict() for r in found])
        return
    emit_rows([{"id": r.id[:8], "rule": r.expr, "origin": r.origin} for r in found],
              ["id", "rule", "origin"], fmt)  # fmt: skip


@rules.command("remove")
@click.argument("name")
@click.argument("rule")
def rules_remove(name: str, rule: str) -> None:
    """Remove RULE (its text or id prefix) from monitor NAME; its alert is resolved.

    Example:
        syllabus monitor rules remove churn-local "drift_share > 0.3"
    """
    from syllabus import Client

    with Client() as client:
        removed = client.remove_alert_rule(name, rule)
    click.echo(f"removed rule {removed.id[:8]}: {removed.expr}")


@monitor.command("alerts")
@click.argument("name", required=False)
@click.option("--state", type=click.Choice(["firing", "resolved"]), help="Only these.")
@format_option()
def alerts_command(name: str | None, state: str | None, fmt: Format) -> None:
    """List alerts (of monitor NAME), newest first.

    Example:
        syllabus monitor alerts --state firing
    """
    from syllabus import Client

    with Client() as client:
        found = client.list_alerts(name, state=state)
    if fmt == "json":
        click.echo(json.dumps([a.to_dict() for a in found], indent=2))
        return
    emit_rows([{"id": a.id[:8], "monitor": a.monitor, "rule": a.rule, "state": a.state,
                "value": _num(a.value), "started": _when(a.started_at),
                "resolved": _when(a.resolved_at)} for a in found],
              ["id", "monitor", "rule", "state", "value", "started", "resolved"], fmt)  # fmt: skip
