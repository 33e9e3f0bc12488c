"""``syllabus experiments`` and ``syllabus runs`` through the CLI in this process (the
console script itself starts in test_workspace_commands.py)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from syllabus import Client
from tests.fixtures.cli import Runner, init_here


def _two_runs(workdir: Path) -> tuple[str, str]:
    ids = []
    with Client(cwd=workdir) as client:
        for n, (lr, acc) in enumerate(((0.1, 0.7), (0.01, 0.9))):
            run = client.create_run(
                "churn", name=f"r{n}", params={"lr": lr, "model": "rf"}, tags={"team": "risk"}
            )
            for step in range(3):
                client.log_metric(run.id, "acc", acc - 0.1 * (2 - step), step=step)
            client.log_text(run.id, f"run {n}\n", "notes/readme.txt")
            client.end_run(run.id)
            ids.append(run.id)
    return ids[0], ids[1]


def test_experiments_lifecycle(syllabus_here: Runner, workdir: Path) -> None:
    init_here(workdir)
    created = syllabus_here("experiments", "create", "churn", "-d", "first")
    assert created.code == 0, created.stderr
    exp_id = created.stdout.strip()
    listed = json.loads(syllabus_here("experiments", "list", "--json").stdout)
    assert [(e["id"], e["name"], e["description"]) for e in listed] == [(exp_id, "churn", "first")]
    dup = syllabus_here("experiments", "create", "churn")
    assert dup.code == 1
    assert dup.stderr.startswith("Error: experiment 'churn' already exists")
    assert syllabus_here("experiments", "rename", "churn", "churn-2").code == 0
    assert syllabus_here("experiments", "delete", "churn-2").code == 0
    assert json.loads(syllabus_here("experiments", "list", "--json").stdout) == []
    deleted = syllabus_here("experiments", "list", "--deleted", "--csv").stdout
    assert "churn-2" in deleted
    assert syllabus_here("experiments", "restore", exp_id[:8]).code == 0
    assert "churn-2" in syllabus_here("experiments", "list").stdout


def test_runs_list_filter_order_columns(syllabus_here: Runner, workdir: Path) -> None:
    init_here(workdir)
    _, second = _two_runs(workdir)
    out = syllabus_here(
        "runs", "list", "-e", "churn", "-f", "metrics.acc > 0.75", "-c", "id,name,metrics.acc",
        "--csv",
    )  # fmt: skip
    assert out.code == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert rows == [{"id": second, "name": "r1", "metrics.acc": "0.9"}]
    ordered = json.loads(syllabus_here("runs", "list", "-o", "metrics.acc asc", "--json").stdout)
    assert [r["name"] for r in ordered] == ["r0", "r1"]
    assert ordered[0]["params"] == {"lr": "0.1", "model": "rf"}
    assert ordered[0]["metrics"]["acc"]["step"] == 2
    table = syllabus_here("runs", "list")
    assert "r0" in table.stdout
    assert "metrics.acc" in table.stdout
    bad = syllabus_here("runs", "list", "-f", "metrics.acc >")
    assert bad.code == 1
    assert "at character 14" in bad.stderr
    assert bad.stderr.count("\n") == 1


def test_runs_show_compare_metrics(syllabus_here: Runner, workdir: Path) -> None:
    init_here(workdir)
    first, second = _two_runs(workdir)
    shown = syllabus_here("runs", "show", first)
    assert shown.code == 0, shown.stderr
    assert "lr = 0.1" in shown.stdout
    assert "notes/readme.txt" in shown.stdout
    as_json = json.loads(syllabus_here("runs", "show", "latest", "--json").stdout)
    assert as_json["id"] == second
    assert as_json["metric_history"]["acc"]["points"] == 3
    compared = json.loads(syllabus_here("runs", "compare", first, second, "--json").stdout)
    fields = [row["field"] for row in compared]
    assert fields == ["params.lr", "metrics.acc"]  # model is the same in both: hidden
    metrics = syllabus_here("runs", "metrics", "latest~1", "--key", "acc", "--csv").stdout
    rows = list(csv.DictReader(io.StringIO(metrics)))
    assert [r["step"] for r in rows] == ["0", "1", "2"]
    assert float(rows[-1]["value"]) == 0.7


def test_runs_delete_restore_artifacts_download(syllabus_here: Runner, workdir: Path) -> None:
    init_here(workdir)
    first, second = _two_runs(workdir)
    assert syllabus_here("runs", "delete", first).code == 0
    listed = json.loads(syllabus_here("runs", "list", "--json").stdout)
    assert [r["id"] for r in listed] == [second]
    assert syllabus_here("runs", "restore", first).code == 0
    assert len(json.loads(syllabus_here("runs", "list", "--json").stdout)) == 2
    arts = json.loads(syllabus_here("runs", "artifacts", first, "--json").stdout)
    assert [a["path"] for a in arts] == ["notes/readme.txt"]
    got = syllabus_here("runs", "download", first, "notes", "--dest", "out")
    assert got.code == 0, got.stderr
    assert (workdir / "out" / "notes" / "readme.txt").read_text() == "run 0\n"
    missing = syllabus_here("runs", "show", "abcdef")
    assert missing.code == 1
    assert "run 'abcdef' not found" in missing.stderr
