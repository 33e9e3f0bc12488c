"""The prediction log: atomic Parquet segments, flushed by rows and time, thread-safe."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from syllabus.config import load_settings
from syllabus.deploy.predlog import (
    PredictionLogWriter,
    list_segments,
    predictions_root,
    read_segments,
)
from syllabus.errors import ConfigError, InvalidArgumentError


def _log(writer: PredictionLogWriter, rid: str, rows: int = 1, **kw: object) -> None:
    writer.log(
        request_id=rid,
        model="churn",
        version=3,
        inputs={"age": np.arange(rows, dtype=np.float64), "city": np.array(["a"] * rows, object)},
        outputs={"prediction": np.ones(rows, dtype=np.int64), "score": np.full(rows, 0.75)},
        **kw,  # type: ignore[arg-type]
    )


def test_close_writes_one_segment_with_the_contract_columns(tmp_path: Path) -> None:
    ts = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    with PredictionLogWriter(tmp_path, "churn", flush_rows=1000, flush_seconds=60) as writer:
        _log(writer, "r1", rows=2, ts=ts, latency_ms=1.5)
        _log(writer, "r2", rows=1, variant="canary")
        assert list_segments(tmp_path, "churn") == []  # buffered, not written yet
    segments = list_segments(tmp_path, "churn")
    assert len(segments) == 1
    assert segments[0].parent == tmp_path / "churn" / "predictions"
    assert segments[0].name.startswith("seg-")
    assert segments[0].suffix == ".parquet"
    table = read_segments(segments)
    schema = table.schema
    assert schema.field("request_id").type == pa.string()
    assert schema.field("row").type == pa.int32()
    assert schema.field("ts").type == pa.timestamp("ms", tz="UTC")
    assert schema.field("version").type == pa.int32()
    assert schema.field("latency_ms").type == pa.float64()
    assert schema.field("in.age").type == pa.float64()
    assert schema.field("in.city").type == pa.string()
    assert schema.field("out.score").type == pa.float64()
    rows = table.to_pylist()
    assert [(r["request_id"], r["row"], r["variant"]) for r in rows] == [
        ("r1", 0, "primary"),
        ("r1", 1, "primary"),
        ("r2", 0, "canary"),
    ]
    assert rows[0]["ts"] == ts
    assert rows[0]["latency_ms"] == 1.5
    assert rows[1]["in.age"] == 1.0
    assert rows[2]["out.prediction"] == 1


def test_flushes_when_enough_rows_wait(tmp_path: Path) -> None:
    writer = PredictionLogWriter(tmp_path, "svc", flush_rows=10, flush_seconds=3600)
    try:
        _log(writer, "big", rows=10)
        deadline = time.monotonic() + 10
        while not list_segments(tmp_path, "svc") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(list_segments(tmp_path, "svc")) == 1
    finally:
        writer.close()


def test_flushes_after_flush_seconds(tmp_path: Path) -> None:
    writer = PredictionLogWriter(tmp_path, "svc", flush_rows=10**6, flush_seconds=0.05)
    try:
        _log(writer, "one")
        deadline = time.monotonic() + 10
        while not list_segments(tmp_path, "svc") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert read_segments(list_segments(tmp_path, "svc")).num_rows == 1
    finally:
        writer.close()


def test_many_threads_lose_nothing_and_segments_sort_in_time(tmp_path: Path) -> None:
    writer = PredictionLogWriter(tmp_path, "svc", flush_rows=50, flush_seconds=0.02)

    def work(t: int) -> None:
        for i in range(200):
            _log(writer, f"t{t}-{i}", rows=1 + i % 3)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    writer.close()
    segments = list_segments(tmp_path, "svc")
    assert len(segments) > 1
    assert segments == sorted(segments)
    table = read_segments(segments, columns=["request_id", "row"])
    assert table.column_names == ["request_id", "row"]
    expected = 8 * sum(1 + i % 3 for i in range(200))
    assert table.num_rows == expected
    pairs = set(zip(table["request_id"].to_pylist(), table["row"].to_pylist(), strict=True))
    assert len(pairs) == expected


def test_readers_ignore_temp_files_and_other_names(tmp_path: Path) -> None:
    with PredictionLogWriter(tmp_path, "svc") as writer:
        _log(writer, "a")
    folder = tmp_path / "svc" / "predictions"
    (folder / ".seg-zzz.parquet.123.tmp").write_bytes(b"partial")
    (folder / "notes.txt").write_text("x")
    assert [p.name for p in list_segments(tmp_path, "svc")] == [
        p.name for p in folder.glob("seg-*.parquet")
    ]
    assert read_segments(list_segments(tmp_path, "svc")).num_rows == 1
    assert list_segments(tmp_path, "other") == []


def test_feedback_segments_join_predictions(tmp_path: Path) -> None:
    with PredictionLogWriter(tmp_path, "svc") as writer:
        _log(writer, "r1", rows=2)
        writer.log_feedback("r1", [0, 1])
        writer.log_feedback("r1", ["yes"], rows=[1])
    fb = read_segments(list_segments(tmp_path, "svc", "feedback"))
    assert fb.schema.field("ts").type == pa.timestamp("ms", tz="UTC")
    assert fb.column("request_id").to_pylist() == ["r1", "r1", "r1"]
    assert fb.column("row").to_pylist() == [0, 1, 1]
    assert fb.column("label").to_pylist() == ["0", "1", "yes"]  # mixed kinds read as text


def test_different_columns_across_requests_are_null_filled(tmp_path: Path) -> None:
    with PredictionLogWriter(tmp_path, "svc") as writer:
        _log(writer, "a")
        writer.log(
            request_id="b", model="m", version=1, inputs={"age": [2]}, outputs={"prediction": [3]}
        )
    table = read_segments(list_segments(tmp_path, "svc"))
    assert table.column("in.city").to_pylist() == ["a", None]
    assert table.column("out.score").to_pylist() == [0.75, None]
    assert table.column("in.age").to_pylist() == [0.0, 2.0]


def test_segments_of_different_shapes_read_together(tmp_path: Path) -> None:
    with PredictionLogWriter(tmp_path, "svc") as writer:
        writer.log(
            request_id="a", model="m", version=1, inputs={"x": [1.0]}, outputs={"prediction": [1]}
        )
        writer.flush()
        writer.log(
            request_id="b", model="m", version=2, inputs={"y": ["t"]}, outputs={"prediction": [0]}
        )
    table = read_segments(list_segments(tmp_path, "svc"), columns=["request_id", "in.x", "in.y"])
    assert table.to_pylist() == [
        {"request_id": "a", "in.x": 1.0, "in.y": None},
        {"request_id": "b", "in.x": None, "in.y": "t"},
    ]


def test_bad_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="service"):
        PredictionLogWriter(tmp_path, "../escape")
    with PredictionLogWriter(tmp_path, "svc") as writer:
        with pytest.raises(InvalidArgumentError, match="variant"):
            _log(writer, "a", variant="blue")
        with pytest.raises(InvalidArgumentError, match="differ in length"):
            writer.log(
                request_id="a",
                model="m",
                version=1,
                inputs={"x": [1, 2]},
                outputs={"prediction": [1]},
            )
        with pytest.raises(InvalidArgumentError, match="2 labels for 1 rows"):
            writer.log_feedback("a", [1, 2], rows=[0])
    with pytest.raises(InvalidArgumentError, match="closed"):
        _log(writer, "late")
    assert list_segments(tmp_path, "svc") == []


def test_a_failed_write_is_counted_and_the_writer_keeps_going(tmp_path: Path) -> None:
    (tmp_path / "svc").write_text("a file where the folder should be")
    writer = PredictionLogWriter(tmp_path, "svc")
    _log(writer, "a")
    writer.close()
    assert writer.errors == 1
    assert writer.rows_written == 0


def test_root_from_settings(tmp_path: Path) -> None:
    ws = tmp_path / "w" / ".syllabus"
    ws.mkdir(parents=True)
    assert predictions_root(load_settings(workspace=ws, env={})) == ws / "predictions"
    custom = load_settings(workspace=ws, env={"SYLLABUS_PREDICTIONS": str(tmp_path / "p")})
    assert predictions_root(custom) == tmp_path / "p"
    with pytest.raises(ConfigError, match="SYLLABUS_PREDICTIONS"):
        predictions_root(load_settings(tmp_path / "p", env={}))


def test_many_requests_become_one_cheap_segment_in_request_order(tmp_path: Path) -> None:
    """The server's case: many requests of numpy columns, concatenated on the writer thread;
    request ids, names and variants are dictionary-encoded (the writer copies the table's
    dictionaries) and read back as plain strings; numbers are not."""
    import pyarrow.parquet as pq

    sizes = [1, 3, 1, 100, 2] * 40
    with PredictionLogWriter(tmp_path, "svc", flush_rows=10**6, flush_seconds=3600) as writer:
        for i, n in enumerate(sizes):
            writer.log(
                request_id=f"req-{i}",
                model="churn",
                version=3,
                variant="canary" if i % 7 == 0 else "primary",
                inputs={"b": np.full(n, i, dtype=np.int64), "a": np.arange(n, dtype=np.float64)},
                outputs={"prediction": np.arange(n) % 2, "score": np.full(n, i / 1000)},
                ts=1_700_000_000.0 + i,
            )
    (segment,) = list_segments(tmp_path, "svc")
    table = read_segments([segment])
    assert table.column_names == [
        "request_id", "row", "ts", "model", "version", "variant", "latency_ms",
        "in.a", "in.b", "out.prediction", "out.score",
    ]  # fmt: skip
    assert table.num_rows == sum(sizes)
    expected_ids = [f"req-{i}" for i, n in enumerate(sizes) for _ in range(n)]
    assert table.column("request_id").to_pylist() == expected_ids
    assert table.column("row").to_pylist() == [r for n in sizes for r in range(n)]
    assert table.column("in.b").to_pylist() == [i for i, n in enumerate(sizes) for _ in range(n)]
    assert table.column("out.score").to_pylist() == [
        i / 1000 for i, n in enumerate(sizes) for _ in range(n)
    ]
    assert table.column("ts").to_pylist()[-1].timestamp() == 1_700_000_000 + len(sizes) - 1
    meta = pq.ParquetFile(segment).metadata.row_group(0)
    columns = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    assert columns["request_id"].compression == "SNAPPY"
    assert columns["request_id"].has_dictionary_page
    assert columns["variant"].has_dictionary_page
    assert table.schema.field("request_id").type == pa.string()
    assert columns["ts"].is_stats_set
    assert not columns["in.a"].has_dictionary_page
