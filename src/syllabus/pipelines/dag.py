"""Drawing a pipeline's DAG: as text, and as an SVG image written by hand (no graphviz).

Steps are laid out in layers (a step's layer is one more than its deepest upstream step's),
left to right; edges run from each upstream step to the steps that use its output. With
``statuses`` (a run's step statuses), boxes are coloured by status.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Final

from syllabus.pipelines.definition import Pipeline

__all__ = ["layers", "render_svg", "render_text"]

_COLOURS: Final = {
    "succeeded": "#d4edda",
    "cached": "#dbe9f6",
    "failed": "#f8d7da",
    "skipped": "#eeeeee",
    "running": "#fff3cd",
    "pending": "#ffffff",
}


def layers(pipeline: Pipeline) -> list[list[str]]:
    """Steps grouped by depth, in definition order within a layer."""
    depth: dict[str, int] = {}
    for name in pipeline.order():
        ups = pipeline.node(name).upstream
        depth[name] = 1 + max((depth[u] for u in ups), default=-1)
    out: list[list[str]] = [[] for _ in range(max(depth.values()) + 1)]
    for name in pipeline.step_names:
        out[depth[name]].append(name)
    return out


def _describe_args(pipeline: Pipeline, name: str) -> str:
    parts = []
    for key, arg in pipeline.node(name).args.items():
        if arg.kind == "step":
            parts.append(f"{key}={arg.value}" + (f"[{arg.key!r}]" if arg.key is not None else ""))
        elif arg.kind in ("dataset", "model"):
            parts.append(f"{key}={arg.kind}:{arg.value}")
        elif arg.kind == "param":
            parts.append(f"{key}=params.{arg.value}")
    return ", ".join(parts)


def render_text(pipeline: Pipeline, statuses: Mapping[str, str] | None = None) -> str:
    """One line per step, layer by layer: ``[layer] step (uses) <- inputs``."""
    lines = [f"pipeline {pipeline.name}: {len(pipeline.steps)} steps"]
    width = max(len(n) for n in pipeline.step_names)
    for i, layer in enumerate(layers(pipeline), start=1):
        for name in layer:
            node = pipeline.node(name)
            status = f" [{statuses[name]}]" if statuses and name in statuses else ""
            args = _describe_args(pipeline, name)
            arrow = f"  <- {args}" if args else ""
            lines.append(f"  {i}. {name:<{width}}  {node.uses}{status}{arrow}")
    downstream = {
        n: [s.name for s in pipeline.steps if n in s.upstream] for n in pipeline.step_names
    }
    edges = [f"  {n} -> {', '.join(d)}" for n, d in downstream.items() if d]
    if edges:
        lines.append("edges:")
        lines.extend(edges)
    return "\n".join(lines)


def render_svg(pipeline: Pipeline, statuses: Mapping[str, str] | None = None) -> str:
    """A standalone SVG drawing of the DAG."""
    box_w, box_h, gap_x, gap_y, pad = 170, 44, 70, 24, 20
    grid = layers(pipeline)
    tallest = max(len(layer) for layer in grid)
    width = pad * 2 + len(grid) * box_w + (len(grid) - 1) * gap_x
    height = pad * 2 + 24 + tallest * box_h + (tallest - 1) * gap_y
    pos: dict[str, tuple[int, int]] = {}
    for i, layer in enumerate(grid):
        offset = (tallest - len(layer)) * (box_h + gap_y) // 2
        for j, name in enumerate(layer):
            pos[name] = (pad + i * (box_w + gap_x), pad + 24 + offset + j * (box_h + gap_y))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{pad}" y="{pad + 4}" font-weight="bold">pipeline {escape(pipeline.name)}</text>',
    ]
    for node in pipeline.steps:
        x2, y2 = pos[node.name]
        for up in node.upstream:
            x1, y1 = pos[up]
            sx, sy = x1 + box_w, y1 + box_h // 2
            ex, ey = x2, y2 + box_h // 2
            mx = (sx + ex) // 2
            out.append(
                f'<path d="M {sx} {sy} C {mx} {sy}, {mx} {ey}, {ex} {ey}" fill="none" '
                'stroke="#555" stroke-width="1.5" marker-end="url(#arrow)"/>'
            )
    for name, (x, y) in pos.items():
        status = (statuses or {}).get(name)
        fill = _COLOURS.get(status or "pending", "#ffffff")
        label = escape(name if len(name) <= 22 else name[:21] + "…")
        sub = escape(status or pipeline.node(name).uses.split(":")[-1][:24])
        out.append(
            f'<g><title>{escape(name)}</title><rect x="{x}" y="{y}" width="{box_w}" '
            f'height="{box_h}" rx="6" fill="{fill}" stroke="#333"/>'
            f'<text x="{x + box_w // 2}" y="{y + 19}" text-anchor="middle">{label}</text>'
            f'<text x="{x + box_w // 2}" y="{y + 35}" text-anchor="middle" font-size="10" '
            f'fill="#555">{sub}</text></g>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"
