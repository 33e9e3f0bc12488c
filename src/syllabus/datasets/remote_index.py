"""Dataset metadata on a remote: version indexes that travel with ``push`` and ``pull``.

A remote is a blob store; the records of a version (files, chunks, manifests, profiles) move
with :mod:`syllabus.blobs.transfer`. What a clone also needs is the *metadata*: the
dataset's name, its numbered versions (tree, profiles, kind, sizes, message, author, time)
and its tags. Each push publishes it as a **version index**: a JSON document of every
version and tag of one dataset the remote knows, stored as a ref (``RefBackend``) named by
its own content::

    refs/datasets/<name>/<blake3 of the document>      ('/' in the name written as '~')

There is no mutable pointer to race on. A push reads the indexes it finds, merges them with
what it publishes, writes the merged index under its digest, and only then deletes the
indexes it read (they are contained in the new one). Two pushes at once each leave an index
containing everything they read, so nothing is lost; a reader merges all indexes it finds.
A reader verifies each document against its name (the digest) and validates every field: a
remote is not trusted.

Merging is by version id (ids are kept when a version is pulled, so the same version has
the same id everywhere). A *conflict* is one number naming two different versions (two
workspaces each made ``churn@4`` without pulling first): the earlier version keeps the
number on the remote and the other side is reported, never overwritten. Tags are movable:
the most recently set pointer wins (ties by version id).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import blake3

from syllabus._utils.ids import is_id
from syllabus.blobs.backend import RefBackend
from syllabus.blobs.digest import Digest
from syllabus.blobs.manifest import check_relpath
from syllabus.datasets.models import DatasetTag, DatasetVersion
from syllabus.errors import BlobCorruptError, InvalidArgumentError, PathEscapeError, StorageError
from syllabus.refs import STAGES, validate_name

__all__ = [
    "FORMAT",
    "RemoteIndex",
    "decode_index",
    "encode_index",
    "merge_indexes",
    "read_index",
    "remote_dataset_names",
    "write_index",
]

FORMAT: Final = "syllabus-dataset-index 1"
_PREFIX: Final = "datasets/"
_MAX_INDEX_BYTES: Final = 256 * 1024 * 1024
_TEXT_LIMIT: Final = 1 << 20
_TAG: Final = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_MAX_INT: Final = 1 << 62  # BIGINT columns
_MAX_VERSION: Final = 1 << 31  # the INTEGER column of version numbers


@dataclass(frozen=True, slots=True)
class RemoteIndex:
    """Every version and tag of one dataset a remote knows (versions by number)."""

    name: str
    versions: tuple[DatasetVersion, ...]
    tags: tuple[DatasetTag, ...]

    def by_number(self) -> dict[int, DatasetVersion]:
        return {v.version: v for v in self.versions}

    def by_id(self) -> dict[str, DatasetVersion]:
        return {v.id: v for v in self.versions}

    def tagged(self) -> dict[str, DatasetTag]:
        return {t.tag: t for t in self.tags}


def _encode_name(name: str) -> str:
    return name.replace("/", "~")


def _ref(name: str, digest: str) -> str:
    return f"{_PREFIX}{_encode_name(name)}/{digest}"


def remote_dataset_names(backend: RefBackend) -> list[str]:
    """The datasets that have a version index on the remote, by name."""
    names = set()
    for ref in backend.list_refs(_PREFIX):
        encoded, _, _ = ref[len(_PREFIX) :].rpartition("/")
        if encoded:
            names.add(encoded.replace("~", "/"))
    return sorted(names)


def encode_index(index: RemoteIndex) -> bytes:
    """The canonical JSON document of ``index`` (same index, same bytes, same digest)."""
    versions = [
        {
            "id": v.id,
            "version": v.version,
            "tree": v.tree,
            "profiles": v.profiles,
            "kind": v.kind,
            "file_count": v.file_count,
            "size": v.size,
            "message": v.message,
            "author": v.author,
            "created_at": v.created_at,
            "empty_dirs": list(v.empty_dirs),
            "source": v.source,
        }
        for v in sorted(index.versions, key=lambda v: v.version)
    ]
    tags = [
        {"tag": t.tag, "version_id": t.version_id, "set_at": t.set_at}
        for t in sorted(index.tags, key=lambda t: t.tag)
    ]
    doc = {"format": FORMAT, "dataset": index.name, "versions": versions, "tags": tags}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class _BadIndexError(Exception):
    pass


def _field(obj: dict[str, Any], key: str, kind: type) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise _BadIndexError(f"field {key!r} is missing or not {kind.__name__}")
    if isinstance(value, str) and len(value) > _TEXT_LIMIT:
        raise _BadIndexError(f"field {key!r} is too long")
    return value


def _optional(obj: dict[str, Any], key: str) -> str | None:
    return None if obj.get(key) is None else str(_field(obj, key, str))


def _digest(value: str, key: str) -> str:
    try:
        return str(Digest(value))
    except InvalidArgumentError:
        raise _BadIndexError(f"field {key!r} is not a content id") from None


def _check(ok: bool, why: str) -> None:
    if not ok:
        raise _BadIndexError(why)


def _parse_version(raw: object, name: str) -> DatasetVersion:
    _check(isinstance(raw, dict), "a version is not an object")
    assert isinstance(raw, dict)
    vid = _field(raw, "id", str)
    number = _field(raw, "version", int)
    _check(is_id(vid) and number >= 1, f"version {number!r} has an invalid id or number")
    kind = _field(raw, "kind", str)
    _check(kind in ("file", "folder"), f"version {number} has kind {kind!r}")
    profiles = _optional(raw, "profiles")
    empty = _field(raw, "empty_dirs", list)
    _check(all(isinstance(d, str) for d in empty), f"version {number} has invalid empty folders")
    try:
        for folder in empty:  # a checkout makes these folders: never outside its root
            check_relpath(folder)
    except PathEscapeError as exc:
        raise _BadIndexError(f"version {number}: {exc}") from None
    for key in ("file_count", "size", "created_at"):
        _check(0 <= _field(raw, key, int) < _MAX_INT, f"version {number}: {key} out of range")
    _check(number < _MAX_VERSION, f"version {number} out of range")
    return DatasetVersion(
        id=vid,
        dataset_id="",
        name=name,
        version=number,
        tree=_digest(_field(raw, "tree", str), "tree"),
        kind=kind,
        file_count=_field(raw, "file_count", int),
        size=_field(raw, "size", int),
        message=_field(raw, "message", str),
        author=_field(raw, "author", str)[:128],
        created_at=_field(raw, "created_at", int),
        profiles=None if profiles is None else _digest(profiles, "profiles"),
        empty_dirs=tuple(empty),
        source=_optional(raw, "source"),
    )


def _parse_tag(raw: object, numbers: dict[str, int]) -> DatasetTag:
    _check(isinstance(raw, dict), "a tag is not an object")
    assert isinstance(raw, dict)
    tag = _field(raw, "tag", str)
    _check(
        bool(_TAG.fullmatch(tag)) and tag != "latest" and tag not in STAGES,
        f"invalid tag {tag!r}",
    )
    target = _field(raw, "version_id", str)
    _check(target in numbers, f"tag {tag!r} names no version of the index")
    set_at = _field(raw, "set_at", int)
    _check(0 <= set_at < _MAX_INT, f"tag {tag!r}: set_at out of range")
    return DatasetTag(tag, target, numbers[target], set_at)


def _parse(data: bytes, name: str) -> RemoteIndex:
    doc = json.loads(data)
    _check(isinstance(doc, dict) and doc.get("format") == FORMAT, f"not a {FORMAT!r} document")
    _check(doc.get("dataset") == name, f"it describes {doc.get('dataset')!r}, not {name!r}")
    versions = [_parse_version(raw, name) for raw in _field(doc, "versions", list)]
    numbers = {v.id: v.version for v in versions}
    _check(
        len(numbers) == len(versions) == len(set(numbers.values())),
        "a version id or number appears twice",
    )
    tags = [_parse_tag(raw, numbers) for raw in _field(doc, "tags", list)]
    return RemoteIndex(name, tuple(versions), tuple(tags))


def decode_index(data: bytes, name: str, *, source: str) -> RemoteIndex:
    """Parse and validate an index document; BlobCorruptError (naming ``source``) when it is
    not a well-formed index of dataset ``name``."""
    try:
        return _parse(data, name)
    except (_BadIndexError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BlobCorruptError(f"{source}: invalid dataset index: {exc}") from None


def merge_indexes(
    name: str, indexes: Iterable[RemoteIndex]
) -> tuple[RemoteIndex, list[tuple[DatasetVersion, DatasetVersion]]]:
    """One index holding every version and the newest pointer of every tag of ``indexes``.

    Returns it and the conflicts: ``(kept, dropped)`` pairs of different versions with one
    number (the earlier one keeps it)."""
    by_id: dict[str, DatasetVersion] = {}
    tags: dict[str, DatasetTag] = {}
    for index in indexes:
        for v in index.versions:
            by_id.setdefault(v.id, v)
        for t in index.tags:
            old = tags.get(t.tag)
            if old is None or (t.set_at, t.version_id) > (old.set_at, old.version_id):
                tags[t.tag] = t
    by_number: dict[int, DatasetVersion] = {}
    conflicts: list[tuple[DatasetVersion, DatasetVersion]] = []
    for v in sorted(by_id.values(), key=lambda v: (v.created_at, v.id)):
        kept = by_number.get(v.version)
        if kept is None:
            by_number[v.version] = v
        else:
            conflicts.append((kept, v))
    live = {v.id: v for v in by_number.values()}
    merged_tags = tuple(
        replace(t, version=live[t.version_id].version)
        for t in sorted(tags.values(), key=lambda t: t.tag)
        if t.version_id in live
    )
    versions = tuple(sorted(by_number.values(), key=lambda v: v.version))
    return RemoteIndex(name, versions, merged_tags), conflicts


@dataclass(frozen=True, slots=True)
class _Found:
    index: RemoteIndex | None
    refs: tuple[str, ...]
    conflicts: tuple[tuple[DatasetVersion, DatasetVersion], ...]


def read_index(backend: RefBackend, name: str, *, where: str) -> _Found:
    """Every index of ``name`` on the remote, merged (None when there is none), with the
    ref names read and the conflicts between them."""
    validate_name(name)
    prefix = f"{_PREFIX}{_encode_name(name)}/"
    found: list[RemoteIndex] = []
    read: list[str] = []
    for attempt in range(3):
        refs = [r for r in backend.list_refs(prefix) if "/" not in r[len(prefix) :]]
        found, read = [], []
        vanished = False
        for ref in refs:
            data = backend.read_ref(ref)
            if data is None:  # merged away by a concurrent push: look again
                vanished = True
                break
            if len(data) > _MAX_INDEX_BYTES:
                raise BlobCorruptError(f"{where}/refs/{ref}: dataset index too large")
            digest = ref[len(prefix) :]
            if blake3.blake3(data).hexdigest() != digest:
                raise BlobCorruptError(
                    f"{where}/refs/{ref}: the dataset index does not match its content id"
                )
            found.append(decode_index(data, name, source=f"{where}/refs/{ref}"))
            read.append(ref)
        if not vanished:
            break
        if attempt == 2:
            raise StorageError(
                f"the dataset index of {name!r} on {where} keeps changing; try again"
            )
    if not found:
        return _Found(None, (), ())
    merged, conflicts = merge_indexes(name, found)
    return _Found(merged, tuple(read), tuple(conflicts))


def write_index(backend: RefBackend, index: RemoteIndex, replaces: Sequence[str]) -> bool:
    """Publish ``index`` and drop the indexes it contains (``replaces``, as read by
    :func:`read_index`); False when it was already the only one, or holds no version."""
    if not index.versions:
        return False
    data = encode_index(index)
    ref = _ref(index.name, blake3.blake3(data).hexdigest())
    if list(replaces) == [ref]:
        return False
    if ref not in replaces:
        backend.write_ref(ref, data)  # durable before the ones it contains go
    backend.delete_refs([r for r in replaces if r != ref])
    return True
