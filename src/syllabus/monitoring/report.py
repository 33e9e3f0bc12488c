"""HTML reports: drift between two data sets, and a monitor over time.

One self-contained file: plotly.min.js (from the installed ``plotly`` package, the
``server`` extra) is inlined once, so the report opens offline; the figures are plain
plotly JSON built here from the stored summaries and profiles (no data is re-read).
Distributions are drawn from the reference profile's cells and the window's cells.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from syllabus.errors import ConfigError
from syllabus.monitoring.models import Alert, Monitor, Window
from syllabus.monitoring.profile import ColumnProfile, DriftReport, Profile
from syllabus.monitoring.stats import CategoryCounts, NumericCells

__all__ = ["render_compare", "render_monitor"]

_CSS: Final = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.drift{color:#b22;font-weight:600}.ok{color:#2a7d2a}.fig{display:inline-block;width:580px}
"""
_BINS: Final = 30
_TOP: Final = 20


def _plotly_js() -> str:
    import importlib.util

    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise ConfigError(
            "HTML reports need plotly (pip install 'syllabus[server]'); --json works without it"
        )
    return (Path(spec.origin).parent / "package_data" / "plotly.min.js").read_text()


def _e(value: Any) -> str:
    return html.escape(str(value))


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{value:.4g}"
    return _e(value)


class _Page:
    def __init__(self, title: str) -> None:
        self.title = title
        self.parts: list[str] = [f"<h1>{_e(title)}</h1>"]
        self.figures = 0

    def add(self, text: str) -> None:
        self.parts.append(text)

    def figure(self, data: list[dict[str, Any]], layout: dict[str, Any]) -> None:
        self.figures += 1
        fid = f"fig{self.figures}"
        layout = {"margin": {"l": 50, "r": 20, "t": 40, "b": 40}, "height": 320, **layout}
        spec = json.dumps({"data": data, "layout": layout}, allow_nan=False, default=str)
        spec = spec.replace("</", "<\\/")
        self.parts.append(
            f'<div class="fig" id="{fid}"></div><script>(function(){{var s={spec};'
            f'Plotly.newPlot("{fid}",s.data,s.layout,{{displaylogo:false,responsive:true}});}})();'
            "</script>"
        )

    def html(self) -> str:
        js = _plotly_js() if self.figures else ""
        return (
            "<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{_e(self.title)}</title><style>{_CSS}</style>"
            f"<script>{js}</script></head><body>" + "".join(self.parts) + "</body></html>"
        )


def _numeric_hist(
    col: ColumnProfile, cells: Sequence[NumericCells]
) -> tuple[list[float], list[list[float]]]:
    """Shares per equal-width bin over the reference range, from cell counts."""
    assert col.grid is not None
    grid = col.grid
    lo, hi = float(grid[0]), float(grid[-1])
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, _BINS + 1)
    centers = ((edges[:-1] + edges[1:]) / 2).tolist()
    out = []
    # Each eq cell sits at its grid point; each gap at its mid-point (tails at the ends).
    eq_bins = np.clip(np.searchsorted(edges, grid, side="right") - 1, 0, _BINS - 1)
    mids = np.concatenate(([lo], (grid[:-1] + grid[1:]) / 2, [hi]))
    gap_bins = np.clip(np.searchsorted(edges, mids, side="right") - 1, 0, _BINS - 1)
    for c in cells:
        counts = np.bincount(eq_bins, weights=c.eq, minlength=_BINS)
        counts += np.bincount(gap_bins, weights=c.gap, minlength=_BINS)
        total = counts.sum()
        out.append((counts / total).tolist() if total else [0.0] * _BINS)
    return centers, out


def _category_bars(ref: CategoryCounts, cur: CategoryCounts) -> tuple[list[str], list[list[float]]]:
    keys = sorted(set(ref.counts) | set(cur.counts),
                  key=lambda k: -(ref.counts.get(k, 0) + cur.counts.get(k, 0)))[:_TOP]  # fmt: skip
    out = []
    for c in (ref, cur):
        total = max(c.count, 1)
        out.append([c.counts.get(k, 0) / total for k in keys])
    return [k.replace("\x00", "") for k in keys], out


def _distributions(page: _Page, profile: Profile, state: Mapping[str, Any] | None,
                   report: DriftReport) -> None:  # fmt: skip
    if state is None:
        return
    page.add("<h2>Distributions: reference against current</h2>")
    for f in report.features:
        col = profile.columns.get(f.name)
        cur = state.get(f.name)
        if col is None or cur is None:
            continue
        flag = " (drifted)" if f.drifted else ""
        if col.kind == "numeric" and isinstance(cur, NumericCells):
            assert col.cells is not None
            x, (r, c) = _numeric_hist(col, [col.cells, cur])
            data = [{"type": "bar", "x": x, "y": r, "name": "reference", "opacity": 0.6},
                    {"type": "bar", "x": x, "y": c, "name": "current", "opacity": 0.6}]  # fmt: skip
        elif isinstance(cur, CategoryCounts) and col.categories is not None:
            x2, (r, c) = _category_bars(col.categories, cur)
            data = [{"type": "bar", "x": x2, "y": r, "name": "reference"},
                    {"type": "bar", "x": x2, "y": c, "name": "current"}]  # fmt: skip
        else:
            continue
        page.figure(
            data,
            {
                "title": {"text": f.name + flag},
                "barmode": "overlay" if col.kind == "numeric" else "group",
                "yaxis": {"title": "share"},
            },
        )


def _feature_table(report: DriftReport) -> str:
    head = ("<tr><th>feature</th><th>kind</th><th>drifted</th><th>method</th><th>score</th>"
            "<th>p</th><th>PSI</th><th>KS</th><th>Wasserstein</th><th>JS</th><th>null rate</th>"
            "<th>ref null rate</th><th>out of range</th><th>type errors</th><th>new categories</th>"
            "</tr>")  # fmt: skip
    rows = []
    for f in report.features:
        cls = "drift" if f.drifted else "ok"
        s = f.stats
        new = ", ".join(f"{_e(k)} ({n})" for k, n in f.new_categories[:5])
        rows.append(
            f"<tr><td>{_e(f.name)}</td><td>{f.kind}</td><td class='{cls}'>{_fmt(f.drifted)}</td>"
            f"<td>{f.method}</td><td>{_fmt(f.score)}</td><td>{_fmt(f.p_value)}</td>"
            f"<td>{_fmt(s.get('psi'))}</td><td>{_fmt(s.get('ks'))}</td>"
            f"<td>{_fmt(s.get('wasserstein'))}</td><td>{_fmt(s.get('js'))}</td>"
            f"<td>{_fmt(f.null_rate)}</td><td>{_fmt(f.reference_null_rate)}</td>"
            f"<td>{_fmt(f.out_of_range)}</td><td>{f.type_errors}</td><td>{new}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def render_compare(
    report: DriftReport, profile: Profile | None = None, state: Mapping[str, Any] | None = None,
    *, title: str = "Data drift",
) -> str:  # fmt: skip
    """The report of one comparison (``monitor compare --html``)."""
    page = _Page(title)
    share = report.drift_share
    page.add(
        f"<p>{report.rows} current rows against {report.reference_rows} reference rows; "
        f"{len(report.drifted)} of {len(report.features)} features drifted "
        f"(share {_fmt(share)}; dataset drift: {_fmt(report.dataset_drift)}).</p>"
    )
    page.add(_feature_table(report))
    if profile is not None:
        _distributions(page, profile, state, report)
    return page.html()


def _when(ms: int, kind: str) -> str:
    if kind == "rows":
        return str(ms)
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")


def render_monitor(
    monitor: Monitor, profile: Profile, windows: Sequence[Window], alerts: Sequence[Alert],
    state: Mapping[str, Any] | None = None,
) -> str:  # fmt: skip
    """A monitor's report: drift and performance over time, alerts, and the latest
    window's distributions against the reference."""
    page = _Page(f"Monitor {monitor.name}")
    page.add(
        f"<p>Service {_e(monitor.service)}, model {_e(monitor.model_ref or '-')}, reference "
        f"{_e(monitor.reference or '-')}, windows of {_e(monitor.window)}; "
        f"{len(windows)} windows shown.</p>"
    )
    if not windows:
        page.add("<p>No windows yet: run <code>syllabus monitor run</code>.</p>")
        return page.html()
    x = [_when(w.start, monitor.window_kind) for w in windows]
    page.add("<h2>Drift over time</h2>")
    page.figure(
        [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": x,
                "y": [w.summary.get("drift_share") for w in windows],
                "name": "drift share",
            }
        ],
        {"title": {"text": "drifted share of features"}, "yaxis": {"range": [0, 1]}},
    )
    features = list(windows[-1].summary.get("features", {}))
    traces = []
    for name in features:
        traces.append({"type": "scatter", "mode": "lines+markers", "x": x, "name": name,
                       "y": [w.summary.get("features", {}).get(name, {}).get("score")
                             for w in windows]})  # fmt: skip
    page.figure(traces, {"title": {"text": "drift score per feature"}})
    perf_names = sorted({k for w in windows for k, v in w.summary.get("performance", {}).items()
                         if isinstance(v, int | float)})  # fmt: skip
    if perf_names:
        page.add("<h2>Performance over time</h2>")
        page.figure(
            [
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "x": x,
                    "name": k,
                    "y": [w.summary.get("performance", {}).get(k) for w in windows],
                }
                for k in perf_names
            ],
            {"title": {"text": "performance (labelled rows)"}},
        )
    lat = [w.summary.get("latency_p99") for w in windows]
    if any(v is not None for v in lat):
        page.figure([{"type": "scatter", "mode": "lines+markers", "x": x, "name": f"p{q}",
                      "y": [w.summary.get(f"latency_p{q}") for w in windows]}
                     for q in ("50", "95", "99")], {"title": {"text": "latency (ms)"}})  # fmt: skip
    page.add("<h2>Alerts</h2>")
    if alerts:
        rows = "".join(
            f"<tr><td>{_e(a.rule)}</td><td class='{'drift' if a.state == 'firing' else 'ok'}'>"
            f"{a.state}</td><td>{_fmt(a.value)}</td><td>{_when(a.started_at, 'time')}</td>"
            f"<td>{'-' if a.resolved_at is None else _when(a.resolved_at, 'time')}</td></tr>"
            for a in alerts
        )
        page.add("<table><tr><th>rule</th><th>state</th><th>value</th><th>started</th>"
                 f"<th>resolved</th></tr>{rows}</table>")  # fmt: skip
    else:
        page.add("<p>No alerts.</p>")
    latest = windows[-1]
    report = DriftReport.from_dict({
        "rows": latest.summary.get("rows", 0), "reference_rows": profile.rows,
        "features": list(latest.summary.get("features", {}).values())})  # fmt: skip
    page.add(f"<h2>Latest window ({_e(_when(latest.start, monitor.window_kind))})</h2>")
    page.add(_feature_table(report))
    _distributions(page, profile, state, report)
    return page.html()
