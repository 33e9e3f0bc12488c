from __future__ import annotations

import json
from pathlib import Path

from syllabus import Client
from tests.fixtures.cli import Runner, init_here


def _store_something(workdir: Path) -> tuple[str, str]:
    with Client() as client:
        a = client.blobs.put_bytes(bytes(range(256)) * 40)
        b = client.blobs.put_bytes(b"second object " * 300)
        client.blobs.flush()
    return a, b


def test_fsck_passes_then_reports_corruption(syllabus_here: Runner, workdir: Path) -> None:
    init_here(workdir)
    _store_something(workdir)
    ok = syllabus_here("store", "fsck")
    assert ok.code == 0, ok.stderr
    assert ok.stdout.strip().endswith("ok")
    pack = next((workdir / ".syllabus" / "blobs" / "packs").glob("*.pack"))
    data = bytearray(pack.read_bytes())
    data[-10] ^= 0xFF  # flip a byte inside the last record's payload
    pack.write_bytes(bytes(data))
    bad = syllabus_here("store", "fsck")
    assert bad.code == 1
    assert "corrupt" in bad.stdout
    assert "1 problem(s) found" in bad.stdout
    as_json = json.loads(syllabus_here("store", "fsck", "--json").stdout)
    assert as_json["ok"] is False
    assert len(as_json["corrupt"]) == 1


def test_gc_lists_then_deletes_with_yes(syllabus_here: Runner, workdir: Path) -> None:
    init_here(workdir)
    a, b = _store_something(workdir)
    young = syllabus_here("store", "gc")
    assert young.code == 0
    assert "would delete 0 unreferenced record(s)" in young.stderr
    dry = syllabus_here("store", "gc", "--grace", "0s")
    assert dry.code == 0
    assert set(dry.stdout.split()) == {a, b}
    assert "run with --yes to delete" in dry.stderr
    listed = json.loads(syllabus_here("store", "gc", "--grace", "0s", "--json").stdout)
    assert {row["digest"] for row in listed} == {a, b}
    done = syllabus_here("store", "gc", "--grace", "0s", "--yes")
    assert done.code == 0
    assert "deleted 2 record(s)" in done.stderr
    assert syllabus_here("store", "gc", "--grace", "0s").stdout.strip() == ""


def test_gc_bad_grace_is_a_one_line_error(syllabus_here: Runner, workdir: Path) -> None:
    init_here(workdir)
    result = syllabus_here("store", "gc", "--grace", "soon")
    assert result.code == 1
    assert result.stderr.strip().splitlines() == [
        "Error: invalid duration 'soon' (expected e.g. 90s, 15m, 24h, 7d)"
    ]


def test_du_table_json_and_csv(syllabus_here: Runner, workdir: Path) -> None:
    init_here(workdir)
    _store_something(workdir)
    rows = json.loads(syllabus_here("store", "du", "--json").stdout)
    total = next(r for r in rows if r["group"] == "total")
    assert total["records"] == 2
    assert total["logical_bytes"] == 256 * 40 + len(b"second object ") * 300
    csv_out = syllabus_here("store", "du", "--csv").stdout.splitlines()
    assert csv_out[0] == "group,name,records,stored_bytes,logical_bytes"
    table = syllabus_here("store", "du")
    assert table.code == 0
    assert "(unreferenced)" in table.stdout
