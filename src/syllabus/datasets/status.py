"""Working folders: what is there, what it hashes to, and how it differs from a version.

Hashing is what makes status slow, so a per-folder stat cache remembers, for every file,
the ``(size, mtime_ns, inode)`` it had when last hashed and its content id: a file whose
stat is unchanged is not read again. The cache also remembers the tree the folder was last
known to equal (after an add, a checkout or a clean status), so an unchanged folder is
recognised from its stats alone, without reading the version's manifest.

Like git and DVC, a file rewritten within the same nanosecond timestamp with the same size
and inode would be missed; stats are taken before hashing, so a file changing while it is
hashed is caught next time.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NamedTuple

import blake3

from syllabus._utils.ids import new_id
from syllabus.blobs.digest import EMPTY_DIGEST, Digest
from syllabus.blobs.manifest import Manifest
from syllabus.datasets.models import PathState

__all__ = [
    "IGNORED",
    "Scan",
    "StatCache",
    "compare",
    "digests",
    "ignored_name",
    "ignored_path",
    "scan",
]

IGNORED: Final = frozenset({".syllabus", ".git"})
"""Folder names never scanned, added or checked out over."""

_CACHE_VERSION: Final = 2  # 2: the entries as columns (1: an object of [size, mtime, inode, id])
_MMAP_MIN: Final = 1024 * 1024
_HASH_THREADS: Final = max(2, min(8, os.cpu_count() or 2))


class FileStat(NamedTuple):
    """What the stat cache compares. A named tuple rather than a frozen dataclass: a scan
    makes one per file, and a tuple is built in a fraction of the time."""

    size: int
    mtime_ns: int
    inode: int
    executable: bool


@dataclass(slots=True)
class Scan:
    """A working folder as found on disk (paths relative, POSIX)."""

    files: dict[str, FileStat] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    empty_dirs: set[str] = field(default_factory=set)


def ignored_name(name: str) -> bool:
    """True for a name a scan skips, at any depth: the workspace and git folders, and the
    hidden ``.*.tmp`` files of writes in progress."""
    return name in IGNORED or (name.startswith(".") and name.endswith(".tmp"))


def ignored_path(path: str) -> bool:
    """True if a scan skips the relative ``path`` (it, or a folder on its way, is ignored)."""
    return "/." in "/" + path and any(ignored_name(p) for p in path.split("/"))


def scan(root: Path, only: Iterable[str] | None = None) -> Scan:
    """Stat every file, link and empty folder under ``root`` (``only``: just these paths)."""
    out = Scan()
    if only is not None:
        for rel in only:
            path = root / rel
            try:
                st = path.lstat()
            except (FileNotFoundError, NotADirectoryError):
                continue
            _record(out, rel, str(path), st)
        return out
    if not root.is_dir():
        return out
    stack = [(str(root), "")]
    files, new_stat, is_reg, is_dir = out.files, FileStat, stat.S_ISREG, stat.S_ISDIR
    while stack:
        folder, prefix = stack.pop()
        empty = True
        with os.scandir(folder) as it:
            for item in it:
                if ignored_name(item.name):
                    continue
                empty = False
                rel = prefix + item.name
                st = item.stat(follow_symlinks=False)
                mode = st.st_mode
                if is_reg(mode):  # the usual case, inlined (one per file of the folder)
                    files[rel] = new_stat(st.st_size, st.st_mtime_ns, st.st_ino, bool(mode & 0o100))
                elif is_dir(mode):
                    stack.append((item.path, rel + "/"))
                else:
                    _record(out, rel, item.path, st)
        if empty and prefix:
            out.empty_dirs.add(prefix[:-1])
    return out


def _record(out: Scan, rel: str, path: str, st: os.stat_result) -> None:
    if stat.S_ISLNK(st.st_mode):
        out.links[rel] = str(Path(path).readlink())
    elif stat.S_ISREG(st.st_mode):
        out.files[rel] = FileStat(st.st_size, st.st_mtime_ns, st.st_ino, bool(st.st_mode & 0o100))


def hash_file(path: Path, size: int) -> Digest:
    """The content id (BLAKE3) of a file, as the blob store computes it."""
    if size == 0:
        return EMPTY_DIGEST
    h = blake3.blake3(max_threads=blake3.blake3.AUTO if size >= 64 * _MMAP_MIN else 1)
    if size >= _MMAP_MIN:
        h.update_mmap(path)
    else:
        with path.open("rb") as fh:
            h.update(fh.read())
    return Digest.from_bytes(h.digest())


class StatCache:
    """The per-folder cache of ``(size, mtime_ns, inode) -> content id``, in a JSON file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.tree: str | None = None  # the tree the folder last equalled (base)
        self.ref: str | None = None  # that tree's name@version
        self.clean = False  # the entries below equal ``tree`` exactly
        self.entries: dict[str, tuple[int, int, int, str]] = {}
        self.links: dict[str, str] = {}
        self.empty_dirs: set[str] = set()
        self._load()

    def _load(self) -> None:
        if self.path is None:
            return
        try:
            raw = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return
        if not isinstance(raw, dict) or raw.get("v") not in (1, _CACHE_VERSION):
            return
        try:
            if raw["v"] == 1:
                entries = {k: (v[0], v[1], v[2], v[3]) for k, v in raw["entries"].items()}
            else:
                columns = (raw["sizes"], raw["mtimes"], raw["inodes"], raw["digests"])
                entries = dict(zip(raw["paths"], zip(*columns, strict=True), strict=True))
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            return  # a damaged cache only costs speed: every file is hashed again
        self.entries = entries
        self.tree, self.ref, self.clean = raw.get("tree"), raw.get("ref"), bool(raw.get("clean"))
        self.links = dict(raw.get("links", {}))
        self.empty_dirs = set(raw.get("empty_dirs", []))

    def save(self) -> None:
        """Write the cache atomically (a failure to write only costs speed later). The
        entries go as columns: a list per field encodes in a fraction of the time of an
        object of small lists (what the cache of a folder of many files is made of)."""
        if self.path is None:
            return
        sizes, mtimes, inodes, ids = (
            zip(*self.entries.values(), strict=True) if self.entries else ((),) * 4
        )
        doc: dict[str, Any] = {
            "v": _CACHE_VERSION,
            "tree": self.tree,
            "ref": self.ref,
            "clean": self.clean,
            "paths": list(self.entries),
            "sizes": sizes,
            "mtimes": mtimes,
            "inodes": inodes,
            "digests": ids,
            "links": self.links,
            "empty_dirs": sorted(self.empty_dirs),
        }
        tmp = self.path.with_name(f".{self.path.name}.{new_id()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(doc, separators=(",", ":")))
            tmp.replace(self.path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def unchanged(self, found: Scan) -> bool:
        """True if ``found`` has exactly the recorded paths, stats, links and empty folders."""
        if found.links != self.links or found.empty_dirs != self.empty_dirs:
            return False
        if len(found.files) != len(self.entries):
            return False
        for rel, st in found.files.items():
            cached = self.entries.get(rel)
            if cached is None or cached[:3] != (st.size, st.mtime_ns, st.inode):
                return False
        return True

    def remember(self, found: Scan, digests_: dict[str, str]) -> None:
        """Record the stats and content ids of ``found`` (replacing what was there)."""
        self.entries = {
            rel: (st.size, st.mtime_ns, st.inode, digests_[rel])
            for rel, st in found.files.items()
            if rel in digests_
        }
        self.links = dict(found.links)
        self.empty_dirs = set(found.empty_dirs)


def digests(root: Path, found: Scan, cache: StatCache) -> tuple[dict[str, str], int]:
    """Content ids of every scanned file, reading only those whose stat changed; returns
    them and how many files were hashed."""
    out: dict[str, str] = {}
    todo: list[tuple[str, int]] = []
    for rel, st in found.files.items():
        cached = cache.entries.get(rel)
        if cached is not None and cached[:3] == (st.size, st.mtime_ns, st.inode):
            out[rel] = cached[3]
        else:
            todo.append((rel, st.size))
    if len(todo) > 8:
        with ThreadPoolExecutor(_HASH_THREADS, thread_name_prefix="syllabus-hash") as pool:
            hashed = pool.map(lambda item: hash_file(root / item[0], item[1]), todo)
            out.update((rel, str(d)) for (rel, _), d in zip(todo, hashed, strict=True))
    else:
        out.update((rel, str(hash_file(root / rel, size))) for rel, size in todo)
    return out, len(todo)


def compare(
    manifest: Manifest,
    empty_dirs: Iterable[str],
    found: Scan,
    found_digests: dict[str, str],
    *,
    untracked: bool = True,
) -> list[PathState]:
    """How the folder differs from the version (``untracked``: report files the version
    does not have as added)."""
    changes: list[PathState] = []
    wanted = set(empty_dirs)
    for path, entry in manifest.items():
        if entry.kind == "dir":
            wanted.add(path)
            continue
        if entry.kind == "link":
            if path in found.links:
                if found.links[path] != entry.target:
                    changes.append(PathState(path, "modified"))
            elif path in found.files:
                changes.append(PathState(path, "modified", found.files[path].size))
            else:
                changes.append(PathState(path, "removed", None))
            continue
        st = found.files.get(path)
        if st is None:
            if path in found.links:
                changes.append(PathState(path, "modified", 0))
            else:
                changes.append(PathState(path, "removed", None))
        elif found_digests.get(path) != entry.digest or st.executable != entry.executable:
            changes.append(PathState(path, "modified", st.size))
    if untracked:
        changes.extend(_untracked(manifest, wanted, found))
    changes.sort(key=lambda c: c.path)
    return changes


def _untracked(manifest: Manifest, wanted: set[str], found: Scan) -> list[PathState]:
    out = [PathState(p, "added", st.size) for p, st in found.files.items() if p not in manifest]
    # An empty folder that now holds files is not reported: its files are.
    out += [PathState(p, "added", None) for p in found.links if p not in manifest]
    out += [PathState(p + "/", "added") for p in sorted(found.empty_dirs - wanted)]
    for path in sorted(wanted - found.empty_dirs):
        if not any(p.startswith(path + "/") for p in found.files):
            out.append(PathState(path + "/", "removed"))
    return out
