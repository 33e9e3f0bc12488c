"""Previews and formats of the UI, on values: what kind of preview a file gets, that
notebook HTML and scripts never become markup, and how numbers and times read."""

from __future__ import annotations

import base64
import json

from syllabus.server.ui import format as fmt
from syllabus.server.ui import previews
from syllabus.server.ui.registry import lineage_graph


def _never(*_: object) -> bytes:
    raise AssertionError("read")


def test_the_preview_kind_follows_the_file() -> None:
    assert previews.preview("a/plot.PNG", 10, _never).kind == "image"
    assert previews.preview("big.txt", previews.MAX_PREVIEW_BYTES + 1, _never).kind == "too_big"
    assert previews.preview("x.bin", 3, lambda: b"\x00\x01\x02").kind == "binary"
    assert previews.preview("x.txt", 3, lambda: b"\xff\xfe\x00").kind == "binary"
    text = previews.preview("notes.md", 5, lambda: b"# hi\n")
    assert (text.kind, text.text) == ("text", "# hi\n")
    data = previews.preview("c.json", 9, lambda: b'{"a": [1]}')
    assert data.kind == "json"
    assert json.loads(data.text) == {"a": [1]}
    broken = previews.preview("c.json", 3, lambda: b"{no")
    assert broken.kind == "text"


def test_csv_previews_keep_the_first_rows() -> None:
    rows = "\n".join(f"{i},{i * i}" for i in range(500))
    data = f"n,sq\n{rows}\n".encode()
    table = previews.preview("t.csv", len(data), lambda: data)
    assert table.kind == "table"
    assert table.header == ("n", "sq")
    assert len(table.rows) == previews.MAX_CSV_ROWS
    assert table.rows[2] == ("2", "4")
    assert table.truncated
    tsv = previews.preview("t.tsv", 8, lambda: b"a\tb\n1\t2\n")
    assert (tsv.header, tsv.rows, tsv.truncated) == (("a", "b"), (("1", "2"),), False)


def test_notebook_outputs_show_text_and_checked_images_only() -> None:
    png = base64.b64encode(b"\x89PNG fake").decode()
    doc = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": 3,
                "source": ["x = 1\n", "x"],
                "outputs": [
                    {"output_type": "execute_result", "data": {"text/html": "<b>x</b>"}},
                    {
                        "output_type": "display_data",
                        "data": {"text/html": "<script>1</script>", "text/plain": "a table"},
                    },
                    {"output_type": "display_data", "data": {"image/png": png}},
                    {"output_type": "display_data", "data": {"image/png": "not base64 !"}},
                    {"output_type": "error", "traceback": ["\x1b[31mBoom\x1b[0m"]},
                ],
            },
            "not a cell",
        ]
    }
    (cell,) = previews.notebook_cells(json.dumps(doc).encode())
    assert (cell.cell_type, cell.source, cell.execution_count) == ("code", "x = 1\nx", 3)
    kinds = [(o.kind, o.text, o.data) for o in cell.outputs]
    assert kinds == [("text", "a table", ""), ("image", "", png), ("error", "Boom", "")]
    assert previews.notebook_cells(b"[1, 2]") == []
    assert previews.notebook_cells(b"{bad") == []


def test_the_artifact_tree_lists_folders_once() -> None:
    entries = previews.tree([("b/c/d.txt", 3), ("a.txt", 1), ("b/e.txt", 2)])
    assert [(e.path, e.depth, e.folder) for e in entries] == [
        ("a.txt", 0, False),
        ("b", 0, True),
        ("b/c", 1, True),
        ("b/c/d.txt", 2, False),
        ("b/e.txt", 1, False),
    ]


def test_diff_lines_are_classified() -> None:
    lines = previews.diff_lines(
        "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n same"
    )
    assert [d.kind for d in lines] == ["file", "file", "file", "hunk", "del", "add", "context"]


def test_formats() -> None:
    assert fmt.timestamp(0) == "1970-01-01 00:00:00"
    assert fmt.timestamp(None) == ""
    assert [fmt.duration(ms) for ms in (850, 12_400, 185_000, 7_380_000)] == [
        "850 ms",
        "12.4 s",
        "3m 05s",
        "2h 03m",
    ]
    assert [fmt.number(v) for v in (1234567, 0.123456, 1e-5, 2500.5, float("nan"), "x")] == [
        "1,234,567",
        "0.1235",
        "1e-05",
        "2,500.5",
        "nan",
        "x",
    ]
    assert [fmt.size(n) for n in (512, 1536, 3 * 1024**3)] == ["512 B", "1.5 KiB", "3.0 GiB"]


def test_the_lineage_graph_reads_from_data_to_deployment() -> None:
    graph = lineage_graph(
        {
            "model": "churn@2",
            "stage": "production",
            "flavor": "sklearn",
            "run": {"id": "abc", "name": "challenger", "status": "finished"},
            "inputs": [{"kind": "dataset", "id": "d1", "name": "churn@2", "role": "train"}],
            "deployments": [{"name": "churn-api", "environment": "prod", "status": "healthy"}],
        }
    )
    assert [c["title"] for c in graph] == ["Data", "Run", "Model", "Deployments"]
    assert graph[0]["nodes"][0]["target"] == "churn@2"
    assert graph[1]["nodes"][0]["kind"] == "run"
    assert graph[3]["nodes"][0]["detail"] == "prod · healthy"
