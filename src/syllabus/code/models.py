"""Code-component entities: frozen values returned by the store, the service and the client.

Times are Unix milliseconds; ids are 32-hex time-ordered ids; digests are 64-hex BLAKE3
content ids of blobs in the blob store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from syllabus.config import SETTINGS, Settings

__all__ = [
    "CaptureOptions",
    "CellChange",
    "CodeSnapshot",
    "Environment",
    "EnvironmentDiff",
    "GitInfo",
    "NotebookCheckpoint",
    "NotebookDiff",
    "RunCode",
    "SnapshotKind",
]

SnapshotKind = Literal["git", "files"]


def _default_list(name: str) -> tuple[str, ...]:
    """A comma-separated setting's default, as a tuple (one source of truth: config)."""
    default = next(s.default for s in SETTINGS if s.name == name)
    return split_list(default or "")


def split_list(text: str) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")``."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


DEFAULT_INCLUDE: tuple[str, ...] = _default_list("code_include")
DEFAULT_EXCLUDE: tuple[str, ...] = _default_list("code_exclude")
DEFAULT_ENV_VARS: tuple[str, ...] = _default_list("code_env_vars")


@dataclass(frozen=True, slots=True)
class CaptureOptions:
    """What a capture takes: source globs (for untracked files and snapshots outside
    git), excluded names, size limits, allow-listed environment variables and whether
    notebook checkpoints keep outputs."""

    include: tuple[str, ...] = DEFAULT_INCLUDE
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    max_file_size: int = 1024 * 1024
    max_total_size: int = 20 * 1024 * 1024
    env_vars: tuple[str, ...] = DEFAULT_ENV_VARS
    notebook_outputs: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> CaptureOptions:
        """The options the ``code_*`` and ``notebook_outputs`` settings give."""
        return cls(
            include=split_list(settings.code_include),
            exclude=split_list(settings.code_exclude),
            max_file_size=settings.code_max_file_size,
            max_total_size=settings.code_max_total_size,
            env_vars=split_list(settings.code_env_vars),
            notebook_outputs=settings.notebook_outputs,
        )


@dataclass(frozen=True, slots=True)
class GitInfo:
    """What git said about the working tree at capture time.

    ``commit`` is None in a repository without commits. ``branch`` is None on a detached
    HEAD. ``remote`` has credentials stripped. ``patch`` is the blob of ``git diff
    --binary HEAD`` (None when tracked files are unchanged); ``untracked`` the tree of the
    untracked source files kept (None when there are none); ``skipped`` the untracked
    files left out by the size limits.
    """

    commit: str | None
    branch: str | None
    remote: str | None
    dirty: bool
    patch: str | None = None
    patch_size: int = 0
    untracked: str | None = None
    untracked_count: int = 0
    skipped: tuple[str, ...] = ()

    @property
    def detached(self) -> bool:
        return self.commit is not None and self.branch is None


@dataclass(frozen=True, slots=True)
class CodeSnapshot:
    """Exactly which code: a git commit plus patch and untracked files, or (outside git,
    or before the first commit) a tree of source files.

    ``digest`` is the content id of the snapshot record; the same code gives the same
    digest and the same snapshot id.
    """

    id: str
    digest: str
    kind: SnapshotKind
    created_at: int
    git: GitInfo | None = None
    files: str | None = None  # tree digest of the source files (kind "files")
    file_count: int = 0
    skipped: tuple[str, ...] = ()

    @property
    def dirty(self) -> bool:
        return self.git.dirty if self.git is not None else False

    @property
    def digests(self) -> tuple[str, ...]:
        """Every blob the snapshot references (record, patch, trees)."""
        out = [self.digest]
        if self.git is not None:
            out += [d for d in (self.git.patch, self.git.untracked) if d]
        if self.files:
            out.append(self.files)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Environment:
    """The Python environment a run used. ``packages`` maps normalized distribution names
    to versions; ``variables`` holds only allow-listed environment variables."""

    id: str
    digest: str
    python: str
    implementation: str
    platform: str
    created_at: int
    packages: Mapping[str, str] = field(default_factory=dict)
    gpus: tuple[str, ...] = ()
    cuda: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EnvironmentDiff:
    """Packages added, removed and changed (``name -> (old, new)``) from ``a`` to ``b``,
    and other fields that differ (``field -> (old, new)``)."""

    added: Mapping[str, str]
    removed: Mapping[str, str]
    changed: Mapping[str, tuple[str, str]]
    other: Mapping[str, tuple[Any, Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed or self.other)


@dataclass(frozen=True, slots=True)
class RunCode:
    """What a run was started from: snapshot, environment, entry point and arguments."""

    run_id: str
    snapshot: CodeSnapshot
    environment: Environment | None
    root: str | None
    entry_point: str | None
    argv: tuple[str, ...]
    created_at: int
    checkpoint_id: str | None = None


@dataclass(frozen=True, slots=True)
class NotebookCheckpoint:
    """One checkpoint of a notebook (``path`` is project-relative)."""

    id: str
    notebook_id: str
    path: str
    version: int
    digest: str
    cell_count: int
    outputs: bool
    message: str
    author: str
    created_at: int
    run_id: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.path}@{self.version}"


ChangeKind = Literal["added", "removed", "modified", "moved", "unchanged"]


@dataclass(frozen=True, slots=True)
class CellChange:
    """One cell in a notebook diff. Indexes are 0-based positions (None on the side
    where the cell does not exist); ``source_diff`` is a unified diff of the sources;
    ``outputs`` summarizes output changes (None when outputs are equal)."""

    kind: ChangeKind
    cell_type: str
    a_index: int | None
    b_index: int | None
    source_diff: str = ""
    outputs: str | None = None
    moved: bool = False
    summary: str = ""


@dataclass(frozen=True, slots=True)
class NotebookDiff:
    """Cell-level changes from checkpoint (or file) ``a`` to ``b``; ``metadata`` lists the
    notebook-level metadata keys that differ."""

    a: str
    b: str
    cells: tuple[CellChange, ...]
    metadata: tuple[str, ...] = ()

    def count(self, kind: ChangeKind) -> int:
        return sum(1 for c in self.cells if c.kind == kind)

    @property
    def changes(self) -> tuple[CellChange, ...]:
        return tuple(c for c in self.cells if c.kind != "unchanged")

    def __bool__(self) -> bool:
        return bool(self.changes or self.metadata)
