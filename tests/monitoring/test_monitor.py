"""Monitors over a prediction log: incremental runs, delayed labels, schema checks,
alerts (deduplicated, resolved, sent to webhooks), events and Prometheus text."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from syllabus import Client
from syllabus.errors import ConflictError, InvalidArgumentError, SchemaMismatchError
from syllabus.registry.webhooks import sign
from tests.monitoring._log import write_feedback, write_predictions

HOUR = 3_600_000


@pytest.fixture(params=["sqlite", "postgresql"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Client]:
    rng = np.random.default_rng(0)
    n = 4000
    pq.write_table(pa.table({"age": rng.normal(40, 10, n), "city": rng.choice(["a", "b"], n)}),
                   tmp_path / "ref.parquet")  # fmt: skip
    log = str(tmp_path / "log")
    if request.param == "sqlite":
        with Client(cwd=tmp_path, predictions=log) as c:
            yield c
        return
    url = str(request.getfixturevalue("pg_url"))
    with Client(url, blobs=tmp_path / "blobs", cwd=tmp_path, predictions=log) as c:
        yield c


def _inputs(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, Any]:
    return {"age": rng.normal(40 + shift, 10, n), "city": rng.choice(["a", "b"], n)}


def _base() -> int:
    return (time.time_ns() // 1_000_000 // HOUR - 10) * HOUR


def test_run_processes_each_segment_once_and_labels_arrive_later(
    client: Client, tmp_path: Path
) -> None:
    client.create_monitor("m", service="svc", reference=str(tmp_path / "ref.parquet"),
                          window="1h", rules=["accuracy < 0.9", "psi(age) > 0.2"])  # fmt: skip
    root, rng, base = tmp_path / "log", np.random.default_rng(1), _base()
    ids = [f"q{i}" for i in range(500)]
    preds = rng.integers(0, 2, 500)
    write_predictions(root, "svc", _inputs(rng, 500), preds, ts_ms=base + 5, request_ids=ids)
    write_predictions(root, "svc", _inputs(rng, 300), rng.integers(0, 2, 300), ts_ms=base + 10,
                      variant="shadow")  # fmt: skip
    first = client.run_monitor("m")[0]
    assert (first.segments, first.rows, first.labelled) == (2, 500, 0)
    again = client.run_monitor("m")[0]
    assert (again.segments, again.feedback_segments, again.windows) == (0, 0, ())
    (window,) = client.monitor_windows("m")
    assert window.rows == 500
    assert window.closed
    assert window.summary["performance"] == {}
    # labels arrive later: 400 right, 100 wrong
    labels = preds.copy()
    labels[:100] = 1 - labels[:100]
    write_feedback(root, "svc", ids, labels, base + HOUR * 2)
    later = client.run_monitor("m")[0]
    assert (later.segments, later.feedback_segments, later.labelled) == (0, 1, 500)
    (window,) = client.monitor_windows("m")
    assert window.labelled == 500
    assert window.summary["performance"]["accuracy"] == pytest.approx(0.8)
    assert window.rows == 500  # the feedback did not count the rows twice
    (alert,) = client.list_alerts("m", state="firing")
    assert alert.rule == "accuracy < 0.9"
    assert alert.value == pytest.approx(0.8)
    # the same labels again change nothing (deduplicated by request and row)
    write_feedback(root, "svc", ids, labels, base + HOUR * 2)
    client.run_monitor("m")
    assert client.monitor_windows("m")[0].labelled == 500
    assert len(client.list_alerts("m")) == 1


def test_alerts_fire_once_resolve_and_reach_webhooks(client: Client, tmp_path: Path) -> None:
    received: list[tuple[dict[str, Any], str]] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((json.loads(body), self.headers["X-Syllabus-Signature"]))
            assert self.headers["X-Syllabus-Signature"] == sign("s3cret", body)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        client.create_monitor("m", service="svc", reference=str(tmp_path / "ref.parquet"),
                              window="500 rows", rules=["drift(age) == 1 for 2 windows"],
                              webhooks=[{"url": url, "secret": "s3cret"}])  # fmt: skip
        root, rng = tmp_path / "log", np.random.default_rng(2)
        write_predictions(root, "svc", _inputs(rng, 1000, shift=8), np.zeros(1000), ts_ms=1)
        run = client.run_monitor("m")[0]
        assert run.windows == (0, 500)
        assert [e.event for e in run.events] == ["fired"]
        write_predictions(root, "svc", _inputs(rng, 500, shift=8), np.zeros(500), ts_ms=2)
        assert client.run_monitor("m")[0].events == ()  # still firing: no new alert
        assert len(client.list_alerts("m")) == 1
        write_predictions(root, "svc", _inputs(rng, 500), np.zeros(500), ts_ms=3)
        resolved = client.run_monitor("m")[0]
        assert [e.event for e in resolved.events] == ["resolved"]
        events = client.alert_events()
        assert [e.event for e in events] == ["fired", "resolved"]
        assert client.alert_events(after=events[0].seq) == events[1:]
        source = client.pipeline_alert_source()  # what pipeline alert triggers read
        (seen,) = source.alerts_after(None, "m")
        assert seen.rule == "drift(age) == 1 for 2 windows"
        assert source.alerts_after(None, "other") == []
        assert source.alerts_after(seen.id, "*") == []
        assert [r[0]["event"] for r in received] == ["monitor.alert.fired",
                                                     "monitor.alert.resolved"]  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    text = client.monitoring_metrics()
    assert 'syllabus_monitor_rows{monitor="m"} 500' in text
    assert "syllabus_monitor_alert_firing" not in text


def test_a_log_that_no_longer_matches_the_model_is_a_clear_error(
    client: Client, tmp_path: Path
) -> None:
    client.create_monitor("m", service="svc", reference=str(tmp_path / "ref.parquet"))
    rng = np.random.default_rng(3)
    write_predictions(tmp_path / "log", "svc", {"years": rng.normal(0, 1, 10),
                      "city": ["a"] * 10}, np.zeros(10), ts_ms=1)  # fmt: skip
    with pytest.raises(SchemaMismatchError, match=r"no column 'in.age'.*takes 'age'"):
        client.run_monitor("m")
    assert client.monitor_windows("m") == []
    write_predictions(tmp_path / "log", "svc", {"age": ["x"] * 10, "city": ["a"] * 10},
                      np.zeros(10), ts_ms=1)  # fmt: skip


def test_a_running_monitor_is_not_run_twice_at_once(client: Client, tmp_path: Path) -> None:
    monitor = client.create_monitor("m", service="svc", reference=str(tmp_path / "ref.parquet"))
    store = client._monitoring().store
    assert store.acquire(monitor.id, "other", 60_000)
    with pytest.raises(ConflictError, match="being run by another process"):
        client.run_monitor("m")
    store.release(monitor.id, "other")
    assert client.run_monitor("m")[0].segments == 0


def test_bad_settings_are_refused(client: Client, tmp_path: Path) -> None:
    ref = str(tmp_path / "ref.parquet")
    with pytest.raises(InvalidArgumentError, match="invalid duration"):
        client.create_monitor("m", service="svc", reference=ref, window="soon")
    with pytest.raises(InvalidArgumentError, match="alert rule"):
        client.create_monitor("m", service="svc", reference=ref, rules=["psi > 1"])
    with pytest.raises(InvalidArgumentError, match="invalid service"):
        client.create_monitor("m", service="../x", reference=ref)
    with pytest.raises(InvalidArgumentError, match="no column 'height'"):
        client.create_monitor("m", service="svc", reference=ref, features=["height"])
    assert client.list_monitors() == []


def test_empty_and_tiny_segments(client: Client, tmp_path: Path) -> None:
    client.create_monitor("m", service="svc", reference=str(tmp_path / "ref.parquet"),
                          window="1h", rules=["drift_share > 0.3"])  # fmt: skip
    root, rng, base = tmp_path / "log", np.random.default_rng(4), _base()
    write_predictions(root, "svc", {"age": np.empty(0), "city": np.empty(0, dtype=str)},
                      np.empty(0), ts_ms=base)  # fmt: skip
    empty = client.run_monitor("m")[0]
    assert (empty.segments, empty.rows, empty.windows) == (1, 0, ())
    write_predictions(root, "svc", _inputs(rng, 5, shift=30), np.zeros(5), ts_ms=base + 1)
    tiny = client.run_monitor("m")[0]
    assert tiny.rows == 5
    (window,) = client.monitor_windows("m")
    assert window.summary["drift_share"] is None  # 5 rows: no verdict
    assert window.summary["features"]["age"]["drifted"] is None
    assert window.summary["features"]["age"]["mean"] > 60
    assert client.list_alerts("m") == []


def test_feedback_reads_only_the_segments_its_request_ids_can_be_in(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from syllabus._utils.ids import new_id

    client.create_monitor("m", service="svc", reference=str(tmp_path / "ref.parquet"),
                          window="1h")  # fmt: skip
    root, rng, base = tmp_path / "log", np.random.default_rng(5), _base()
    segments = []
    for i in range(4):  # time-ordered ids, as the server gives requests
        ids = [new_id() for _ in range(200)]
        preds = rng.integers(0, 2, 200)
        write_predictions(root, "svc", _inputs(rng, 200), preds, ts_ms=base + i, request_ids=ids)
        segments.append((ids, preds))
    assert client.run_monitor("m")[0].rows == 800
    read: list[object] = []
    iter_batches = pq.ParquetFile.iter_batches

    def spy(self: pq.ParquetFile, *args: Any, **kwargs: Any) -> Any:
        read.append(kwargs.get("row_groups"))
        return iter_batches(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    last_ids, last_preds = segments[-1]
    write_feedback(root, "svc", last_ids, last_preds, base + HOUR * 2)
    assert client.run_monitor("m")[0].labelled == 200
    assert read == [[0]]  # the last segment's row group; the other three only opened
    # ids in the first and the last segment: both read, every label found
    read.clear()
    first_ids, first_preds = segments[0]
    labels = np.concatenate([first_preds[:50], last_preds[:50]])
    write_feedback(root, "svc", first_ids[:50] + last_ids[:50], labels, base + HOUR * 2)
    assert client.run_monitor("m")[0].labelled == 100
    assert len(read) >= 2
    (window,) = client.monitor_windows("m")
    assert window.labelled == 250  # the repeated 50 of the last segment count once


def test_request_id_statistics_prove_absence_only(tmp_path: Path) -> None:
    from syllabus.monitoring.service import _Ids

    pq.write_table(pa.table({"request_id": ["b1", "b5", "b9"]}), tmp_path / "s.parquet")
    stats = pq.ParquetFile(tmp_path / "s.parquet").metadata.row_group(0).column(0).statistics
    assert not _Ids(pa.array(["a", "c", None])).may_be_in(stats)  # between, not inside
    assert _Ids(pa.array(["a", "b3"])).may_be_in(stats)  # in the range: read
    assert _Ids(pa.array(["b9"])).may_be_in(stats)  # the maximum itself
    assert _Ids(pa.array([1, 2])).may_be_in(stats)  # not text: nothing proven
    assert _Ids(pa.array(["a"])).may_be_in(None)  # no statistics


_RUN = """
import sys
from pathlib import Path
from syllabus import Client
from syllabus.errors import ConflictError
uri, blobs = sys.argv[3] or None, sys.argv[4] or None
with Client(uri, blobs=blobs, cwd=Path(sys.argv[1]), predictions=sys.argv[2]) as c:
    try:
        print(c.run_monitor("m")[0].rows)
    except ConflictError:
        print("busy")
"""


@pytest.mark.slow
def test_concurrent_runs_count_every_row_once(client: Client, tmp_path: Path) -> None:
    import subprocess
    import sys

    client.create_monitor("m", service="svc", reference=str(tmp_path / "ref.parquet"),
                          window="1h")  # fmt: skip
    root, rng, base = tmp_path / "log", np.random.default_rng(8), _base()
    for i in range(6):
        write_predictions(root, "svc", _inputs(rng, 2000), np.zeros(2000), ts_ms=base + i)
    uri, blobs = client.settings.uri or "", client.settings.blobs or ""
    cmd = [sys.executable, "-c", _RUN, str(tmp_path), str(root), str(uri), str(blobs)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=240)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    counted = [int(o) for o in outputs if o != "busy"]
    assert sum(counted) == 12_000  # the runs that got the monitor read each segment once
    (window,) = client.monitor_windows("m")
    assert window.rows == 12_000
    assert client.run_monitor("m")[0].segments == 0


def test_reads_the_log_the_server_writes(client: Client, tmp_path: Path) -> None:
    """Segments from syllabus.deploy.predlog (the inference server's writer), multi-row
    requests, feedback for some rows only."""
    from syllabus.deploy.predlog import PredictionLogWriter

    client.create_monitor("m", service="svc", reference=str(tmp_path / "ref.parquet"),
                          window="1h")  # fmt: skip
    rng = np.random.default_rng(9)
    start = _base() / 1000 + 60
    with PredictionLogWriter(tmp_path / "log", "svc", flush_rows=150) as log:
        for i in range(100):
            log.log(request_id=f"r{i}", model="churn", version=1,
                    inputs={"age": rng.normal(40, 10, 3).tolist(), "city": ["a", "b", "a"]},
                    outputs={"prediction": [1, 0, 1], "score": [0.9, 0.2, 0.8]},
                    latency_ms=10.0 + i, ts=start + i)  # fmt: skip
        for i in range(0, 100, 2):
            log.log_feedback(f"r{i}", [1, 1], rows=[0, 1], ts=start + 200)
    run = client.run_monitor("m")[0]
    assert run.rows == 300
    assert run.labelled == 100
    (window,) = client.monitor_windows("m")
    assert window.summary["performance"]["accuracy"] == pytest.approx(0.5)
    assert window.summary["latency_requests"] == 100  # one latency per request
    assert 100 <= window.summary["latency_p99"] <= 116
