"""Data versioning behaviour on top of a :class:`DatasetStore` and a :class:`BlobStore`.

A version is a manifest (the blob store keeps it chunked by content, so a new version of a
large folder stores only the manifest chunks that changed) plus one metadata row. Adding
identical content makes no new version. Re-adding a folder whose stat cache knows it reads
only the files whose ``(size, mtime, inode)`` changed.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final, NoReturn

import blake3

from syllabus._utils.ids import new_id
from syllabus.blobs.digest import Digest
from syllabus.blobs.manifest import Manifest, ManifestEntry, file_digests
from syllabus.blobs.reader import BlobReader
from syllabus.blobs.store import BlobStore
from syllabus.blobs.tuning import bulk
from syllabus.datasets import checkout as _checkout
from syllabus.datasets.diff import DatasetDiff, TableDiff, compare_profiles, diff_rows
from syllabus.datasets.models import (
    AddResult,
    CheckoutReport,
    DatasetSummary,
    DatasetVersion,
    FileChange,
    Remote,
    StatusReport,
    TransferResult,
    VersionSpec,
)
from syllabus.datasets.profile import TableProfile, any_tabular, profile_file, table_format
from syllabus.datasets.status import Scan, StatCache, compare, digests, ignored_path, scan
from syllabus.datasets.store import DatasetStore
from syllabus.errors import (
    InvalidArgumentError,
    InvalidReferenceError,
    NotFoundError,
    PathEscapeError,
)
from syllabus.refs import Ref, SelectorKind, parse_ref, validate_name
from syllabus.types import ProgressCallback, null_progress

__all__ = ["DatasetService"]

log = logging.getLogger(__name__)

PROFILE_MAX_FILES: Final = 200
"""Tabular files profiled per add (the rest are skipped with a log message)."""


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


def _checked_ref(ref: Ref) -> Ref:
    """``ref`` if its fields agree (it is what parsing its text gives), else a one-line
    error: a reference built field by field may say ``version`` and hold no number."""
    try:
        text = str(ref)
    except (AttributeError, TypeError, ValueError):
        text = ""
    try:
        ok = parse_ref(text) == ref
    except InvalidReferenceError:
        ok = False
    if not ok:
        raise InvalidReferenceError(
            f"invalid dataset reference {ref!r}: its fields do not agree (it reads as {text!r})"
        )
    return ref


class DatasetService:
    """Everything a user does with datasets; the client and CLI are skins over it."""

    def __init__(
        self,
        store: DatasetStore,
        blobs: BlobStore,
        *,
        cache_dir: Path,
        user: str | None = None,
        s3_endpoint_url: str | None = None,
        jobs: int = 8,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.cache_dir = cache_dir
        self.user = user or _user()
        self.s3_endpoint_url = s3_endpoint_url
        self.jobs = jobs

    # -- references ----------------------------------------------------------------------

    def resolve(self, ref: str | Ref) -> DatasetVersion:
        """The version a reference names (``churn``, ``churn@3``, ``churn@latest``,
        ``churn@gold``); NotFoundError naming what exists."""
        parsed = parse_ref(ref) if isinstance(ref, str) else _checked_ref(ref)
        name = parsed.name
        found: DatasetVersion | None
        if parsed.kind is SelectorKind.VERSION and parsed.version is not None:
            found = self.store.get_version(name, parsed.version)
            if found is None:
                self._missing(name, f"has no version {parsed.version}", parsed.version)
        elif parsed.kind is SelectorKind.LATEST:
            found = self.store.latest_version(name)
            if found is None:
                self._missing(name, "has no versions", None)
        elif parsed.kind is SelectorKind.ALIAS and parsed.alias is not None:
            found = self.store.version_for_tag(name, parsed.alias)
            if found is None:
                self._missing(name, f"has no tag {parsed.alias!r}", None)
        else:
            raise InvalidReferenceError(
                f"datasets have no stages: use {name}@<version>, {name}@latest or {name}@<tag>"
            )
        return found

    def _missing(self, name: str, what: str, number: int | None) -> NoReturn:
        if self.store.get_dataset(name) is None:
            raise NotFoundError(
                f"no dataset {name!r}; add one with `syllabus data add {name} PATH`"
            )
        if number is not None:
            gone = self.store.get_version(name, number, include_deleted=True)
            if gone is not None:
                raise NotFoundError(f"dataset {name!r} version {number} was deleted")
        latest = self.store.latest_number(name)
        hint = f"latest is {latest}" if latest is not None else "all its versions were deleted"
        raise NotFoundError(f"dataset {name!r} {what} ({hint})")

    # -- adding --------------------------------------------------------------------------

    @bulk
    def add(
        self,
        name: str,
        path: Path | str,
        *,
        message: str = "",
        tags: Sequence[str] = (),
        profile: bool = True,
        progress: ProgressCallback = null_progress,
    ) -> AddResult:
        """A new version of ``name`` from a file or a folder (no new version when the
        content equals the latest one)."""
        validate_name(name)
        for tag in tags:
            _check_tag(tag)
        source = Path(path).expanduser()
        if not source.exists() and not source.is_symlink():
            raise NotFoundError(f"cannot add {source}: no such file or folder")
        source = source.resolve()
        if source.is_dir():
            folder, kind = source, "folder"
            cache = self._cache(folder, name)
            found = scan(folder)
            manifest, tree = self._put_folder(folder, found, cache, progress)
        elif source.is_file():
            folder, kind = source.parent, "file"
            cache = self._cache(folder, name)
            found = scan(folder, only=[source.name])
            st = found.files.get(source.name)
            if st is None:
                raise InvalidArgumentError(f"cannot add {source}: not a regular file")
            # Stored without its own flush: the one below makes file, manifest and
            # profiles durable together, before the version row names them.
            (stored,) = self.blobs.put_files(
                [source], sizes=[st.size], progress=progress, flush=False
            )
            entry = ManifestEntry.file(
                source.name, stored.digest, stored.size, executable=st.executable
            )
            manifest = Manifest([entry])
            tree = self.blobs.put_bytes(manifest.serialize())
        else:
            raise InvalidArgumentError(f"cannot add {source}: not a regular file or folder")
        latest = self.store.latest_version(name)
        entries = manifest.entries()  # one list: Mapping iteration costs a lookup per entry
        profiles = self._profiles(folder, entries, latest) if profile else None
        self.blobs.flush()
        spec = VersionSpec(
            tree=str(tree),
            kind=kind,  # type: ignore[arg-type]
            file_count=sum(1 for e in entries if e.kind == "file"),
            size=manifest.total_size,
            message=message,
            author=self.user,
            profiles=profiles,
            empty_dirs=tuple(sorted(found.empty_dirs)) if kind == "folder" else (),
            source=str(source),
        )
        version, created = self.store.create_version(name, spec)
        for tag in tags:
            self.store.set_tag(version.id, tag)
        if tags:
            version = self.resolve(version.ref)
        current: dict[str, str] = {e.path: e.digest for e in entries if e.kind == "file"}
        cache.remember(found, current)
        cache.tree, cache.ref, cache.clean = version.tree, version.ref, True
        cache.save()
        self._remember_folder(name, folder)
        return AddResult(version, created)

    def _put_folder(
        self, folder: Path, found: Scan, cache: StatCache, progress: ProgressCallback
    ) -> tuple[Manifest, Digest]:
        """Store a folder from its scan (one pass over the files, one flush by the caller);
        with a clean stat cache only the files whose stat changed are read."""
        base: dict[str, Digest] | None = None  # path -> content id of the cached tree's files
        if cache.tree is not None and cache.clean:
            try:
                base = self._tree_files(Digest(cache.tree))
            except (NotFoundError, InvalidArgumentError):
                base = None
        entries: list[ManifestEntry] = []
        changed: list[str] = list(found.files)
        if base is not None:
            reused: list[ManifestEntry] = []
            changed = []
            new_entry = ManifestEntry.file
            for rel, st in found.files.items():
                cached = cache.entries.get(rel)
                if (
                    cached is not None
                    and cached[0] == st.size
                    and cached[1] == st.mtime_ns
                    and cached[2] == st.inode
                    and (digest := base.get(rel)) == cached[3]
                    and digest is not None
                ):
                    reused.append(new_entry(rel, digest, st.size, executable=st.executable))
                else:
                    changed.append(rel)
            if self.blobs.missing({e.digest for e in reused}):
                changed = list(found.files)  # the store lost blobs: store everything again
            else:
                entries = reused
        prefix = f"{folder}{os.sep}"
        stored = self.blobs.put_files(
            [prefix + rel for rel in changed],
            sizes=[found.files[rel].size for rel in changed],
            progress=progress,
            flush=False,
        )
        files = found.files
        entries.extend(
            ManifestEntry.file(rel, e.digest, e.size, executable=files[rel].executable)
            for rel, e in zip(changed, stored, strict=True)
        )
        try:
            entries.extend(ManifestEntry.link(rel, t) for rel, t in found.links.items())
        except PathEscapeError as exc:
            raise PathEscapeError(f"{folder}: {exc}") from None
        entries.extend(ManifestEntry.dir(rel) for rel in found.empty_dirs)
        manifest = Manifest(entries, validated=True)  # built by the checking constructors
        return manifest, self.blobs.put_bytes(manifest.serialize())

    def _tree_files(self, tree: Digest) -> dict[str, Digest]:
        """``{path: content id}`` of the files of a stored tree, read without building its
        manifest's entries where its bytes have the usual form (a re-add compares the
        folder's files with them, and builds the entries it keeps from its own scan)."""
        data = self.blobs.read_bytes(tree)
        listed = file_digests(data)
        if listed is None:
            manifest = Manifest.parse(data, source=f"manifest {tree}")
            return {p: e.digest for p, e in manifest.items() if e.kind == "file"}
        return {p: Digest(d) for p, d in listed.items()}  # InvalidArgumentError if bad

    def _profiles(
        self, folder: Path, files: list[ManifestEntry], previous: DatasetVersion | None
    ) -> str | None:
        """Profile the tabular files (reusing the previous version's profiles of unchanged
        content); returns the digest of the profiles manifest, or None."""
        if not any_tabular([e.path for e in files if e.kind == "file"]):
            return None  # the usual folder: no tabular name, checked in bulk
        tabular = [e for e in files if e.kind == "file" and table_format(e.path)]
        if not tabular:
            return None
        known: dict[str, ManifestEntry] = {}
        if previous is not None and previous.profiles:
            old_files = self.blobs.get_manifest(Digest(previous.tree))
            with _suppress_missing():
                for p, e in self.blobs.get_manifest(Digest(previous.profiles)).items():
                    if p in old_files:
                        known[old_files[p].digest] = e
        if len(tabular) > PROFILE_MAX_FILES:
            log.info("profiling %d of %d tabular files", PROFILE_MAX_FILES, len(tabular))
        entries = []
        for entry in tabular[:PROFILE_MAX_FILES]:
            old = known.get(entry.digest)
            if old is not None:
                entries.append(ManifestEntry.file(entry.path, old.digest, old.size))
                continue
            try:
                prof = profile_file(folder / entry.path)
            except InvalidArgumentError as exc:
                log.warning("not profiled: %s", exc)
                continue
            data = prof.to_json()
            entries.append(ManifestEntry.file(entry.path, self.blobs.put_bytes(data), len(data)))
        if not entries:
            return None
        return str(self.blobs.put_bytes(Manifest(entries).serialize()))

    # -- reading -------------------------------------------------------------------------

    def list_datasets(self) -> list[DatasetSummary]:
        return self.store.list_datasets()

    def list_versions(self, name: str) -> list[DatasetVersion]:
        validate_name(name)
        versions = self.store.list_versions(name)
        if not versions and self.store.get_dataset(name) is None:
            raise NotFoundError(f"no dataset {name!r}; see `syllabus data list`")
        return versions

    def manifest(self, version: DatasetVersion) -> Manifest:
        """The files of a version (validated: no path leaves its root)."""
        return self.blobs.get_manifest(Digest(version.tree))

    def profiles(self, version: DatasetVersion) -> dict[str, TableProfile]:
        """Tabular profiles by path (empty when no file is tabular)."""
        if not version.profiles:
            return {}
        out = {}
        for path, entry in self.blobs.get_manifest(Digest(version.profiles)).items():
            out[path] = TableProfile.from_json(self.blobs.read_bytes(entry.digest))
        return out

    def open(self, version: DatasetVersion, path: str | None = None) -> BlobReader:
        """A verified streaming reader of one file (the only one when ``path`` is None)."""
        return self.blobs.open(self._entry(version, path).digest)

    def _entry(self, version: DatasetVersion, path: str | None) -> ManifestEntry:
        manifest = self.manifest(version)
        files = [e for e in manifest.values() if e.kind == "file"]
        if path is None:
            if len(files) != 1:
                raise InvalidArgumentError(
                    f"{version.ref} has {len(files)} files; name one (e.g. {files[0].path!r})"
                    if files
                    else f"{version.ref} has no files"
                )
            return files[0]
        entry = manifest.get(path)
        if entry is None or entry.kind != "file":
            raise NotFoundError(f"{version.ref} has no file {path!r}; see `syllabus data show`")
        return entry

    def local_file(self, version: DatasetVersion, path: str | None = None) -> Path:
        """A read-only local copy of one file, cached by content id."""
        entry = self._entry(version, path)
        suffix = "".join(Path(entry.path).suffixes)[-16:]
        dest = self.cache_dir / "files" / entry.digest[:2] / f"{entry.digest}{suffix}"
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.blobs.get_file(entry.digest, dest, mode=0o444, fsync=False)
        return dest

    def path(self, version: DatasetVersion, *, progress: ProgressCallback = null_progress) -> Path:
        """The version materialized in the cache (made once, then reused). Do not edit it."""
        dest = self.cache_dir / "versions" / version.tree
        if dest.is_dir():
            return dest
        tmp = dest.with_name(f".{version.tree}.{new_id()}.tmp")
        try:
            plan = _checkout.plan_checkout(
                self.manifest(version), version.empty_dirs, None, Scan(), {}
            )
            _checkout.apply_plan(
                plan, self.blobs, tmp, force=True, describe=version.ref, progress=progress
            )
            try:
                tmp.rename(dest)
            except OSError:
                if not dest.is_dir():
                    raise
        finally:
            if tmp.exists():
                import shutil

                shutil.rmtree(tmp, ignore_errors=True)
        return dest

    # -- tags and deletion ---------------------------------------------------------------

    def tag(self, ref: str, tag: str) -> DatasetVersion:
        """Point ``tag`` at a version (moving it if it named another)."""
        _check_tag(tag)
        version = self.resolve(ref)
        self.store.set_tag(version.id, tag)
        return self.resolve(f"{version.name}@{tag}")

    def untag(self, name: str, tag: str) -> None:
        if not self.store.remove_tag(validate_name(name), tag):
            raise NotFoundError(f"dataset {name!r} has no tag {tag!r}")

    def remove(self, ref: str, *, all_versions: bool = False) -> list[DatasetVersion]:
        """Soft-delete one version, or every version with ``all_versions``; space is freed
        by ``store gc`` once :meth:`purge_deleted` has dropped them."""
        parsed = parse_ref(ref)
        if all_versions:
            if parsed.kind is not SelectorKind.LATEST or "@" in ref:
                raise InvalidArgumentError("--all takes a dataset name without a version")
            versions = self.list_versions(parsed.name)
        elif parsed.kind is SelectorKind.LATEST:
            raise InvalidArgumentError(
                f"name the version to remove ({parsed.name}@<version>), or use --all"
            )
        else:
            versions = [self.resolve(parsed)]
        self.store.soft_delete([v.id for v in versions], time.time_ns() // 1_000_000)
        return versions

    def purge_deleted(self, older_than_seconds: float = 0.0) -> int:
        """Drop versions soft-deleted more than ``older_than_seconds`` ago with their blob
        references (``store gc`` then frees their bytes); returns how many."""
        before = time.time_ns() // 1_000_000 - int(older_than_seconds * 1000)
        return self.store.purge_deleted(before)

    # -- diff ----------------------------------------------------------------------------

    def diff(self, ref_a: str, ref_b: str, *, key: Sequence[str] = ()) -> DatasetDiff:
        """Files added, removed and changed; for tabular files also schema, rows and
        statistics; with ``key``, rows added, removed and changed."""
        a, b = self.resolve(ref_a), self.resolve(ref_b)
        ma, mb = self.manifest(a), self.manifest(b)
        added = tuple(FileChange(p, "added", None, e.size) for p, e in mb.items() if p not in ma)
        removed = tuple(
            FileChange(p, "removed", e.size, None) for p, e in ma.items() if p not in mb
        )
        modified = tuple(
            FileChange(p, "modified", ma[p].size, e.size)
            for p, e in mb.items()
            if p in ma and ma[p] != e
        )
        pa, pb = self.profiles(a), self.profiles(b)
        tables: list[TableDiff] = []
        for change in modified:
            fmt = table_format(change.path)
            if fmt is None:
                continue
            table = compare_profiles(change.path, pa.get(change.path), pb.get(change.path))
            if key and ma[change.path].kind == "file" and mb[change.path].kind == "file":
                rows = diff_rows(
                    self.local_file(a, change.path), fmt, self.local_file(b, change.path), fmt, key
                )
                table = TableDiff(
                    table.path, table.rows_a, table.rows_b, table.columns_added,
                    table.columns_removed, table.columns_retyped, table.stats, rows,
                )  # fmt: skip
            tables.append(table)
        return DatasetDiff(a.ref, b.ref, added, removed, modified, tuple(tables))

    # -- working folders -----------------------------------------------------------------

    def _cache(self, folder: Path, name: str) -> StatCache:
        key = blake3.blake3(f"{folder.resolve()}\0{name}".encode()).hexdigest()[:32]
        return StatCache(self.cache_dir / "worktrees" / f"{key}.json")

    def _index_path(self) -> Path:
        return self.cache_dir / "worktrees" / "index.json"

    def _remember_folder(self, name: str, folder: Path) -> None:
        path = self._index_path()
        try:
            index = json.loads(path.read_text())
        except (OSError, ValueError):
            index = {}
        if index.get(name) == str(folder):
            return
        index[name] = str(folder)
        tmp = path.with_name(f".index.{new_id()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(index, indent=0, sort_keys=True))
            tmp.replace(path)
        except OSError:
            log.debug("could not record the folder of %s", name, exc_info=True)

    def folder_for(self, name: str, folder: Path | str | None) -> Path:
        """``folder``, else where ``name`` was last added or checked out, else ``./name``."""
        if folder is not None:
            return Path(folder).expanduser().resolve()
        try:
            index = json.loads(self._index_path().read_text())
        except (OSError, ValueError):
            index = {}
        if isinstance(index.get(name), str):
            return Path(index[name])
        return (Path.cwd() / name).resolve()

    @bulk
    def status(self, ref: str, folder: Path | str | None = None) -> StatusReport:
        """What differs between a working folder and a version (for a bare name: the
        version last added or checked out there, else the latest)."""
        parsed = parse_ref(ref)
        root = self.folder_for(parsed.name, folder)
        cache = self._cache(root, parsed.name)
        version = self._version_for_folder(parsed, ref, cache)
        single = version.kind == "file"
        manifest: Manifest | None = None
        if single:
            manifest = self.manifest(version)
            found = scan(root, only=list(manifest))
        else:
            found = scan(root)
        if cache.tree == version.tree and cache.clean and cache.unchanged(found):
            return StatusReport(version.ref, str(root), (), len(found.files), 0)
        current, hashed = digests(root, found, cache)
        manifest = manifest or self.manifest(version)
        changes = compare(manifest, version.empty_dirs, found, current, untracked=not single)
        cache.remember(found, current)
        if cache.tree is None or cache.tree == version.tree:
            cache.tree, cache.ref, cache.clean = version.tree, version.ref, not changes
        else:
            cache.clean = False
        cache.save()
        return StatusReport(version.ref, str(root), tuple(changes), len(found.files), hashed)

    def _version_for_folder(self, parsed: Ref, ref: str, cache: StatCache) -> DatasetVersion:
        if "@" not in ref and cache.ref is not None:
            try:
                return self.resolve(cache.ref)
            except NotFoundError:
                pass
        return self.resolve(parsed)

    @bulk
    def checkout(
        self,
        ref: str,
        folder: Path | str | None = None,
        *,
        force: bool = False,
        progress: ProgressCallback = null_progress,
    ) -> CheckoutReport:
        """Make ``folder`` hold the version; refuses to overwrite local changes unless
        ``force``. Only files that differ are written."""
        version = self.resolve(ref)
        root = self.folder_for(version.name, folder)
        target = self.manifest(version)
        cache = self._cache(root, version.name)
        only = list(target) if version.kind == "file" else None
        found = scan(root, only=only)
        current, _ = digests(root, found, cache)
        base: Manifest | None = None
        if cache.tree == version.tree:
            base = target  # the same manifest: not read and parsed twice
        elif cache.tree is not None:
            with _suppress_missing():
                base = self.blobs.get_manifest(Digest(cache.tree))
        if base is not None and only is not None:
            extra = [p for p in base if p not in found.files and p not in found.links]
            more = scan(root, only=extra)
            found.files.update(more.files)
            found.links.update(more.links)
            more_digests, _ = digests(root, more, cache)
            current.update(more_digests)
        plan = _checkout.plan_checkout(target, version.empty_dirs, base, found, current)
        applied = _checkout.apply_plan(
            plan, self.blobs, root, force=force, describe=version.ref, progress=progress
        )
        after = scan(root, only=only) if only is not None else _after(found, plan, applied, root)
        known: dict[str, str] = {e.path: e.digest for e in target.entries() if e.kind == "file"}
        fresh = {p: current[p] for p in after.files if p not in known and p in current}
        missing = [p for p in after.files if p not in known and p not in fresh]
        if missing:
            extra_digests, _ = digests(root, scan(root, only=missing), cache)
            fresh.update(extra_digests)
        after_digests = {**fresh, **known}
        cache.remember(after, after_digests)
        changes = compare(target, version.empty_dirs, after, after_digests, untracked=only is None)
        cache.tree, cache.ref, cache.clean = version.tree, version.ref, not changes
        cache.save()
        self._remember_folder(version.name, root)
        return CheckoutReport(
            version.ref,
            str(root),
            written=len(plan.write) + len(plan.chmod),
            unchanged=plan.unchanged,
            removed=len(plan.remove),
            written_bytes=applied.written,
        )

    # -- remotes -------------------------------------------------------------------------

    def add_remote(self, name: str, url: str) -> Remote:
        """Record a remote (a folder or ``s3://bucket/prefix``)."""
        _check_tag(name, what="remote name")
        url = url.strip()
        if url.startswith("s3://"):
            if len(url) <= 5 or url[5] == "/":
                raise InvalidArgumentError(f"remote URL {url!r} names no bucket")
        elif "://" in url and not url.startswith("file://"):
            raise InvalidArgumentError(
                f"remote URL {url!r}: expected a folder, file:// or s3://bucket/prefix"
            )
        elif "://" not in url:
            url = str(Path(url).expanduser().resolve())
        return self.store.add_remote(name, url)

    def list_remotes(self) -> list[Remote]:
        return self.store.list_remotes()

    def remove_remote(self, name: str) -> None:
        if not self.store.remove_remote(name):
            raise NotFoundError(f"no remote {name!r}; see `syllabus remote list`")

    def remote(self, name: str | None) -> Remote:
        """The remote called ``name`` (None: the only one)."""
        remotes = self.store.list_remotes()
        if name is None:
            if len(remotes) == 1:
                return remotes[0]
            if not remotes:
                raise NotFoundError(
                    "no remote configured; add one with `syllabus remote add NAME URL`"
                )
            names = ", ".join(r.name for r in remotes)
            raise InvalidArgumentError(f"several remotes ({names}); choose one with --remote")
        for remote in remotes:
            if remote.name == name:
                return remote
        raise NotFoundError(f"no remote {name!r}; see `syllabus remote list`")

    @bulk
    def push(
        self, ref: str, remote: str | None = None, *, progress: ProgressCallback = null_progress
    ) -> TransferResult:
        """Copy a version (a bare name: every live version) to a remote, records first, then
        its metadata (numbers, messages, tags) merged into the remote's version index. Only
        the records the remote lacks move, in parallel; an interrupted push resumes."""
        from syllabus.datasets import sync

        return sync.push(self, ref, remote, progress)

    @bulk
    def pull(
        self, ref: str, remote: str | None = None, *, progress: ProgressCallback = null_progress
    ) -> TransferResult:
        """Copy a version (a bare name: every version the remote has) from a remote: the
        records missing here, then the versions and tags, merged without overwriting any
        version of this workspace (conflicts are reported)."""
        from syllabus.datasets import sync

        return sync.pull(self, ref, remote, progress)

    def remote_datasets(self, remote: str | None = None) -> list[DatasetSummary]:
        """The datasets published on a remote, with their latest version there."""
        from syllabus.datasets import sync

        return sync.remote_datasets(self, remote)


def _after(found: Scan, plan: _checkout.Plan, applied: _checkout.Applied, root: Path) -> Scan:
    """The folder after a checkout, as a scan would find it, from the scan before it and
    what the checkout did: the files it created were stat'ed as it wrote them, only those
    it wrote otherwise (replaced files, links, large files) and changed modes are stat'ed
    again. (A file changed meanwhile by someone else has other stats next time: the stat
    cache then hashes it again.)"""
    after = Scan(dict(found.files), dict(found.links))
    for path in plan.remove:
        after.files.pop(path, None)
        after.links.pop(path, None)
    again = [e.path for e in plan.write if e.path not in applied.stats]
    again += [e.path for e in plan.chmod]
    again = [p for p in again if not ignored_path(p)]
    for path in again:
        after.files.pop(path, None)
        after.links.pop(path, None)
    after.files.update(applied.stats)
    for path in [p for p in applied.stats if (p[0] == "." or "/." in p) and ignored_path(p)]:
        del after.files[path]  # a scan never finds it (nor did the one before: not in found)
    more = scan(root, only=again)
    after.files.update(more.files)
    after.links.update(more.links)
    candidates = found.empty_dirs | set(plan.mkdirs)
    if candidates:
        full: set[str] = set()  # folders holding something
        for path in [*after.files, *after.links, *candidates]:
            folder = path.rpartition("/")[0]
            while folder and folder not in full:
                full.add(folder)
                folder = folder.rpartition("/")[0]
        after.empty_dirs = {d for d in candidates if d not in full and (root / d).is_dir()}
    return after


def _check_tag(tag: str, *, what: str = "tag") -> str:
    import re

    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,63}", tag or "") or tag == "latest":
        raise InvalidArgumentError(
            f"invalid {what} {tag!r}: start with a letter, then letters, digits, '_' or '-' "
            "(at most 64; not 'latest')"
        )
    from syllabus.refs import STAGES

    if tag in STAGES:
        raise InvalidArgumentError(f"invalid {what} {tag!r}: stage names are reserved")
    return tag


class _suppress_missing:  # noqa: N801 - used like contextlib.suppress
    """Ignore a manifest that is missing or unreadable (a purged base)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> bool:
        return exc_type is not None and issubclass(exc_type, NotFoundError | InvalidArgumentError)
