"""Previews of stored files for the web UI: text, CSV, JSON, images, notebooks and diffs.

Everything here returns plain values that the (autoescaping) templates render; nothing a
file contains ever becomes markup. Raw files are served with headers that stop a browser
from running them (a sandbox policy, ``nosniff``, downloads for anything but images).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from fastapi.responses import Response

__all__ = [
    "Cell",
    "DiffLine",
    "Preview",
    "TreeEntry",
    "diff_lines",
    "notebook_cells",
    "preview",
    "raw_response",
    "tree",
]

MAX_PREVIEW_BYTES = 2 * 1024 * 1024
MAX_TEXT_CHARS = 200_000
MAX_CSV_ROWS = 200
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}
_RAW_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class Preview:
    """How a file is shown: ``kind`` is image, table, json, text, notebook, too_big or
    binary."""

    kind: str
    text: str = ""
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    truncated: bool = False
    cells: tuple[Cell, ...] = ()


@dataclass(frozen=True)
class TreeEntry:
    path: str
    name: str
    depth: int
    folder: bool
    size: int = 0


@dataclass(frozen=True)
class DiffLine:
    kind: str  # add, del, hunk, file, context
    text: str


@dataclass(frozen=True)
class Output:
    kind: str  # text, image, error
    text: str = ""
    mime: str = ""
    data: str = ""  # base64 of an image, checked


@dataclass(frozen=True)
class Cell:
    cell_type: str
    source: str
    execution_count: int | None = None
    outputs: tuple[Output, ...] = field(default_factory=tuple)


def tree(files: Sequence[tuple[str, int]]) -> list[TreeEntry]:
    """Paths and sizes as an indented listing of folders and files, by path."""
    out: list[TreeEntry] = []
    seen: set[str] = set()
    for path, size in sorted(files):
        parts = PurePosixPath(path).parts
        for depth in range(len(parts) - 1):
            folder = "/".join(parts[: depth + 1])
            if folder not in seen:
                seen.add(folder)
                out.append(TreeEntry(folder, parts[depth], depth, True))
        out.append(TreeEntry(path, parts[-1], len(parts) - 1, False, size))
    return out


def _text(data: bytes) -> str | None:
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def preview(path: str, size: int, read: Callable[[], bytes]) -> Preview:
    """The preview of file ``path`` of ``size`` bytes; ``read`` is called only when the
    file is small enough to show."""
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in IMAGE_TYPES:
        return Preview("image")
    if size > MAX_PREVIEW_BYTES:
        return Preview("too_big")
    data = read()
    if suffix == ".ipynb":
        cells = notebook_cells(data)
        if cells:
            return Preview("notebook", cells=tuple(cells))
    text = _text(data)
    if text is None:
        return Preview("binary")
    if suffix in (".csv", ".tsv"):
        return _table(text, "\t" if suffix == ".tsv" else ",")
    if suffix == ".json":
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            pass
        else:
            return Preview("json", text=text[:MAX_TEXT_CHARS], truncated=len(text) > MAX_TEXT_CHARS)
    return Preview("text", text=text[:MAX_TEXT_CHARS], truncated=len(text) > MAX_TEXT_CHARS)


def _table(text: str, delimiter: str) -> Preview:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows: list[tuple[str, ...]] = []
    header: tuple[str, ...] = ()
    truncated = False
    try:
        for n, row in enumerate(reader):
            if n == 0:
                header = tuple(row)
            elif n > MAX_CSV_ROWS:
                truncated = True
                break
            else:
                rows.append(tuple(row))
    except csv.Error:
        return Preview("text", text=text[:MAX_TEXT_CHARS], truncated=len(text) > MAX_TEXT_CHARS)
    return Preview("table", header=header, rows=tuple(rows), truncated=truncated)


def raw_response(path: str, data: bytes, download: bool) -> Response:
    """A stored file as a response a browser will not run: images inline (SVG sandboxed),
    everything else as an attachment or plain text."""
    name = PurePosixPath(path).name
    suffix = PurePosixPath(path).suffix.lower()
    headers = {"Content-Security-Policy": _RAW_CSP, "X-Content-Type-Options": "nosniff"}
    if suffix in IMAGE_TYPES and not download:
        return Response(data, media_type=IMAGE_TYPES[suffix], headers=headers)
    headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name, safe='')}"
    return Response(data, media_type="application/octet-stream", headers=headers)


def diff_lines(patch: str, limit: int = 20_000) -> list[DiffLine]:
    """A unified diff as classified lines (the first ``limit``)."""
    out: list[DiffLine] = []
    for line in patch.splitlines()[:limit]:
        if line.startswith(("+++", "---", "diff ", "index ", "new file", "deleted file")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "context"
        out.append(DiffLine(kind, line))
    return out


def _joined(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return "" if value is None else str(value)


def _image(data: Any) -> str | None:
    text = _joined(data).replace("\n", "").strip()
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return text


def _outputs(raw: Any) -> tuple[Output, ...]:
    out: list[Output] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        kind = item.get("output_type")
        if kind == "stream":
            out.append(Output("text", _joined(item.get("text"))[:MAX_TEXT_CHARS]))
        elif kind in ("execute_result", "display_data"):
            data = item.get("data")
            bundle: dict[str, Any] = data if isinstance(data, dict) else {}
            for mime in ("image/png", "image/jpeg"):
                if mime in bundle and (b64 := _image(bundle[mime])) is not None:
                    out.append(Output("image", mime=mime, data=b64))
                    break
            else:  # HTML and scripts are never rendered: their text form is shown
                if "text/plain" in bundle:
                    out.append(Output("text", _joined(bundle["text/plain"])[:MAX_TEXT_CHARS]))
        elif kind == "error":
            lines = item.get("traceback") or [f"{item.get('ename')}: {item.get('evalue')}"]
            out.append(Output("error", _ANSI.sub("", "\n".join(map(str, lines)))))
    return tuple(out)


def notebook_cells(data: bytes) -> list[Cell]:
    """The cells of a notebook (nbformat 4 JSON); empty when it is not one."""
    try:
        doc = json.loads(data)
    except ValueError:
        return []
    cells = doc.get("cells") if isinstance(doc, dict) else None
    if not isinstance(cells, list):
        return []
    out = []
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        count = cell.get("execution_count")
        out.append(
            Cell(
                str(cell.get("cell_type", "code")),
                _joined(cell.get("source")),
                count if isinstance(count, int) else None,
                _outputs(cell.get("outputs")),
            )
        )
    return out
