"""BlobStore: round trips, chunking and dedup, verified reads, trees, gc, du, URLs."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import blake3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syllabus.blobs import (
    CHUNK_AVG,
    CHUNK_MAX,
    LOOSE_MIN,
    WHOLE_MAX,
    BlobStore,
    Flags,
    LocalBackend,
    Record,
    hash_bytes,
    open_blob_store,
)
from syllabus.blobs.records import encode_payload, encode_small_payloads
from syllabus.blobs.store import _read_small
from syllabus.errors import (
    BlobCorruptError,
    BlobNotFoundError,
    InvalidArgumentError,
    PathEscapeError,
    StorageError,
)

from .conftest import random_bytes

_SIZES = st.one_of(
    st.integers(0, 300),
    st.sampled_from([WHOLE_MAX - 1, WHOLE_MAX, WHOLE_MAX + 1, CHUNK_MAX + 1]),
    st.integers(WHOLE_MAX - 1000, 3 * WHOLE_MAX),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(size=_SIZES, seed=st.integers(0, 2**32), compressible=st.booleans())
def test_put_bytes_round_trip(store: BlobStore, size: int, seed: int, compressible: bool) -> None:
    data = (b"abcdefgh" * (size // 8 + 1))[:size] if compressible else random_bytes(size, seed)
    digest = store.put_bytes(data)
    assert digest == hash_bytes(data)
    assert store.has(digest)
    assert store.size(digest) == size
    assert store.read_bytes(digest) == data
    with store.open(digest) as reader:
        got = bytearray()
        while piece := reader.read(100_000):
            got += piece
    assert got == data
    assert (store.chunks(digest) is not None) == (size > WHOLE_MAX)


def test_put_file_digest_is_b3sum(store: BlobStore, tmp_path: Path) -> None:
    data = random_bytes(3 * CHUNK_AVG + 12345, seed=3)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    seen: list[tuple[int, int | None]] = []
    entry = store.put_file(path, progress=lambda n, t: seen.append((n, t)))
    assert entry.digest == blake3.blake3(data).hexdigest()
    assert entry.size == len(data)
    assert sum(n for n, _ in seen) == len(data)
    assert {t for _, t in seen} == {len(data)}
    fresh = BlobStore(LocalBackend(store.url))  # durable and visible once put_file returns
    assert fresh.read_bytes(entry.digest) == data
    fresh.close()


def test_random_data_is_not_compressed_text_is(store: BlobStore) -> None:
    noise, text = random_bytes(100_000, 1), b"hello world " * 10_000
    store.put_bytes(noise)
    store.put_bytes(text)
    assert store.backend.info(hash_bytes(noise)).flags == Flags.NONE
    info = store.backend.info(hash_bytes(text))
    assert info.flags == Flags.ZSTD
    assert info.stored_size < len(text) // 10


def _stored(store: BlobStore) -> int:
    store.flush()
    return store.du().total.stored_bytes


def test_edits_store_few_new_bytes(store: BlobStore, tmp_path: Path) -> None:
    size = 64 * 1024 * 1024
    v0 = random_bytes(size, seed=4)
    mid = size // 2
    v1 = v0[:mid] + random_bytes(1024 * 1024, seed=5) + v0[mid + 1024 * 1024 :]
    v2 = v1[:4096] + b"x" * 100 + v1[4096:]
    path = tmp_path / "big.bin"
    sizes = []
    for version in (v0, v1, v2):
        path.write_bytes(version)
        assert store.put_file(path).digest == hash_bytes(version)
        sizes.append(_stored(store))
    bound = 2 * CHUNK_MAX + 64 * 1024  # the touched chunks and a new chunk list, at most
    assert sizes[1] - sizes[0] <= 1024 * 1024 + bound
    assert sizes[2] - sizes[1] <= bound
    assert store.put_file(path).digest == hash_bytes(v2)
    assert _stored(store) == sizes[2]  # re-ingest writes nothing


def _corrupt_last_byte_of(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x55
    path.write_bytes(bytes(data))


def test_corrupt_packed_object(store: BlobStore, store_dir: Path) -> None:
    data = random_bytes(5000, 6)
    digest = store.put_bytes(data)
    store.close()
    (pack,) = (store_dir / "packs").glob("*.pack")
    _corrupt_last_byte_of(pack)
    bad = BlobStore(LocalBackend(store_dir))
    with pytest.raises(BlobCorruptError, match=digest):
        bad.read_bytes(digest)
    with pytest.raises(BlobCorruptError, match=digest), bad.open(digest) as reader:
        reader.read()
    report = bad.verify()
    assert not report.ok
    assert list(report.corrupt) == [digest]
    bad.close()


def test_corrupt_loose_object(store: BlobStore, store_dir: Path) -> None:
    data = random_bytes(LOOSE_MIN, 7)
    digest = hash_bytes(data)
    store.backend.write([Record(digest, Flags.NONE, len(data), data)])
    assert store.read_bytes(digest) == data
    _corrupt_last_byte_of(store_dir / "loose" / digest[:2] / digest[2:])
    with pytest.raises(BlobCorruptError, match=digest):
        store.read_bytes(digest)
    assert list(store.verify().corrupt) == [digest]


def test_corrupt_chunk_detected_while_streaming(store: BlobStore, store_dir: Path) -> None:
    data = random_bytes(WHOLE_MAX + CHUNK_AVG, 8)
    digest = store.put_bytes(data)
    store.close()
    (pack,) = (store_dir / "packs").glob("*.pack")
    original = pack.read_bytes()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 1  # inside a chunk
    pack.write_bytes(bytes(flipped))
    bad = BlobStore(LocalBackend(store_dir))
    with bad.open(digest) as reader:
        assert reader.read(1) == data[:1]  # chunks before the bad one stream fine
        with pytest.raises(BlobCorruptError, match=digest):
            reader.read()
    report = bad.verify()
    assert digest in report.corrupt
    assert len(report.corrupt) == 2  # the chunk and the file
    # now only the chunk list, written last: its last chunk's length is wrong
    pack.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(BlobCorruptError, match=digest):
        bad.read_bytes(digest)
    assert list(bad.verify().corrupt) == [digest]
    bad.close()


def test_get_file_checks_a_chunked_file_once_and_keeps_nothing_of_a_bad_chunk(
    store: BlobStore, store_dir: Path, tmp_path: Path
) -> None:
    data = random_bytes(WHOLE_MAX + 3 * CHUNK_AVG, 11)
    digest = store.put_bytes(data)
    store.close()
    (pack,) = (store_dir / "packs").glob("*.pack")
    flipped = bytearray(pack.read_bytes())
    flipped[len(flipped) // 2] ^= 1  # inside a chunk: only the whole file's id tells
    pack.write_bytes(bytes(flipped))
    dest = tmp_path / "file.bin"
    bad = BlobStore(LocalBackend(store_dir))
    with pytest.raises(BlobCorruptError, match=digest):
        bad.get_file(digest, dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]  # no file, no temp file
    bad.close()


def test_get_file_is_atomic_and_verified(store: BlobStore, store_dir: Path, tmp_path: Path) -> None:
    data = random_bytes(WHOLE_MAX + 10, 9)
    digest = store.put_bytes(data)
    dest = tmp_path / "out" / "file.bin"
    dest.parent.mkdir()
    store.get_file(digest, dest, mode=0o600)
    assert dest.read_bytes() == data
    assert dest.stat().st_mode & 0o777 == 0o600
    store.close()
    for pack in (store_dir / "packs").glob("*.pack"):
        _corrupt_last_byte_of(pack)
    dest.write_bytes(b"old")
    bad = BlobStore(LocalBackend(store_dir))
    with pytest.raises(BlobCorruptError):
        bad.get_file(digest, dest)
    assert dest.read_bytes() == b"old"
    assert [p.name for p in dest.parent.iterdir()] == ["file.bin"]  # no temp left
    with pytest.raises(BlobNotFoundError):
        bad.get_file(hash_bytes(b"missing"), dest)
    bad.close()


def _make_tree(root: Path) -> None:
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "a.txt").write_text("hello")
    (root / "sub" / "b.bin").write_bytes(random_bytes(WHOLE_MAX + 5, 10))
    (root / "sub" / "deep" / "empty").write_bytes(b"")
    run = root / "run.sh"
    run.write_text("#!/bin/sh\necho hi\n")
    run.chmod(0o755)
    (root / "link").symlink_to("sub/b.bin")
    (root / "sub" / "up").symlink_to("../a.txt")
    (root / "skip.tmp").write_text("ignored")


def test_put_tree_and_materialize(store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    _make_tree(src)
    tree = store.put_tree(src, ignore=["*.tmp"])
    assert sorted(tree.manifest) == [
        "a.txt",
        "link",
        "run.sh",
        "sub/b.bin",
        "sub/deep/empty",
        "sub/up",
    ]
    assert tree.manifest["run.sh"].executable
    assert not tree.manifest["a.txt"].executable
    assert tree.manifest["link"].target == "sub/b.bin"
    assert store.get_manifest(tree.digest) == tree.manifest
    assert store.put_tree(src, ignore=lambda rel: rel.endswith(".tmp")).digest == tree.digest
    out = tmp_path / "out"
    store.materialize(tree.digest, out)
    for rel in ("a.txt", "sub/b.bin", "sub/deep/empty", "run.sh"):
        assert (out / rel).read_bytes() == (src / rel).read_bytes()
    assert os.access(out / "run.sh", os.X_OK)
    assert not os.access(out / "a.txt", os.X_OK)
    assert os.readlink(out / "link") == "sub/b.bin"
    assert (out / "sub" / "up").read_text() == "hello"
    assert not (out / "skip.tmp").exists()
    reachable = store.expand([tree.digest])
    b_digest = tree.manifest["sub/b.bin"].digest
    chunks = store.chunks(b_digest)
    assert chunks is not None
    assert {tree.digest, b_digest, *(d for d, _ in chunks)} <= reachable
    assert store.dangling([tree.digest, b_digest]) == {}
    a_digest = tree.manifest["a.txt"].digest
    store.backend.delete([a_digest, chunks[0][0]])
    assert store.dangling([tree.digest, b_digest]) == {
        tree.digest: {a_digest, chunks[0][0]},
        b_digest: {chunks[0][0]},
    }
    assert a_digest not in store.expand([tree.digest])


def test_put_tree_refuses_escaping_links(store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "evil").symlink_to("/etc/passwd")
    with pytest.raises(PathEscapeError, match="evil"):
        store.put_tree(src)
    (src / "evil").unlink()
    (src / "evil").symlink_to("../outside")
    with pytest.raises(PathEscapeError):
        store.put_tree(src)


def test_materialize_refuses_symlinked_folder_escape(store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f").write_text("x")
    tree = store.put_tree(src)
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "d").symlink_to(elsewhere)  # a trap already in the destination
    with pytest.raises(PathEscapeError):
        store.materialize(tree.digest, out)
    assert not (elsewhere / "f").exists()


def test_materialize_rejects_a_hostile_manifest(store: BlobStore, tmp_path: Path) -> None:
    digest = hash_bytes(b"x")
    hostile = f'syllabus-manifest 1\n["../evil","f",420,1,"{digest}"]\n'.encode()
    store.put_bytes(b"x")
    tree = store.put_bytes(hostile)
    with pytest.raises(PathEscapeError):
        store.materialize(tree, tmp_path / "out")
    assert not (tmp_path / "evil").exists()


def test_many_small_files(store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "many"
    for i in range(20):
        (src / f"d{i}").mkdir(parents=True)
        for j in range(50):
            (src / f"d{i}" / f"{j}.txt").write_bytes(random_bytes(1024, i * 100 + j % 25))
    tree = store.put_tree(src)
    assert len(tree.manifest) == 1000
    assert len(store.missing(tree.manifest.file_digests())) == 0
    assert store.du().whole.count == 500 + 1  # duplicates stored once, plus the manifest


def test_gc_dry_run_then_real(store: BlobStore, tmp_path: Path) -> None:
    keep = store.put_bytes(random_bytes(WHOLE_MAX + 1, 11))
    drop = store.put_bytes(random_bytes(WHOLE_MAX + 2, 12))
    small = store.put_bytes(b"small and unreferenced")
    store.flush()
    young = store.gc([keep], grace_seconds=3600)
    assert young.count == 0  # everything is within the grace period
    dry = store.gc([keep], grace_seconds=0)
    assert dry.dry_run
    assert {drop, small} <= set(dry.unreferenced)
    assert keep not in dry.unreferenced
    assert store.has(drop)
    real = store.gc([keep], grace_seconds=0, dry_run=False)
    assert real.unreferenced == dry.unreferenced
    assert real.freed_bytes >= real.unreferenced_bytes > WHOLE_MAX
    assert store.missing([drop, small, keep]) == {drop, small}
    assert store.read_bytes(keep) == random_bytes(WHOLE_MAX + 1, 11)
    assert store.verify().ok


def test_verify_reports_missing_chunks(store: BlobStore) -> None:
    digest = store.put_bytes(random_bytes(WHOLE_MAX + 3, 13))
    chunks = store.chunks(digest)
    assert chunks is not None
    store.backend.delete([chunks[0][0]])
    report = store.verify()
    assert report.missing_chunks == {digest: (chunks[0][0],)}
    assert not report.ok


def test_du_by_kind(store: BlobStore) -> None:
    store.put_bytes(b"whole")
    store.put_bytes(random_bytes(WHOLE_MAX + 4, 14))
    usage = store.du()
    assert usage.whole.count == 1
    assert usage.chunk_lists.count == 1
    assert usage.chunk_lists.logical_bytes == WHOLE_MAX + 4
    assert usage.chunks.logical_bytes == WHOLE_MAX + 4
    assert usage.total.logical_bytes == WHOLE_MAX + 4 + 5
    assert usage.total.count == 2 + usage.chunks.count


def test_open_blob_store_urls(tmp_path: Path) -> None:
    with open_blob_store(str(tmp_path / "a")) as a:
        digest = a.put_bytes(b"x")
    with open_blob_store((tmp_path / "a").as_uri()) as b:
        assert b.read_bytes(digest) == b"x"
    with pytest.raises(InvalidArgumentError):
        open_blob_store("ftp://host/x")
    with pytest.raises(InvalidArgumentError):
        open_blob_store("s3:///no-bucket")


@pytest.mark.parametrize(
    ("data", "compressed"),
    [
        (b"x" * 63, False),  # too small to bother
        (b"name,value\n" + b"alpha,1\nbeta,2\n" * 70, True),  # a small text file
        (random_bytes(1024, 3), False),
        (random_bytes(30_000, 4), False),
        (b"0123456789abcdef" * 2000, True),  # 32 KiB: the whole-payload probe
        (b"0123456789abcdef" * 3000, True),  # past it: the sampled path
    ],
)
def test_small_payloads_compressed_where_it_pays(data: bytes, compressed: bool) -> None:
    flags, payload = encode_payload(data)
    assert (flags == Flags.ZSTD) is compressed
    if compressed:
        assert len(payload) <= len(data) * 0.9
    else:
        assert payload == data


def test_a_batch_of_small_payloads_is_encoded_as_each_would_be() -> None:
    text = b"name,value\n" + b"alpha,1\nbeta,2\n" * 70
    randoms = [random_bytes(1024, seed) for seed in range(50)]
    # nothing compresses: one probe for the batch, every payload stored as it is
    assert encode_small_payloads(randoms) == [(Flags.NONE, d) for d in randoms]
    # one text file among random ones is still compressed, the random ones are not
    mixed = [*randoms[:25], text, *randoms[25:], b"x" * 10]
    encoded = encode_small_payloads(mixed)
    assert encoded == [encode_payload(d) for d in mixed]
    assert encoded[25][0] == Flags.ZSTD
    assert sum(1 for flags, _ in encoded if flags == Flags.ZSTD) == 1
    # a payload past the whole-payload probe size: each gets its own (sampled) probe
    big_text = b"0123456789abcdef" * 3000
    assert encode_small_payloads([randoms[0], big_text]) == [
        (Flags.NONE, randoms[0]),
        encode_payload(big_text),
    ]
    assert encode_small_payloads([]) == []


def test_storing_files_leaves_their_access_times(store: BlobStore, tmp_path: Path) -> None:
    """Small files are read with O_NOATIME where allowed: an add of many files does not
    make the kernel write every inode back for its access time (relatime would update an
    access time older than the modification time)."""
    if not getattr(os, "O_NOATIME", 0):
        pytest.skip("no O_NOATIME on this system")
    paths = []
    for i in range(3):
        path = tmp_path / f"f{i}.bin"
        path.write_bytes(random_bytes(1000 + i, seed=i))
        st = path.stat()
        os.utime(path, ns=(st.st_mtime_ns - 10**12, st.st_mtime_ns))  # atime long before
        paths.append(path)
    try:
        os.close(os.open(paths[0], os.O_RDONLY | os.O_NOATIME))
    except PermissionError:
        pytest.skip("O_NOATIME refused for our own files here")
    before = [p.stat().st_atime_ns for p in paths]
    entries = store.put_files(paths)
    assert [p.stat().st_atime_ns for p in paths] == before
    assert [e.digest for e in entries] == [hash_bytes(p.read_bytes()) for p in paths]


def test_small_reads_without_noatime_where_it_is_refused(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """O_NOATIME is refused (EPERM) for files of other users: they are read without it."""
    noatime = getattr(os, "O_NOATIME", 0)
    if not noatime:
        pytest.skip("no O_NOATIME on this system")
    real_open = os.open
    refused = []

    def open_(path: str, flags: int, *args: int, **kwargs: object) -> int:
        if flags & noatime:
            refused.append(path)
            raise PermissionError(errno.EPERM, "Operation not permitted", path)
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    paths = []
    for i in range(3):
        paths.append(tmp_path / f"f{i}.bin")
        paths[-1].write_bytes(random_bytes(500, seed=i))
    monkeypatch.setattr(os, "open", open_)
    entries = store.put_files(paths)
    monkeypatch.undo()
    assert [e.digest for e in entries] == [hash_bytes(p.read_bytes()) for p in paths]
    assert len(refused) == 1  # tried once, then the rest of the batch goes without it


def test_small_reads_follow_files_that_changed_size(tmp_path: Path) -> None:
    path = tmp_path / "grew.txt"
    path.write_bytes(b"a" * 10)
    assert _read_small(str(path), 5) == b"a" * 10  # grew since the scan
    assert _read_small(str(path), 20) == b"a" * 10  # shrank
    with pytest.raises(StorageError, match="cannot read"):
        _read_small(str(tmp_path / "gone"), 10)


def test_empty_folders_round_trip(store: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "logs").mkdir(parents=True)
    (src / "a" / "b" / "c").mkdir(parents=True)
    (src / "only-ignored").mkdir()
    (src / "only-ignored" / "x.tmp").write_text("ignored")
    (src / "data").mkdir()
    (src / "data" / "f.txt").write_text("content")
    tree = store.put_tree(src, ignore=["*.tmp"])
    kinds = {path: entry.kind for path, entry in tree.manifest.items()}
    assert kinds == {"a/b/c": "dir", "data/f.txt": "file", "logs": "dir", "only-ignored": "dir"}
    assert store.dangling([tree.digest]) == {}
    out = tmp_path / "out"
    store.materialize(tree.digest, out)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "a",
        "a/b",
        "a/b/c",
        "data",
        "data/f.txt",
        "logs",
        "only-ignored",
    ]
    assert store.put_tree(out).digest == tree.digest


def test_materialize_creates_nothing_outside_through_a_symlinked_parent(
    store: BlobStore, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    (src / "d" / "deeper").mkdir(parents=True)
    (src / "d" / "deeper" / "f").write_text("x")
    (src / "d" / "empty").mkdir()
    tree = store.put_tree(src)
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (out / "d").symlink_to(elsewhere)
    with pytest.raises(PathEscapeError):
        store.materialize(tree.digest, out)
    assert list(elsewhere.iterdir()) == []


def test_put_files_stores_several_files_with_one_flush(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datas = [
        random_bytes(1024, 1),
        b"",
        random_bytes(WHOLE_MAX + 1, 2),  # chunked
        random_bytes(1024, 1),  # a duplicate
        b"text " * 100,
    ]
    paths = []
    for i, data in enumerate(datas):
        path = tmp_path / f"f{i}.bin"
        path.write_bytes(data)
        paths.append(path)
    flushes: list[None] = []
    real_flush = store.backend.flush

    def counted_flush() -> None:
        flushes.append(None)
        real_flush()

    monkeypatch.setattr(store.backend, "flush", counted_flush)
    seen: list[int] = []
    entries = store.put_files(paths, progress=lambda n, _t: seen.append(n))
    assert [e.digest for e in entries] == [blake3.blake3(d).hexdigest() for d in datas]
    assert [e.size for e in entries] == [len(d) for d in datas]
    assert sum(seen) == sum(len(d) for d in datas)
    assert len(flushes) == 1
    fresh = BlobStore(LocalBackend(store.url))  # durable and visible once put_files returns
    assert [fresh.read_bytes(e.digest) for e in entries] == datas
    fresh.close()


def test_put_files_without_flush_and_with_stale_sizes(store: BlobStore, tmp_path: Path) -> None:
    small = tmp_path / "small.bin"
    small.write_bytes(b"a" * 100)
    grown = tmp_path / "grown.bin"
    grown.write_bytes(random_bytes(5000, 4))
    (stored_small, stored_grown) = store.put_files([small, grown], sizes=[100, 10], flush=False)
    assert stored_grown.size == 5000  # read whole although listed smaller
    assert stored_grown.digest == hash_bytes(grown.read_bytes())
    fresh = BlobStore(LocalBackend(store.url))
    assert fresh.missing([stored_small.digest, stored_grown.digest])  # not committed yet
    store.flush()
    assert not fresh.missing([stored_small.digest, stored_grown.digest])
    fresh.close()
    with pytest.raises(InvalidArgumentError):
        store.put_files([small], sizes=[1, 2])
    with pytest.raises(StorageError):
        store.put_files([tmp_path / "absent.bin"])
    assert store.put_files([]) == []


def test_small_files_are_stored_on_the_calling_thread(store: BlobStore, tmp_path: Path) -> None:
    """Batches of tiny files run on the calling thread (no pool is started); batches of
    files averaging 64 KiB or more go to worker threads."""
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    paths = []
    for i in range(600):  # more than two batches
        paths.append(tiny / f"{i}.bin")
        paths[-1].write_bytes(i.to_bytes(4, "little") * 100)
    entries = store.put_files(paths)
    assert store._pool is None
    assert entries[7].digest == hash_bytes((7).to_bytes(4, "little") * 100)
    medium = tmp_path / "medium"
    medium.mkdir()
    paths = []
    for i in range(300):
        paths.append(medium / f"{i}.bin")
        paths[-1].write_bytes(random_bytes(64 * 1024, i))
    entries = store.put_files(paths)
    assert store._pool is not None
    assert [e.digest for e in entries] == [hash_bytes(p.read_bytes()) for p in paths]
