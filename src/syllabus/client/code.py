"""Code versioning, environments and notebook checkpoints on the
:class:`~syllabus.client.Client` (a mixin).

``capture_code(run_id)`` is what run start calls (the fluent ``start_run`` does when the
``capture_code`` setting is on): it records the git state (or a snapshot of source files),
the entry point and the Python environment, and links them to the run. The other methods
read, compare and check out what was captured, and checkpoint, compare and restore
notebooks. Notebook references are ``PATH``, ``PATH@N`` or ``PATH@latest`` where PATH is
the notebook's path (relative to the project folder, the workspace's parent).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from syllabus.errors import InvalidArgumentError

if TYPE_CHECKING:
    from syllabus.client.local import LocalBackend
    from syllabus.code import (
        CaptureOptions,
        CodeCheckout,
        CodeDiff,
        CodeService,
        CodeSnapshot,
        EntryPoint,
        Environment,
        EnvironmentDiff,
        NotebookCheckpoint,
        NotebookDiff,
        NotebookSummary,
        RunCode,
    )
    from syllabus.config import Settings

__all__ = ["CodeAPI", "parse_notebook_ref"]

_VERSION = re.compile(r"[1-9][0-9]*|latest")


def parse_notebook_ref(ref: str) -> tuple[str, int | None]:
    """``"nbs/a.ipynb@3"`` -> ``("nbs/a.ipynb", 3)``; ``PATH`` or ``PATH@latest`` -> None."""
    path, at, selector = ref.rpartition("@")
    if not at or not _VERSION.fullmatch(selector):
        return ref, None
    if not path:
        raise InvalidArgumentError(f"notebook reference {ref!r} names no notebook")
    return path, None if selector == "latest" else int(selector)


class CodeAPI:
    """Code snapshots, environments and notebook checkpoints (mixed into ``Client``)."""

    if TYPE_CHECKING:
        settings: Settings
        _cwd: Path

        def _open(self, *, write: bool) -> LocalBackend: ...

    def _code(self, *, write: bool = False) -> CodeService:
        from syllabus.code import CodeService

        backend = self._open(write=write)
        return CodeService(backend.code_store, lambda: backend.blobs)

    def _capture_options(self) -> CaptureOptions:
        from syllabus.code import CaptureOptions

        return CaptureOptions.from_settings(self.settings)

    @property
    def project_root(self) -> Path:
        """The folder notebooks are named relative to: the workspace's parent, else the
        current folder."""
        if self.settings.workspace is not None:
            return self.settings.workspace.parent
        return self._cwd

    # -- capture -------------------------------------------------------------------------

    def capture_code(
        self,
        run_id: str,
        *,
        folder: str | Path | None = None,
        entry: EntryPoint | None = None,
        environment: bool = True,
    ) -> RunCode:
        """Record the code in ``folder`` (default: the current folder), the entry point and
        the Python environment for run ``run_id``. Identical captures share storage."""
        return self._code(write=True).capture(
            run_id,
            Path(folder) if folder is not None else self._cwd,
            self._capture_options(),
            entry=entry,
            environment=environment,
        )

    def snapshot_code(self, folder: str | Path | None = None) -> CodeSnapshot:
        """Capture the code in ``folder`` without linking it to a run."""
        folder = Path(folder) if folder is not None else self._cwd
        return self._code(write=True).snapshot_code(folder, self._capture_options())[0]

    # -- reading -------------------------------------------------------------------------

    def get_run_code(self, run_id: str) -> RunCode:
        """What a run was started from: snapshot, environment, entry point, arguments."""
        return self._code().run_code(run_id)

    def read_code_patch(self, run_id: str) -> bytes:
        """The uncommitted patch (``git diff --binary HEAD``) a run was started with."""
        service = self._code()
        return service.read_patch(service.run_code(run_id).snapshot)

    def get_code_snapshot(self, snapshot_id: str) -> CodeSnapshot:
        return self._code().get_snapshot(snapshot_id)

    def get_environment(self, environment_id: str) -> Environment:
        return self._code().get_environment(environment_id)

    def _repos(self, *codes: RunCode) -> list[Path]:
        out = [Path(c.root) for c in codes if c.root]
        return [*out, self._cwd]

    def checkout_code(
        self, run_id: str, dest: str | Path, *, repos: Sequence[str | Path] = ()
    ) -> CodeCheckout:
        """Write the exact code of a run into the new or empty folder ``dest``: the commit
        (from the run's repository, ``repos``, or the recorded remote), the patch and the
        untracked files; or the stored snapshot of source files."""
        service = self._code()
        code = service.run_code(run_id)
        return service.checkout(
            code.snapshot, Path(dest), repos=[*map(Path, repos), *self._repos(code)]
        )

    def diff_code(self, run_a: str, run_b: str) -> CodeDiff:
        """Source-level differences between the code of two runs."""
        service = self._code()
        a, b = service.run_code(run_a), service.run_code(run_b)
        return service.diff_snapshots(a.snapshot, b.snapshot, repos=self._repos(a, b))

    def diff_environments(self, run_a: str, run_b: str) -> EnvironmentDiff:
        """Packages added, removed and changed (and other differences) between two runs."""
        service = self._code()
        a, b = service.run_code(run_a).environment, service.run_code(run_b).environment
        if a is None or b is None:
            missing = run_a if a is None else run_b
            raise InvalidArgumentError(f"run {missing!r} recorded no environment")
        return service.diff_environments(a, b)

    def current_environment(self) -> Environment:
        """The environment of this process (recorded, so it can be compared)."""
        return self._code(write=True).capture_environment(self._capture_options())

    # -- notebooks -----------------------------------------------------------------------

    def _notebook_key(self, path: str) -> str:
        from syllabus.code import CodeService

        full = Path(path) if Path(path).is_absolute() else self._cwd / path
        return CodeService.notebook_key(full, self.project_root)

    def checkpoint_notebook(
        self, path: str | Path, *, message: str = "", run_id: str | None = None
    ) -> tuple[NotebookCheckpoint, bool]:
        """A new checkpoint of a notebook; ``created`` is False (no new checkpoint) when
        it equals the latest one up to metadata noise."""
        full = Path(path) if Path(path).is_absolute() else self._cwd / path
        return self._code(write=True).checkpoint_notebook(
            full,
            self.project_root,
            message=message,
            outputs=self.settings.notebook_outputs,
            run_id=run_id,
        )

    def get_notebook_checkpoint(self, ref: str) -> NotebookCheckpoint:
        """The checkpoint ``PATH@N`` (``PATH`` or ``PATH@latest``: the latest)."""
        path, version = parse_notebook_ref(ref)
        return self._code().store.get_checkpoint(self._notebook_key(path), version)

    def run_notebook_checkpoint(self, run_id: str) -> NotebookCheckpoint | None:
        """The notebook checkpoint taken when ``run_id`` started (None for runs that were
        not started from a checkpointed notebook)."""
        link = self.get_run_code(run_id)
        if link.checkpoint_id is None:
            return None
        return self._code().store.get_checkpoint_by_id(link.checkpoint_id)

    def list_notebook_checkpoints(self, path: str) -> list[NotebookCheckpoint]:
        """Checkpoints of a notebook, newest first."""
        return self._code().store.list_checkpoints(self._notebook_key(path))

    def list_notebooks(self) -> list[NotebookSummary]:
        return self._code().store.list_notebooks()

    def read_notebook_checkpoint(self, ref: str | NotebookCheckpoint) -> bytes:
        """The canonical notebook JSON of a checkpoint (``PATH@N`` or the checkpoint)."""
        checkpoint = ref if not isinstance(ref, str) else self.get_notebook_checkpoint(ref)
        return self._code().read_checkpoint(checkpoint)

    def diff_notebook(self, a: str, b: str | None = None) -> NotebookDiff:
        """Cell-level diff from checkpoint ``a`` to checkpoint ``b``; without ``b``, to the
        notebook file as it is on disk now."""
        service = self._code()
        old = self.get_notebook_checkpoint(a)
        if b is None:
            path, _ = parse_notebook_ref(a)
            full = Path(path) if Path(path).is_absolute() else self._cwd / path
            return service.diff_notebook(old, full)
        return service.diff_notebook(old, self.get_notebook_checkpoint(b))

    def restore_notebook(
        self, ref: str, *, to: str | Path | None = None, force: bool = False
    ) -> Path:
        """Write checkpoint ``ref`` to ``to`` (default: the notebook's own path). A file
        with changes that are in no checkpoint is kept unless ``force``."""
        checkpoint = self.get_notebook_checkpoint(ref)
        if to is None:
            dest = Path(checkpoint.path)
            if not dest.is_absolute():
                dest = self.project_root / dest
        else:
            dest = Path(to) if Path(to).is_absolute() else self._cwd / to
        return self._code().restore_notebook(checkpoint, dest, force=force)
