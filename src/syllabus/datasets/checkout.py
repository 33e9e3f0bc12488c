"""Checkout: make a working folder hold a version, without losing local changes.

A file may be overwritten or removed only when it still holds what the folder's base (the
version last added or checked out there) had, or what the target has; anything else is a
local modification and stops the checkout before any write (``force`` overrides). Untracked
files are left alone. Only files that differ are written, in parallel, each atomically
(temp file, rename), and no path may leave the folder, also not through a symlink inside it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from syllabus._utils.ids import new_id
from syllabus.blobs.manifest import Manifest, ManifestEntry
from syllabus.blobs.store import BlobStore
from syllabus.datasets.status import Scan
from syllabus.errors import ConflictError, PathEscapeError
from syllabus.types import ProgressCallback, null_progress

__all__ = ["Plan", "apply_plan", "plan_checkout", "safe_parent"]

_THREADS: Final = 8
_SMALL: Final = 4 * 1024 * 1024  # files up to this size are read whole, then written


@dataclass(slots=True)
class Plan:
    """What a checkout will do."""

    write: list[ManifestEntry] = field(default_factory=list)
    chmod: list[ManifestEntry] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    mkdirs: list[str] = field(default_factory=list)
    unchanged: int = 0
    conflicts: list[str] = field(default_factory=list)


def _same(entry: ManifestEntry, found: Scan, digests: dict[str, str], *, mode: bool) -> bool:
    if entry.kind == "link":
        return found.links.get(entry.path) == entry.target
    st = found.files.get(entry.path)
    if st is None or digests.get(entry.path) != entry.digest:
        return False
    return not mode or st.executable == entry.executable


def _present(path: str, found: Scan) -> bool:
    return path in found.files or path in found.links


def plan_checkout(
    target: Manifest,
    target_dirs: tuple[str, ...],
    base: Manifest | None,
    found: Scan,
    digests: dict[str, str],
) -> Plan:
    """Compare the folder with the target and its base; conflicts are local changes."""
    plan = Plan()
    dirs = set(target_dirs)
    for path, entry in target.items():
        if entry.kind == "dir":
            dirs.add(path)
            continue
        if _same(entry, found, digests, mode=True):
            plan.unchanged += 1
            continue
        if _same(entry, found, digests, mode=False):
            plan.chmod.append(entry)
            continue
        if _present(path, found):
            known = base.get(path) if base is not None else None
            if known is None or not _same(known, found, digests, mode=False):
                plan.conflicts.append(path)
        plan.write.append(entry)
    if base is not None:
        for path, known in base.items():
            if known.kind == "dir" or path in target or not _present(path, found):
                continue
            if not _same(known, found, digests, mode=False):
                plan.conflicts.append(path)
            plan.remove.append(path)
    plan.mkdirs = sorted(d for d in dirs if d not in found.empty_dirs)
    plan.conflicts.sort()
    return plan


def _write_small(data: bytes, dest: Path, mode: int) -> None:
    """Write ``data`` to ``dest`` atomically (temp file, rename) with os calls: for many
    small files pathlib's and BlobReader's per-file overhead is most of the cost."""
    tmp = f"{dest.parent}/.{dest.name}.{new_id()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.replace(tmp, dest)  # noqa: PTH105 - os calls on str paths: the hot loop
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # noqa: PTH108 - as above
        raise


class _Parents:
    """``safe_parent`` once per folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.real_root = root.resolve()
        self._seen: dict[str, Path] = {}

    def __call__(self, rel: str) -> Path:
        folder = rel.rpartition("/")[0]
        found = self._seen.get(folder)
        if found is None:
            found = self._seen[folder] = safe_parent(self.root, self.real_root, rel)
        return found


def safe_parent(root: Path, real_root: Path, rel: str) -> Path:
    """Create the folder of ``root/rel`` and return it; PathEscapeError (before creating
    anything) when an existing folder on the way is a link leading out of ``root``."""
    parent = (root / rel).parent
    probe = parent
    while not probe.exists() and probe != root:
        probe = probe.parent
    if not probe.resolve().is_relative_to(real_root):
        raise PathEscapeError(f"path {rel!r} leaves {root} through a symlink")
    parent.mkdir(parents=True, exist_ok=True)
    if not parent.resolve().is_relative_to(real_root):
        raise PathEscapeError(f"path {rel!r} leaves {root} through a symlink")
    return parent


def apply_plan(
    plan: Plan,
    blobs: BlobStore,
    root: Path,
    *,
    force: bool,
    describe: str,
    progress: ProgressCallback = null_progress,
) -> int:
    """Carry the plan out; returns bytes written. ConflictError first unless ``force``."""
    if plan.conflicts and not force:
        shown = ", ".join(plan.conflicts[:3]) + (" ..." if len(plan.conflicts) > 3 else "")
        raise ConflictError(
            f"checkout of {describe} into {root} would overwrite {len(plan.conflicts)} locally "
            f"modified file(s) ({shown}); save them with `syllabus data add` or use --force"
        )
    root.mkdir(parents=True, exist_ok=True)
    real_root = root.resolve()
    for rel in plan.remove:
        path = root / rel
        safe_parent(root, real_root, rel)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        _prune(root, path.parent)
    total = sum(e.size for e in plan.write if e.kind == "file")
    parent_of = _Parents(root)
    parents = {e.path: parent_of(e.path) for e in plan.write}

    def write(entry: ManifestEntry) -> int:
        dest = parents[entry.path] / entry.path.rpartition("/")[2]
        if dest.is_dir() and not dest.is_symlink():
            raise ConflictError(f"cannot write {entry.path!r}: a folder is in the way in {root}")
        if entry.kind == "link":
            assert entry.target is not None
            tmp = dest.parent / f".{dest.name}.{new_id()}.tmp"
            tmp.symlink_to(entry.target)
            tmp.replace(dest)
            return 0
        if entry.size <= _SMALL:
            _write_small(blobs.read_bytes(entry.digest), dest, entry.mode)
        else:
            blobs.get_file(entry.digest, dest, mode=entry.mode, fsync=False)
        return entry.size

    written = 0
    report: Callable[[int], None] = lambda n: progress(n, total)  # noqa: E731
    if len(plan.write) > 4:
        with ThreadPoolExecutor(_THREADS, thread_name_prefix="syllabus-checkout") as pool:
            for n in pool.map(write, plan.write):
                written += n
                report(n)
    else:
        for entry in plan.write:
            n = write(entry)
            written += n
            report(n)
    for entry in plan.chmod:
        (root / entry.path).chmod(entry.mode)
    for rel in plan.mkdirs:
        safe_parent(root, real_root, rel + "/x")
    return written


def _prune(root: Path, folder: Path) -> None:
    """Remove folders left empty by a removal, up to (not including) ``root``."""
    while folder != root and folder.is_relative_to(root):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
