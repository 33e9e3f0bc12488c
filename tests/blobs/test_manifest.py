"""Manifests: canonical round trips, path safety, diff."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syllabus.blobs import Manifest, ManifestEntry, diff, hash_bytes
from syllabus.blobs.manifest import MANIFEST_MAGIC, check_link_target, check_relpath
from syllabus.errors import InvalidArgumentError, PathEscapeError

_segment = st.text(
    alphabet=st.characters(blacklist_characters="/\\\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in (".", ".."))
_path = (
    st.lists(_segment, min_size=1, max_size=4)
    .map("/".join)
    .filter(lambda p: not (len(p) >= 2 and p[1] == ":" and p[0].isalpha()))
)


@st.composite
def manifests(draw: st.DrawFn) -> Manifest:
    paths = draw(st.lists(_path, max_size=20, unique=True))
    entries = []
    taken: set[str] = set()
    for path in paths:
        parents = {path.rsplit("/", i)[0] for i in range(1, path.count("/") + 1)}
        if parents & taken or any(t.startswith(path + "/") for t in taken):
            continue
        taken.add(path)
        if draw(st.booleans()):
            data = draw(st.binary(max_size=8))
            entries.append(
                ManifestEntry.file(
                    path, hash_bytes(data), len(data), executable=draw(st.booleans())
                )
            )
        else:
            entries.append(ManifestEntry.link(path, path.rsplit("/", 1)[-1] + "x"))
    return Manifest(entries)


@given(manifests())
def test_serialize_parse_round_trip(manifest: Manifest) -> None:
    data = manifest.serialize()
    assert data.startswith(MANIFEST_MAGIC)
    parsed = Manifest.parse(data)
    assert parsed == manifest
    assert parsed.serialize() == data
    assert list(parsed) == sorted(parsed)


def test_serialization_is_independent_of_insertion_order() -> None:
    d = hash_bytes(b"x")
    a = Manifest([ManifestEntry.file("b", d, 1), ManifestEntry.file("a/c", d, 1)])
    b = Manifest([ManifestEntry.file("a/c", d, 1), ManifestEntry.file("b", d, 1)])
    assert a.serialize() == b.serialize()


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "../x", "a/../../x", "a/..", "./a", "a//b", "a\\b", "C:/x", "c:x", "", "a/"],
)
def test_bad_paths_are_rejected(path: str) -> None:
    with pytest.raises(PathEscapeError):
        check_relpath(path)
    digest = hash_bytes(b"")
    line = f'["{path}","f",420,0,"{digest}"]'.replace("\\", "\\\\").encode()
    with pytest.raises(PathEscapeError) as info:
        Manifest.parse(MANIFEST_MAGIC + line + b"\n")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("path", "target"),
    [("a", "/etc/passwd"), ("a", ".."), ("a", "../b"), ("d/a", "../../b"), ("d/a", "x/../../../b")],
)
def test_escaping_links_are_rejected(path: str, target: str) -> None:
    with pytest.raises(PathEscapeError):
        check_link_target(path, target)
    with pytest.raises(PathEscapeError):
        ManifestEntry.link(path, target)


def test_links_inside_the_root_are_fine() -> None:
    assert check_link_target("d/a", "../b") == "../b"
    assert check_link_target("d/a", "e/f") == "e/f"


def test_duplicates_and_file_folder_clashes_are_rejected() -> None:
    d = hash_bytes(b"")
    with pytest.raises(PathEscapeError):
        Manifest([ManifestEntry.file("a", d, 0), ManifestEntry.file("a", d, 0)])
    with pytest.raises(PathEscapeError):
        Manifest(
            [
                ManifestEntry.file("a", d, 0),
                ManifestEntry.file("a-b", d, 0),
                ManifestEntry.file("a/b", d, 0),
            ]
        )
    raw = MANIFEST_MAGIC + f'["a","f",420,0,"{d}"]\n["a","f",420,0,"{d}"]\n'.encode()
    with pytest.raises(PathEscapeError):
        Manifest.parse(raw)


@pytest.mark.parametrize(
    "body",
    [
        b"not json\n",
        b'{"a":1}\n',
        b'["a","x",420,0,"00"]\n',
        b'["a","f",420,-1,"' + b"0" * 64 + b'"]\n',
    ],
)
def test_malformed_lines_are_rejected(body: bytes) -> None:
    with pytest.raises(InvalidArgumentError):
        Manifest.parse(MANIFEST_MAGIC + body)


def test_bad_header_is_rejected() -> None:
    with pytest.raises(InvalidArgumentError):
        Manifest.parse(b"hello\n")


def test_diff() -> None:
    d1, d2 = hash_bytes(b"1"), hash_bytes(b"2")
    a = Manifest(
        [
            ManifestEntry.file("keep", d1, 1),
            ManifestEntry.file("gone", d1, 1),
            ManifestEntry.file("edit", d1, 1),
            ManifestEntry.file("chmod", d1, 1),
        ]
    )
    b = Manifest(
        [
            ManifestEntry.file("keep", d1, 1),
            ManifestEntry.file("new", d2, 1),
            ManifestEntry.file("edit", d2, 1),
            ManifestEntry.file("chmod", d1, 1, executable=True),
        ]
    )
    change = diff(a, b)
    assert change.added == ("new",)
    assert change.removed == ("gone",)
    assert change.modified == ("chmod", "edit")
    assert change
    assert not diff(a, a)


def test_empty_folder_entries() -> None:
    d = hash_bytes(b"x")
    m = Manifest([ManifestEntry.dir("logs"), ManifestEntry.file("data/a", d, 1)])
    data = m.serialize()
    assert b'["logs","d",493,0,' in data
    assert Manifest.parse(data) == m
    assert m.file_digests() == {d}
    assert m.total_size == 1
    with pytest.raises(PathEscapeError):
        ManifestEntry.dir("../up")
    with pytest.raises(PathEscapeError, match="both an entry and the folder"):
        Manifest([ManifestEntry.dir("logs"), ManifestEntry.file("logs/a", d, 1)])
    bad = MANIFEST_MAGIC + f'["logs","d",493,0,"{d}"]\n'.encode()
    with pytest.raises(InvalidArgumentError, match="folder 'logs' with a content id"):
        Manifest.parse(bad)


@given(st.lists(_path, min_size=1, max_size=20, unique=True), st.booleans())
def test_entry_lines_are_the_canonical_json(paths: list[str], executable: bool) -> None:
    """The fast path of an entry line writes exactly what ``json.dumps`` would."""
    import json

    digest = hash_bytes(b"x")
    for path in paths:
        for entry in (
            ManifestEntry.file(path, digest, 7, executable=executable),
            ManifestEntry.dir(path),
        ):
            row = [entry.path, entry.kind[0], entry.mode, entry.size, str(entry.digest)]
            want = json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode()
            assert entry._line() == want


@given(
    st.lists(_path, min_size=1, max_size=20, unique=True),
    st.lists(st.sampled_from(["file", "exec", "dir", "link"]), min_size=20, max_size=20),
)
def test_manifests_serialize_as_their_entry_lines(paths: list[str], kinds: list[str]) -> None:
    """The whole-manifest serialization (one encode for all lines when no path needs an
    escape) gives exactly the lines of its entries, each what ``json.dumps`` would write."""
    import json

    digest = hash_bytes(b"x")
    entries = []
    for path, kind in zip(sorted(paths), kinds, strict=False):
        if kind == "link":
            entries.append(ManifestEntry.link(path, path.rpartition("/")[2] + ".target"))
        elif kind == "dir":
            entries.append(ManifestEntry.dir(path))
        else:
            entries.append(ManifestEntry.file(path, digest, 7, executable=kind == "exec"))
    try:
        manifest = Manifest(entries)
    except PathEscapeError:
        return  # a path that is also another's folder
    lines = []
    for e in manifest.values():
        row: list[object] = [e.path, e.kind[0], e.mode, e.size, str(e.digest)]
        if e.kind == "link":
            row.append(e.target)
        lines.append(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
    assert manifest.serialize() == MANIFEST_MAGIC + "".join(lines).encode()
    assert Manifest.parse(manifest.serialize()) == manifest


@pytest.mark.parametrize(
    "path", ["a/./b", "./a", "a/..", ".", "..", "a//b", "a/", "../x", "x/../y", "a/b/.."]
)
def test_dot_and_empty_segments_are_refused(path: str) -> None:
    from syllabus.blobs.manifest import check_relpath

    with pytest.raises(PathEscapeError):
        check_relpath(path)


@pytest.mark.parametrize("path", [".hidden", "a/.b", "..a", "a/...", "a.b/c..d", "x/.git/y"])
def test_dots_inside_names_are_fine(path: str) -> None:
    from syllabus.blobs.manifest import check_relpath

    assert check_relpath(path) == path


@pytest.mark.parametrize(
    "text", ["A" * 64, "a" * 63, "a" * 65, "g" * 64, " " + "a" * 63, "a" * 63 + "\n", ""]
)
def test_digests_are_64_lowercase_hex(text: str) -> None:
    from syllabus.blobs.digest import Digest
    from syllabus.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="invalid content id"):
        Digest(text)
    assert Digest("0123456789abcdef" * 4) == "0123456789abcdef" * 4


def test_file_digests_read_without_entries() -> None:
    from syllabus.blobs.manifest import file_digests

    d1, d2 = hash_bytes(b"1"), hash_bytes(b"2")
    m = Manifest(
        [
            ManifestEntry.file("a/x.bin", d1, 1),
            ManifestEntry.file('b/"q".txt', d2, 1, executable=True),
            ManifestEntry.link("a/l", "x.bin"),
            ManifestEntry.dir("empty"),
        ]
    )
    assert file_digests(m.serialize()) == {"a/x.bin": d1, 'b/"q".txt': d2}
    assert file_digests(Manifest().serialize()) == {}
    assert file_digests(b"not a manifest") is None
    assert file_digests(MANIFEST_MAGIC + b'["a","f",420,1,"x"]') is None  # no final newline
    assert file_digests(MANIFEST_MAGIC + b'{"a": 1}\n') is None
    assert file_digests(MANIFEST_MAGIC + b'["a","f",420,1,7]\n') is None


# -- the fast parse (one json.loads, checks a column at a time) ------------------------------

_nasty_segment = st.text(alphabet="a.:/\\\x00é", min_size=0, max_size=5)


@given(st.lists(_nasty_segment, min_size=1, max_size=6))
def test_bulk_path_check_agrees_with_check_relpath(paths: list[str]) -> None:
    from syllabus.blobs.manifest import _paths_ok

    def ok(path: str) -> bool:
        try:
            check_relpath(path)
        except PathEscapeError:
            return False
        return True

    assert _paths_ok(paths) == all(ok(p) for p in paths)


def _rows(n: int) -> list[str]:
    d = hash_bytes(b"x")
    return [f'["d{i % 3}/f{i:04d}","f",420,1,"{d}"]' for i in range(n)]


def _manifest(lines: list[str]) -> bytes:
    return MANIFEST_MAGIC + "".join(line + "\n" for line in lines).encode()


@pytest.mark.parametrize(
    "bad",
    [
        '["../up","f",420,1,"{d}"]',
        '["/abs","f",420,1,"{d}"]',
        '["d0/./x","f",420,1,"{d}"]',
        '["a\\\\b","f",420,1,"{d}"]',
        '["a\\u0000b","f",420,1,"{d}"]',
        '["C:x","f",420,1,"{d}"]',
        '["d0/","f",420,1,"{d}"]',
        '["d0//x","f",420,1,"{d}"]',
        '["","f",420,1,"{d}"]',
        '["d0","f",420,1,"{d}"]',  # also the folder of the other files
        '["d1/f0001","f",420,1,"{d}"]',  # a duplicate
        '["x","l",511,1,"{d}","../../etc"]',  # a link leaving the root
        '["x","f",420,1,"{D}"]',  # an upper-case content id
        '["x","f",420,1,"{d}é"]',
        '["x","f",421,1,"{d}"]',
        '["x","f",420,-1,"{d}"]',
        '["x","f",420.0,1,"{d}"]',
        '["x","d",493,0,"{d}"]',  # a folder with a content id
    ],
)
def test_fast_parse_rejects_what_the_line_parse_rejects(bad: str) -> None:
    """A large manifest with one bad line: rejected, as the line-by-line parse rejects it."""
    d = hash_bytes(b"x")
    line = bad.replace("{d}", str(d)).replace("{D}", str(d).upper())
    data = _manifest([*_rows(100), line])
    with pytest.raises(InvalidArgumentError):
        Manifest.parse(data)


def test_two_rows_on_one_line_are_rejected() -> None:
    """Joined with commas they would be valid JSON, but a line holds one entry."""
    rows = _rows(4)
    with pytest.raises(InvalidArgumentError, match="line 3"):
        Manifest.parse(_manifest([rows[0], rows[1] + "," + rows[2], rows[3]]))
    # An empty line is skipped (by the line parse; the fast parse leaves such a manifest to it).
    assert Manifest.parse(_manifest([*rows[:2], "", *rows[2:]])) == Manifest.parse(_manifest(rows))


def test_non_canonical_manifests_parse_as_the_line_parse_does() -> None:
    """Spaces, escapes and any order: the same manifest as its canonical form."""
    rows = _rows(50)
    canonical = Manifest.parse(_manifest(rows))
    shuffled = list(reversed(rows))
    spaced = [r.replace(",", ", ").replace('"d', '"\\u0064') for r in shuffled]
    for lines in (shuffled, spaced):
        parsed = Manifest.parse(_manifest(lines))
        assert parsed == canonical
        assert list(parsed) == sorted(parsed)
        assert parsed.serialize() == canonical.serialize()


def test_fast_parse_gives_what_the_line_parse_gives() -> None:
    from syllabus.blobs.manifest import _entry_from_row, _parse_fast

    d = hash_bytes(b"x")
    lines = [
        *_rows(20),
        f'["e/empty","d",493,0,"{hash_bytes(b"")}"]',
        f'["e/link","l",511,3,"{d}","../d0/f0000"]',
        f'["e/run.sh","f",493,7,"{d}"]',
    ]
    data = _manifest(lines)
    fast = _parse_fast(data)
    assert fast is not None
    import json

    slow = Manifest([_entry_from_row(json.loads(line), "test") for line in lines])
    assert fast == slow
    assert [e.kind for e in fast.values()].count("link") == 1
    assert all(type(e.digest).__name__ == "Digest" for e in fast.values())
