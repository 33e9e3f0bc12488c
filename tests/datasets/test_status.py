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
