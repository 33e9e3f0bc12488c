"""``syllabus data`` and ``syllabus remote`` through the CLI in this process (the console
script itself starts in test_workspace_commands.py)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fixtures.cli import Runner, init_here


def _ok(result: object) -> str:
    assert result.code == 0, result.stderr  # type: ignore[attr-defined]
    return str(result.stdout)  # type: ignore[attr-defined]


def test_data_commands_end_to_end(syllabus_here: Runner, workdir: Path) -> None:
    data = workdir / "data"
    data.mkdir()
    (data / "people.csv").write_text("id,age\n1,30\n2,40\n")
    assert "churn@1: 1 file(s)" in _ok(syllabus_here("data", "add", "churn", "data", "-m", "first"))
    again = syllabus_here("data", "add", "churn", "data")
    assert "no changes: churn@1 already has this content" in again.stderr
    (data / "people.csv").write_text("id,age\n1,30\n2,45\n3,50\n")
    _ok(syllabus_here("data", "add", "churn", "data", "-m", "second", "--tag", "gold"))

    listed = json.loads(_ok(syllabus_here("data", "list", "--json")))
    assert [(d["name"], d["versions"], d["latest"]) for d in listed] == [("churn", 2, 2)]
    csv_out = _ok(syllabus_here("data", "versions", "churn", "--csv")).splitlines()
    assert csv_out[0] == "version,tags,files,size,author,created,message"
    assert csv_out[1].startswith("2,gold,1,")
    shown = _ok(syllabus_here("data", "show", "churn@gold"))
    assert "people.csv: 3 rows, 2 columns" in shown
    assert "message:  second" in shown

    diff = _ok(syllabus_here("data", "diff", "churn@1", "churn@2", "--key", "id"))
    assert "modified  people.csv" in diff
    assert "rows: 2 -> 3 (+1)" in diff
    assert "age.mean: 35 -> 41.6667" in diff
    assert "+1 added, -0 removed, ~1 changed, 1 unchanged" in diff

    assert "up to date" in _ok(syllabus_here("data", "status", "churn"))
    (data / "people.csv").write_text("changed")
    assert "modified  people.csv" in _ok(syllabus_here("data", "status", "churn"))

    _ok(syllabus_here("data", "checkout", "churn@1", "work"))
    assert (workdir / "work" / "people.csv").read_text() == "id,age\n1,30\n2,40\n"
    (workdir / "work" / "people.csv").write_text("local edit")
    refused = syllabus_here("data", "checkout", "churn@2", "work")
    assert refused.code == 1
    assert refused.stderr.startswith("Error: checkout of churn@2")
    assert len(refused.stderr.strip().splitlines()) == 1
    _ok(syllabus_here("data", "checkout", "churn@2", "work", "--force"))

    _ok(syllabus_here("remote", "add", "backup", str(workdir / "remote")))
    assert "backup" in _ok(syllabus_here("remote", "list"))
    assert "pushed churn to backup" in _ok(syllabus_here("data", "push", "churn"))
    assert "0 record(s) copied" in _ok(syllabus_here("data", "pull", "churn@1"))

    missing = syllabus_here("data", "show", "churn@9")
    assert missing.code == 1
    assert missing.stderr.strip() == "Error: dataset 'churn' has no version 9 (latest is 2)"
    assert "removed churn@1" in _ok(syllabus_here("data", "rm", "churn@1"))
    _ok(syllabus_here("remote", "remove", "backup"))


def test_push_and_pull_carry_metadata_and_report_conflicts(
    syllabus_here: Runner, workdir: Path
) -> None:
    alice, bob = workdir / "alice", workdir / "bob"
    for ws in (alice, bob):
        ws.mkdir()
        init_here(ws)
        _ok(syllabus_here("remote", "add", "origin", str(workdir / "remote"), cwd=ws))
    (alice / "f.txt").write_text("one")
    _ok(syllabus_here("data", "add", "d", "f.txt", "-m", "first", "--tag", "gold", cwd=alice))
    pushed = _ok(syllabus_here("data", "push", "d", cwd=alice))
    assert "pushed d to origin: d@1 published; " in pushed
    assert "tag gold -> d@1" in pushed
    listed = json.loads(_ok(syllabus_here("data", "list", "--remote", "origin", "--json", cwd=bob)))
    assert [(d["name"], d["latest"]) for d in listed] == [("d", 1)]
    pulled = _ok(syllabus_here("data", "pull", "d", cwd=bob))
    assert "pulled d from origin: d@1 imported" in pulled
    versions = _ok(syllabus_here("data", "versions", "d", "--csv", cwd=bob)).splitlines()
    assert versions[1].startswith("1,gold,1,")
    assert versions[1].endswith(",first")

    (alice / "f.txt").write_text("alice two")
    _ok(syllabus_here("data", "add", "d", "f.txt", cwd=alice))
    _ok(syllabus_here("data", "push", "d", cwd=alice))
    (bob / "f.txt").write_text("bob two")
    _ok(syllabus_here("data", "add", "d", "f.txt", cwd=bob))
    clash = syllabus_here("data", "push", "d", cwd=bob)
    assert clash.code == 1
    assert "pushed d to origin: no new version published" in clash.stdout
    assert "conflict: d@2 differs here" in clash.stderr
    assert "1 conflict(s) left as they were" in clash.stderr
    explicit = syllabus_here("data", "pull", "d@2", cwd=bob)
    assert explicit.code == 1
    assert explicit.stderr.startswith("Error: d@2 differs here")
