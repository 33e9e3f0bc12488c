"""Blobs of a server on S3 (moto): large records go straight to the bucket with presigned
URLs both ways (uploads checked by the server afterwards, downloads by the client); small
ones stream through the server."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from syllabus.blobs.backend import Flags, Record
from syllabus.blobs.digest import Digest, hash_bytes
from syllabus.blobs.store import BlobStore, open_blob_store
from syllabus.client.remote import PRESIGN_MIN, Http, Redirect, RemoteObjectBackend
from syllabus.errors import BlobCorruptError, BlobNotFoundError, InvalidArgumentError
from syllabus.server.state import ServerConfig
from tests.fixtures.s3 import S3Bucket
from tests.server.live import LiveServer, start_server

pytestmark = pytest.mark.s3


@pytest.fixture
def s3_server(s3_bucket: S3Bucket, tmp_path: Path) -> Iterator[LiveServer]:
    config = ServerConfig(
        {"default": (f"sqlite:///{tmp_path / 'db.sqlite'}", f"s3://{s3_bucket.name}/store")},
        auth=False,
        ui=False,
        s3_endpoint_url=s3_bucket.endpoint_url,
    )
    live = start_server(config)
    yield live
    live.stop()


def test_large_records_go_straight_to_s3(s3_server: LiveServer, s3_bucket: S3Bucket) -> None:
    http = Http(f"{s3_server.url}/w/default")
    store = BlobStore(RemoteObjectBackend(http))
    rng = random.Random(3)
    big = rng.randbytes(3 * 1024 * 1024)  # chunked into records of about 1 MiB and more
    small = b"small and through the server"
    digests = [store.put_bytes(big), store.put_bytes(small)]
    store.flush()
    metrics = httpx.get(f"{s3_server.url}/metrics", timeout=120).text
    presigned = [
        line
        for line in metrics.splitlines()
        if line.startswith("syllabus_blob_bytes_presigned_total")
    ]
    assert presigned
    assert float(presigned[0].split()[-1]) > 1024 * 1024
    assert any("/loose/" in key for key in s3_bucket.keys("store/"))
    reader_http = Http(f"{s3_server.url}/w/default")
    reader = BlobStore(RemoteObjectBackend(reader_http))
    assert reader.read_bytes(digests[0]) == big
    assert reader.read_bytes(digests[1]) == small
    reader.close()
    store.close()
    reader_http.close()
    http.close()


def test_a_bad_presigned_upload_is_refused_and_removed(
    s3_server: LiveServer, s3_bucket: S3Bucket
) -> None:
    digest = "ab" * 32
    api = f"{s3_server.url}/api/v1/w/default/blobs"
    urls = httpx.post(
        f"{api}/presign", json={"digests": [digest], "op": "put"}, timeout=120
    ).json()["urls"]
    target = urls[digest]
    assert httpx.put(target["url"], content=b"\x00" * 100, timeout=120).status_code == 200
    answer = httpx.post(f"{api}/commit", json={"digests": [digest]}, timeout=120)
    assert answer.status_code == 400
    assert answer.json()["code"] in (InvalidArgumentError.code, "blob_corrupt")
    missing = httpx.post(f"{api}/missing", json={"digests": [digest]}, timeout=120)
    assert missing.json()["missing"] == [digest]


def _sent(live: LiveServer) -> tuple[float, float]:
    """Bytes the server streamed to clients, and records it redirected to the bucket."""
    counters = live.state.metrics.counters
    return counters["blob_bytes_sent_total"], counters["blob_records_redirected_total"]


def _upload(live: LiveServer, *blobs: bytes) -> list[Digest]:
    http = Http(f"{live.url}/w/default")
    store = BlobStore(RemoteObjectBackend(http))
    digests = [store.put_bytes(b) for b in blobs]
    store.close()
    http.close()
    return digests


def test_large_downloads_come_straight_from_s3_and_are_checked(
    s3_server: LiveServer, s3_bucket: S3Bucket
) -> None:
    big = random.Random(5).randbytes(3 * 1024 * 1024)
    small = b"small and through the server"
    digests = _upload(s3_server, big, small)
    sent_before, redirected_before = _sent(s3_server)
    http = Http(f"{s3_server.url}/w/default")
    reader = BlobStore(RemoteObjectBackend(http))
    assert reader.read_bytes(digests[0]) == big
    assert reader.read_bytes(digests[1]) == small
    sent, redirected = _sent(s3_server)
    assert redirected > redirected_before  # the large records came from the bucket
    assert sent - sent_before < len(big) / 2  # their bytes never passed through the server
    reader.close()
    http.close()


def test_a_large_packed_record_downloads_as_a_byte_range(
    s3_server: LiveServer, s3_bucket: S3Bucket
) -> None:
    payload = random.Random(6).randbytes(PRESIGN_MIN + 4096)  # under LOOSE_MIN: in a pack
    record = Record(hash_bytes(payload), Flags(0), len(payload), payload)
    direct = open_blob_store(f"s3://{s3_bucket.name}/store", endpoint_url=s3_bucket.endpoint_url)
    direct.backend.write([record])
    direct.flush()
    direct.close()
    assert not any("/loose/" in key for key in s3_bucket.keys("store/"))
    sent_before, redirected_before = _sent(s3_server)
    http = Http(f"{s3_server.url}/w/default")
    backend = RemoteObjectBackend(http)
    got = backend.read(record.digest)
    assert got.payload == payload
    sent, redirected = _sent(s3_server)
    assert (sent - sent_before, redirected - redirected_before) == (0, 1)
    backend.close()
    http.close()


def test_a_tampered_download_is_refused(s3_server: LiveServer, s3_bucket: S3Bucket) -> None:
    big = random.Random(7).randbytes(2 * PRESIGN_MIN)
    record = Record(hash_bytes(big), Flags(0), len(big), big)
    http = Http(f"{s3_server.url}/w/default")
    backend = RemoteObjectBackend(http)
    backend.write([record])
    backend.flush()
    (key,) = [k for k in s3_bucket.keys("store/") if "/loose/" in k]
    stored = s3_bucket.client.get_object(Bucket=s3_bucket.name, Key=key)["Body"].read()
    tampered = stored[:-1] + bytes([stored[-1] ^ 1])
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key=key, Body=tampered)
    reader = RemoteObjectBackend(http)
    with pytest.raises(BlobCorruptError, match="do not hash to its content id"):
        reader.read(record.digest)
    backend.close()
    reader.close()
    http.close()


def test_a_download_of_a_vanished_object_is_a_clear_not_found(
    s3_server: LiveServer, s3_bucket: S3Bucket
) -> None:
    big = random.Random(8).randbytes(2 * PRESIGN_MIN)
    record = Record(hash_bytes(big), Flags(0), len(big), big)
    http = Http(f"{s3_server.url}/w/default")
    backend = RemoteObjectBackend(http)
    backend.write([record])
    backend.flush()
    api = f"{s3_server.url}/api/v1/w/default/blobs"
    urls = httpx.post(
        f"{api}/presign", json={"digests": [record.digest], "op": "get"}, timeout=120
    ).json()["urls"]
    target = Redirect.from_json(record.digest, urls[record.digest])
    for key in s3_bucket.keys("store/"):  # gone between the answer and the download
        s3_bucket.client.delete_object(Bucket=s3_bucket.name, Key=key)
    with pytest.raises(BlobNotFoundError, match="gone from the server's bucket"):
        backend.get_direct(target)
    with pytest.raises(BlobNotFoundError):  # asked again: the server knows it is gone
        RemoteObjectBackend(http).read(record.digest)
    backend.close()
    http.close()


def test_a_server_on_a_folder_streams_every_download(tmp_path: Path) -> None:
    config = ServerConfig(
        {"default": (f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "blobs"))},
        auth=False,
        ui=False,
    )
    live = start_server(config)
    try:
        big = random.Random(9).randbytes(2 * PRESIGN_MIN)
        digests = _upload(live, big)
        http = Http(f"{live.url}/w/default")
        reader = BlobStore(RemoteObjectBackend(http))
        assert reader.read_bytes(digests[0]) == big
        sent, redirected = _sent(live)
        assert sent >= len(big) * 0.9
        assert redirected == 0
        reader.close()
        http.close()
    finally:
        live.stop()
