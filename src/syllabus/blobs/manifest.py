"""Typed manifests of folders: which file (by content id) sits at which relative path.

A manifest lists files, symbolic links and empty folders; other folders are implied by
the paths inside them. Paths are POSIX, relative, and never leave the root: parsing
rejects absolute paths, ``..`` and ``.`` segments, backslashes, drive letters, NUL bytes,
duplicates, a path that is also the parent of another, and links whose target resolves
outside the root.

Canonical serialization (UTF-8, ``\\n``-terminated lines, entries sorted by path)::

    syllabus-manifest 1
    ["data/train.csv","f",420,1048576,"<64 hex digest>"]
    ["run.sh","f",493,120,"<digest>"]
    ["latest","l",511,9,"<digest of the target text>","data/train.csv"]
    ["logs","d",493,0,"<digest of no bytes>"]

Each entry line is a compact JSON array ``[path, kind, mode, size, digest(, target)]``:
kind ``f`` (file), ``l`` (link) or ``d`` (an empty folder); mode is ``0o644`` or ``0o755``
for files (only the executable bit is kept), ``0o777`` for links and ``0o755`` for folders;
a link's size and digest describe its target text, a folder's those of no bytes. One line
per file makes the serialization chunk well, so a large manifest
stored through ``put_bytes`` shares most of its chunks with the previous version.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, Sequence, ValuesView
from dataclasses import dataclass
from itertools import repeat
from typing import Final, Literal

from syllabus.blobs.digest import EMPTY_DIGEST, Digest, hash_bytes
from syllabus.errors import InvalidArgumentError, PathEscapeError

__all__ = [
    "MANIFEST_MAGIC",
    "Manifest",
    "ManifestDiff",
    "ManifestEntry",
    "check_link_target",
    "check_relpath",
    "diff",
    "file_digests",
]

MANIFEST_MAGIC: Final = b"syllabus-manifest 1\n"
FILE_MODE: Final = 0o644
EXEC_MODE: Final = 0o755
LINK_MODE: Final = 0o777
DIR_MODE: Final = 0o755

Kind = Literal["file", "link", "dir"]
_KIND_CODE: Final = {"file": "f", "link": "l", "dir": "d"}
_JSON_ESCAPED: Final = re.compile(r'[\x00-\x1f"\\]')
"""Characters ``json.dumps`` escapes in a string (with ``ensure_ascii=False``)."""
_HEX_BYTES: Final = b"0123456789abcdef"


def check_relpath(path: str) -> str:
    """``path`` if it is a safe relative POSIX path; raises PathEscapeError otherwise."""
    if not isinstance(path, str) or not path:
        raise PathEscapeError("empty path in manifest")
    if "\\" in path or "\x00" in path:
        raise PathEscapeError(f"path {path!r} contains a backslash or NUL")
    if path[0] == "/":
        raise PathEscapeError(f"path {path!r} is absolute")
    if len(path) >= 2 and path[1] == ":" and path[0].isalpha():
        raise PathEscapeError(f"path {path!r} starts with a drive letter")
    # Substring tests in C rather than a split per path: only a path with a segment that
    # starts with a dot gets the exact segment check.
    if (
        "//" in path
        or path[-1] == "/"
        or ((path[0] == "." or "/." in path) and any(p in (".", "..") for p in path.split("/")))
    ):
        raise PathEscapeError(f"path {path!r} has an empty, '.' or '..' segment")
    return path


def check_link_target(path: str, target: str) -> str:
    """``target`` if a link at ``path`` pointing there stays inside the root."""
    if not target or "\x00" in target or "\\" in target:
        raise PathEscapeError(f"link {path!r} has an invalid target {target!r}")
    if target.startswith("/"):
        raise PathEscapeError(f"link {path!r} points to an absolute path {target!r}")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    if resolved == ".." or resolved.startswith("../") or resolved == ".":
        raise PathEscapeError(f"link {path!r} -> {target!r} leaves the root")
    return target


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One file, link or empty folder in a folder."""

    path: str
    digest: Digest
    size: int
    mode: int = FILE_MODE
    kind: Kind = "file"
    target: str | None = None

    @property
    def executable(self) -> bool:
        return self.kind == "file" and bool(self.mode & 0o111)

    @classmethod
    def file(
        cls, path: str, digest: Digest, size: int, *, executable: bool = False
    ) -> ManifestEntry:
        """A regular file entry (validated)."""
        return cls(check_relpath(path), digest, size, EXEC_MODE if executable else FILE_MODE)

    @classmethod
    def link(cls, path: str, target: str) -> ManifestEntry:
        """A symbolic link entry (validated: the target must stay inside the root)."""
        check_link_target(check_relpath(path), target)
        raw = target.encode("utf-8")
        return cls(path, hash_bytes(raw), len(raw), LINK_MODE, "link", target)

    @classmethod
    def dir(cls, path: str) -> ManifestEntry:
        """An empty folder (folders with content are implied by their entries' paths)."""
        return cls(check_relpath(path), EMPTY_DIGEST, 0, DIR_MODE, "dir")

    def _line(self) -> bytes:
        if self.kind != "link" and not _JSON_ESCAPED.search(self.path):
            # What json.dumps would write, without its per-call cost (one line per file).
            kind = _KIND_CODE[self.kind]
            line = f'["{self.path}","{kind}",{self.mode},{self.size},"{self.digest}"]'
            return line.encode("utf-8")
        row: list[object] = [self.path, _KIND_CODE[self.kind]]
        row += [self.mode, self.size, str(self.digest)]
        if self.kind == "link":
            row.append(self.target)
        return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Manifest(Mapping[str, ManifestEntry]):
    """An immutable, validated set of entries keyed by path, iterated in sorted order."""

    __slots__ = ("_entries",)

    def __init__(self, entries: Iterable[ManifestEntry] = (), *, validated: bool = False) -> None:
        # ``validated``: the entries come from the validating constructors of this module
        # (ManifestEntry.file/link/dir, parsing), so each path need not be checked again.
        by_path: dict[str, ManifestEntry] = {}
        for entry in entries:
            if not validated:
                check_relpath(entry.path)
                if entry.kind == "link":
                    check_link_target(entry.path, entry.target or "")
                elif entry.kind not in ("file", "dir"):
                    raise InvalidArgumentError(f"manifest entry {entry.path!r}: unknown kind")
            if entry.path in by_path:
                raise PathEscapeError(f"path {entry.path!r} appears twice in the manifest")
            by_path[entry.path] = entry
        paths = sorted(by_path)
        for path in paths:
            parent = path.rpartition("/")[0]
            while parent:
                if parent in by_path:
                    raise PathEscapeError(
                        f"path {parent!r} is both an entry and the folder of {path!r}"
                    )
                parent = parent.rpartition("/")[0]
        self._entries = {p: by_path[p] for p in paths}

    @classmethod
    def _checked(cls, paths: list[str], entries: list[ManifestEntry]) -> Manifest | None:
        """A manifest of ``entries`` (valid each, ``paths`` theirs, in the same order); None
        if a path appears twice or is also the folder of another (then the constructor
        says which). The checks of the constructor a set operation at a time, without a
        Python loop over the entries when ``paths`` are sorted, as a parsed manifest's are."""
        unique = set(paths)
        if len(unique) != len(paths):
            return None
        folders: set[str] = set()
        for parent in {p.rpartition("/")[0] for p in paths}:
            folder = parent
            while folder and folder not in folders:
                folders.add(folder)
                folder = folder.rpartition("/")[0]
        if not folders.isdisjoint(unique):
            return None
        manifest = cls.__new__(cls)
        by_path = dict(zip(paths, entries, strict=True))
        if paths != sorted(paths):
            by_path = {p: by_path[p] for p in sorted(by_path)}
        manifest._entries = by_path
        return manifest

    def __getitem__(self, path: str) -> ManifestEntry:
        return self._entries[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    # The Mapping methods, as the dict's own (the mixins call __getitem__ per path).
    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def get(self, path: str, default: ManifestEntry | None = None) -> ManifestEntry | None:  # type: ignore[override]
        return self._entries.get(path, default)

    def keys(self) -> KeysView[str]:
        return self._entries.keys()

    def values(self) -> ValuesView[ManifestEntry]:
        return self._entries.values()

    def items(self) -> ItemsView[str, ManifestEntry]:
        return self._entries.items()

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Manifest({len(self)} entries, {self.total_size} bytes)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Manifest):
            return NotImplemented
        return self._entries == other._entries

    def __hash__(self) -> int:
        return hash(self.serialize())

    def entries(self) -> list[ManifestEntry]:
        """Every entry, sorted by path."""
        return list(self._entries.values())

    @property
    def total_size(self) -> int:
        """Sum of the file sizes (links excluded)."""
        return sum(e.size for e in self._entries.values() if e.kind == "file")

    def file_digests(self) -> set[Digest]:
        """Content ids of every file (links have no stored object)."""
        return {e.digest for e in self._entries.values() if e.kind == "file"}

    def serialize(self) -> bytes:
        """The canonical bytes (see the module docstring); equal manifests, equal bytes."""
        entries = self._entries.values()
        if _JSON_ESCAPED.search("".join(self._entries)):  # rare: some path needs escapes
            return b"".join([MANIFEST_MAGIC, *(e._line() + b"\n" for e in entries)])
        # The usual manifest, one f-string per entry and one encode for all (what _line
        # gives each, without a call per entry: tens of thousands in a folder of files).
        codes = _KIND_CODE
        text = "".join(
            [
                f'["{e.path}","{codes[e.kind]}",{e.mode},{e.size},"{e.digest}"]\n'
                if e.kind != "link"
                else e._line().decode("utf-8") + "\n"
                for e in entries
            ]
        )
        return MANIFEST_MAGIC + text.encode("utf-8")

    @classmethod
    def parse(cls, data: bytes, *, source: str = "manifest") -> Manifest:
        """Parse and validate serialized bytes; raises PathEscapeError or InvalidArgumentError."""
        if not data.startswith(MANIFEST_MAGIC):
            raise InvalidArgumentError(f"{source} is not a Syllabus manifest (bad header)")
        fast = _parse_fast(data)
        if fast is not None:
            return fast
        entries = []
        for no, line in enumerate(data[len(MANIFEST_MAGIC) :].split(b"\n"), start=2):
            if not line:
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise InvalidArgumentError(f"{source} line {no}: not JSON ({exc})") from exc
            entries.append(_entry_from_row(row, f"{source} line {no}"))
        return cls(entries, validated=True)


def file_digests(data: bytes) -> dict[str, str] | None:
    """``{path: content id}`` of the files of a serialized manifest in its one-entry-per-
    line form, read with one ``json.loads`` and without building or validating an entry
    per line: for a caller that only compares its own (validated) paths and ids with them.
    None when ``data`` is not in that form (:meth:`Manifest.parse` then says why)."""
    if not data.startswith(MANIFEST_MAGIC):
        return None
    body = data[len(MANIFEST_MAGIC) :]
    if body and not body.endswith(b"\n"):
        return None
    try:
        rows = json.loads(b"[" + body[:-1].replace(b"\n", b",") + b"]")
    except ValueError:
        return None
    out: dict[str, str] = {}
    for row in rows:
        if type(row) is not list or len(row) not in (5, 6) or type(row[0]) is not str:
            return None
        if row[1] == "f":
            if type(row[4]) is not str:
                return None
            out[row[0]] = row[4]
    return out


def _parse_fast(data: bytes) -> Manifest | None:
    """The manifest ``data`` holds, parsed with one ``json.loads`` for all lines and checked
    a column at a time; None when anything is unusual (the caller then parses line by line,
    which accepts or rejects it and says which line is wrong).

    It accepts only what :meth:`Manifest.parse`'s line-by-line path accepts, with the same
    result: each line holds exactly one JSON value (a line's newline becomes a comma, so
    as many values as lines means one per line: a newline anywhere else in a JSON text
    cannot become a comma and stay valid), and every file row passes the checks of
    :func:`_entry_from_row` (in bulk: :func:`_paths_ok`, exact ``int`` and ``str`` types, 64
    lowercase hex characters per content id); other rows go through that function itself.
    Duplicates and paths that are also another's folder are checked over all paths."""
    body = data[len(MANIFEST_MAGIC) :]
    if not body:
        return Manifest()
    if not body.endswith(b"\n"):
        return None
    try:
        text = body.decode("utf-8")
        rows = json.loads("[" + text[:-1].replace("\n", ",") + "]")
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    if len(rows) != text.count("\n") or set(map(type, rows)) != {list}:
        return None
    plain = set(map(len, rows)) == {5} and [r[1] for r in rows].count("f") == len(rows)
    files = rows if plain else [r for r in rows if len(r) == 5 and r[1] == "f"]
    entries: list[ManifestEntry] = []
    paths: list[str] = []
    if files:
        path_col, _, modes, sizes, digests = zip(*files, strict=True)
        if not (
            set(map(type, path_col)) == {str}
            and set(map(type, modes)) == {int}
            and set(modes) <= {FILE_MODE, EXEC_MODE}
            and set(map(type, sizes)) == {int}
            and min(sizes) >= 0
            and set(map(type, digests)) == {str}
            and set(map(len, digests)) == {64}
            and _paths_ok(path_col)
        ):
            return None
        try:
            if "".join(digests).encode("ascii").translate(None, _HEX_BYTES):
                return None
        except UnicodeEncodeError:
            return None
        paths = list(path_col)
        ids = map(str.__new__, repeat(Digest), digests)  # checked above: no call per id
        entries = list(map(ManifestEntry, paths, ids, sizes, modes))
    if not plain:
        try:
            others = [_entry_from_row(r, "manifest") for r in rows if len(r) != 5 or r[1] != "f"]
        except InvalidArgumentError:  # PathEscapeError is an InvalidArgumentError
            return None
        entries += others
        paths += [e.path for e in others]
    return Manifest._checked(paths, entries)


def _paths_ok(paths: Sequence[str]) -> bool:
    """True if :func:`check_relpath` accepts every one of ``paths`` (non-empty), checked
    with a few substring searches over all of them joined (NUL, which no path may hold,
    between them; ``/`` turned into NUL too, so that an empty, ``.`` or ``..`` segment
    anywhere is a NUL-delimited empty, ``.`` or ``..``)."""
    joined = "\x00".join(paths)
    if joined.count("\x00") != len(paths) - 1 or "\\" in joined:
        return False  # a NUL inside a path, or a backslash
    if ":" in joined and any(p[1:2] == ":" and p[0].isalpha() for p in paths if ":" in p):
        return False  # a drive letter
    segments = "\x00" + joined.replace("/", "\x00") + "\x00"
    return not ("\x00\x00" in segments or "\x00.\x00" in segments or "\x00..\x00" in segments)


def _entry_from_row(row: object, where: str) -> ManifestEntry:
    if not isinstance(row, list) or len(row) not in (5, 6):
        raise InvalidArgumentError(f"{where}: expected [path, kind, mode, size, digest(, target)]")
    path, kind, mode, size, digest = row[:5]
    if not isinstance(path, str):
        raise InvalidArgumentError(f"{where}: path is not a string")
    check_relpath(path)
    if not isinstance(mode, int) or not isinstance(size, int) or size < 0:
        raise InvalidArgumentError(f"{where}: bad mode or size for {path!r}")
    if not isinstance(digest, str):
        raise InvalidArgumentError(f"{where}: bad content id for {path!r}")
    if kind == "f" and len(row) == 5 and mode in (FILE_MODE, EXEC_MODE):
        return ManifestEntry(path, Digest(digest), size, mode)
    if kind == "d" and len(row) == 5 and mode == DIR_MODE and size == 0:
        if digest != EMPTY_DIGEST:
            raise InvalidArgumentError(f"{where}: folder {path!r} with a content id")
        return ManifestEntry(path, EMPTY_DIGEST, 0, DIR_MODE, "dir")
    if kind == "l" and len(row) == 6 and isinstance(row[5], str):
        check_link_target(path, row[5])
        return ManifestEntry(path, Digest(digest), size, LINK_MODE, "link", row[5])
    raise InvalidArgumentError(f"{where}: bad kind, mode or target for {path!r}")


@dataclass(frozen=True, slots=True)
class ManifestDiff:
    """Paths added, removed and modified (content, mode, kind or target) from ``a`` to ``b``."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    modified: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.modified)


def diff(a: Manifest, b: Manifest) -> ManifestDiff:
    """What changed from manifest ``a`` to manifest ``b``; each tuple sorted by path."""
    added = tuple(p for p in b if p not in a)
    removed = tuple(p for p in a if p not in b)
    modified = tuple(p for p in a if p in b and a[p] != b[p])
    return ManifestDiff(added, removed, modified)
