"""Capturing code from real git repositories (clean, dirty, untracked, detached, without
commits) and from folders outside git, and checking it out again exactly."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from syllabus.code import CaptureOptions, CodeService
from syllabus.code import git as code_git
from syllabus.code.git import strip_credentials
from syllabus.errors import ConflictError, NotFoundError
from syllabus.meta import BlobRefs
from tests.code.conftest import git, make_repo


def files_of(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:s3cret@github.com/org/x.git", "https://github.com/org/x.git"),
        ("https://ghp_token@github.com/org/x.git", "https://github.com/org/x.git"),
        ("https://github.com/org/x.git?private_token=abc#frag", "https://github.com/org/x.git"),
        ("http://u:p@[::1]:8080/r.git", "http://[::1]:8080/r.git"),
        ("ssh://git@host:2222/org/x.git", "ssh://git@host:2222/org/x.git"),
        ("ssh://git:pw@host/org/x.git", "ssh://host/org/x.git"),
        ("git@github.com:org/x.git", "git@github.com:org/x.git"),
        ("/srv/git/x.git", "/srv/git/x.git"),
    ],
)
def test_strip_credentials(url: str, expected: str) -> None:
    assert strip_credentials(url) == expected


def test_clean_repository(tmp_path: Path, service: CodeService) -> None:
    repo = make_repo(tmp_path / "repo")
    snap, root = service.snapshot_code(repo / "lib")
    assert root == repo.resolve()
    assert snap.kind == "git"
    assert snap.git is not None
    assert snap.git.commit == git(repo, "rev-parse", "HEAD")
    assert snap.git.branch == "main"
    assert not snap.git.detached
    assert not snap.dirty
    assert snap.git.patch is None
    assert snap.git.untracked is None
    assert snap.git.remote is None


def test_same_code_is_the_same_snapshot(tmp_path: Path, service: CodeService) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "train.py").write_text("print('changed')\n")
    first, _ = service.snapshot_code(repo)
    refs = BlobRefs(service.store._engine).count_by_kind()  # type: ignore[attr-defined]
    second, _ = service.snapshot_code(repo)
    assert second.id == first.id
    assert second.digest == first.digest
    assert BlobRefs(service.store._engine).count_by_kind() == refs  # type: ignore[attr-defined]
    (repo / "train.py").write_text("print('changed again')\n")
    third, _ = service.snapshot_code(repo)
    assert third.id != first.id


def test_dirty_repository_round_trips(tmp_path: Path, service: CodeService) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "train.py").write_text("print('edited')\n")
    (repo / "lib" / "util.py").unlink()
    (repo / "staged.py").write_text("Y = 2\n")
    git(repo, "add", "staged.py")
    snap, _ = service.snapshot_code(repo)
    assert snap.git is not None
    assert snap.dirty
    assert snap.git.patch is not None
    assert snap.git.patch_size > 0
    assert b"print('edited')" in service.read_patch(snap)
    out = service.checkout(snap, tmp_path / "out", repos=[repo])
    assert out.patched
    assert out.commit == snap.git.commit
    assert files_of(tmp_path / "out") == files_of(repo)


def test_untracked_files_by_glob_and_size(tmp_path: Path, service: CodeService) -> None:
    repo = make_repo(tmp_path / "repo", {"train.py": "1\n", ".gitignore": "ignored.py\n"})
    (repo / "new_model.py").write_text("NEW = True\n")
    (repo / "conf").mkdir()
    (repo / "conf" / "params.yaml").write_text("lr: 0.1\n")
    (repo / "ignored.py").write_text("secret = 1\n")  # in .gitignore
    (repo / "data.bin").write_bytes(b"\0" * 100)  # not a source glob
    (repo / "big.py").write_text("#" * 5000)  # over the size limit
    (repo / ".venv" / "lib").mkdir(parents=True)
    (repo / ".venv" / "lib" / "site.py").write_text("x\n")  # excluded folder
    options = CaptureOptions(max_file_size=4096)
    snap, _ = service.snapshot_code(repo, options)
    assert snap.git is not None
    assert snap.dirty
    assert snap.git.patch is None
    assert snap.git.untracked_count == 2
    assert snap.git.skipped == ("big.py",)
    out = tmp_path / "out"
    service.checkout(snap, out, repos=[repo])
    assert sorted(files_of(out)) == [".gitignore", "conf/params.yaml", "new_model.py", "train.py"]


def test_total_size_limit(tmp_path: Path, service: CodeService) -> None:
    repo = make_repo(tmp_path / "repo")
    for n in range(5):
        (repo / f"u{n}.py").write_text("#" * 1000)
    snap, _ = service.snapshot_code(repo, CaptureOptions(max_total_size=2500))
    assert snap.git is not None
    assert snap.git.untracked_count == 2
    assert snap.git.skipped == ("u2.py", "u3.py", "u4.py")


def test_detached_head(tmp_path: Path, service: CodeService) -> None:
    repo = make_repo(tmp_path / "repo")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "train.py").write_text("print('second')\n")
    git(repo, "commit", "-qam", "second")
    git(repo, "checkout", "-q", "--detach", first)
    snap, _ = service.snapshot_code(repo)
    assert snap.git is not None
    assert snap.git.commit == first
    assert snap.git.branch is None
    assert snap.git.detached
    out = tmp_path / "out"
    service.checkout(snap, out, repos=[repo])
    assert (out / "train.py").read_text() == "print('train')\n"


def test_repository_without_commits(tmp_path: Path, service: CodeService) -> None:
    repo = make_repo(tmp_path / "repo", commit=False)
    git(repo, "add", "train.py")  # one staged, one untracked
    snap, _ = service.snapshot_code(repo)
    assert snap.kind == "files"
    assert snap.git is not None
    assert snap.git.commit is None
    assert snap.git.branch == "main"
    assert snap.file_count == 2
    out = tmp_path / "out"
    service.checkout(snap, out)
    assert files_of(out) == files_of(repo)


def test_no_git_repository(tmp_path: Path, service: CodeService) -> None:
    project = tmp_path / "plain"
    (project / "src").mkdir(parents=True)
    (project / "src" / "model.py").write_text("M = 1\n")
    (project / "README.md").write_text("# hi\n")
    (project / "weights.bin").write_bytes(b"\1" * 10)
    (project / "__pycache__").mkdir()
    (project / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"x")
    (project / ".syllabus").mkdir()
    (project / ".syllabus" / "config.toml").write_text("")
    snap, root = service.snapshot_code(project)
    assert root == project.resolve()
    assert snap.kind == "files"
    assert snap.git is None
    assert snap.file_count == 2
    out = tmp_path / "out"
    service.checkout(snap, out)
    assert sorted(files_of(out)) == ["README.md", "src/model.py"]


def test_git_not_installed(
    tmp_path: Path, service: CodeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "repo")
    monkeypatch.setattr(code_git, "git_executable", lambda: None)
    snap, _ = service.snapshot_code(repo)
    assert snap.kind == "files"
    assert snap.git is None
    assert snap.file_count == 2


def test_credentials_are_never_stored(tmp_path: Path, service: CodeService) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "remote", "add", "origin", "https://alice:hunter2-token@git.example.com/ml/x.git")
    (repo / "train.py").write_text("print('dirty')\n")
    snap, _ = service.snapshot_code(repo)
    assert snap.git is not None
    assert snap.git.remote == "https://git.example.com/ml/x.git"
    stored = service.get_snapshot(snap.id)
    assert stored == snap
    record = service.blobs.read_bytes(snap.digest)  # type: ignore[arg-type]
    assert b"hunter2" not in record
    assert b"alice" not in record
    assert b"hunter2" not in service.read_patch(snap)
    db = sqlite3.connect(tmp_path / "meta.db")
    dump = "\n".join(db.iterdump())
    assert "hunter2" not in dump
    assert "alice" not in dump


def test_checkout_needs_an_empty_folder_and_the_commit(
    tmp_path: Path, service: CodeService
) -> None:
    repo = make_repo(tmp_path / "repo")
    snap, _ = service.snapshot_code(repo)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    with pytest.raises(ConflictError, match="not empty"):
        service.checkout(snap, busy, repos=[repo])
    with pytest.raises(NotFoundError, match="no known repository"):
        service.checkout(snap, tmp_path / "nowhere", repos=[])


def test_checkout_clones_the_recorded_remote(tmp_path: Path, service: CodeService) -> None:
    upstream = make_repo(tmp_path / "upstream")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(upstream), str(clone))
    (clone / "train.py").write_text("print('local edit')\n")
    snap, _ = service.snapshot_code(clone)
    assert snap.git is not None
    assert snap.git.remote == str(upstream)
    out = tmp_path / "out"
    service.checkout(snap, out)  # no local repository given: clone from the remote
    assert (out / "train.py").read_text() == "print('local edit')\n"


def test_diff_between_snapshots(tmp_path: Path, service: CodeService) -> None:
    repo = make_repo(tmp_path / "repo")
    a, _ = service.snapshot_code(repo)
    (repo / "train.py").write_text("print('train')\nprint('more')\n")
    (repo / "extra.py").write_text("E = 1\n")
    (repo / "lib" / "util.py").unlink()
    b, _ = service.snapshot_code(repo)
    diff = service.diff_snapshots(a, b, repos=[repo])
    assert diff.added == ("extra.py",)
    assert diff.removed == ("lib/util.py",)
    assert diff.modified == ("train.py",)
    assert "+print('more')" in diff.patch
    assert not service.diff_snapshots(a, a)
