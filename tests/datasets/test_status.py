"""Working-folder status: correct answers, and the stat-cache fast path."""

from __future__ import annotations

import os
from pathlib import Path

from syllabus.datasets import DatasetService
from tests.datasets.conftest import make_tree


def test_status_after_add_is_clean_without_hashing(service: DatasetService, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    service.add("churn", src)
    report = service.status("churn", src)
    assert report.clean
    assert report.hashed == 0
    assert report.ref == "churn@1"


def test_status_reports_changes_and_hashes_only_changed_files(
    service: DatasetService, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "src")
    service.add("churn", src)
    (src / "a.txt").write_text("edited\n")
    (src / "new.txt").write_text("new")
    (src / "sub" / "b.bin").unlink()
    (src / "run.sh").chmod(0o644)
    (src / "empty" / "nested-empty").rmdir()
    report = service.status("churn", src)
    states = {c.path: c.state for c in report.changes}
    assert states == {
        "a.txt": "modified",
        "new.txt": "added",
        "sub/b.bin": "removed",
        "run.sh": "modified",
        "empty/": "added",
        "empty/nested-empty/": "removed",
    }
    assert report.hashed == 2  # a.txt and new.txt; a chmod needs no hashing
    again = service.status("churn", src)
    assert again.hashed == 0
    assert {c.path for c in again.changes} == set(states)


def test_touched_but_identical_file_is_hashed_once_and_clean(
    service: DatasetService, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "src")
    service.add("churn", src)
    st = (src / "a.txt").stat()
    os.utime(src / "a.txt", ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    first = service.status("churn", src)
    assert first.clean
    assert first.hashed == 1
    second = service.status("churn", src)
    assert (second.clean, second.hashed) == (True, 0)


def test_status_against_an_explicit_version(service: DatasetService, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    service.add("churn", src)
    (src / "a.txt").write_text("v2\n")
    service.add("churn", src)
    assert service.status("churn", src).clean  # the version last added here: 2
    report = service.status("churn@1", src)
    assert [(c.path, c.state) for c in report.changes] == [("a.txt", "modified")]


def test_status_of_a_single_file_dataset_ignores_other_files(
    service: DatasetService, tmp_path: Path
) -> None:
    f = tmp_path / "train.csv"
    f.write_text("a\n1\n")
    (tmp_path / "other.txt").write_text("x")
    service.add("train", f)
    assert service.status("train").clean
    f.write_text("a\n2\n")
    assert [c.state for c in service.status("train").changes] == ["modified"]


def test_stat_cache_round_trip_and_older_or_damaged_files(tmp_path: Path) -> None:
    """The cache file keeps its entries as columns; a version-1 file (an object of lists)
    is still read; a damaged one is an empty cache (every file hashed again)."""
    import json

    from syllabus.datasets.status import StatCache

    path = tmp_path / "cache.json"
    cache = StatCache(path)
    cache.tree, cache.ref, cache.clean = "t" * 64, "churn@1", True
    cache.entries = {"a/x": (3, 10, 7, "d" * 64), "b": (0, 11, 8, "e" * 64)}
    cache.links = {"l": "a/x"}
    cache.empty_dirs = {"empty"}
    cache.save()
    back = StatCache(path)
    assert back.entries == cache.entries
    assert (back.tree, back.ref, back.clean) == (cache.tree, "churn@1", True)
    assert (back.links, back.empty_dirs) == ({"l": "a/x"}, {"empty"})
    assert list(back.entries) == ["a/x", "b"]

    old = {"v": 1, "tree": "t" * 64, "ref": "churn@1", "clean": True}
    path.write_text(json.dumps({**old, "entries": {"a/x": [3, 10, 7, "d" * 64]}}))
    assert StatCache(path).entries == {"a/x": (3, 10, 7, "d" * 64)}

    for damaged in ('{"v": 2, "paths": ["a"], "sizes": []}', '{"v": 2}', "[1]", "{"):
        path.write_text(damaged)
        empty = StatCache(path)
        assert empty.entries == {}
        assert empty.tree is None

    empty_cache = StatCache(tmp_path / "none.json")
    empty_cache.save()
    assert StatCache(tmp_path / "none.json").entries == {}
