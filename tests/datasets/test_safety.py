"""Paths never leave their root: crafted manifests, escaping links, links in the way."""

from __future__ import annotations

from pathlib import Path

import pytest

from syllabus.blobs.store import BlobStore
from syllabus.datasets import DatasetService, VersionSpec
from syllabus.errors import ConflictError, PathEscapeError

_DIGEST = "0" * 64


def _crafted(service: DatasetService, blobs: BlobStore, lines: list[str]) -> str:
    """Store a hand-written manifest as version 1 of dataset 'evil' (bypassing add)."""
    raw = ("syllabus-manifest 1\n" + "".join(line + "\n" for line in lines)).encode()
    tree = blobs.put_bytes(raw)
    blobs.flush()
    spec = VersionSpec(tree=tree, kind="folder", file_count=1, size=1, message="", author="x")
    version, _ = service.store.create_version("evil", spec)
    return version.ref


@pytest.mark.parametrize(
    "line",
    [
        f'["../escape.txt","f",420,1,"{_DIGEST}"]',
        f'["/etc/escape.txt","f",420,1,"{_DIGEST}"]',
        f'["a/../../escape.txt","f",420,1,"{_DIGEST}"]',
        f'["ok/link","l",511,5,"{_DIGEST}","../../outside"]',
        f'["ok/link","l",511,5,"{_DIGEST}","/etc/passwd"]',
    ],
    ids=["dotdot", "absolute", "nested-dotdot", "link-dotdot", "link-absolute"],
)
def test_crafted_manifests_are_rejected_before_writing(
    service: DatasetService, blobs: BlobStore, tmp_path: Path, line: str
) -> None:
    ref = _crafted(service, blobs, [line])
    work = tmp_path / "deep" / "work"
    with pytest.raises(PathEscapeError):
        service.checkout(ref, work)
    assert not (tmp_path / "deep" / "escape.txt").exists()
    assert not work.exists()


def test_adding_a_folder_with_an_escaping_link_is_refused(
    service: DatasetService, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.txt").write_text("ok")
    (src / "leak").symlink_to("../../etc/passwd")
    with pytest.raises(PathEscapeError, match="leaves the root"):
        service.add("d", src)
    assert service.store.get_dataset("d") is None


def test_checkout_does_not_write_through_a_link_in_the_folder(
    service: DatasetService, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "x.txt").write_text("data")
    service.add("d", src)
    outside = tmp_path / "outside"
    outside.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    (work / "sub").symlink_to(outside)
    with pytest.raises(PathEscapeError, match="through a symlink"):
        service.checkout("d@1", work, force=True)
    assert list(outside.iterdir()) == []


def test_checkout_creates_new_files_without_replacing_what_is_in_the_way(
    service: DatasetService, tmp_path: Path
) -> None:
    """New files are created in place with O_EXCL: a folder where the version has a file
    stops the checkout, even forced; a link there is a local change, replaced (never
    written through) only when forced."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(10):
        (src / f"f{i}.txt").write_text(f"data {i}")
    service.add("d", src)
    outside = tmp_path / "outside.txt"
    work = tmp_path / "work"
    work.mkdir()
    (work / "f3.txt").symlink_to(outside)  # dangling
    with pytest.raises(ConflictError, match="locally modified"):
        service.checkout("d@1", work)
    service.checkout("d@1", work, force=True)
    assert not outside.exists()
    assert not (work / "f3.txt").is_symlink()
    assert (work / "f3.txt").read_text() == "data 3"
    for i in range(10):
        (work / f"f{i}.txt").unlink()
    (work / "f5.txt").mkdir()
    with pytest.raises(ConflictError, match="a folder is in the way"):
        service.checkout("d@1", work, force=True)
    (work / "f5.txt").rmdir()
    service.checkout("d@1", work)
    assert sorted(p.name for p in work.iterdir()) == [f"f{i}.txt" for i in range(10)]
    assert (work / "f7.txt").read_text() == "data 7"


def test_references_whose_fields_disagree_are_refused(
    service: DatasetService, tmp_path: Path
) -> None:
    from syllabus.errors import InvalidReferenceError, NotFoundError
    from syllabus.refs import Ref, SelectorKind

    (tmp_path / "f.txt").write_text("x")
    service.add("d", tmp_path / "f.txt")
    for bad in [
        Ref("d", SelectorKind.VERSION),  # a version reference without a number
        Ref("d", SelectorKind.ALIAS),
        Ref("d", SelectorKind.LATEST, version=1),
    ]:
        with pytest.raises(InvalidReferenceError, match="fields do not agree"):
            service.resolve(bad)
    with pytest.raises(NotFoundError, match="has no version"):
        service.resolve(Ref("d", SelectorKind.VERSION, version=2**70))
    assert service.resolve(Ref("d", SelectorKind.VERSION, version=1)).version == 1
