"""What only the S3 backend does: key layout, commit order, ranged reads, error messages."""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from syllabus.blobs import BlobStore
from syllabus.blobs import s3 as s3_mod
from syllabus.blobs.backend import Flags, Record
from syllabus.blobs.digest import Digest, hash_bytes
from syllabus.blobs.pack import (
    INDEX_MAGIC,
    PACK_MAGIC,
    IndexEntry,
    encode_index_entry,
    encode_loose,
    encode_record_header,
)
from syllabus.blobs.s3 import S3Backend, parse_s3_url
from syllabus.errors import (
    BlobCorruptError,
    BlobNotFoundError,
    ConfigError,
    InvalidArgumentError,
    StorageError,
)
from tests.fixtures.s3 import S3Bucket

pytestmark = pytest.mark.s3


def recs(n: int, size: int = 100, seed: int = 0) -> list[Record]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        payload = rng.randbytes(size) + i.to_bytes(4, "big")
        out.append(Record(hash_bytes(payload), Flags.NONE, len(payload), payload))
    return out


class RecordingClient:
    """Wraps a boto3 client: logs object calls and can make chosen ones fail."""

    LOGGED = ("put_object", "get_object", "head_object", "delete_objects")

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str | None, str | None]] = []
        self.fail: Callable[[str, dict[str, Any]], bool] = lambda name, kwargs: False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in self.LOGGED:
            return attr

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs.get("Key"), kwargs.get("Range")))
            if self.fail(name, kwargs):
                error = {"Error": {"Code": "InternalError", "Message": "We had a\nbad day"}}
                raise ClientError(error, name)  # type: ignore[arg-type]
            return attr(**kwargs)

        return call

    def named(self, name: str) -> list[tuple[str | None, str | None]]:
        return [(key, rng) for n, key, rng in self.calls if n == name]


@pytest.fixture
def client(s3_bucket: S3Bucket) -> RecordingClient:
    return RecordingClient(s3_bucket.client)


def backend_for(bucket: S3Bucket, prefix: str = "", client: Any = None, **kw: Any) -> S3Backend:
    return S3Backend(bucket.name, prefix, client=client or bucket.client, **kw)


def test_url_and_url_parsing(s3_bucket: S3Bucket) -> None:
    assert backend_for(s3_bucket, "/a/b/").url == f"s3://{s3_bucket.name}/a/b"
    assert backend_for(s3_bucket).url == f"s3://{s3_bucket.name}"
    assert parse_s3_url("s3://bucket/some/prefix/") == ("bucket", "some/prefix")
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    for bad in ("http://bucket/x", "s3:///x", "bucket/x"):
        with pytest.raises(InvalidArgumentError):
            parse_s3_url(bad)
    with pytest.raises(InvalidArgumentError):
        S3Backend("a/b", client=s3_bucket.client)


def test_key_layout(s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_mod, "LOOSE_MIN", 1000)
    small, big = recs(3), Record(hash_bytes(b"big"), Flags.ZSTD, 3, b"B" * 1000)
    backend = backend_for(s3_bucket, "team/blobs")
    backend.write([*small, big])
    backend.flush()
    keys = s3_bucket.keys()
    head, tail = big.digest.fanout()
    assert f"team/blobs/loose/{head}/{tail}" in keys
    packs = [k for k in keys if k.startswith("team/blobs/packs/")]
    assert len(packs) == 2
    assert packs[0].removesuffix(".idx") == packs[1].removesuffix(".pack")
    loose = s3_bucket.client.get_object(
        Bucket=s3_bucket.name, Key=f"team/blobs/loose/{head}/{tail}"
    )
    assert loose["Body"].read() == encode_loose(big)
    pack = s3_bucket.client.get_object(Bucket=s3_bucket.name, Key=packs[1])["Body"].read()
    assert pack.startswith(PACK_MAGIC)
    assert encode_record_header(small[0]) + small[0].payload in pack


def test_pack_is_uploaded_before_its_index(s3_bucket: S3Bucket, client: RecordingClient) -> None:
    backend = backend_for(s3_bucket, client=client)
    backend.write(recs(5))
    assert client.named("put_object") == []  # buffered until the flush
    backend.flush()
    puts = [key for key, _ in client.named("put_object")]
    assert len(puts) == 2
    assert puts[0] is not None
    assert puts[0].endswith(".pack")
    assert puts[1] == puts[0].removesuffix(".pack") + ".idx"


def pack_and_index(records: list[Record]) -> tuple[bytes, bytes]:
    """A pack holding ``records`` and its index, built by hand."""
    offset, entries, body = len(PACK_MAGIC), [], [PACK_MAGIC]
    for r in records:
        header = encode_record_header(r)
        body += [header, r.payload]
        offset += len(header)
        entries.append(IndexEntry(r.digest, r.flags, r.size, offset, len(r.payload), 1.0))
        offset += len(r.payload)
    return b"".join(body), INDEX_MAGIC + b"".join(encode_index_entry(e) for e in entries)


def test_pack_without_index_is_invisible(s3_bucket: S3Bucket) -> None:
    records = recs(4)
    pack, index = pack_and_index(records)
    put = s3_bucket.client.put_object
    put(Bucket=s3_bucket.name, Key="packs/0123.pack", Body=pack)

    reader = backend_for(s3_bucket)
    digests = [r.digest for r in records]
    assert reader.contains(digests) == set()
    assert list(reader.iter_info()) == []
    with pytest.raises(BlobNotFoundError):
        reader.read(digests[0])

    put(Bucket=s3_bucket.name, Key="packs/0123.idx", Body=index)  # the commit
    assert reader.contains(digests) == set(digests)  # a miss refreshes the index
    assert list(reader.read_many(digests)) == records


def test_reads_find_a_late_pack_with_an_old_id(s3_bucket: S3Bucket) -> None:
    # Incremental refreshes list only recent pack ids; a read that misses lists them all.
    writer = backend_for(s3_bucket)
    writer.write(recs(2))
    writer.flush()
    reader = backend_for(s3_bucket)
    assert reader.contains([recs(1)[0].digest])
    late = recs(3, seed=9)
    old_id = f"{int(time.time() * 1000) - 3 * 3600 * 1000:012x}" + "7" + "0" * 19
    pack, index = pack_and_index(late)
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key=f"packs/{old_id}.pack", Body=pack)
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key=f"packs/{old_id}.idx", Body=index)
    assert reader.read(late[0].digest) == late[0]
    assert reader.info(late[1].digest).size == late[1].size
    assert reader.contains([r.digest for r in late]) == {r.digest for r in late}


def test_concurrent_writers_sealing_small_packs(s3_bucket: S3Bucket) -> None:
    records = recs(120, size=40)
    backend = backend_for(s3_bucket, pack_size=500)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            backend.write(records[n * 10 : n * 10 + 30])
            backend.flush()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    reader = backend_for(s3_bucket)
    wanted = records[:120]
    assert list(reader.read_many([r.digest for r in wanted])) == wanted
    infos = list(reader.iter_info())
    assert len(infos) == len({i.digest for i in infos}) == 120


def test_failed_index_upload_is_retried_by_the_next_flush(
    s3_bucket: S3Bucket, client: RecordingClient
) -> None:
    records = recs(3)
    backend = backend_for(s3_bucket, client=client)
    client.fail = lambda name, kw: name == "put_object" and kw["Key"].endswith(".idx")
    backend.write(records)
    with pytest.raises(StorageError) as caught:
        backend.flush()
    message = str(caught.value)
    assert "\n" not in message
    assert s3_bucket.name in message
    assert ".idx" in message
    assert backend_for(s3_bucket).contains([r.digest for r in records]) == set()
    assert backend.read(records[0].digest) == records[0]  # still buffered here

    client.fail = lambda name, kw: False
    backend.flush()
    reader = backend_for(s3_bucket)
    assert list(reader.read_many([r.digest for r in records])) == records


def test_adjacent_records_are_read_with_one_ranged_get(
    s3_bucket: S3Bucket, client: RecordingClient
) -> None:
    records = recs(30)
    writer = backend_for(s3_bucket)
    writer.write(records)
    writer.flush()
    reader = backend_for(s3_bucket, client=client)
    wanted = [r.digest for r in records[5:25]]
    assert list(reader.read_many(reversed(wanted))) == records[5:25][::-1]
    gets = [(k, r) for k, r in client.named("get_object") if k and k.endswith(".pack")]
    assert len(gets) == 1
    assert gets[0][1] is not None
    assert gets[0][1].startswith("bytes=")

    client.calls.clear()
    record = reader.read(records[0].digest)
    (_, byte_range), *_ = [(k, r) for k, r in client.named("get_object") if k and ".pack" in k]
    assert byte_range is not None
    start, end = map(int, byte_range.removeprefix("bytes=").split("-"))
    assert end - start + 1 == len(record.payload)


def test_distant_records_are_read_with_separate_gets(
    s3_bucket: S3Bucket, client: RecordingClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(s3_mod, "_RANGE_GAP", 10)  # closer than one record header
    records = recs(6)
    writer = backend_for(s3_bucket)
    writer.write(records)
    writer.flush()
    reader = backend_for(s3_bucket, client=client)
    assert list(reader.read_many([r.digest for r in records[::2]])) == records[::2]
    assert len([k for k, _ in client.named("get_object") if k and k.endswith(".pack")]) == 3


def test_full_buffer_is_uploaded_without_a_flush(s3_bucket: S3Bucket) -> None:
    records = recs(20)
    writer = backend_for(s3_bucket, "p", pack_size=1000)
    writer.write(records)
    reader = backend_for(s3_bucket, "p")
    visible = reader.contains([r.digest for r in records])
    assert 10 <= len(visible) < 20  # whole packs of ~1000 bytes; the rest is buffered
    writer.flush()
    assert reader.contains([r.digest for r in records]) == {r.digest for r in records}
    assert len([k for k in s3_bucket.keys("p/packs/") if k.endswith(".idx")]) >= 3


def test_stale_index_follows_a_repack(s3_bucket: S3Bucket) -> None:
    records = recs(10)
    writer = backend_for(s3_bucket)
    writer.write(records)
    writer.flush()
    stale = backend_for(s3_bucket)
    assert stale.contains([records[0].digest])  # index loaded before the repack
    backend_for(s3_bucket).delete([records[0].digest])
    assert stale.read(records[5].digest) == records[5]
    assert list(stale.read_many([r.digest for r in records[1:]])) == records[1:]


def test_corrupt_loose_object(s3_bucket: S3Bucket) -> None:
    a, b = hash_bytes(b"a"), hash_bytes(b"b")
    head, tail = Digest(a).fanout()
    body = encode_loose(Record(b, Flags.NONE, 1, b"b"))
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key=f"loose/{head}/{tail}", Body=body)
    backend = backend_for(s3_bucket)
    with pytest.raises(BlobCorruptError, match="loose"):
        backend.read(a)
    with pytest.raises(BlobCorruptError):
        backend.info(a)


def test_client_from_endpoint_and_environment(s3_bucket: S3Bucket) -> None:
    records = recs(2)
    with S3Backend.from_url(f"s3://{s3_bucket.name}/x", endpoint_url=s3_bucket.endpoint_url) as b:
        b.write(records)
    assert backend_for(s3_bucket, "x").contains([r.digest for r in records]) == {
        r.digest for r in records
    }


def _one_line_storage_error(call: Callable[[], object]) -> str:
    with pytest.raises(StorageError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    assert type(caught.value) is StorageError
    return message


def test_unreachable_endpoint(s3_bucket: S3Bucket) -> None:
    backend = S3Backend(s3_bucket.name, "p", endpoint_url="http://127.0.0.1:9")
    message = _one_line_storage_error(lambda: backend.contains([hash_bytes(b"x")]))
    assert "http://127.0.0.1:9" in message
    assert f"s3://{s3_bucket.name}/p/" in message


def test_missing_bucket(s3_bucket: S3Bucket) -> None:
    backend = S3Backend("no-such-bucket-here", client=s3_bucket.client)
    message = _one_line_storage_error(lambda: backend.read(hash_bytes(b"x")))
    assert "'no-such-bucket-here' does not exist" in message


def test_missing_credentials(s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    backend = S3Backend(s3_bucket.name, endpoint_url=s3_bucket.endpoint_url)
    message = _one_line_storage_error(lambda: backend.contains([hash_bytes(b"x")]))
    assert "AWS_ACCESS_KEY_ID" in message
    assert s3_bucket.name in message


@pytest.mark.usefixtures("aws_credentials")
def test_invalid_endpoint_url() -> None:
    with pytest.raises(ConfigError, match="endpoint"):
        S3Backend("bucket", endpoint_url="not a url")


def test_boto3_missing_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(ConfigError, match=r"pip install 'syllabus\[s3\]'"):
        S3Backend("bucket")


def test_gc_deletes_only_with_force(s3_bucket: S3Bucket) -> None:
    store = BlobStore(backend_for(s3_bucket, "gc"))
    digest = store.put_bytes(b"unreferenced " * 10)
    store.flush()
    with pytest.raises(StorageError, match=r"no other process is writing.*force"):
        store.gc([], grace_seconds=0, dry_run=False)
    assert store.has(digest)
    assert digest in store.gc([], grace_seconds=0).unreferenced  # dry runs work
    report = store.gc(list, grace_seconds=0, dry_run=False, force=True)
    assert report.unreferenced == (digest,)
    assert not store.has(digest)
    store.close()
