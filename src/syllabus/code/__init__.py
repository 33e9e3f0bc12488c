"""Code versioning, environment capture and notebook checkpoints (component 2).

Every run can record exactly which code (git commit, branch, remote without credentials,
the uncommitted patch and untracked source files; or a snapshot of source files outside
git), which entry point and which Python environment produced it, all content-addressed
in the blob store. Notebooks get canonical checkpoints with cell-level diffs.
"""

from __future__ import annotations

from syllabus.code.models import (
    CaptureOptions,
    CellChange,
    CodeSnapshot,
    Environment,
    EnvironmentDiff,
    GitInfo,
    NotebookCheckpoint,
    NotebookDiff,
    RunCode,
)
from syllabus.code.service import CodeCheckout, CodeDiff, CodeService, EntryPoint
from syllabus.code.sql import SqlCodeStore
from syllabus.code.store import CodeStore, NotebookSummary

__all__ = [
    "CaptureOptions",
    "CellChange",
    "CodeCheckout",
    "CodeDiff",
    "CodeService",
    "CodeSnapshot",
    "CodeStore",
    "EntryPoint",
    "Environment",
    "EnvironmentDiff",
    "GitInfo",
    "NotebookCheckpoint",
    "NotebookDiff",
    "NotebookSummary",
    "RunCode",
    "SqlCodeStore",
]
