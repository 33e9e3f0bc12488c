"""Canary and shadow over real HTTP: the split, what is returned, what is logged."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pyarrow.compute as pc
import pytest

from syllabus.deploy.predlog import list_segments, read_segments
from syllabus.deploy.serving.config import CanarySpec, ModelsSpec, ShadowSpec
from tests.deploy.serving.conftest import config_for, running

OLD = {"age": 55.0, "income": 5.0}  # churn@1 says 1, churn@2 (the opposite) says 0


@pytest.mark.slow
def test_the_canary_split_stays_within_tolerance_and_is_logged(
    model_workspace: Path, tmp_path: Path
) -> None:
    config = config_for(model_workspace, "churn@1", tmp_path)
    config = replace(config, models=ModelsSpec("churn@1", canary=CanarySpec("churn@2", 30)))
    answered: Counter[tuple[str, str, int]] = Counter()
    with running(config) as server:
        assert server.http.get("/v2").json()["models"] == {
            "primary": "churn@1",
            "canary": "churn@2",
        }
        for n in range(2000):
            response = server.post_json("/predict", [OLD], headers={"x-request-id": f"c{n}"})
            assert response.status_code == 200
            body = response.json()
            assert response.headers["x-model-version"] == str(body["version"])
            answered[(body["variant"], response.headers["x-model-variant"], body["version"])] += 1
            assert body["predictions"] == ([1] if body["version"] == 1 else [0])
        pinned = server.post_json("/v2/models/churn/versions/2/infer", {"inputs": [
            {"name": "age", "datatype": "FP64", "shape": [1], "data": [55.0]},
            {"name": "income", "datatype": "FP64", "shape": [1], "data": [5.0]},
        ]})  # fmt: skip
        assert pinned.json()["model_version"] == "2"
        metrics = server.http.get("/metrics").text
        assert (
            'syllabus_model_info{service="churn",variant="canary",model="churn",version="2"} 1'
            in metrics
        )
    assert set(answered) == {("primary", "primary", 1), ("canary", "canary", 2)}
    canary = answered[("canary", "canary", 2)]
    assert 600 - 100 <= canary <= 600 + 100  # 30% of 2,000; sd ~20.5
    table = read_segments(list_segments(tmp_path / "predictions", "churn"))
    logged = table.filter(pc.starts_with(table["request_id"], "c"))
    assert logged.num_rows == 2000
    assert Counter(
        zip(logged["variant"].to_pylist(), logged["version"].to_pylist(), strict=True)
    ) == {
        ("primary", 1): 2000 - canary,
        ("canary", 2): canary,
    }


def test_the_shadow_never_changes_a_response_and_its_answers_are_logged(
    model_workspace: Path, tmp_path: Path
) -> None:
    rng = random.Random(3)
    requests = [
        [
            {"age": rng.uniform(18, 80), "income": rng.uniform(0, 10)}
            for _ in range(rng.randint(1, 5))
        ]
        for _ in range(60)
    ]
    with running(config_for(model_workspace, "churn@1", tmp_path / "plain")) as plain:
        expected = [plain.post_json("/predict", r).json() for r in requests]
    config = config_for(model_workspace, "churn@1", tmp_path)
    config = replace(config, models=ModelsSpec("churn@1", shadow=ShadowSpec("churn@2")))
    with running(config) as server:
        for n, rows in enumerate(requests):
            response = server.post_json("/predict", rows, headers={"x-request-id": f"s{n}"})
            got = response.json()
            assert got["predictions"] == expected[n]["predictions"]
            assert got["scores"] == expected[n]["scores"]
            assert got["version"] == 1
            assert got["variant"] == "primary"
            assert response.headers["x-model-version"] == "1"
        bad = server.post_json("/predict", [{"age": "x", "income": 1}])
        assert bad.status_code == 400
    table = read_segments(list_segments(tmp_path / "predictions", "churn"))
    rows = table.to_pylist()
    primary = {(r["request_id"], r["row"]): r for r in rows if r["variant"] == "primary"}
    shadow = {(r["request_id"], r["row"]): r for r in rows if r["variant"] == "shadow"}
    total = sum(len(r) for r in requests)
    assert len(primary) == len(shadow) == total
    for key, answer in shadow.items():
        assert answer["version"] == 2
        assert answer["in.age"] == primary[key]["in.age"]
        assert answer["out.prediction"] == 1 - primary[key]["out.prediction"]  # the opposite model
