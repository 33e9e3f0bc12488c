"""The prediction log in S3 beside the blobs: the writer seals segments into the bucket,
``monitor run`` reads them from there (each segment once), feedback joins by request id."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from syllabus import Client
from syllabus.deploy.predlog import (
    FEEDBACK,
    PREDICTIONS,
    PredictionLogWriter,
    open_segments,
    predictions_root,
)
from tests.fixtures.s3 import S3Bucket

pytestmark = pytest.mark.s3

HOUR = 3_600_000


def _log(writer: PredictionLogWriter, rng: np.random.Generator, first: int, start: float) -> None:
    for i in range(first, first + 50):
        writer.log(request_id=f"r{i}", model="churn", version=1,
                   inputs={"age": rng.normal(40, 10, 3), "city": np.array(["a", "b", "a"])},
                   outputs={"prediction": np.array([1, 0, 1]), "score": np.array([0.9, 0.2, 0.8])},
                   latency_ms=10.0, ts=start + i)  # fmt: skip


def test_monitor_run_reads_the_log_from_s3_once(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    reference = {"age": rng.normal(40, 10, 2000), "city": rng.choice(["a", "b"], 2000)}
    pq.write_table(pa.table(reference), tmp_path / "ref.parquet")
    blobs = f"s3://{s3_bucket.name}/team"
    with Client(cwd=tmp_path, blobs=blobs, s3_endpoint_url=s3_bucket.endpoint_url) as client:
        root = predictions_root(client.settings)
        assert root == f"{blobs}/predictions"
        client.create_monitor("m", service="svc", reference=str(tmp_path / "ref.parquet"),
                              window="1h")  # fmt: skip
        start = ((time.time_ns() // 1_000_000 // HOUR - 5) * HOUR) / 1000 + 60
        endpoint = s3_bucket.endpoint_url
        with PredictionLogWriter(root, "svc", flush_rows=90, s3_endpoint_url=endpoint) as writer:
            _log(writer, rng, 0, start)
            for i in range(0, 50, 2):
                writer.log_feedback(f"r{i}", [1, 1], rows=[0, 1], ts=start + 200)
        assert writer.errors == 0
        keys = s3_bucket.keys("team/predictions/svc/")
        assert keys
        assert all(k.endswith(".parquet") and "/seg-" in k for k in keys)
        assert any(k.startswith("team/predictions/svc/feedback/") for k in keys)
        assert not (tmp_path / ".syllabus" / "predictions").exists()  # nothing local

        first = client.run_monitor("m")[0]
        assert (first.rows, first.labelled) == (150, 50)
        assert first.segments == len(s3_bucket.keys("team/predictions/svc/predictions/"))
        (window,) = client.monitor_windows("m")
        assert window.summary["performance"]["accuracy"] == pytest.approx(0.5)
        assert client.monitor_status("m").pending_segments == 0
        again = client.run_monitor("m")[0]
        assert (again.segments, again.feedback_segments, again.rows) == (0, 0, 0)

        with PredictionLogWriter(root, "svc", s3_endpoint_url=endpoint) as writer:
            _log(writer, rng, 50, start)
        assert client.monitor_status("m").pending_segments == 1
        later = client.run_monitor("m")[0]
        assert (later.segments, later.rows) == (1, 150)
        assert client.monitor_windows("m")[0].rows == 300


def test_s3_segments_read_back_column_by_column(s3_bucket: S3Bucket) -> None:
    root = f"s3://{s3_bucket.name}/logs"
    with PredictionLogWriter(root, "svc", s3_endpoint_url=s3_bucket.endpoint_url) as writer:
        writer.log(request_id="a", model="m", version=2, inputs={"x": np.arange(4.0)},
                   outputs={"prediction": np.array([0, 1, 1, 0])})  # fmt: skip
        writer.log_feedback("a", [0, 1, 1, 1])
    segments = open_segments(root, "svc", s3_endpoint_url=s3_bucket.endpoint_url)
    (name,) = segments.names(PREDICTIONS)
    assert segments.where(PREDICTIONS, name) == f"{root}/svc/predictions/{name}"
    table = pq.ParquetFile(segments.open(PREDICTIONS, name)).read(columns=["request_id", "in.x"])
    assert table.to_pydict() == {"request_id": ["a"] * 4, "in.x": [0.0, 1.0, 2.0, 3.0]}
    (fb,) = segments.names(FEEDBACK)
    assert pq.read_table(segments.open(FEEDBACK, fb))["label"].to_pylist() == [0, 1, 1, 1]


def test_a_missing_bucket_drops_the_segment_and_counts_an_error(s3_bucket: S3Bucket) -> None:
    root = f"s3://{s3_bucket.name}-missing/logs"
    with PredictionLogWriter(root, "svc", s3_endpoint_url=s3_bucket.endpoint_url) as writer:
        writer.log(request_id="a", model="m", version=1, inputs={"x": [1.0]},
                   outputs={"prediction": [1]})  # fmt: skip
    assert (writer.errors, writer.rows_written) == (1, 0)
