"""The end-to-end demo (``make demo``) on real components: it must tell the truth about the
workspace it leaves behind, be deterministic, and refuse a folder that is not empty."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from syllabus import Client
from syllabus.cli.demo import render_step
from syllabus.demo import GATE, NEW_ROWS, V1_ROWS, DemoStep, run_demo
from syllabus.errors import InvalidArgumentError
from tests.fixtures.cli import Runner

pytestmark = pytest.mark.slow


def _step(steps: list[DemoStep], start: str) -> DemoStep:
    found = [s for s in steps if s.title.startswith(start)]
    assert len(found) == 1, [s.title for s in steps]
    return found[0]


def _sizes_out(match: re.Match[str]) -> str:
    return re.sub(r"bytes: [\d.]+ \w+", "bytes: <size>", match.group(1))


def _normalized(text: str, folder: Path) -> str:
    text = text.replace(str(folder), "<DIR>")
    text = re.sub(r"\b[0-9a-f]{32}\b", "<ID>", text)
    text = re.sub(r"\[\d+\.\d\ds\]", "[<s>]", text)
    # du counts the bytes of records that hold ids and times: sizes vary, counts do not
    text = re.sub(r"(\d+\. du .*?)(?=\n *\d+\. )", _sizes_out, text, flags=re.S)
    return re.sub(r"Demo finished in [\d.]+s", "Demo finished in <s>", text)


def test_demo_leaves_the_workspace_it_describes(tmp_path: Path, syllabus: Runner) -> None:
    folder = tmp_path / "a"
    steps = list(run_demo(folder))
    assert sum(s.seconds for s in steps) < 60

    with Client(folder / ".syllabus", cwd=folder) as client:
        # (1) two dataset versions, and a diff that reads rows, schema and statistics
        versions = client.list_dataset_versions("churn")
        assert [v.version for v in versions] == [2, 1]
        diff = client.diff_datasets("churn@1", "churn@2", key=["customer_id"])
        (table,) = diff.tables
        assert (table.rows_a, table.rows_b) == (V1_ROWS, V1_ROWS + NEW_ROWS)
        assert table.columns_added == (("support_calls", "BIGINT"),)
        assert table.rows is not None
        assert (table.rows.added, table.rows.changed) == (NEW_ROWS, 0)
        moved = {(c.column, c.stat): (c.a, c.b) for c in table.stats}
        before, after = moved["monthly_charges", "mean"]
        assert after > before + 1  # the price rise

        # (2) two finished runs, each with its dataset version as input and step-wise metrics
        runs = {r.name: r for r in client.search_runs("churn")}
        assert set(runs) == {"baseline", "challenger"}
        for name, ref in (("baseline", "churn@1"), ("challenger", "churn@2")):
            run = runs[name]
            assert run.status == "finished"
            assert run.params["data"] == ref
            assert [(i.kind, i.name, i.role) for i in client.list_inputs(run.id)] == [
                ("dataset", ref, "train")
            ]
            assert len(client.get_metric_history(run.id, "val_auc")) > 10
            code = client.get_run_code(run.id)
            if shutil.which("git"):
                assert code.snapshot.git is not None
                assert code.snapshot.git.commit is not None
                assert not code.snapshot.dirty
            assert code.entry_point == "train.py"
            assert code.argv[:3] == (ref, "--name", name)
            assert code.environment is not None
        assert runs["challenger"].metrics["val_auc"].value >= GATE
        assert runs["baseline"].metrics["val_auc"].value < GATE

        # (3) the better model in production (alias champion); the weaker one refused
        production = client.get_model_version("churn@production")
        assert production.run_id == runs["challenger"].id
        assert production.signature is not None
        assert client.get_model_version("churn@champion").version == production.version
        baseline = client.get_model_version("churn@1")
        assert baseline.run_id == runs["baseline"].id
        assert baseline.stage.value == "development"
        refused = [e for e in client.model_history("churn") if e.event == "promotion_refused"]
        assert [(e.version, e.to_stage, e.comment) for e in refused] == [
            (1, "staging", "baseline asks for staging")
        ]
        failed = [g for g in refused[0].details["gates"] if not g["passed"]]
        assert [g["gate"] for g in failed] == ["metric val_auc"]
        assert failed[0]["required"] == f">= {GATE:g}"

        # (5) the store is sound and nothing is garbage
        assert client.fsck().ok
        assert client.gc(dry_run=True, grace_seconds=0).blobs.count == 0

    # the steps say the same
    assert _step(steps, "Diff churn@1 -> churn@2").facts["rows"] == "10,000 -> 12,000 (+2,000)"
    refusal = _step(steps, "Refused churn@1")
    assert refusal.facts["stage_now"] == "development"
    assert isinstance(refusal.facts["failed"], list)
    assert refusal.facts["failed"][0].startswith("metric val_auc: FAILED")
    assert "promotion_refused" in str(refusal.facts["audit"])
    search = _step(steps, "Searched runs")
    found = search.facts["found"]
    assert isinstance(found, list)
    assert [str(f).split(":")[0] for f in found] == ["challenger", "baseline"]
    assert _step(steps, "fsck").facts["ok"] is True
    assert _step(steps, "gc (dry run)").facts["unreferenced"] == 0

    # the CLI prints the same story, the same numbers: the demo is deterministic
    other = tmp_path / "b"
    result = syllabus("demo", "--dir", str(other))
    assert result.code == 0, result.stderr
    expected = "\n".join(line for n, s in enumerate(steps, 1) for line in render_step(n, s))
    printed = result.stdout.split("Demo finished", 1)[0].rstrip("\n")
    assert _normalized(printed, other) == _normalized(expected, folder)
    assert "Explore it" in result.stdout


def test_demo_refuses_a_folder_that_is_not_empty(tmp_path: Path, syllabus: Runner) -> None:
    folder = tmp_path / "busy"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine\n")
    with pytest.raises(InvalidArgumentError, match="not empty"):
        run_demo(folder)
    result = syllabus("demo", "--dir", str(folder))
    assert result.code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: ")
    assert "not empty" in lines[0]
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]
