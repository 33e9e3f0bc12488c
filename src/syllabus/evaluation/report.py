"""The HTML report of an evaluation: one self-contained file with inline SVG charts
(ROC and PR curves, calibration, residuals, per-slice bars, deltas with their intervals)
and the metric tables. No scripts, no network."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any, Final

from syllabus.evaluation.models import Evaluation

__all__ = ["render_html"]

_W: Final = 420
_H: Final = 300
_PAD: Final = 40
_COLORS: Final = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")
_CSS: Final = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.better{color:#2a7d2a;font-weight:600}.worse{color:#b22;font-weight:600}
figure{display:inline-block;margin:0 1em 1em 0}figcaption{font-size:90%;color:#555}
svg text{font-size:11px;fill:#333}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _fmt(value: Any, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, int | float):
        return f"{value:+.4g}" if signed else f"{value:.4g}"
    return _e(value)


class _Axes:
    def __init__(self, xs: Sequence[float], ys: Sequence[float], *, square: bool = False):
        finite_x = [v for v in xs if v is not None and math.isfinite(v)] or [0.0, 1.0]
        finite_y = [v for v in ys if v is not None and math.isfinite(v)] or [0.0, 1.0]
        self.x0, self.x1 = (0.0, 1.0) if square else (min(finite_x), max(finite_x))
        self.y0, self.y1 = (0.0, 1.0) if square else (min(finite_y), max(finite_y))
        if self.x1 == self.x0:
            self.x1 = self.x0 + 1
        if self.y1 == self.y0:
            self.y1 = self.y0 + 1

    def x(self, v: float) -> float:
        return _PAD + (v - self.x0) / (self.x1 - self.x0) * (_W - 2 * _PAD)

    def y(self, v: float) -> float:
        return _H - _PAD - (v - self.y0) / (self.y1 - self.y0) * (_H - 2 * _PAD)

    def frame(self, xlabel: str, ylabel: str) -> list[str]:
        out = [
            f'<rect x="{_PAD}" y="{_PAD}" width="{_W - 2 * _PAD}" height="{_H - 2 * _PAD}" '
            'fill="none" stroke="#999"/>',
            f'<text x="{_W / 2}" y="{_H - 8}" text-anchor="middle">{_e(xlabel)}</text>',
            f'<text x="12" y="{_H / 2}" transform="rotate(-90 12 {_H / 2})" '
            f'text-anchor="middle">{_e(ylabel)}</text>',
        ]
        for v in (self.x0, self.x1):
            out.append(f'<text x="{self.x(v):.1f}" y="{_H - _PAD + 14}" text-anchor="middle">'
                       f"{v:.3g}</text>")  # fmt: skip
        for v in (self.y0, self.y1):
            out.append(f'<text x="{_PAD - 4}" y="{self.y(v) + 4:.1f}" text-anchor="end">'
                       f"{v:.3g}</text>")  # fmt: skip
        return out


def _svg(kind: str, title: str, body: list[str]) -> str:
    return (
        f'<figure class="chart" data-chart="{_e(kind)}"><svg xmlns="http://www.w3.org/2000/svg" '
        f'width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" role="img">'
        f"<title>{_e(title)}</title>{''.join(body)}</svg>"
        f"<figcaption>{_e(title)}</figcaption></figure>"
    )


def _legend(names: Sequence[str]) -> list[str]:
    return [
        f'<text x="{_PAD + 8}" y="{_PAD + 14 + 14 * i}" fill="{_COLORS[i % 4]}" '
        f'style="fill:{_COLORS[i % 4]}">{_e(name)}</text>'
        for i, name in enumerate(names)
    ]


def _lines(
    kind: str,
    title: str,
    series: Sequence[tuple[str, dict[str, list[float]]]],
    xlabel: str,
    ylabel: str,
    *,
    square: bool = True,
    diagonal: bool = False,
    points: bool = False,
) -> str:
    xs = [v for _, s in series for v in s["x"]]
    ys = [v for _, s in series for v in s["y"]]
    ax = _Axes(xs, ys, square=square)
    body = ax.frame(xlabel, ylabel)
    if diagonal:
        body.append(f'<line x1="{ax.x(0)}" y1="{ax.y(0)}" x2="{ax.x(1)}" y2="{ax.y(1)}" '
                    'stroke="#bbb" stroke-dasharray="4"/>')  # fmt: skip
    if points and not square:
        body.append(f'<line x1="{_PAD}" y1="{ax.y(0):.1f}" x2="{_W - _PAD}" y2="{ax.y(0):.1f}" '
                    'stroke="#bbb" stroke-dasharray="4"/>')  # fmt: skip
    for i, (_, s) in enumerate(series):
        color = _COLORS[i % 4]
        if points:
            body.extend(
                f'<circle cx="{ax.x(x):.1f}" cy="{ax.y(y):.1f}" r="2" fill="{color}"/>'
                for x, y in zip(s["x"], s["y"], strict=False)
            )
        else:
            path = " ".join(
                f"{ax.x(x):.1f},{ax.y(y):.1f}" for x, y in zip(s["x"], s["y"], strict=False)
            )
            body.append(f'<polyline points="{path}" fill="none" stroke="{color}" '
                        'stroke-width="2"/>')  # fmt: skip
    body.extend(_legend([name for name, _ in series]))
    return _svg(kind, title, body)


def _intervals(kind: str, title: str, rows: Sequence[tuple[str, float, float, float]]) -> str:
    """Horizontal bars or points with interval whiskers: ``(label, value, low, high)``."""
    rows = [r for r in rows if r[1] is not None and math.isfinite(r[1])]
    height = max(_H // 2, 30 + 24 * len(rows))
    values = [v for r in rows for v in r[1:] if v is not None and math.isfinite(v)] + [0.0]
    lo, hi = min(values), max(values)
    if hi == lo:
        hi = lo + 1
    left, right = 150, _W + 80

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * (right - left)

    body = [f'<line x1="{x(0):.1f}" y1="10" x2="{x(0):.1f}" y2="{height - 10}" stroke="#999"/>']
    for i, (label, value, low, high) in enumerate(rows):
        yy = 24 + 24 * i
        body.append(f'<text x="{left - 6}" y="{yy + 4}" text-anchor="end">{_e(label)}</text>')
        body.append(f'<circle cx="{x(value):.1f}" cy="{yy}" r="4" fill="{_COLORS[0]}"/>')
        if low is not None and high is not None and math.isfinite(low) and math.isfinite(high):
            body.append(f'<line x1="{x(low):.1f}" y1="{yy}" x2="{x(high):.1f}" y2="{yy}" '
                        f'stroke="{_COLORS[0]}" stroke-width="2"/>')  # fmt: skip
        body.append(f'<text x="{right + 6}" y="{yy + 4}">{_fmt(value)}</text>')
    width = right + 70
    return (
        f'<figure class="chart" data-chart="{_e(kind)}"><svg xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
        f"<title>{_e(title)}</title>{''.join(body)}</svg>"
        f"<figcaption>{_e(title)}</figcaption></figure>"
    )


def _metrics_table(results: dict[str, Any]) -> str:
    cand = results["candidate"]["metrics"]
    champ = (results.get("champion") or {}).get("metrics") or {}
    comps = {c["metric"]: c for c in results.get("comparisons", [])}
    head = "<tr><th>metric</th><th>candidate</th><th>95% interval</th>"
    if champ:
        head += "<th>champion</th><th>delta</th><th>delta interval</th><th>test</th>"
        head += "<th>p</th><th>verdict</th>"
    rows = [head + "</tr>"]
    for name, m in cand.items():
        row = f"<tr><td>{_e(name)}</td><td>{_fmt(m['value'])}</td>"
        row += f"<td>[{_fmt(m['low'])}, {_fmt(m['high'])}]</td>"
        if champ:
            c = comps.get(name, {})
            verdict = c.get("verdict", "")
            css = {"better": "better", "worse": "worse"}.get(verdict, "")
            row += (
                f"<td>{_fmt((champ.get(name) or {}).get('value'))}</td>"
                f"<td>{_fmt(c.get('delta'), True)}</td>"
                f"<td>[{_fmt(c.get('low'), True)}, {_fmt(c.get('high'), True)}]</td>"
                f"<td>{_e(c.get('test', ''))}</td><td>{_fmt(c.get('p_value'))}</td>"
                f'<td class="{css}">{_e(verdict)}</td>'
            )
        rows.append(row + "</tr>")
    return f"<table>{''.join(rows)}</table>"


def _confusion(results: dict[str, Any]) -> str:
    matrix = results["candidate"].get("confusion")
    if not matrix:
        return ""
    classes = results.get("classes") or list(range(len(matrix)))
    head = "<tr><th>true \\ predicted</th>" + "".join(f"<th>{_e(c)}</th>" for c in classes)
    body = "".join(
        f"<tr><td>{_e(classes[i])}</td>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>"
        for i, row in enumerate(matrix)
    )
    return f"<h2>Confusion matrix</h2><table>{head}</tr>{body}</table>"


def _primary(results: dict[str, Any]) -> str:
    metrics = results["candidate"]["metrics"]
    for name in ("roc_auc", "accuracy", "rmse"):
        if name in metrics:
            return name
    return str(next(iter(metrics)))


def render_html(evaluation: Evaluation, results: dict[str, Any]) -> str:
    """The report as one HTML document."""
    cand = results["candidate"]
    champ = results.get("champion")
    models = [("candidate " + cand["model"], cand)]
    if champ:
        models.append(("champion " + champ["model"], champ))
    charts: list[str] = []
    for key, title, xl, yl in (
        ("roc", "ROC curve", "false positive rate", "true positive rate"),
        ("pr", "Precision-recall curve", "recall", "precision"),
        ("calibration", "Calibration", "mean predicted probability", "observed frequency"),
    ):
        series = [(name, m["curves"][key]) for name, m in models if key in m.get("curves", {})]
        if series:
            charts.append(_lines(key, title, series, xl, yl, diagonal=key != "pr"))
    series = [(n, m["curves"]["residuals"]) for n, m in models if "residuals" in m["curves"]]
    if series:
        charts.append(_lines("residuals", "Residuals", series, "prediction", "prediction - "
                             "target", square=False, points=True))  # fmt: skip
    comparisons = results.get("comparisons") or []
    if comparisons:
        charts.append(
            _intervals(
                "deltas",
                "Delta (candidate - champion) with paired-bootstrap interval",
                [(c["metric"], c["delta"], c["low"], c["high"]) for c in comparisons],
            )
        )
    slices = results.get("slices")
    if slices:
        primary = _primary(results)
        rows = [
            (f"{g['value']} (n={g['rows']})", m["value"], m["low"], m["high"])
            for g in slices["groups"]
            if (m := (g.get("metrics") or {}).get(primary)) is not None
        ]
        charts.append(_intervals("slices", f"{primary} by {slices['column']}", rows))
    title = f"Evaluation of {evaluation.model_ref} on {evaluation.dataset_ref}"
    if evaluation.champion_ref:
        title += f" against {evaluation.champion_ref}"
    latency = cand.get("latency_ms_per_row")
    facts = (
        f"<p>Evaluation <code>{_e(evaluation.id)}</code>, task {_e(evaluation.task)}, "
        f"target <code>{_e(evaluation.target)}</code>, {evaluation.rows} rows, "
        f"{evaluation.resamples} bootstrap resamples, {evaluation.confidence:.0%} intervals"
        + ("" if latency is None else f", latency {latency:.4g} ms per row")
        + ".</p>"
    )
    slice_note = ""
    if slices:
        notes = [f"{_e(g['value'])}: {_e(g['note'])}" for g in slices["groups"] if "note" in g]
        if notes:
            slice_note = "<p>" + "<br>".join(notes) + "</p>"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>{facts}<h2>Metrics</h2>{_metrics_table(results)}"
        f"<h2>Charts</h2>{''.join(charts)}{slice_note}{_confusion(results)}"
        "</body></html>\n"
    )
