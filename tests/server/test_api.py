"""The Python API and CLI over HTTP, errors as problem JSON, limits, metrics, retries."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from syllabus import Client
from syllabus.client.remote import Http, MetricSeries, RemoteTrackingStore, call_spec
from syllabus.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    StorageError,
    SyllabusError,
)
from tests.fixtures.cli import Runner
from tests.server.live import LiveServer, db_url_for


@pytest.fixture
def uri(live_server: LiveServer, tmp_path: Path) -> Iterator[str]:
    name = f"api{tmp_path.name[-8:].lower().replace('_', '-')}"
    uri = live_server.add_workspace(f"sqlite:///{tmp_path / 'api.db'}", tmp_path / "blobs", name)
    yield uri
    live_server.drop_workspace(name)


@pytest.fixture
def client(uri: str) -> Iterator[Client]:
    with Client(uri) as c:
        yield c


def test_python_api_over_http(client: Client, tmp_path: Path) -> None:
    run = client.create_run("exp", name="first", params={"lr": 0.1}, tags={"t": "ünï"})
    for step in range(50):
        client.log_metric(run.id, "loss", 1 / (step + 1), step=step)
    client.log_metric(run.id, "odd", math.inf)
    (tmp_path / "a.txt").write_text("artifact bytes")
    client.log_artifact(run.id, tmp_path / "a.txt", "files/a.txt")
    client.end_run(run.id)
    got = client.get_run(run.id[:8])
    assert got.params == {"lr": "0.1"}
    assert got.tags == {"t": "ünï"}
    assert got.metrics["odd"].value == math.inf
    assert [p.step for p in client.get_metric_history(run.id, "loss")] == list(range(50))
    assert client.read_artifact(run.id, "files/a.txt") == b"artifact bytes"
    assert [r.id for r in client.search_runs("exp", filter="metrics.loss < 0.5")] == [run.id]
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("id,x\n1,0.5\n2,1.5\n")
    added = client.add_dataset("churn", data, message="first")
    assert client.get_dataset("churn@1").id == added.version.id
    client.checkout_dataset("churn@1", tmp_path / "out")
    assert (tmp_path / "out" / "train.csv").read_text() == "id,x\n1,0.5\n2,1.5\n"


def test_errors_round_trip_as_the_same_class(client: Client) -> None:
    with pytest.raises(NotFoundError, match="not found"):
        client.get_run("f" * 32)
    client.create_experiment("dup")
    with pytest.raises(AlreadyExistsError, match="'dup' already exists"):
        client.create_experiment("dup")
    run = client.create_run("dup", params={"lr": 1})
    with pytest.raises(ConflictError, match="already"):
        client.log_params(run.id, {"lr": 2})
    with pytest.raises(InvalidArgumentError):
        client.search_runs("dup", filter="metrics.x <<< 1")
    client.end_run(run.id)


def test_cli_over_http(syllabus: Runner, uri: str) -> None:
    with Client(uri) as c:
        run = c.create_run("cli-exp", name="over-http", params={"depth": 3})
        c.log_metric(run.id, "acc", 0.9)
        c.end_run(run.id)
    env = {"SYLLABUS_URI": uri}
    listed = syllabus("runs", "list", "--experiment", "cli-exp", "--json", env=env)
    assert listed.code == 0, listed.stderr
    assert json.loads(listed.stdout)[0]["name"] == "over-http"
    missing = syllabus("runs", "show", "f" * 32, env=env)
    assert missing.code == 1
    assert missing.stderr.startswith("Error: run ")
    assert "Traceback" not in missing.stderr


def test_every_error_is_problem_json(live_server: LiveServer, uri: str) -> None:
    api = f"{live_server.url}/api/v1"
    cases = [
        ("POST", f"{api}/w/nope/tracking/list_experiments", b"{}", 404, "not_found"),
        ("GET", f"{api}/no/such/route", None, 404, "not_found"),
        ("GET", f"{api}/w/default/tracking/get_run", None, 405, "method_not_allowed"),
        (
            "POST",
            f"{uri.replace('/w/', '/api/v1/w/')}/tracking/get_run",
            b"{not json",
            400,
            "invalid_argument",
        ),
        (
            "POST",
            f"{uri.replace('/w/', '/api/v1/w/')}/tracking/get_run",
            b'{"ref": 1, "x": 2}',
            400,
            "invalid_argument",
        ),
        (
            "POST",
            f"{uri.replace('/w/', '/api/v1/w/')}/tracking/search_runs",
            b'{"max_results": 1000000}',
            400,
            "invalid_argument",
        ),
        ("POST", f"{api}/w/Bad..Name/tracking/list_experiments", b"{}", 400, "invalid_argument"),
    ]
    for method, url, body, status, code in cases:
        r = httpx.request(method, url, content=body)
        assert (r.status_code, r.headers["content-type"]) == (status, "application/problem+json"), (
            url
        )
        problem = r.json()
        assert problem["code"] == code, (url, problem)
        assert problem["status"] == status
        assert problem["detail"]


def _raw_status(base: str, raw_path: str) -> tuple[int, str]:
    """Send a request with exactly this path (clients normalize; attackers do not)."""
    import socket

    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {raw_path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2\r\n"
            "Connection: close\r\n\r\n{}".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def test_paths_are_strictly_normal(live_server: LiveServer) -> None:
    assert _raw_status(live_server.url, "/api/v1/w/default/tracking/list_experiments")[0] == 200
    for raw in (
        "/api/v1/w/default/../default/tracking/list_experiments",
        "/api/v1/w/default/./tracking/list_experiments",
        "/api/v1//w/default/tracking/list_experiments",
        "/api/v1/w/default/tracking%2flist_experiments",
        "/api/v1/w/%2e%2e/tracking/list_experiments",
        "/api/v1/w/default\\tracking/list_experiments",
    ):
        status, body = _raw_status(live_server.url, raw)
        assert status == 400, raw
        assert json.loads(body)["code"] == "invalid_argument"


def test_request_bodies_are_limited(live_server: LiveServer, uri: str) -> None:
    url = f"{uri.replace('/w/', '/api/v1/w/')}/tracking/list_experiments"
    big = b"{" + b" " * (17 * 1024 * 1024) + b"}"
    r = httpx.post(url, content=big)
    assert r.status_code == 413
    assert r.json()["code"] == "request_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b"{"
        for _ in range(17):
            yield b" " * (1024 * 1024)
        yield b"}"

    r = httpx.post(url, content=chunks())
    assert r.status_code == 413


def test_crashes_answer_500_without_details(
    live_server: LiveServer, uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from syllabus.tracking.sql import SqlTrackingStore

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(SqlTrackingStore, "list_experiments", boom)
    r = httpx.post(f"{uri.replace('/w/', '/api/v1/w/')}/tracking/list_experiments", content=b"{}")
    assert r.status_code == 500
    assert r.json()["code"] == "internal_error"
    assert "secret" not in r.text
    assert "Traceback" not in r.text


def test_cors_is_off_by_default(live_server: LiveServer) -> None:
    r = httpx.options(
        f"{live_server.url}/api/v1/health",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in r.headers


def test_health_openapi_and_metrics(live_server: LiveServer, client: Client) -> None:
    client.create_experiment("metered")
    health = httpx.get(f"{live_server.url}/api/v1/health").json()
    assert health["status"] == "ok"
    schema = httpx.get(f"{live_server.url}/api/v1/openapi.json").json()
    op = schema["paths"]["/api/v1/w/{workspace}/tracking/create_experiment"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"]
    assert "Problem" in schema["components"]["schemas"]
    text = httpx.get(f"{live_server.url}/metrics").text
    assert (
        'syllabus_http_requests_total{method="POST",route="tracking.create_experiment",status="200"}'
        in text
    )
    assert "syllabus_http_request_duration_seconds_bucket" in text


class LoseAnswers(httpx.BaseTransport):
    """Delivers requests but loses the first ``n`` answers to metric batches, like a
    connection that drops after the server committed."""

    def __init__(self, inner: httpx.BaseTransport, n: int) -> None:
        self.inner = inner
        self.left = n
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.url.path.endswith("/tracking/log_metrics"):
            self.sent += 1
            if self.left > 0:
                self.left -= 1
                response.read()
                response.close()
                raise httpx.ReadError("connection reset after the request", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


def test_metric_batches_are_applied_once_when_retried(uri: str) -> None:
    http = Http(uri)
    lossy = LoseAnswers(http.client._transport, n=2)
    http.client._transport = lossy
    store = RemoteTrackingStore(http)
    exp = store.create_experiment("retries")
    run = store.create_run(
        exp.id, run_id="0" * 8 + "1" * 24, name="r", user="u", host="h", start_time=1
    )
    store.log_metrics({(run.id, "x"): [(i, 1000 + i, float(i)) for i in range(100)]})
    assert lossy.sent == 3  # sent three times: the server had applied it the first time
    assert len(store.get_metric_history(run.id, "x")) == 100
    store.log_metrics({(run.id, "x"): [(i, 1000 + i, float(i)) for i in range(100)]})
    assert len(store.get_metric_history(run.id, "x")) == 200  # a new batch is new points
    http.close()


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_extreme_metric_points_are_stored_exactly(
    db: str, live_server: LiveServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Points travel to PostgreSQL as binary COPY rows (and fall back to text when a value
    does not fit): the limits of each field and special floats come back unchanged."""
    uri = live_server.add_workspace(db_url_for(request, db, tmp_path), tmp_path / "blobs")
    request.addfinalizer(lambda: live_server.drop_workspace(uri.rsplit("/", 1)[1]))
    http = Http(uri)
    request.addfinalizer(http.close)
    store = RemoteTrackingStore(http)
    exp = store.create_experiment("extremes")
    run = store.create_run(
        exp.id, run_id="0" * 8 + "3" * 24, name="r", user="u", host="h", start_time=1
    )
    values = [5e-324, 1.7976931348623157e308, -math.inf, math.inf, 0.1 + 0.2, math.nan, -1.5]
    steps = [2**63 - 1, -(2**63), 0, -1, 1, 2**53 + 1, 7]
    points = [(s, 2**62 + i, v) for i, (s, v) in enumerate(zip(steps, values, strict=True))]
    store.log_metrics({(run.id, "x"): points})
    got = {(p.step, p.timestamp): p.value for p in store.get_metric_history(run.id, "x")}
    assert len(got) == len(points)
    for step, ts, value in points:
        assert got[(step, ts)] == value or (math.isnan(value) and math.isnan(got[(step, ts)]))
    assert store.get_run(run.id).metrics["x"].step == 2**63 - 1
    with pytest.raises(InvalidArgumentError):  # past bigint: refused, nothing written
        store.log_metrics({(run.id, "x"): [(1, 1, 1.0), (2**63, 2, 2.0)]})
    assert len(store.get_metric_history(run.id, "x")) == len(points)


def _race(
    live_server: LiveServer, request: pytest.FixtureRequest, db_url: str, tmp_path: Path, mark: str
) -> tuple[Http, Http, RemoteTrackingStore, Any, Any]:
    """A workspace on ``db_url`` with a run (its id made of ``mark``), two clients (the
    first attempt's and the retry's), the store over the first, and the server's store."""
    uri = live_server.add_workspace(db_url, tmp_path / "blobs")
    request.addfinalizer(lambda: live_server.drop_workspace(uri.rsplit("/", 1)[1]))
    first_http, retry_http = Http(uri), Http(uri)
    request.addfinalizer(first_http.close)
    request.addfinalizer(retry_http.close)
    store = RemoteTrackingStore(first_http)
    exp = store.create_experiment("race")
    run = store.create_run(
        exp.id, run_id="0" * 8 + mark * 24, name="r", user="u", host="h", start_time=1
    )
    server_store = live_server.state.workspaces[uri.rsplit("/", 1)[1]].backend.tracking_store
    return first_http, retry_http, store, run, server_store


def _batch_sender(
    run_id: str, batch_id: str, outcome: dict[str, BaseException | None]
) -> Callable[[str, Http], None]:
    """``send(name, http)``: posts one idempotent batch of 100 points of ``x`` to
    ``run_id`` and records under ``name`` in ``outcome`` the exception it raised, or None."""
    spec = call_spec("tracking", "log_metrics")
    series = MetricSeries(run_id, "x", [(i, 1000 + i, float(i)) for i in range(100)])
    body = (
        spec.args.model_validate({"points": [series], "end": None, "batch_id": batch_id})
        .model_dump_json(warnings=False)
        .encode()
    )

    def send(name: str, http: Http) -> None:
        try:
            http.request("POST", spec.path, content=body)
            outcome[name] = None
        except Exception as exc:  # the test looks at it
            outcome[name] = exc

    return send


@pytest.mark.parametrize("db", ["sqlite"])
def test_a_retry_during_a_failing_first_attempt_loses_no_points(
    db: str,
    live_server: LiveServer,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first attempt of a batch is held inside its transaction (slow: the client gave
    up and retried); the retry reaches the server; then the first attempt fails. The retry
    must write the points (it was answered as stored), exactly once."""
    first_http, retry_http, store, run, server_store = _race(
        live_server, request, db_url_for(request, db, tmp_path), tmp_path, "2"
    )
    held, fail_now, retry_arrived = threading.Event(), threading.Event(), threading.Event()
    appends, key_calls = [0], [0]
    real_append, real_keys = server_store._append_points, server_store._ensure_keys

    def append(conn: Any, todo: Any) -> None:
        appends[0] += 1
        if appends[0] == 1:
            held.set()
            assert fail_now.wait(30)
            raise RuntimeError("the first attempt fails late")
        real_append(conn, todo)

    def ensure_keys(keys: Any) -> dict[str, int]:
        key_calls[0] += 1
        if key_calls[0] == 2:  # the retry is being applied (not answered as a replay)
            retry_arrived.set()
        return real_keys(keys)

    monkeypatch.setattr(server_store, "_append_points", append)
    monkeypatch.setattr(server_store, "_ensure_keys", ensure_keys)
    outcome: dict[str, BaseException | None] = {}
    send = _batch_sender(run.id, "b" * 32, outcome)

    first = threading.Thread(target=send, args=("first", first_http))
    first.start()
    assert held.wait(30), outcome  # the first attempt is inside its transaction
    retry = threading.Thread(target=send, args=("retry", retry_http))
    retry.start()
    deadline = time.monotonic() + 30
    while not retry_arrived.is_set() and retry.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    # Without the id in the points' transaction the retry was answered "stored" by now.
    fail_now.set()
    first.join(30)
    retry.join(30)
    assert isinstance(outcome["first"], SyllabusError)  # it failed (a 500)
    assert outcome["retry"] is None  # the client was told the points are stored ...
    assert len(store.get_metric_history(run.id, "x")) == 100  # ... and they are
    send("again", retry_http)  # a later retry of the same batch writes nothing more
    assert outcome["again"] is None
    assert len(store.get_metric_history(run.id, "x")) == 100


@pytest.mark.postgres
def test_a_retry_during_a_failing_one_statement_first_attempt_loses_no_points(
    live_server: LiveServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """On PostgreSQL a batch of one run is one statement. The first attempt is held inside
    it after recording its batch id (waiting for a lock the test holds); the retry arrives
    and waits for that id; then the first attempt's statement fails. The retry must write
    the points (it was answered as stored), exactly once."""
    import sqlalchemy as sa

    pg_url = str(request.getfixturevalue("pg_url"))
    first_http, retry_http, store, run, server_store = _race(
        live_server, request, pg_url, tmp_path, "3"
    )
    real_sql, calls = server_store._one_run_sql, [0]

    def one_run_sql(first: Any) -> str:
        sql = str(real_sql(first))
        calls[0] += 1
        if calls[0] == 1:  # the first attempt: its id recorded, it waits, then fails
            head = "SELECT (SELECT count(*) FROM g), "
            assert head in sql
            held = "(SELECT count(*) FROM (SELECT pg_advisory_xact_lock(4242)) AS w) / 0, "
            sql = sql.replace(head, head + held)
        return sql

    server_store._one_run_sql = one_run_sql
    request.addfinalizer(lambda: vars(server_store).pop("_one_run_sql", None))
    outcome: dict[str, BaseException | None] = {}
    send = _batch_sender(run.id, "c" * 32, outcome)

    engine = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    request.addfinalizer(engine.dispose)

    def waiting(locktype: str) -> bool:
        with engine.connect() as probe:
            sql = "SELECT count(*) FROM pg_locks WHERE locktype = %s AND NOT granted"
            return bool(probe.exec_driver_sql(sql, (locktype,)).scalar())

    def wait_for(locktype: str) -> None:
        deadline = time.monotonic() + 30
        while not waiting(locktype):
            assert time.monotonic() < deadline, (locktype, outcome)
            time.sleep(0.02)

    with engine.connect() as lock:
        lock.exec_driver_sql("SELECT pg_advisory_xact_lock(4242)")
        first = threading.Thread(target=send, args=("first", first_http))
        first.start()
        wait_for("advisory")  # the first attempt is inside its statement, its id recorded
        retry = threading.Thread(target=send, args=("retry", retry_http))
        retry.start()
        wait_for("transactionid")  # the retry waits for the first attempt's id
        lock.rollback()  # the lock goes: the first attempt fails
    first.join(30)
    retry.join(30)
    assert isinstance(outcome["first"], SyllabusError)  # it failed (a 500)
    assert outcome["retry"] is None  # the client was told the points are stored ...
    assert len(store.get_metric_history(run.id, "x")) == 100  # ... and they are
    send("again", retry_http)  # a later retry of the same batch writes nothing more
    assert outcome["again"] is None
    assert len(store.get_metric_history(run.id, "x")) == 100


def test_a_batch_is_not_retried_forever(uri: str) -> None:
    http = Http(uri)
    http.client._transport = LoseAnswers(http.client._transport, n=100)
    store = RemoteTrackingStore(http)
    with pytest.raises(StorageError, match="cannot reach"):
        store.log_metrics({("f" * 32, "x"): [(0, 0, 0.0)]})
    http.close()


def test_deploy_and_pipeline_stores_over_http(uri: str) -> None:
    from syllabus.client.remote import RemoteStore

    http = Http(uri)
    try:
        assert RemoteStore(http, "deploy").list_deployments() == []
        assert RemoteStore(http, "pipelines").list_pipelines() == []
        with pytest.raises(NotFoundError):
            RemoteStore(http, "pipelines").get_pipeline("nope")
    finally:
        http.close()
