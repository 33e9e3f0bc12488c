"""Blobs of a server on S3 (moto): large records go straight to the bucket with presigned
URLs, checked by the server afterwards; small ones stream through the server."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from syllabus.blobs.store import BlobStore
from syllabus.client.remote import Http, RemoteObjectBackend
from syllabus.errors import InvalidArgumentError
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
