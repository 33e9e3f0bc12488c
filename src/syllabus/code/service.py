"""Code versioning, environment capture and notebook checkpoints over a store and blobs.

Everything is content-addressed: a snapshot record, an environment record, a patch, a
tree of files and a canonical notebook are blobs, and the rows name their digests. The
same code captured twice gives the same snapshot (no new row, no new bytes), so capturing
at every run start costs a few git commands and a lookup.
"""

from __future__ import annotations

import difflib
import functools
import getpass
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syllabus.blobs import BlobStore, Digest, hash_bytes
from syllabus.code import git
from syllabus.code.env import canonical_json, capture_environment
from syllabus.code.models import (
    CaptureOptions,
    CodeSnapshot,
    Environment,
    EnvironmentDiff,
    GitInfo,
    NotebookCheckpoint,
    NotebookDiff,
    RunCode,
)
from syllabus.code.notebook import canonical_notebook, canonicalize, diff_notebooks, load_notebook
from syllabus.code.store import CodeStore, RunLink
from syllabus.errors import (
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    PathEscapeError,
)

__all__ = ["CodeCheckout", "CodeDiff", "CodeService", "EntryPoint", "detect_entry_point"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EntryPoint:
    """How the process was started: a script (root-relative when inside the root) and its
    arguments, or a notebook."""

    path: str | None
    argv: tuple[str, ...] = ()
    notebook: str | None = None  # absolute path of the running notebook


@dataclass(frozen=True, slots=True)
class CodeCheckout:
    """What :meth:`CodeService.checkout` wrote."""

    path: Path
    snapshot_id: str
    commit: str | None
    patched: bool
    untracked: int
    files: int


@dataclass(frozen=True, slots=True)
class CodeDiff:
    """Source-level differences between two snapshots: paths added, removed, modified,
    and a unified diff of the text files (binary files are named only)."""

    a: str
    b: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    modified: tuple[str, ...]
    patch: str

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.modified)


@functools.cache
def _user() -> str:
    try:
        return getpass.getuser()[:128] or "unknown"
    except (KeyError, OSError):
        return "unknown"


def detect_entry_point(root: Path | None = None) -> EntryPoint:
    """The running script and its arguments, or the notebook when running in Jupyter
    (JupyterLab's ``__session__``, VS Code's ``__vsc_ipynb_file__``, ``JPY_SESSION_NAME``)."""
    main = sys.modules.get("__main__")
    notebook = None
    for name in ("__vsc_ipynb_file__", "__session__"):
        value = getattr(main, name, None)
        if isinstance(value, str) and value.endswith(".ipynb"):
            notebook = value
            break
    if notebook is None and os.environ.get("JPY_SESSION_NAME", "").endswith(".ipynb"):
        notebook = os.environ["JPY_SESSION_NAME"]
    if notebook is not None:
        path = Path(notebook).expanduser().resolve()
        return EntryPoint(_relative(path, root), (), str(path))
    argv0 = sys.argv[0] if sys.argv else ""
    if not argv0 or argv0 in ("-c", "-m") or not Path(argv0).is_file():
        return EntryPoint(None, tuple(sys.argv[1:]))
    return EntryPoint(_relative(Path(argv0).resolve(), root), tuple(sys.argv[1:]))


def _relative(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def _allowed(selected: Sequence[git.SourceFile]) -> Callable[[str], bool]:
    """An ignore predicate for ``put_tree`` that keeps exactly ``selected`` files."""
    keep = {f.rel for f in selected}
    folders = {f.rel.rsplit("/", i)[0] for f in selected for i in range(1, f.rel.count("/") + 1)}
    keep |= folders
    return lambda rel: rel not in keep


class CodeService:
    """Capture, read back, compare and check out code, environments and notebooks.

    ``blobs`` is called when bytes are first needed. Thread-safe as far as the store and
    the blob store are.
    """

    def __init__(self, store: CodeStore, blobs: Callable[[], BlobStore]) -> None:
        self.store = store
        self._blobs = blobs

    @property
    def blobs(self) -> BlobStore:
        return self._blobs()

    # -- capture -------------------------------------------------------------------------

    def _put_files(self, root: Path, files: Sequence[git.SourceFile]) -> str | None:
        if not files:
            return None
        tree = self.blobs.put_tree(root, ignore=_allowed(files))
        return str(tree.digest)

    def snapshot_code(
        self, folder: Path, options: CaptureOptions | None = None
    ) -> tuple[CodeSnapshot, Path]:
        """Capture the code of the project containing ``folder``; returns the snapshot and
        the root it was taken from (the repository's top, or ``folder``)."""
        options = options or CaptureOptions()
        folder = folder.resolve()
        tree = git.read_working_tree(folder)

        def select(root: Path, paths: Sequence[str]) -> tuple[list[git.SourceFile], list[str]]:
            return git.select_files(
                root,
                paths,
                include=options.include,
                exclude=options.exclude,
                max_file_size=options.max_file_size,
                max_total_size=options.max_total_size,
            )

        record: dict[str, Any]
        if tree is not None and tree.commit is not None:
            untracked, skipped = select(tree.root, tree.untracked)
            patch = git.diff_head(tree.root) if tree.changed else b""
            patch_digest = str(self.blobs.put_bytes(patch)) if patch else None
            info = GitInfo(
                commit=tree.commit,
                branch=tree.branch,
                remote=tree.remote,
                dirty=bool(patch or untracked),
                patch=patch_digest,
                patch_size=len(patch),
                untracked=self._put_files(tree.root, untracked),
                untracked_count=len(untracked),
                skipped=tuple(skipped),
            )
            record = {"format": 1, "kind": "git", "git": _git_json(info)}
            root = tree.root
        else:
            root = tree.root if tree is not None else folder
            if tree is not None:  # a repository without commits: its files, tracked or not
                paths = sorted({*git.tracked_files(root), *tree.untracked})
                files, skipped = select(root, paths)
            else:
                files, skipped = git.scan_sources(
                    root,
                    include=options.include,
                    exclude=options.exclude,
                    max_file_size=options.max_file_size,
                    max_total_size=options.max_total_size,
                )
            record = {
                "format": 1,
                "kind": "files",
                "files": self._put_files(root, files),
                "file_count": len(files),
                "skipped": skipped,
            }
            if tree is not None:
                info = GitInfo(commit=None, branch=tree.branch, remote=tree.remote, dirty=True)
                record["git"] = _git_json(info)
        data = canonical_json(record)
        digest = str(self.blobs.put_bytes(data))
        self.blobs.flush()
        snap = _snapshot_from_record("", digest, 0, record)
        stored = self.store.put_snapshot(
            digest=digest,
            kind=snap.kind,
            commit=snap.git.commit if snap.git else None,
            branch=snap.git.branch if snap.git else None,
            remote=snap.git.remote if snap.git else None,
            dirty=snap.dirty,
            blobs=snap.digests,
        )
        return _snapshot_from_record(stored.id, digest, stored.created_at, record), root

    def capture_environment(
        self, options: CaptureOptions | None = None, environ: Mapping[str, str] | None = None
    ) -> Environment:
        """Record the current Python environment (cached per process; stored once)."""
        options = options or CaptureOptions()
        record, data = capture_environment(options.env_vars, environ)
        digest = str(self.blobs.put_bytes(data))
        self.blobs.flush()
        stored = self.store.put_environment(
            digest=digest,
            python=f"{record['implementation']} {record['python']}",
            platform=record["platform"],
            package_count=len(record["packages"]),
        )
        return _environment(stored.id, digest, stored.created_at, record)

    def capture(
        self,
        run_id: str,
        folder: Path,
        options: CaptureOptions | None = None,
        *,
        entry: EntryPoint | None = None,
        environment: bool = True,
    ) -> RunCode:
        """Capture code, environment and entry point for run ``run_id`` and link them; a
        running notebook is checkpointed too."""
        options = options or CaptureOptions()
        snapshot, root = self.snapshot_code(folder, options)
        env = self.capture_environment(options) if environment else None
        entry = entry or detect_entry_point(root)
        checkpoint_id = None
        if entry.notebook is not None and Path(entry.notebook).is_file():
            try:
                checkpoint, _ = self.checkpoint_notebook(
                    Path(entry.notebook),
                    root,
                    message=f"run {run_id}",
                    outputs=options.notebook_outputs,
                    run_id=run_id,
                )
                checkpoint_id = checkpoint.id
            except InvalidArgumentError as exc:
                log.warning("syllabus: notebook %s not checkpointed: %s", entry.notebook, exc)
        link = self.store.link_run(
            run_id,
            snapshot_id=snapshot.id,
            environment_id=env.id if env else None,
            checkpoint_id=checkpoint_id,
            root=str(root),
            entry_point=entry.path,
            argv=entry.argv,
        )
        return RunCode(
            run_id=run_id,
            snapshot=snapshot,
            environment=env,
            root=link.root,
            entry_point=link.entry_point,
            argv=link.argv,
            created_at=link.created_at,
            checkpoint_id=checkpoint_id,
        )

    # -- reading -------------------------------------------------------------------------

    def _record(self, digest: str) -> dict[str, Any]:
        value = json.loads(self.blobs.read_bytes(Digest(digest)))
        assert isinstance(value, dict)
        return value

    def get_snapshot(self, ref: str) -> CodeSnapshot:
        """A snapshot by id or unique id prefix."""
        stored = self.store.get_snapshot(ref)
        return _snapshot_from_record(
            stored.id, stored.digest, stored.created_at, self._record(stored.digest)
        )

    def get_environment(self, ref: str) -> Environment:
        """An environment by id or unique id prefix."""
        stored = self.store.get_environment(ref)
        return _environment(
            stored.id, stored.digest, stored.created_at, self._record(stored.digest)
        )

    def run_code(self, run_ref: str) -> RunCode:
        """What a run was started from; NotFoundError when it captured nothing."""
        link: RunLink = self.store.get_run_link(run_ref)
        return RunCode(
            run_id=link.run_id,
            snapshot=self.get_snapshot(link.snapshot_id),
            environment=self.get_environment(link.environment_id) if link.environment_id else None,
            root=link.root,
            entry_point=link.entry_point,
            argv=link.argv,
            created_at=link.created_at,
            checkpoint_id=link.checkpoint_id,
        )

    def read_patch(self, snapshot: CodeSnapshot) -> bytes:
        """The uncommitted patch of a git snapshot (empty when clean)."""
        if snapshot.git is None or snapshot.git.patch is None:
            return b""
        return self.blobs.read_bytes(Digest(snapshot.git.patch))

    # -- checkout and diff ---------------------------------------------------------------

    def checkout(
        self,
        snapshot: CodeSnapshot,
        dest: Path,
        *,
        repos: Sequence[Path] = (),
    ) -> CodeCheckout:
        """Write the exact code of ``snapshot`` into the new or empty folder ``dest``.

        A git snapshot needs its commit: taken with ``git archive`` from the first of
        ``repos`` that has it, else cloned from the recorded remote; then the patch is
        applied and the untracked files written. A files snapshot is written as stored.
        """
        dest = Path(dest)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise ConflictError(f"{dest} exists and is not empty; choose a new folder")
        dest.mkdir(parents=True, exist_ok=True)
        files = 0
        if snapshot.files:
            files = len(self.blobs.materialize(Digest(snapshot.files), dest))
        gi = snapshot.git
        if gi is None or gi.commit is None:
            return CodeCheckout(dest, snapshot.id, None, False, 0, files)
        repo = next((r for r in repos if git.has_commit(r, gi.commit)), None)
        if repo is not None:
            git.archive_commit(repo, gi.commit, dest)
        elif gi.remote:
            git.clone_commit(gi.remote, gi.commit, dest)
        else:
            raise NotFoundError(
                f"commit {gi.commit[:12]} of snapshot {snapshot.id[:12]} is in no known "
                "repository and no remote was recorded; pass the repository that has it"
            )
        patch = self.read_patch(snapshot)
        git.apply_patch(patch, dest)
        if gi.untracked:
            self.blobs.materialize(Digest(gi.untracked), dest)
        files = sum(1 for _ in _walk_files(dest))
        return CodeCheckout(dest, snapshot.id, gi.commit, bool(patch), gi.untracked_count, files)

    def diff_snapshots(
        self, a: CodeSnapshot, b: CodeSnapshot, *, repos: Sequence[Path] = ()
    ) -> CodeDiff:
        """Source-level differences from snapshot ``a`` to ``b``."""
        if a.digest == b.digest:
            return CodeDiff(a.id, b.id, (), (), (), "")
        with tempfile.TemporaryDirectory(prefix="syllabus-code-diff-") as tmp:
            da, db = Path(tmp) / "a", Path(tmp) / "b"
            self.checkout(a, da, repos=repos)
            self.checkout(b, db, repos=repos)
            fa, fb = dict(_walk_files(da)), dict(_walk_files(db))
            added = tuple(sorted(set(fb) - set(fa)))
            removed = tuple(sorted(set(fa) - set(fb)))
            modified = tuple(
                sorted(p for p in set(fa) & set(fb) if fa[p].read_bytes() != fb[p].read_bytes())
            )
            parts = []
            for path in sorted({*added, *removed, *modified}):
                old = fa[path].read_bytes() if path in fa else b""
                new = fb[path].read_bytes() if path in fb else b""
                parts.append(_file_diff(path, old, new, path in fa, path in fb))
        return CodeDiff(a.id, b.id, added, removed, modified, "".join(parts))

    # -- environments ----------------------------------------------------------------------

    @staticmethod
    def diff_environments(a: Environment, b: Environment) -> EnvironmentDiff:
        """Packages added, removed and changed, and other differences, from ``a`` to ``b``."""
        pa, pb = a.packages, b.packages
        other: dict[str, tuple[Any, Any]] = {}
        for name in ("python", "implementation", "platform", "cuda", "gpus"):
            va, vb = getattr(a, name), getattr(b, name)
            if va != vb:
                other[name] = (va, vb)
        for key in sorted(set(a.variables) | set(b.variables)):
            if a.variables.get(key) != b.variables.get(key):
                other[f"env.{key}"] = (a.variables.get(key), b.variables.get(key))
        return EnvironmentDiff(
            added={k: pb[k] for k in sorted(set(pb) - set(pa))},
            removed={k: pa[k] for k in sorted(set(pa) - set(pb))},
            changed={k: (pa[k], pb[k]) for k in sorted(set(pa) & set(pb)) if pa[k] != pb[k]},
            other=other,
        )

    # -- notebooks -----------------------------------------------------------------------

    @staticmethod
    def notebook_key(path: Path, root: Path) -> str:
        """The name a notebook is checkpointed under: its POSIX path relative to ``root``
        (absolute when outside it)."""
        full = path.expanduser().absolute()
        try:
            return full.relative_to(root.absolute()).as_posix()
        except ValueError:
            return full.as_posix()

    def checkpoint_notebook(
        self,
        path: Path,
        root: Path,
        *,
        message: str = "",
        outputs: bool = True,
        run_id: str | None = None,
        author: str | None = None,
    ) -> tuple[NotebookCheckpoint, bool]:
        """A new checkpoint of the notebook at ``path`` (``created`` False, and no new
        checkpoint, when its canonical form equals the latest checkpoint)."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"notebook {path} does not exist") from None
        except OSError as exc:
            raise InvalidArgumentError(f"cannot read notebook {path}: {exc}") from exc
        canonical = canonicalize(data, outputs=outputs, source=str(path))
        cells = len(json.loads(canonical)["cells"])
        digest = str(self.blobs.put_bytes(canonical))
        self.blobs.flush()
        return self.store.add_checkpoint(
            self.notebook_key(path, root),
            digest=digest,
            cell_count=cells,
            outputs=outputs,
            message=message,
            author=author or _user(),
            run_id=run_id,
        )

    def read_checkpoint(self, checkpoint: NotebookCheckpoint) -> bytes:
        """The canonical notebook bytes of a checkpoint."""
        return self.blobs.read_bytes(Digest(checkpoint.digest))

    def diff_notebook(
        self,
        a: NotebookCheckpoint | Path,
        b: NotebookCheckpoint | Path,
    ) -> NotebookDiff:
        """Cell-level diff between two checkpoints, or a checkpoint and a file on disk."""
        na, la = self._notebook_side(a)
        nb, lb = self._notebook_side(b)
        return diff_notebooks(na, nb, a_label=la, b_label=lb)

    def _notebook_side(self, side: NotebookCheckpoint | Path) -> tuple[dict[str, Any], str]:
        if isinstance(side, NotebookCheckpoint):
            return load_notebook(self.read_checkpoint(side), source=side.ref), side.ref
        try:
            data = side.read_bytes()
        except OSError as exc:
            raise NotFoundError(f"cannot read notebook {side}: {exc}") from exc
        return canonical_notebook(load_notebook(data, source=str(side))), str(side)

    def restore_notebook(
        self,
        checkpoint: NotebookCheckpoint,
        dest: Path,
        *,
        force: bool = False,
    ) -> Path:
        """Write a checkpoint's notebook to ``dest``. An existing ``dest`` whose content is
        in no checkpoint of the notebook is kept (ConflictError) unless ``force``."""
        data = self.read_checkpoint(checkpoint)
        if dest.is_dir():
            raise InvalidArgumentError(f"{dest} is a folder; name the notebook file to write")
        if dest.exists() and not force:
            known = {c.digest for c in self.store.list_checkpoints(checkpoint.path)}
            try:
                raw = dest.read_bytes()
                current = {
                    str(hash_bytes(canonicalize(raw, outputs=keep, source=str(dest))))
                    for keep in (True, False)
                }
            except InvalidArgumentError:
                current = set()
            if not current & known:
                raise ConflictError(
                    f"{dest} has changes that are in no checkpoint; checkpoint it first "
                    "(syllabus notebook checkpoint) or pass --force"
                )
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.syllabus-tmp")
        tmp.write_bytes(data)
        tmp.replace(dest)
        return dest


# -- helpers --------------------------------------------------------------------------------


def _git_json(info: GitInfo) -> dict[str, Any]:
    return {
        "commit": info.commit,
        "branch": info.branch,
        "remote": info.remote,
        "dirty": info.dirty,
        "patch": info.patch,
        "patch_size": info.patch_size,
        "untracked": info.untracked,
        "untracked_count": info.untracked_count,
        "skipped": list(info.skipped),
    }


def _snapshot_from_record(
    id_: str, digest: str, created_at: int, record: Mapping[str, Any]
) -> CodeSnapshot:
    g = record.get("git")
    info = None
    if isinstance(g, Mapping):
        info = GitInfo(
            commit=g.get("commit"),
            branch=g.get("branch"),
            remote=g.get("remote"),
            dirty=bool(g.get("dirty")),
            patch=g.get("patch"),
            patch_size=int(g.get("patch_size") or 0),
            untracked=g.get("untracked"),
            untracked_count=int(g.get("untracked_count") or 0),
            skipped=tuple(g.get("skipped") or ()),
        )
    kind = record.get("kind")
    if kind not in ("git", "files"):
        raise InvalidArgumentError(f"snapshot record {digest[:12]} has an unknown kind {kind!r}")
    return CodeSnapshot(
        id=id_,
        digest=digest,
        kind=kind,
        created_at=created_at,
        git=info,
        files=record.get("files"),
        file_count=int(record.get("file_count") or (info.untracked_count if info else 0)),
        skipped=tuple(record.get("skipped") or (info.skipped if info else ())),
    )


def _environment(id_: str, digest: str, created_at: int, record: Mapping[str, Any]) -> Environment:
    return Environment(
        id=id_,
        digest=digest,
        python=str(record.get("python", "")),
        implementation=str(record.get("implementation", "")),
        platform=str(record.get("platform", "")),
        created_at=created_at,
        packages=dict(record.get("packages") or {}),
        gpus=tuple(record.get("gpus") or ()),
        cuda=record.get("cuda"),
        variables=dict(record.get("variables") or {}),
    )


def _walk_files(root: Path) -> list[tuple[str, Path]]:
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in files:
            full = Path(folder) / name
            rel = full.relative_to(root).as_posix()
            if ".." in rel.split("/"):
                raise PathEscapeError(f"path {rel!r} leaves {root}")
            out.append((rel, full))
    return sorted(out)


def _file_diff(path: str, old: bytes, new: bytes, in_a: bool, in_b: bool) -> str:
    try:
        ta, tb = old.decode("utf-8"), new.decode("utf-8")
    except UnicodeDecodeError:
        return f"Binary files a/{path} and b/{path} differ\n"
    if b"\x00" in old or b"\x00" in new:
        return f"Binary files a/{path} and b/{path} differ\n"
    lines = difflib.unified_diff(
        ta.splitlines(keepends=True),
        tb.splitlines(keepends=True),
        fromfile=f"a/{path}" if in_a else "/dev/null",
        tofile=f"b/{path}" if in_b else "/dev/null",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
