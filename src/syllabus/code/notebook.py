"""Jupyter notebooks as plain JSON: a canonical form, and cell-level diffs.

:func:`canonicalize` drops what changes without the notebook changing (execution counts,
timing and UI metadata such as ``collapsed``, ``scrolled``, ``execution``,
``ExecuteTime``; kernel metadata other than the kernel's name and language), optionally
strips outputs, and serializes like Jupyter does (``indent=1``, sorted keys), so saving a
notebook again without edits gives the same bytes and the same content id.

:func:`diff_notebooks` matches cells by their ``id`` (nbformat 4.5), then by identical
source, then by similar source, and reports each cell as added, removed, modified, moved
(or unchanged), with a unified diff of the source and a one-line summary of output
changes.
"""

from __future__ import annotations

import bisect
import difflib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from syllabus.code.models import CellChange, NotebookDiff
from syllabus.errors import InvalidArgumentError

__all__ = ["canonicalize", "cell_source", "diff_notebooks", "load_notebook"]

_KEEP_CELL_METADATA = ("tags", "name", "slideshow")
_KEEP_NB_METADATA = {"kernelspec": ("name", "language", "display_name"), "language_info": ("name",)}
_SIMILAR = 0.5


def load_notebook(data: bytes, *, source: str = "notebook") -> dict[str, Any]:
    """Parse notebook JSON; InvalidArgumentError when it is not a version-4 notebook."""
    try:
        nb = json.loads(data)
    except ValueError as exc:
        raise InvalidArgumentError(f"{source} is not valid JSON: {exc}") from exc
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise InvalidArgumentError(f"{source} is not a Jupyter notebook (no cells list)")
    if nb.get("nbformat", 4) != 4:
        raise InvalidArgumentError(
            f"{source} is nbformat {nb.get('nbformat')}; only version 4 notebooks are supported "
            "(convert it with `jupyter nbconvert --to notebook`)"
        )
    return nb


def _text(value: object) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return "" if value is None else str(value)


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def cell_source(cell: Mapping[str, Any]) -> str:
    """A cell's source as one string."""
    return _text(cell.get("source"))


def _canonical_output(output: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in output.items() if k not in ("execution_count", "metadata")}
    if "text" in out:
        out["text"] = _lines(_text(out["text"]))
    if isinstance(out.get("data"), Mapping):
        out["data"] = {
            mime: _lines(_text(v)) if isinstance(v, str | list) else v
            for mime, v in out["data"].items()
        }
    out["metadata"] = {}
    if output.get("output_type") == "execute_result":
        out["execution_count"] = None
    return out


def _canonical_cell(cell: Mapping[str, Any], outputs: bool) -> dict[str, Any]:
    cell_type = str(cell.get("cell_type", "code"))
    metadata = cell.get("metadata") or {}
    out: dict[str, Any] = {
        "cell_type": cell_type,
        "metadata": {k: metadata[k] for k in _KEEP_CELL_METADATA if k in metadata},
        "source": _lines(cell_source(cell)),
    }
    if "id" in cell:
        out["id"] = cell["id"]
    if cell_type == "code":
        out["execution_count"] = None
        raw = cell.get("outputs") or []
        out["outputs"] = (
            [_canonical_output(o) for o in raw if isinstance(o, Mapping)] if outputs else []
        )
    elif "attachments" in cell:
        out["attachments"] = cell["attachments"]
    return out


def canonical_notebook(nb: Mapping[str, Any], *, outputs: bool = True) -> dict[str, Any]:
    """The notebook without volatile fields (see the module docstring)."""
    meta = nb.get("metadata") or {}
    kept: dict[str, Any] = {}
    for key, fields in _KEEP_NB_METADATA.items():
        value = meta.get(key)
        if isinstance(value, Mapping):
            sub = {f: value[f] for f in fields if f in value}
            if sub:
                kept[key] = sub
    return {
        "cells": [_canonical_cell(c, outputs) for c in nb["cells"] if isinstance(c, Mapping)],
        "metadata": kept,
        "nbformat": 4,
        "nbformat_minor": int(nb.get("nbformat_minor", 5)),
    }


def canonicalize(data: bytes, *, outputs: bool = True, source: str = "notebook") -> bytes:
    """The canonical bytes of a notebook: equal notebooks up to noise give equal bytes."""
    nb = canonical_notebook(load_notebook(data, source=source), outputs=outputs)
    return (json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


# -- diff -----------------------------------------------------------------------------------


def _match_ids(
    a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]], pairs: dict[int, int]
) -> None:
    b_ids = {c["id"]: j for j, c in enumerate(b) if isinstance(c.get("id"), str)}
    used = set(pairs.values())
    for i, cell in enumerate(a):
        j = b_ids.get(cell["id"]) if isinstance(cell.get("id"), str) else None
        if j is not None and j not in used:
            pairs[i] = j
            used.add(j)


def _match_sources(
    a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]], pairs: dict[int, int]
) -> None:
    used = set(pairs.values())
    by_source: dict[tuple[str, str], list[int]] = {}
    for j, cell in enumerate(b):
        if j not in used:
            by_source.setdefault((str(cell.get("cell_type")), cell_source(cell)), []).append(j)
    for i, cell in enumerate(a):
        candidates = by_source.get((str(cell.get("cell_type")), cell_source(cell)))
        if i not in pairs and candidates:
            pairs[i] = candidates.pop(0)


def _match_similar(
    a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]], pairs: dict[int, int]
) -> None:
    used = set(pairs.values())
    scored = []
    for i, cell in enumerate(a):
        if i in pairs:
            continue
        for j, other in enumerate(b):
            if j in used or other.get("cell_type") != cell.get("cell_type"):
                continue
            ratio = difflib.SequenceMatcher(None, cell_source(cell), cell_source(other)).ratio()
            if ratio >= _SIMILAR:
                scored.append((-ratio, abs(i - j), i, j))
    for _, _, i, j in sorted(scored):  # best pairs first (greedy)
        if i not in pairs and j not in used:
            pairs[i] = j
            used.add(j)


def _match(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]) -> dict[int, int]:
    """``{index in a: index in b}`` for cells that are the same cell: same ``id``, else
    identical source, else similar source."""
    pairs: dict[int, int] = {}
    _match_ids(a, b, pairs)
    _match_sources(a, b, pairs)
    _match_similar(a, b, pairs)
    return pairs


def _in_order(pairs: Mapping[int, int]) -> set[int]:
    """The ``a`` indexes of the longest run of pairs that kept their relative order (the
    rest moved)."""
    items = sorted(pairs.items())
    tails: list[int] = []  # smallest b index ending an increasing run of each length
    tail_at: list[int] = []  # index into items of that tail
    parent: list[int] = [-1] * len(items)
    for k, (_, j) in enumerate(items):
        pos = bisect.bisect_left(tails, j)
        if pos == len(tails):
            tails.append(j)
            tail_at.append(k)
        else:
            tails[pos] = j
            tail_at[pos] = k
        parent[k] = tail_at[pos - 1] if pos else -1
    keep: set[int] = set()
    k = tail_at[-1] if tail_at else -1
    while k >= 0:
        keep.add(items[k][0])
        k = parent[k]
    return keep


def _output_summary(a: Mapping[str, Any], b: Mapping[str, Any]) -> str | None:
    oa = [_canonical_output(o) for o in a.get("outputs") or [] if isinstance(o, Mapping)]
    ob = [_canonical_output(o) for o in b.get("outputs") or [] if isinstance(o, Mapping)]
    if oa == ob:
        return None
    if not oa:
        return f"outputs added ({len(ob)})"
    if not ob:
        return f"outputs cleared ({len(oa)})"
    kinds_a = [o.get("output_type") for o in oa]
    kinds_b = [o.get("output_type") for o in ob]
    parts = []
    if len(oa) != len(ob):
        parts.append(f"{len(oa)} -> {len(ob)} outputs")
    if "error" in kinds_b and "error" not in kinds_a:
        parts.append("now raises an error")
    elif "error" in kinds_a and "error" not in kinds_b:
        parts.append("no longer raises an error")
    changed = sum(1 for x, y in zip(oa, ob, strict=False) if x != y)
    if changed:
        parts.append(f"{changed} output(s) changed")
    return "outputs: " + ", ".join(parts) if parts else "outputs changed"


def _source_diff(a: Mapping[str, Any], b: Mapping[str, Any], la: str, lb: str) -> str:
    return "".join(
        difflib.unified_diff(
            _lines(cell_source(a)), _lines(cell_source(b)), fromfile=la, tofile=lb, n=2
        )
    )


def _first_line(cell: Mapping[str, Any]) -> str:
    text = cell_source(cell).strip().splitlines()
    line = text[0] if text else ""
    return line if len(line) <= 60 else line[:57] + "..."


def diff_notebooks(
    a: Mapping[str, Any], b: Mapping[str, Any], *, a_label: str = "a", b_label: str = "b"
) -> NotebookDiff:
    """Cell-level changes from notebook ``a`` to ``b`` (parsed JSON), in ``b``'s order with
    removed cells placed where they were."""
    ca = [c for c in a.get("cells", []) if isinstance(c, Mapping)]
    cb = [c for c in b.get("cells", []) if isinstance(c, Mapping)]
    pairs = _match(ca, cb)
    ordered = _in_order(pairs)
    reverse = {j: i for i, j in pairs.items()}
    changes: list[tuple[float, CellChange]] = []
    for j, cell in enumerate(cb):
        i = reverse.get(j)
        cell_type = str(cell.get("cell_type", "code"))
        if i is None:
            diff = _source_diff({}, cell, a_label, b_label)
            summary = f"added {cell_type} cell: {_first_line(cell)}"
            changes.append((j, CellChange("added", cell_type, None, j, diff, None, False, summary)))
            continue
        old = ca[i]
        moved = i not in ordered
        source_changed = cell_source(old) != cell_source(cell) or old.get("cell_type") != cell_type
        outputs = _output_summary(old, cell) if cell_type == "code" else None
        diff = _source_diff(old, cell, f"{a_label} cell {i + 1}", f"{b_label} cell {j + 1}")
        if source_changed or outputs:
            kind = "modified"
            what = ["source" if source_changed else "", outputs or "", "moved" if moved else ""]
            summary = f"modified {cell_type} cell: " + "; ".join(w for w in what if w)
        elif moved:
            kind, summary = "moved", f"moved {cell_type} cell from {i + 1} to {j + 1}"
        else:
            kind, summary = "unchanged", ""
        changes.append(
            (
                j,
                CellChange(
                    kind,  # type: ignore[arg-type]
                    cell_type,
                    i,
                    j,
                    diff if source_changed else "",
                    outputs,
                    moved,
                    summary,
                ),
            )
        )
    matched_a = set(pairs)
    for i, cell in enumerate(ca):
        if i in matched_a:
            continue
        # Place a removed cell after the b position of the nearest earlier matched cell.
        before = [pairs[k] for k in range(i) if k in pairs]
        position = (max(before) if before else -1) + 0.5
        cell_type = str(cell.get("cell_type", "code"))
        diff = _source_diff(cell, {}, a_label, b_label)
        summary = f"removed {cell_type} cell: {_first_line(cell)}"
        changes.append(
            (position, CellChange("removed", cell_type, i, None, diff, None, False, summary))
        )
    changes.sort(key=lambda item: item[0])
    meta_a, meta_b = a.get("metadata") or {}, b.get("metadata") or {}
    meta_keys = sorted(k for k in set(meta_a) | set(meta_b) if meta_a.get(k) != meta_b.get(k))
    return NotebookDiff(a_label, b_label, tuple(c for _, c in changes), tuple(meta_keys))
