"""Shared test setup: real components only.

- S3: moto's standalone server on 127.0.0.1 (``tests.fixtures.s3``).
- PostgreSQL: ``SYLLABUS_TEST_PG`` (``.ci/run`` sets it and ``SYLLABUS_REQUIRE_PG=1``).
- The end-to-end demo: ``syllabus demo`` runs once per session (``tests.fixtures.demo``);
  its checks, the docs' example and the web UI's tests share its workspace.
- Every test runs with the developer's own ``SYLLABUS_*`` settings hidden and in its own
  temporary working folder, so no test can find or touch a real workspace.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.s3",
    "tests.fixtures.cli",
    "tests.fixtures.pg",
    "tests.fixtures.demo",
]

_KEEP = {"SYLLABUS_TEST_PG", "SYLLABUS_REQUIRE_PG"}


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SYLLABUS_") and name not in _KEEP:
            monkeypatch.delenv(name)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder that is the current working directory for the test."""
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder
