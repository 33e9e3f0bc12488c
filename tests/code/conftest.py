"""Fixtures for the code tests: real git repositories in temp folders, a real SQLite (and
PostgreSQL when configured) database and a real local blob store."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from syllabus.blobs.store import BlobStore, open_blob_store
from syllabus.code import CodeService, SqlCodeStore
from syllabus.meta import create_engine, ensure_schema

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Tester",
    "GIT_AUTHOR_EMAIL": "tester@example.com",
    "GIT_COMMITTER_NAME": "Tester",
    "GIT_COMMITTER_EMAIL": "tester@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity and no user configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")} | GIT_ENV
    proc = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


def make_repo(root: Path, files: dict[str, str] | None = None, *, commit: bool = True) -> Path:
    """A git repository with ``files`` (default: a small project) committed on ``main``."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    for rel, text in (files or {"train.py": "print('train')\n", "lib/util.py": "X = 1\n"}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if commit:
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "first")
    return root


def notebook(*cells: tuple[str, str] | tuple[str, str, str], **meta: Any) -> dict[str, Any]:
    """An nbformat-4.5 notebook built and validated with nbformat; a cell is
    ``(type, source)`` or ``(type, source, id)``."""
    v4 = nbformat.v4
    makers = {"code": v4.new_code_cell, "markdown": v4.new_markdown_cell, "raw": v4.new_raw_cell}
    out = []
    for n, cell in enumerate(cells):
        kind, source = cell[0], cell[1]
        cell_id = cell[2] if len(cell) == 3 else f"cell-{n}"  # type: ignore[misc]
        out.append(makers[kind](source=source, id=cell_id))
    nb = v4.new_notebook(
        cells=out,
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}, **meta},
    )
    nb.nbformat_minor = 5
    nbformat.validate(nb)
    return json.loads(nbformat.writes(nb))


def write_nb(path: Path, nb: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1))
    return path


@pytest.fixture
def blobs(tmp_path: Path) -> Iterator[BlobStore]:
    store = open_blob_store(str(tmp_path / "blobs"))
    yield store
    store.close()


def make_service(db_url: str, blobs: BlobStore) -> CodeService:
    engine = create_engine(db_url)
    ensure_schema(engine)
    return CodeService(SqlCodeStore(engine), lambda: blobs)


@pytest.fixture
def service(tmp_path: Path, blobs: BlobStore) -> CodeService:
    return make_service(f"sqlite:///{tmp_path / 'meta.db'}", blobs)
