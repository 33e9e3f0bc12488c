"""Notebook checkpoints: canonical forms (noise makes no checkpoint), outputs kept or
stripped, cell-level diffs with known answers, restore."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from syllabus.code import CodeService
from syllabus.code.notebook import canonicalize, diff_notebooks
from syllabus.errors import ConflictError, InvalidArgumentError, NotFoundError
from tests.code.conftest import notebook, write_nb


def with_outputs(nb: dict, index: int, text: str, count: int = 1) -> dict:  # type: ignore[type-arg]
    cell = nb["cells"][index]
    cell["execution_count"] = count
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": [text]}]
    return nb


def test_noise_makes_no_difference() -> None:
    nb = notebook(("markdown", "# Title"), ("code", "x = 1\nprint(x)"))
    noisy = json.loads(json.dumps(nb))
    noisy["cells"][1]["execution_count"] = 42
    noisy["cells"][1]["metadata"] = {"collapsed": True, "execution": {"iopub.status.idle": "t"}}
    noisy["cells"][1]["source"] = ["x = 1\n", "print(x)"]
    noisy["metadata"]["language_info"] = {"name": "python", "version": "3.11.7"}
    noisy["metadata"]["widgets"] = {"state": {}}
    nb["metadata"]["language_info"] = {"name": "python", "version": "3.12.0"}
    assert canonicalize(json.dumps(noisy).encode()) == canonicalize(json.dumps(nb).encode())


def test_outputs_kept_or_stripped() -> None:
    nb = with_outputs(notebook(("code", "print(1)")), 0, "1\n")
    kept = json.loads(canonicalize(json.dumps(nb).encode(), outputs=True))
    stripped = json.loads(canonicalize(json.dumps(nb).encode(), outputs=False))
    assert kept["cells"][0]["outputs"][0]["text"] == ["1\n"]
    assert kept["cells"][0]["execution_count"] is None
    assert stripped["cells"][0]["outputs"] == []


def test_not_a_notebook() -> None:
    with pytest.raises(InvalidArgumentError, match="not valid JSON"):
        canonicalize(b"{nope")
    with pytest.raises(InvalidArgumentError, match="no cells"):
        canonicalize(b"{}")
    with pytest.raises(InvalidArgumentError, match="nbformat 3"):
        canonicalize(json.dumps({"nbformat": 3, "cells": []}).encode())


def test_cell_diff_known_answer() -> None:
    a = notebook(
        ("markdown", "# Churn", "title"),
        ("code", "import pandas as pd\ndf = pd.read_csv('a.csv')", "load"),
        ("code", "df.describe()", "explore"),
        ("code", "model.fit(df)", "fit"),
    )
    b = notebook(
        ("code", "model.fit(df)", "fit"),  # moved to the top
        ("markdown", "# Churn", "title"),
        ("code", "import pandas as pd\ndf = pd.read_csv('b.csv')", "load"),  # modified
        ("code", "print(score)", "new"),  # added; "explore" removed
    )
    diff = diff_notebooks(a, b, a_label="nb@1", b_label="nb@2")
    kinds = [(c.kind, c.a_index, c.b_index) for c in diff.cells]
    assert kinds == [
        ("moved", 3, 0),
        ("unchanged", 0, 1),
        ("modified", 1, 2),
        ("removed", 2, None),
        ("added", None, 3),
    ]
    modified = diff.cells[2]
    assert "-df = pd.read_csv('a.csv')" in modified.source_diff
    assert "+df = pd.read_csv('b.csv')" in modified.source_diff
    assert (diff.count("added"), diff.count("removed"), diff.count("moved")) == (1, 1, 1)


def test_cells_without_ids_match_by_source() -> None:
    a = notebook(("code", "a = 1"), ("code", "b = 2\nc = 3\nd = 4"), ("code", "e = 5"))
    b = notebook(("code", "e = 5"), ("code", "a = 1"), ("code", "b = 2\nc = 3\nd = 40"))
    for nb in (a, b):
        for cell in nb["cells"]:
            del cell["id"]
    diff = diff_notebooks(a, b)
    assert [(c.kind, c.a_index, c.b_index) for c in diff.cells] == [
        ("moved", 2, 0),
        ("unchanged", 0, 1),
        ("modified", 1, 2),
    ]


def test_output_changes_are_summarized() -> None:
    a = with_outputs(notebook(("code", "print(1)")), 0, "1\n")
    b = notebook(("code", "print(1)"))
    b["cells"][0]["outputs"] = [
        {"output_type": "stream", "name": "stdout", "text": ["1\n"]},
        {"output_type": "error", "ename": "ValueError", "evalue": "x", "traceback": []},
    ]
    change = diff_notebooks(a, b).cells[0]
    assert change.kind == "modified"
    assert change.source_diff == ""
    assert change.outputs == "outputs: 1 -> 2 outputs, now raises an error"


def test_checkpoint_log_diff_restore(tmp_path: Path, service: CodeService) -> None:
    path = write_nb(tmp_path / "nbs" / "train.ipynb", notebook(("code", "x = 1", "c1")))
    first, created = service.checkpoint_notebook(path, tmp_path, message="start")
    assert created
    assert first.version == 1
    assert first.path == "nbs/train.ipynb"
    # Re-saving with only noise changed makes no checkpoint.
    noisy = notebook(("code", "x = 1", "c1"))
    noisy["cells"][0]["execution_count"] = 7
    write_nb(path, noisy)
    same, created = service.checkpoint_notebook(path, tmp_path)
    assert not created
    assert same.id == first.id
    write_nb(path, notebook(("code", "x = 2", "c1"), ("markdown", "done", "c2")))
    second, created = service.checkpoint_notebook(path, tmp_path, message="edit")
    assert created
    assert second.version == 2
    assert second.cell_count == 2
    history = service.store.list_checkpoints("nbs/train.ipynb")
    assert [c.version for c in history] == [2, 1]
    diff = service.diff_notebook(first, second)
    assert [c.kind for c in diff.cells] == ["modified", "added"]
    # Restore: refused over changes that are in no checkpoint, unless forced.
    write_nb(path, notebook(("code", "x = 3 # unsaved", "c1")))
    with pytest.raises(ConflictError, match="in no checkpoint"):
        service.restore_notebook(first, path)
    service.restore_notebook(first, path, force=True)
    restored = json.loads(path.read_text())
    assert restored["cells"][0]["source"] == ["x = 1"]
    # Now the file equals checkpoint 1: restoring 2 over it needs no force.
    service.restore_notebook(second, path)
    assert len(json.loads(path.read_text())["cells"]) == 2
    copy = service.restore_notebook(first, tmp_path / "copy.ipynb")
    assert json.loads(copy.read_text())["cells"][0]["source"] == ["x = 1"]


def test_unknown_checkpoints(tmp_path: Path, service: CodeService) -> None:
    with pytest.raises(NotFoundError, match="has no checkpoints; run `syllabus notebook"):
        service.store.get_checkpoint("nb.ipynb")
    path = write_nb(tmp_path / "nb.ipynb", notebook(("code", "1")))
    service.checkpoint_notebook(path, tmp_path)
    with pytest.raises(NotFoundError, match=r"has no checkpoint 5 \(latest is 1\)"):
        service.store.get_checkpoint("nb.ipynb", 5)
    with pytest.raises(NotFoundError, match="does not exist"):
        service.checkpoint_notebook(tmp_path / "missing.ipynb", tmp_path)
