"""Checkout: make a working folder hold a version, without losing local changes.

A file may be overwritten or removed only when it still holds what the folder's base (the
version last added or checked out there) had, or what the target has; anything else is a
local modification and stops the checkout before any write (``force`` overrides). Untracked
files are left alone. Only files that differ are written, in parallel: a file that replaces
another atomically (temp file, rename), a new one in place with ``O_EXCL``; no path may leave
the folder, also not through a symlink inside it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import blake3

from syllabus._utils.ids import new_id
from syllabus.blobs.backend import Flags
from syllabus.blobs.digest import Digest
from syllabus.blobs.manifest import Manifest, ManifestEntry
from syllabus.blobs.reader import read_order
from syllabus.blobs.records import verified_bytes
from syllabus.blobs.store import BlobStore
from syllabus.datasets.status import FileStat, Scan
from syllabus.errors import BlobCorruptError, ConflictError, PathEscapeError
from syllabus.types import ProgressCallback, null_progress

__all__ = ["Applied", "Plan", "apply_plan", "plan_checkout", "safe_parent"]

_THREADS: Final = 2  # writing threads: more only wait for the GIL or a folder's lock
_POOLED: Final = 64 * 1024  # batches of files this large on average are written in threads
_SMALL: Final = 4 * 1024 * 1024  # files up to this size are read whole, then written
_BATCH: Final = 64  # files one thread creates per task, at most
_WINDOW: Final = 4096  # new small files read ahead at once, at most ...
_WINDOW_BYTES: Final = 16 * 1024 * 1024  # ... and about this many bytes
_PLAIN: Final = int(Flags.NONE)  # a record's flags when stored as it is
# A folder safe_parent checked (a link in the folder that stays inside it is followed, as
# for any path there).
_FOLDER: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


@dataclass(slots=True)
class Plan:
    """What a checkout will do."""

    write: list[ManifestEntry] = field(default_factory=list)
    chmod: list[ManifestEntry] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    mkdirs: list[str] = field(default_factory=list)
    replace: set[str] = field(default_factory=set)  # paths in `write` present in the folder
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
    if not found.files and not found.links:  # an empty folder: everything is new
        return _plan_new(plan, target, dirs, found)
    for entry in target.entries():  # a list: no Mapping view's Python call per item
        path = entry.path
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
            plan.replace.add(path)
            known = base.get(path) if base is not None else None
            if known is None or not _same(known, found, digests, mode=False):
                plan.conflicts.append(path)
        plan.write.append(entry)
    if base is not None:
        for known in base.entries():
            path = known.path
            if known.kind == "dir" or path in target or not _present(path, found):
                continue
            if not _same(known, found, digests, mode=False):
                plan.conflicts.append(path)
            plan.remove.append(path)
    plan.mkdirs = sorted(d for d in dirs if d not in found.empty_dirs)
    plan.conflicts.sort()
    return plan


def _plan_new(plan: Plan, target: Manifest, dirs: set[str], found: Scan) -> Plan:
    """The plan for a folder without files or links: write every file and link."""
    for entry in target.entries():
        if entry.kind == "dir":
            dirs.add(entry.path)
        else:
            plan.write.append(entry)
    plan.mkdirs = sorted(d for d in dirs if d not in found.empty_dirs)
    return plan


_CREATE: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _umask() -> int | None:
    """The process umask without changing it (Linux reports it in /proc), else None."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:  # noqa: PTH123
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _write_fd(fd: int, data: bytes, mode: int, *, chmod: bool = True) -> None:
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if chmod:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _write_small(
    data: bytes, dest: str, mode: int, *, replace: bool, umask: int | None = None
) -> None:
    """Write ``data`` (verified) to ``dest`` with os calls: for many small files pathlib's
    and BlobReader's per-file overhead is most of the cost.

    A path the folder lacked is created in place (``O_EXCL``: nothing that appeared since
    the plan is overwritten; half a file left by a crash is a local change that the next
    checkout refuses to overwrite); a path the plan replaces is written atomically (temp
    file, rename), which costs one more file creation and a rename. When the ``umask``
    (None: unknown) leaves ``mode`` as it is, files are created with that mode, saving an
    ``fchmod`` each.
    """
    exact = umask is not None and not mode & umask
    if not replace:
        try:
            fd = os.open(dest, _CREATE, mode if exact else 0o600)
        except FileExistsError:
            what = "a folder" if os.path.isdir(dest) else "a file made during the checkout"  # noqa: PTH112
            raise ConflictError(f"cannot write {dest}: {what} is in the way") from None
        try:
            _write_fd(fd, data, mode, chmod=not exact)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(dest)  # noqa: PTH108 - os calls on str paths: the hot loop
            raise
        return
    tmp = f"{dest.rpartition('/')[0]}/.{dest.rpartition('/')[2]}.{new_id()}.tmp"
    try:
        fd = os.open(tmp, _CREATE, mode if exact else 0o600)
        _write_fd(fd, data, mode, chmod=not exact)
        os.replace(tmp, dest)  # noqa: PTH105 - as above
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


@dataclass(slots=True)
class Applied:
    """What :func:`apply_plan` did: bytes written, and the stat of every new small file
    it created, taken on the open file once written (what a scan would find)."""

    written: int = 0
    stats: dict[str, FileStat] = field(default_factory=dict)


def apply_plan(
    plan: Plan,
    blobs: BlobStore,
    root: Path,
    *,
    force: bool,
    describe: str,
    progress: ProgressCallback = null_progress,
) -> Applied:
    """Carry the plan out. ConflictError first unless ``force``."""
    if plan.conflicts and not force:
        shown = ", ".join(plan.conflicts[:3]) + (" ..." if len(plan.conflicts) > 3 else "")
        raise ConflictError(
            f"checkout of {describe} into {root} would overwrite {len(plan.conflicts)} locally "
            f"modified file(s) ({shown}); save them with `syllabus data add` or use --force"
        )
    root.mkdir(parents=True, exist_ok=True)
    real_root = root.resolve()
    _remove(plan.remove, root, real_root)
    total = sum(e.size for e in plan.write if e.kind == "file")
    parent_of = _Parents(root)
    umask = _umask()
    exact_in: dict[Path, int | None] = {}

    def exact(parent: Path) -> int | None:
        if parent not in exact_in:
            exact_in[parent] = None if _default_acl(parent) else umask
        return exact_in[parent]

    # New small files: read (and verified) in windows, in the order the store reads them
    # fastest, then created by folder (see _create_all).
    new: list[ManifestEntry] = []
    other: list[ManifestEntry] = []
    for entry in plan.write:
        if entry.kind == "file" and entry.size <= _SMALL and entry.path not in plan.replace:
            new.append(entry)
        else:
            other.append(entry)
    done = Applied()
    if new:
        rank = {d: i for i, d in enumerate(read_order(blobs.backend, {e.digest for e in new}))}
        new.sort(key=lambda e: rank[e.digest])
    with ThreadPoolExecutor(_THREADS, thread_name_prefix="syllabus-checkout") as pool:
        for n in _create_all(
            pool, _windows(new), blobs, parent_of=parent_of, exact=exact, stats=done.stats
        ):
            done.written += n
            progress(n, total)
        for n in _write_other(
            pool,
            other,
            replace=plan.replace,
            blobs=blobs,
            parent_of=parent_of,
            exact=exact,
            root=root,
        ):
            done.written += n
            progress(n, total)
    for entry in plan.chmod:
        (root / entry.path).chmod(entry.mode)
    for rel in plan.mkdirs:
        safe_parent(root, real_root, rel + "/x")
    return done


def _windows(entries: list[ManifestEntry]) -> Iterator[list[ManifestEntry]]:
    """``entries`` in windows of at most :data:`_WINDOW` files and about
    :data:`_WINDOW_BYTES` (a window's bytes are held in memory until written)."""
    window: list[ManifestEntry] = []
    nbytes = 0
    for entry in entries:
        window.append(entry)
        nbytes += entry.size
        if len(window) >= _WINDOW or nbytes >= _WINDOW_BYTES:
            yield window
            window, nbytes = [], 0
    if window:
        yield window


def _batches(window: list[ManifestEntry]) -> list[list[ManifestEntry]]:
    """A window's files by folder, in batches of at most :data:`_BATCH`, taken in turn from
    each folder: threads taking consecutive batches then create files in different folders
    (creations in one folder take turns on its lock)."""
    by_folder: dict[str, list[ManifestEntry]] = {}
    for entry in window:
        by_folder.setdefault(entry.path.rpartition("/")[0], []).append(entry)
    queues = [
        [group[i : i + _BATCH] for i in range(0, len(group), _BATCH)]
        for group in by_folder.values()
    ]
    out: list[list[ManifestEntry]] = []
    for i in range(max((len(q) for q in queues), default=0)):
        out.extend(q[i] for q in queues if i < len(q))
    return out


def _create_all(
    pool: ThreadPoolExecutor,
    windows: Iterable[list[ManifestEntry]],
    blobs: BlobStore,
    *,
    parent_of: _Parents,
    exact: Callable[[Path], int | None],
    stats: dict[str, FileStat],
) -> Iterator[int]:
    """Create the windows' files; yields the bytes of each part done. Reads run here.

    A window's batches of small files are created once it is read, by two threads (this
    one and one of ``pool``) taking every other batch (batches alternate between folders):
    both then spend most of their time in the kernel creating files, so they overlap
    (10,000 x 1 KiB here: the creations take 15-20 % less time than in one thread). The
    next window is not read meanwhile: its Python work would hold the GIL that the two
    need back after each system call. Batches of larger files go to ``pool`` (their copies
    release the GIL for longer); the next window is read while they are written."""
    inflight: set[Future[list[tuple[str, FileStat]]]] = set()
    sizes: dict[Future[list[tuple[str, FileStat]]], int] = {}

    def settle(when: str) -> Iterator[int]:
        finished, _ = wait(inflight, return_when=when)
        for future in finished:
            inflight.discard(future)
            stats.update(future.result())
            yield sizes.pop(future)

    try:
        for window in windows:
            contents = _read_small(blobs, [e.digest for e in window])
            small: list[tuple[Path, list[ManifestEntry], int | None]] = []
            small_bytes = 0
            for batch in _batches(window):
                parent = parent_of(batch[0].path)
                nbytes = sum(e.size for e in batch)
                if nbytes < _POOLED * len(batch):
                    small.append((parent, batch, exact(parent)))
                    small_bytes += nbytes
                    continue
                future = pool.submit(_create, blobs, parent, batch, contents, exact(parent))
                inflight.add(future)
                sizes[future] = nbytes
                while len(inflight) > _THREADS:
                    yield from settle(FIRST_COMPLETED)
            if small:
                stats.update(_create_halves(pool, blobs, small, contents))
                yield small_bytes
            del contents
        while inflight:
            yield from settle(FIRST_COMPLETED)
    finally:
        if inflight:  # an error: let running batches finish, drop the rest
            for future in inflight:
                future.cancel()
            wait(inflight)


_Batch = tuple[Path, list[ManifestEntry], int | None]  # folder, its new files, umask


def _create_batches(
    blobs: BlobStore, batches: list[_Batch], contents: dict[Digest, bytes]
) -> list[tuple[str, FileStat]]:
    out: list[tuple[str, FileStat]] = []
    for parent, batch, umask in batches:
        out += _create(blobs, parent, batch, contents, umask)
    return out


def _create_halves(
    pool: ThreadPoolExecutor, blobs: BlobStore, batches: list[_Batch], contents: dict[Digest, bytes]
) -> list[tuple[str, FileStat]]:
    """Create ``batches`` in two threads, this one and one of ``pool``, every other batch
    each; returns the stats of both (or raises the first error, once both stopped)."""
    if len(batches) == 1:
        return _create_batches(blobs, batches, contents)
    other = pool.submit(_create_batches, blobs, batches[1::2], contents)
    try:
        mine = _create_batches(blobs, batches[0::2], contents)
    finally:
        wait([other])
    return mine + other.result()


def _create(
    blobs: BlobStore,
    parent: Path,
    batch: list[ManifestEntry],
    contents: dict[Digest, bytes],
    umask: int | None,
) -> list[tuple[str, FileStat]]:
    """Create the new files of ``batch`` (all in ``parent``) with ``O_EXCL`` (nothing that
    appeared since the plan is overwritten; half a file left by a crash is a local change
    the next checkout refuses to overwrite); returns their stats.

    Names are opened relative to the folder, opened once: one path lookup per batch, and
    no file lands elsewhere if the folder's path is replaced meanwhile. When the ``umask``
    (None: unknown) leaves a mode as it is, files are created with that mode, saving an
    ``fchmod`` each. Bytes not in ``contents`` (chunked files) are read here.
    """
    out: list[tuple[str, FileStat]] = []
    append, new_stat, get = out.append, FileStat, contents.get
    open_, write, fstat, close = os.open, os.write, os.fstat, os.close
    folder = open_(parent, _FOLDER)
    try:
        for entry in batch:
            rel, mode = entry.path, entry.mode
            name = rel.rpartition("/")[2]
            data = get(entry.digest)
            if data is None:
                data = blobs.read_bytes(entry.digest)
            exact = umask is not None and not mode & umask
            try:
                fd = open_(name, _CREATE, mode if exact else 0o600, dir_fd=folder)
            except FileExistsError:
                raise _in_the_way(parent, name, folder) from None
            try:
                if data:
                    written = write(fd, data)
                    if written < len(data):
                        _write_rest(fd, memoryview(data)[written:])
                if not exact:
                    os.fchmod(fd, mode)
                st = fstat(fd)
            except BaseException:
                close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=folder)
                raise
            close(fd)
            append((rel, new_stat(st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode & 0o100 != 0)))
    finally:
        close(folder)
    return out


def _write_rest(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


def _in_the_way(parent: Path, name: str, folder: int) -> ConflictError:
    try:
        st = os.stat(name, dir_fd=folder, follow_symlinks=False)
        what = "a folder" if stat.S_ISDIR(st.st_mode) else "a file made during the checkout"
    except OSError:
        what = "a file made during the checkout"
    return ConflictError(f"cannot write {parent / name}: {what} is in the way")


def _write_other(
    pool: ThreadPoolExecutor,
    entries: list[ManifestEntry],
    *,
    replace: set[str],
    blobs: BlobStore,
    parent_of: _Parents,
    exact: Callable[[Path], int | None],
    root: Path,
) -> Iterator[int]:
    """Write links, large files and files that replace others; yields bytes per entry."""
    parents = {e.path: parent_of(e.path) for e in entries}
    umasks = {p: exact(p) for p in set(parents.values())}

    def write(entry: ManifestEntry) -> int:
        parent = parents[entry.path]
        name = entry.path.rpartition("/")[2]
        is_replace = entry.path in replace
        if is_replace and (parent / name).is_dir() and not (parent / name).is_symlink():
            raise ConflictError(f"cannot write {entry.path!r}: a folder is in the way in {root}")
        if entry.kind == "link":
            assert entry.target is not None
            tmp = parent / f".{name}.{new_id()}.tmp"
            tmp.symlink_to(entry.target)
            tmp.replace(parent / name)
            return 0
        if entry.size <= _SMALL:
            data = blobs.read_bytes(entry.digest)
            folder = str(parent)
            _write_small(
                data, f"{folder}/{name}", entry.mode, replace=is_replace, umask=umasks[parent]
            )
        else:
            blobs.get_file(entry.digest, parent / name, mode=entry.mode, fsync=False)
        return entry.size

    if len(entries) > 1:
        yield from pool.map(write, sorted(entries, key=lambda e: e.path))
    else:
        yield from map(write, entries)


def _remove(paths: list[str], root: Path, real_root: Path) -> None:
    for rel in paths:
        path = root / rel
        safe_parent(root, real_root, rel)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        _prune(root, path.parent)


def _read_small(blobs: BlobStore, digests: list[Digest]) -> dict[Digest, bytes]:
    """The verified contents of small whole blobs, read with one batched backend call
    (chunked ones are left out: the caller reads those one by one)."""
    out: dict[Digest, bytes] = {}
    for record in blobs.backend.read_many(list(dict.fromkeys(digests))):
        # The usual record, stored as it is, checked here with one hash call (Flags'
        # Python-level operators cost more than hashing 1 KiB); the others as the store does.
        data = record.payload
        if record.flags == _PLAIN and len(data) == record.size:
            if blake3.blake3(data).hexdigest() != record.digest:
                raise BlobCorruptError(
                    f"object {record.digest} is corrupt: its bytes do not hash to its content id"
                )
            out[record.digest] = data
        elif not record.flags & Flags.CHUNKLIST:
            out[record.digest] = verified_bytes(record)
    return out


def _default_acl(folder: Path) -> bool:
    """True if ``folder`` has a default ACL (then it, not the umask, decides the mode of
    new files in it)."""
    try:
        os.getxattr(folder, "system.posix_acl_default")
    except (OSError, AttributeError):  # ENODATA: none; ENOTSUP: no ACLs; not Linux
        return False
    return True


def _prune(root: Path, folder: Path) -> None:
    """Remove folders left empty by a removal, up to (not including) ``root``."""
    while folder != root and folder.is_relative_to(root):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
