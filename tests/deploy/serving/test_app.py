"""The inference server over real HTTP: OIP v2, /predict, feedback, metrics, bad input."""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pyarrow as pa
import pytest

from syllabus.deploy.predlog import list_segments, read_segments
from tests.deploy.serving.conftest import Running, config_for, running

ROWS = [{"age": 30.0, "income": 4.0}, {"age": 55.0, "income": 6.0}]


@pytest.fixture(scope="module")
def churn(model_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("churn-server")
    with running(config_for(model_workspace, "churn@1", tmp, service="churn-svc")) as server:
        yield server


@pytest.fixture(scope="module")
def typed(model_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("typed-server")
    with running(config_for(model_workspace, "typed@latest", tmp)) as server:
        yield server


def _problem(response: httpx.Response, status: int, field: str | None = None) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    doc = response.json()
    assert doc["status"] == status
    assert doc["request_id"] == response.headers["x-request-id"]
    if field is not None:
        assert doc["field"] == field, doc
    return doc  # type: ignore[no-any-return]


def _still_serving(server: Running) -> None:
    assert server.http.get("/v2/health/ready").status_code == 200
    assert server.post_json("/predict", ROWS[:1]).status_code == 200


# -- health and metadata -------------------------------------------------------------------------


def test_health_and_metadata(churn: Running) -> None:
    live = churn.http.get("/v2/health/live")
    assert live.status_code == 200
    assert live.json()["live"] is True
    assert live.headers["x-model-version"] == "1"
    assert len(live.headers["x-request-id"]) == 32
    assert churn.http.get("/v2/health/ready").json()["ready"] is True
    server = churn.http.get("/v2").json()
    assert server["name"] == "syllabus"
    assert server["models"] == {"primary": "churn@1"}
    for path in ("/v2/models/churn", "/v2/models/churn-svc", "/v2/models/churn/versions/1"):
        meta = churn.http.get(path).json()
        assert meta["versions"] == ["1"]
        assert meta["platform"] == "syllabus-sklearn"
        assert meta["inputs"] == [
            {"name": "age", "datatype": "FP64", "shape": [-1]},
            {"name": "income", "datatype": "FP64", "shape": [-1]},
        ]
    assert churn.http.get("/v2/models/churn/ready").json()["ready"] is True
    assert churn.http.get("/v2/models/churn/versions/1/ready").status_code == 200
    _problem(churn.http.get("/v2/models/churn/versions/7/ready"), 404)
    _problem(churn.http.get("/v2/models/other"), 404)
    _problem(churn.http.get("/nowhere"), 404)
    _problem(churn.http.get("/predict"), 405)
    _problem(churn.http.post("/v2/health/live"), 405)


# -- /predict ----------------------------------------------------------------------------------


def test_predict_records_columns_one_record_and_csv(churn: Running) -> None:
    records = churn.post_json("/predict", ROWS)
    assert records.status_code == 200
    body = records.json()
    assert body["predictions"] == [0, 1]
    assert body["model"] == "churn"
    assert body["version"] == 1
    assert body["variant"] == "primary"
    assert body["request_id"] == records.headers["x-request-id"]
    assert records.headers["x-model-version"] == "1"
    assert 0.0 <= body["scores"][0] < 0.5 < body["scores"][1] <= 1.0
    columns = churn.post_json("/predict", {"age": [30, 55], "income": [4, 6]}).json()
    assert columns["predictions"] == [0, 1]
    assert churn.post_json("/predict", {"age": 55, "income": 6}).json()["predictions"] == [1]
    wrapped = churn.post_json("/predict", {"dataframe_split": {"columns": ["income", "age"],
                                                               "data": [[6, 55]]}})  # fmt: skip
    assert wrapped.json()["predictions"] == [1]
    csv = churn.http.post(
        "/predict",
        content=b"income,age,extra\n4,30,x\n6,55,y\n",
        headers={"content-type": "text/csv"},
    )
    assert csv.json()["predictions"] == [0, 1]
    assert csv.json()["scores"] == body["scores"]


def test_a_request_id_given_is_kept(churn: Running) -> None:
    response = churn.post_json("/predict", ROWS, headers={"x-request-id": "order-42"})
    assert response.headers["x-request-id"] == "order-42"
    assert response.json()["request_id"] == "order-42"
    odd = churn.post_json("/predict", ROWS, headers={"x-request-id": "bad id\twith spaces"})
    assert odd.headers["x-request-id"] != "bad id\twith spaces"


# -- OIP v2 -------------------------------------------------------------------------------------


def test_v2_infer_by_column_and_as_one_matrix(churn: Running) -> None:
    request = {
        "id": "req-1",
        "inputs": [
            {"name": "age", "shape": [2], "datatype": "INT32", "data": [30, 55]},
            {"name": "income", "shape": [2, 1], "datatype": "FP32", "data": [[4.0], [6.0]]},
        ],
    }
    response = churn.post_json("/v2/models/churn/infer", request)
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["model_name"] == "churn"
    assert doc["model_version"] == "1"
    assert doc["id"] == "req-1" == response.headers["x-request-id"]
    prediction, score = doc["outputs"]
    assert prediction == {"name": "prediction", "datatype": "INT64", "shape": [2], "data": [0, 1]}
    assert score["name"] == "score"
    assert score["datatype"] == "FP64"
    x = {"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [30, 4, 55, 6]}
    matrix = {"inputs": [x], "outputs": [{"name": "prediction"}]}
    doc = churn.post_json("/v2/models/churn/versions/1/infer", matrix).json()
    assert [o["name"] for o in doc["outputs"]] == ["prediction"]
    assert doc["outputs"][0]["data"] == [0, 1]
    _problem(churn.post_json("/v2/models/churn/versions/3/infer", matrix), 404)


def _v2(name: str, datatype: str, data: list[object]) -> dict[str, object]:
    return {"name": name, "shape": [len(data)], "datatype": datatype, "data": data}


@pytest.mark.parametrize(
    "ints", ["INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"]
)
@pytest.mark.parametrize("floats", ["FP16", "FP32", "FP64"])
def test_v2_every_datatype(typed: Running, ints: str, floats: str) -> None:
    request = {
        "inputs": [
            _v2("i32", ints, [1, 2]),
            _v2("i64", ints, [10, 20]),
            _v2("f32", floats, [0.5, 1.5]),
            _v2("f64", floats if floats != "FP16" else "FP64", [0.25, 0.75]),
            _v2("flag", "BOOL", [True, False]),
            _v2("text", "BYTES", ["ab", "cde"]),
        ]
    }
    response = typed.post_json("/v2/models/typed/infer", request)
    assert response.status_code == 200, response.text
    (out,) = response.json()["outputs"]
    assert out["datatype"] == "FP64"
    assert out["data"] == [1 + 10 + 0.5 + 0.25 + 1000 + 1.0, 2 + 20 + 1.5 + 0.75 + 1.5]


def test_v2_integers_into_float_columns_and_records_of_every_type(typed: Running) -> None:
    request = {"inputs": [_v2("i32", "INT32", [1]), _v2("i64", "INT64", [2]),
                          _v2("f32", "INT16", [3]), _v2("f64", "UINT8", [4]),
                          _v2("flag", "BOOL", [False]), _v2("text", "BYTES", [""])]}  # fmt: skip
    assert typed.post_json("/v2/models/typed/infer", request).json()["outputs"][0]["data"] == [10.0]
    record = {"i32": 1, "i64": 2, "f32": 3, "f64": 4.5, "flag": True, "text": "xy"}
    assert typed.post_json("/predict", [record]).json()["predictions"] == [1011.5]


@pytest.mark.parametrize(
    ("column", "datatype", "data", "needle"),
    [
        ("i32", "INT8", [1, 300], "outside INT8"),
        ("i32", "UINT8", [-1, 2], "outside UINT8"),
        ("i32", "FP32", [1.5, 2.0], "fractions"),
        ("i32", "INT32", [1, "2"], "INT32"),
        ("flag", "INT32", [1, 0], "expects bool"),
        ("flag", "BOOL", [1, 0], "BOOL"),
        ("text", "INT64", [1, 2], "expects string"),
        ("text", "BYTES", ["a", 3], "BYTES"),
        ("f64", "FP64", [1.0, True], "FP64"),
        ("f64", "STRING", [1.0, 2.0], "datatype"),
    ],
)
def test_v2_wrong_types_name_the_input(
    typed: Running, column: str, datatype: str, data: list[object], needle: str
) -> None:
    good = {"i32": ("INT32", [1, 2]), "i64": ("INT64", [1, 2]), "f32": ("FP32", [1.0, 2.0]),
            "f64": ("FP64", [1.0, 2.0]), "flag": ("BOOL", [True, False]),
            "text": ("BYTES", ["a", "b"])}  # fmt: skip
    good[column] = (datatype, data)
    request = {"inputs": [_v2(name, dt, values) for name, (dt, values) in good.items()]}
    doc = _problem(typed.post_json("/v2/models/typed/infer", request), 400)
    assert column in str(doc["field"])
    assert needle in str(doc["detail"])


def test_tensor_signature(model_workspace: Path, tmp_path: Path) -> None:
    with running(config_for(model_workspace, "tensor@1", tmp_path)) as server:
        meta = server.http.get("/v2/models/tensor").json()
        assert meta["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 2]}]
        request = {"inputs": [{"name": "input", "shape": [2, 2], "datatype": "FP32",
                               "data": [1, 1, 2, 0]}]}  # fmt: skip
        doc = server.post_json("/v2/models/tensor/infer", request).json()
        assert np.allclose(doc["outputs"][0]["data"], [11.0, 2.0])
        assert np.allclose(server.post_json("/predict", [[1, 1]]).json()["predictions"], [11.0])
        bad = {
            "inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]
        }
        _problem(server.post_json("/v2/models/tensor/infer", bad), 400, "input")
        _problem(server.post_json("/predict", {"a": [1]}), 400)
        server.app.writer.flush()  # type: ignore[union-attr]
    table = read_segments(list_segments(tmp_path / "predictions", "tensor"))
    assert {"in.0", "in.1"} <= set(table.column_names)


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        ([{"age": "old", "income": 1}], "age", "expects float64"),
        ([{"age": 30}], "income", "missing column 'income'"),
        ({"age": [30, 40], "income": [1]}, "inputs", "different lengths"),
        ({"age": [30], "income": [[1, 2]]}, "income", "flat list"),
        ({"age": [30, 40], "income": [1, "2"]}, "income", "mixed values"),
        ([{"age": None, "income": True}], "income", "expects float64"),
        ([], "inputs", "no rows"),
        ("text", "inputs", "not a str"),
        ([1, 2], "inputs", "records"),
    ],
)
def test_predict_refuses_wrong_input_naming_the_field(
    churn: Running, body: object, field: str, needle: str
) -> None:
    doc = _problem(churn.post_json("/predict", body), 400, field)
    assert needle in str(doc["detail"])
    assert doc["version"] == 1
    _still_serving(churn)


def test_csv_refusals(churn: Running) -> None:
    cases = [
        (b"age,income\nthirty,4\n", "age"),
        (b"age\n30\n", "income"),
        (b"age,income\n", "body"),
        (b"\xff\xfe", "body"),
    ]
    for body, field in cases:
        response = churn.http.post("/predict", content=body, headers={"content-type": "text/csv"})
        _problem(response, 400, field)
    _still_serving(churn)


def test_non_json_and_deeply_nested_json_are_400(churn: Running) -> None:
    for body in (b"{not json", b"\x00\x01\x02", b"", b"[" * 100_000 + b"]" * 100_000):
        response = churn.http.post(
            "/predict", content=body, headers={"content-type": "application/json"}
        )
        doc = _problem(response, 400)
        assert doc["code"] == "invalid_json"
    nested = b'{"inputs": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    _problem(churn.http.post("/v2/models/churn/infer", content=nested), 400)
    _still_serving(churn)


def _raw_request(url: str, head: bytes, chunks: Iterator[bytes]) -> bytes:
    """Send ``head`` then ``chunks`` until the server answers; the answer's bytes."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head)
        for chunk in chunks:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.settimeout(30)
        data = b""
        while b"\r\n\r\n" not in data:
            got = sock.recv(65536)
            if not got:
                break
            data += got
        return data


def test_a_100_mb_body_is_refused_without_reading_it(churn: Running) -> None:
    head = (
        b"POST /predict HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n"
        b"content-length: 104857600\r\n\r\n"
    )
    answer = _raw_request(churn.url, head, iter([b"[" * 65536]))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"connection: close" in answer.lower()
    _still_serving(churn)


def test_a_streamed_body_over_the_cap_is_cut_off(churn: Running) -> None:
    head = (
        b"POST /predict HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
    )
    mib = b" " * (1 << 20)
    chunk = b"%x\r\n" % len(mib) + mib + b"\r\n"
    answer = _raw_request(churn.url, head, iter([chunk] * 100))  # up to 100 MiB
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    _still_serving(churn)


# -- feedback, log, metrics ------------------------------------------------------------------------


def test_feedback_joins_the_logged_prediction(churn: Running) -> None:
    first = churn.post_json("/predict", ROWS, headers={"x-request-id": "fb-1"})
    assert first.status_code == 200
    second = churn.post_json(
        "/v2/models/churn/infer",
        {"id": "fb-2", "inputs": [_v2("age", "FP64", [61.0]), _v2("income", "FP64", [2.0])]},
    )
    assert second.status_code == 200
    ack = churn.post_json("/feedback", {"request_id": "fb-1", "labels": [0, 0]})
    assert ack.status_code == 202
    assert ack.json()["feedback"] == {"request_id": "fb-1", "rows": 2}
    v2 = churn.post_json(
        "/v2/models/churn/feedback",
        {"parameters": {"request_id": "fb-2"}, "inputs": [_v2("label", "INT64", [1])]},
    )
    assert v2.status_code == 202, v2.text
    assert v2.json()["parameters"] == {"request_id": "fb-2", "rows": 1}
    _problem(
        churn.post_json("/feedback", {"request_id": "fb-1", "labels": [1, 1, 1]}), 400, "labels"
    )
    _problem(churn.post_json("/feedback", {"labels": [1]}), 400, "request_id")
    _problem(churn.post_json("/feedback", {"request_id": "fb-1", "labels": [{"a": 1}]}), 400)
    _problem(
        churn.post_json("/feedback", {"request_id": "fb-1", "label": 1, "rows": [-1]}), 400, "rows"
    )
    churn.app.writer.flush()  # type: ignore[union-attr]
    root = Path(churn.app.writer.segments.location).parent  # type: ignore[union-attr]
    predictions = read_segments(list_segments(root, "churn-svc"))
    feedback = read_segments(list_segments(root, "churn-svc", "feedback"))
    joined = predictions.join(feedback, keys=["request_id", "row"], join_type="inner")
    rows = sorted(
        (r["request_id"], r["row"], r["out.prediction"], r["label"], r["in.age"], r["version"])
        for r in joined.to_pylist()
    )
    assert rows == [
        ("fb-1", 0, 0, 0, 30.0, 1),
        ("fb-1", 1, 1, 0, 55.0, 1),
        ("fb-2", 0, 1, 1, 61.0, 1),
    ]
    logged = predictions.filter(pa.compute.equal(predictions["request_id"], "fb-1")).to_pylist()
    assert all(r["latency_ms"] > 0 and r["variant"] == "primary" for r in logged)
    assert logged[0]["out.score"] == pytest.approx(first.json()["scores"][0])


def test_metrics_count_requests_errors_latency_and_versions(churn: Running) -> None:
    churn.post_json("/predict", ROWS)
    churn.post_json("/predict", [{"age": "x"}])
    text = churn.http.get("/metrics").text
    assert (
        'syllabus_requests_total{service="churn-svc",endpoint="/predict",method="POST",status="200"}'
        in text
    )
    assert (
        'syllabus_request_errors_total{service="churn-svc",endpoint="/predict",kind="client"}'
        in text
    )
    assert (
        'syllabus_request_duration_seconds_bucket{service="churn-svc",endpoint="/predict",le="+Inf"}'
        in text
    )
    assert (
        'syllabus_model_info{service="churn-svc",variant="primary",model="churn",version="1"} 1'
        in text
    )
    assert 'syllabus_requests_in_flight{service="churn-svc"} 1' in text  # the scrape itself
    assert 'syllabus_ready{service="churn-svc"} 1' in text
    predicted = [
        line for line in text.splitlines() if line.startswith("syllabus_predictions_total")
    ]
    assert predicted
    assert int(predicted[0].rsplit(" ", 1)[1]) >= 2


# -- failures -------------------------------------------------------------------------------


def test_a_model_that_fails_to_load_leaves_the_server_up_but_unready(
    model_workspace: Path, tmp_path: Path
) -> None:
    with running(config_for(model_workspace, "churn@9", tmp_path)) as server:
        assert server.http.get("/v2/health/live").status_code == 200
        doc = _problem(server.http.get("/v2/health/ready"), 503)
        assert "churn@9 failed to load" in str(doc["detail"])
        assert "no version 9" in str(doc["detail"])
        assert doc["code"] == "not_ready"
        _problem(server.post_json("/predict", ROWS), 503)
        _problem(server.post_json("/v2/models/churn/infer", {"inputs": []}), 503)
        _problem(server.http.get("/v2/models/churn/ready"), 503)
        assert 'syllabus_ready{service="churn"} 0' in server.http.get("/metrics").text
        assert json.loads(server.http.get("/v2").text)["reason"].startswith("primary model")
