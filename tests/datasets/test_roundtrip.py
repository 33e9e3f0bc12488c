"""Add then checkout: byte-identical trees; only changes stored; local changes protected."""

from __future__ import annotations

from pathlib import Path

import pytest

from syllabus.datasets import DatasetService
from syllabus.errors import ConflictError, InvalidArgumentError, NotFoundError
from tests.datasets.conftest import make_tree, snapshot


def test_folder_round_trip_is_byte_identical_with_modes_links_and_empty_folders(
    service: DatasetService, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "src")
    result = service.add("churn", src, message="first", tags=["gold"])
    v = result.version
    assert result.created
    assert (v.version, v.kind, v.file_count, v.message, v.tags) == (
        1,
        "folder",
        5,
        "first",
        ("gold",),
    )
    assert set(v.empty_dirs) == {"empty/nested-empty"}
    report = service.checkout("churn@1", tmp_path / "out")
    assert report.written == 6  # five files and a link
    assert snapshot(tmp_path / "out") == snapshot(src)


def test_single_file_round_trip(service: DatasetService, tmp_path: Path) -> None:
    f = tmp_path / "train.csv"
    f.write_text("id,x\n1,2\n3,4\n")
    v = service.add("train", f).version
    assert v.kind == "file"
    assert v.file_count == 1
    service.checkout("train", tmp_path / "out")
    assert (tmp_path / "out" / "train.csv").read_text() == "id,x\n1,2\n3,4\n"
    with service.open(v) as reader:
        assert reader.read() == b"id,x\n1,2\n3,4\n"
    assert service.profiles(v)["train.csv"].rows == 2


def test_identical_content_makes_no_new_version(service: DatasetService, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    first = service.add("churn", src).version
    again = service.add("churn", src)
    assert not again.created
    assert again.version.version == first.version == 1
    (src / "a.txt").write_text("changed\n")
    assert service.add("churn", src).version.version == 2
    (src / "a.txt").write_text("hello\n")  # back to version 1's content: still a new version
    assert service.add("churn", src).version.version == 3


def test_incremental_re_add_equals_a_full_add(service: DatasetService, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    service.add("churn", src)
    (src / "sub" / "b.bin").write_bytes(b"new content")
    (src / "added.txt").write_text("more")
    (src / "a.txt").unlink()
    incremental = service.add("churn", src).version
    full = service.add("other", src).version  # no stat cache for this name: put_tree
    assert incremental.tree == full.tree


def test_checkout_refuses_to_overwrite_local_changes(
    service: DatasetService, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "src")
    service.add("churn", src)
    (src / "a.txt").write_text("v2\n")
    (src / "sub" / "b.bin").unlink()
    service.add("churn", src)
    work = tmp_path / "work"
    service.checkout("churn@1", work)
    (work / "a.txt").write_text("my local edit\n")
    (work / "untracked.txt").write_text("keep me")
    with pytest.raises(ConflictError, match=r"1 locally modified file\(s\) \(a.txt\)"):
        service.checkout("churn@2", work)
    assert (work / "a.txt").read_text() == "my local edit\n"  # nothing was written
    report = service.checkout("churn@2", work, force=True)
    assert report.removed == 1
    assert (work / "a.txt").read_text() == "v2\n"
    assert not (work / "sub" / "b.bin").exists()
    assert (work / "untracked.txt").read_text() == "keep me"


def test_checkout_switches_versions_writing_only_what_differs(
    service: DatasetService, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "src")
    service.add("churn", src)
    (src / "a.txt").write_text("v2\n")
    service.add("churn", src)
    work = tmp_path / "work"
    service.checkout("churn@1", work)
    report = service.checkout("churn@2", work)
    assert (report.written, report.removed) == (1, 0)
    assert service.status("churn", work).clean


def test_references_and_errors(service: DatasetService, tmp_path: Path) -> None:
    f = tmp_path / "d.txt"
    for i in range(3):
        f.write_text(str(i))
        service.add("d", f)
    assert service.resolve("d").version == 3
    assert service.resolve("d@latest").version == 3
    service.tag("d@1", "gold")
    assert service.resolve("d@gold").version == 1
    service.tag("d@2", "gold")  # tags move
    assert service.resolve("d@gold").version == 2
    with pytest.raises(NotFoundError, match=r"dataset 'd' has no version 9 \(latest is 3\)"):
        service.resolve("d@9")
    with pytest.raises(NotFoundError, match="no dataset 'nope'"):
        service.resolve("nope@1")
    with pytest.raises(NotFoundError, match="has no tag 'silver'"):
        service.resolve("d@silver")
    with pytest.raises(InvalidArgumentError, match="no stages"):
        service.resolve("d@production")
    with pytest.raises(InvalidArgumentError, match="name the version"):
        service.remove("d")


def test_soft_delete_then_purge_drops_blob_references(
    service: DatasetService, tmp_path: Path
) -> None:
    f = tmp_path / "d.csv"
    f.write_text("a\n1\n")
    v1 = service.add("d", f).version
    f.write_text("a\n2\n")
    service.add("d", f)
    service.remove("d@1")
    with pytest.raises(NotFoundError, match="version 1 was deleted"):
        service.resolve("d@1")
    assert [v.version for v in service.list_versions("d")] == [2]
    assert service.purge_deleted(3600) == 0  # deleted just now: kept
    assert service.purge_deleted(0) == 1
    refs = service.store._refs  # type: ignore[attr-defined]
    owners = {r.owner_id for r in refs.owners(v1.tree)}
    assert v1.id not in owners
    f.write_text("a\n3\n")
    assert service.add("d", f).version.version == 3  # numbers are never reused
