"""Monitoring pages: monitors with their latest window and firing alerts; one monitor's
drift, performance and latency over time, its rules and alerts, the latest window per
feature against the reference, and its full report (distributions) in a sandboxed frame."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

if TYPE_CHECKING:
    from syllabus.monitoring.models import Monitor, Window
    from syllabus.server.ui.app import UI

__all__ = ["add_routes", "charts"]

# The report is the library's own page with plotly inlined: it runs in a frame of no
# origin (sandbox without allow-same-origin), so it reaches neither cookies nor the UI.
_REPORT_CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; sandbox allow-scripts"
)
MAX_WINDOWS = 500


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _x(monitor: Monitor, windows: Sequence[Window]) -> list[Any]:
    if monitor.window_kind == "rows":
        return [w.start for w in windows]
    return [datetime.fromtimestamp(w.start / 1000, UTC).isoformat() for w in windows]


def _lines(x: list[Any], series: Mapping[str, list[float | None]]) -> list[dict[str, Any]]:
    return [
        {"type": "scatter", "mode": "lines+markers", "name": name, "x": x, "y": ys}
        for name, ys in series.items()
        if any(v is not None for v in ys)
    ]


def charts(monitor: Monitor, windows: Sequence[Window]) -> list[dict[str, Any]]:
    """Plotly specs of a monitor over time: drifted share, drift score per feature,
    performance (labelled rows) and latency; charts without data are left out."""
    x = _x(monitor, windows)
    axis = {"title": {"text": "first row of the window"}} if monitor.window_kind == "rows" else {}
    features = sorted({f for w in windows for f in w.summary.get("features", {})})

    def feature(name: str, w: Window) -> float | None:
        return _num(w.summary.get("features", {}).get(name, {}).get("score"))

    perf_names = sorted(
        {
            k
            for w in windows
            for k, v in w.summary.get("performance", {}).items()
            if _num(v) is not None
        }
    )

    def perf(k: str, w: Window) -> float | None:
        return _num(w.summary.get("performance", {}).get(k))

    specs = [
        (
            "drifted share of features",
            {"drift share": [_num(w.summary.get("drift_share")) for w in windows]},
            {"range": [0, 1]},
        ),
        (
            "drift score per feature",
            {f: [feature(f, w) for w in windows] for f in features},
            {},
        ),
        (
            "performance (labelled rows)",
            {k: [perf(k, w) for w in windows] for k in perf_names},
            {},
        ),
        (
            "latency (ms)",
            {
                f"p{q}": [_num(w.summary.get(f"latency_p{q}")) for w in windows]
                for q in ("50", "95", "99")
            },
            {},
        ),
        ("rows per window", {"rows": [_num(w.rows) for w in windows]}, {}),
    ]
    out = []
    for title, series, yaxis in specs:
        data = _lines(x, series)
        if data:
            out.append(
                {
                    "data": data,
                    "layout": {
                        "title": {"text": title, "font": {"size": 13}},
                        "xaxis": axis,
                        "yaxis": yaxis,
                    },
                }
            )
    return out


def add_routes(router: APIRouter, ui: UI) -> list[tuple[str, str]]:
    def monitors(request: Request) -> Response:
        client = ui.client(request)
        statuses = [client.monitor_status(m.name) for m in client.list_monitors()]
        return ui.render(
            request,
            "monitors.html",
            {"statuses": statuses, "alerts": client.list_alerts()[:50]},
            title="Monitoring",
        )

    def monitor(request: Request, name: str) -> Response:
        client = ui.client(request)
        status = client.monitor_status(name)
        windows = client.monitor_windows(status.monitor.name)[-MAX_WINDOWS:]
        latest = status.latest
        features = list((latest.summary.get("features", {}) if latest else {}).values())
        return ui.render(
            request,
            "monitor.html",
            {
                "status": status,
                "m": status.monitor,
                "windows": windows,
                "charts": charts(status.monitor, windows),
                "rules": client.list_alert_rules(status.monitor.name),
                "alerts": client.list_alerts(status.monitor.name),
                "features": sorted(features, key=lambda f: (not f.get("drifted"), f.get("name"))),
            },
            title=f"Monitor {status.monitor.name}",
        )

    def report(request: Request, name: str) -> Response:
        html = ui.client(request).monitor_report(name, last="48")
        return Response(
            html,
            media_type="text/html",
            headers={"Content-Security-Policy": _REPORT_CSP, "X-Content-Type-Options": "nosniff"},
        )

    ui.add(router, "/monitoring", monitors, "ui_monitors")
    ui.add(router, "/monitoring/{name}", monitor, "ui_monitor")
    ui.add(router, "/monitoring/{name}/report", report, "ui_monitor_report")
    return [("Monitoring", "ui_monitors")]
