"""Diffs with known answers on CSV and Parquet: files, schema, statistics, keyed rows."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from syllabus.datasets import DatasetService
from syllabus.datasets.profile import any_tabular, table_format
from syllabus.errors import InvalidArgumentError

V1 = "id,age,region\n1,30,north\n2,40,south\n3,50,north\n4,60,south\n"
# id 1 removed, id 3 changed (age 50 -> 55), ids 5 and 6 added, column score added
V2 = (
    "id,age,region,score\n2,40,south,0.5\n3,55,north,0.7\n4,60,south,0.1\n"
    "5,20,east,0.2\n6,80,east,0.9\n"
)


def _stats(table: object) -> dict[tuple[str, str], tuple[object, object]]:
    return {(s.column, s.stat): (s.a, s.b) for s in table.stats}  # type: ignore[attr-defined]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_table_diff_with_known_answers(service: DatasetService, tmp_path: Path, fmt: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "notes.txt").write_text("v1")
    (src / "old.txt").write_text("gone soon")
    name = f"people.{fmt}"

    def write(text: str) -> None:
        if fmt == "csv":
            (src / name).write_text(text)
        else:
            lines = [line.split(",") for line in text.strip().splitlines()]
            header, rows = lines[0], lines[1:]
            columns = {h: [r[i] for r in rows] for i, h in enumerate(header)}
            typed = {
                k: pa.array([float(x) for x in v]) if k == "score" else
                pa.array([int(x) for x in v]) if k in ("id", "age") else pa.array(v)
                for k, v in columns.items()
            }  # fmt: skip
            pq.write_table(pa.table(typed), src / name)

    write(V1)
    service.add("people", src)
    write(V2)
    (src / "old.txt").unlink()
    (src / "new.txt").write_text("hello")
    service.add("people", src)

    d = service.diff("people@1", "people@2", key=["id"])
    assert [c.path for c in d.added] == ["new.txt"]
    assert [c.path for c in d.removed] == ["old.txt"]
    assert [c.path for c in d.modified] == [name]
    (table,) = d.tables
    assert (table.rows_a, table.rows_b, table.rows_delta) == (4, 5, 1)
    assert [c for c, _ in table.columns_added] == ["score"]
    assert table.columns_removed == ()
    assert table.columns_retyped == ()
    stats = _stats(table)
    assert stats[("age", "mean")] == (45.0, 51.0)
    assert stats[("age", "min")] == (30, 20)
    assert stats[("age", "max")] == (60, 80)
    assert ("region", "top") in stats
    assert stats[("region", "distinct")] == (2, 3)
    assert ("id", "null_rate") not in stats
    rows = table.rows
    assert rows is not None
    assert (rows.added, rows.removed, rows.changed, rows.unchanged) == (2, 1, 1, 2)
    assert rows.examples == {"added": ["5", "6"], "removed": ["1"], "changed": ["3"]}
    assert rows.compared_columns == ("age", "region")


def test_retyped_column_and_null_rate(service: DatasetService, tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("id,v\n1,1\n2,2\n3,3\n4,4\n")
    service.add("t", f)
    f.write_text("id,v\n1,a\n2,\n3,c\n4,d\n")
    service.add("t", f)
    (table,) = service.diff("t@1", "t@2").tables
    assert table.columns_retyped == (("v", "BIGINT", "VARCHAR"),)
    assert _stats(table)[("v", "null_rate")] == (0.0, 0.25)
    assert table.rows is None


def test_key_must_exist(service: DatasetService, tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("id,v\n1,1\n")
    service.add("t", f)
    f.write_text("id,v\n1,2\n")
    service.add("t", f)
    with pytest.raises(InvalidArgumentError, match="key column 'nope'"):
        service.diff("t@1", "t@2", key=["nope"])


def test_same_version_has_no_changes(service: DatasetService, tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("id\n1\n")
    service.add("t", f)
    assert service.diff("t@1", "t@1").same


def test_jsonl_profile(service: DatasetService, tmp_path: Path) -> None:
    f = tmp_path / "events.jsonl"
    f.write_text('{"a": 1, "b": "x"}\n{"a": 3, "b": null}\n')
    v = service.add("events", f).version
    prof = service.profiles(v)["events.jsonl"]
    assert prof.rows == 2
    a, b = prof.columns
    assert (a.mean, a.min, a.max, b.null_rate) == (2.0, 1, 3, 0.5)


def test_tabular_names_are_found_in_bulk_as_one_by_one() -> None:
    names = [
        "a.csv", "d/B.TSV", "x.parquet", "y.pq", "e.jsonl", "f.ndjson", "g.csv.gz",
        "h.JSONL.ZST", "i.bin", "csv", ".csv", "j.csv.bak", "k.gz", "dir.csv/l.txt",
        "m.tsv\nn.bin",
    ]  # fmt: skip
    for name in names:  # True for every tabular name; may be for a few others (".csv")
        if table_format(name) is not None:
            assert any_tabular([name]), name
    for name in ("i.bin", "csv", "j.csv.bak", "k.gz", "dir.csv/l.txt", "a.csvx"):
        assert not any_tabular([name]), name
    assert not any_tabular([f"d{i}/f{i}.bin" for i in range(1000)])
    assert any_tabular([*(f"f{i}.bin" for i in range(1000)), "late/table.csv"])
    assert not any_tabular([])
