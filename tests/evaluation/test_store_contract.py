"""The EvaluationStore contract on SQLite and PostgreSQL, directly and through a live server:
records with their metrics and comparisons, ids and prefixes, listing by model version,
the newest evaluation of a pair, the results blob referenced with the record."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from syllabus.errors import InvalidArgumentError, NotFoundError
from syllabus.evaluation.models import Comparison, EvaluationSpec, MetricValue
from syllabus.evaluation.sql import SqlEvaluationStore
from syllabus.meta import BlobRefs, create_engine, ensure_schema
from syllabus.registry.models import VersionSpec
from syllabus.registry.sql import SqlRegistryStore
from syllabus.registry.store import Audit
from tests.server.live import REMOTE_BACKENDS, db_url_for, live_server, remote_store

_ = live_server  # a fixture the remote parameters use

RESULTS = ["ab" * 32, "cd" * 32, "ef" * 32]


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), *REMOTE_BACKENDS]
)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return db_url_for(request, request.param, tmp_path)


@pytest.fixture
def engine(url: str) -> Iterator[sa.Engine]:
    eng = create_engine(url)
    ensure_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def store(
    request: pytest.FixtureRequest, url: str, engine: sa.Engine, tmp_path: Path
) -> Iterator[SqlEvaluationStore]:
    if not str(request.node.callspec.params["url"]).startswith("remote"):
        yield SqlEvaluationStore(engine)
        return
    yield remote_store(request, url, tmp_path, "evaluation")  # the same store over HTTP


def _versions(engine: sa.Engine) -> list[str]:
    registry = SqlRegistryStore(engine)
    out = []
    for n in (1, 2, 3):
        spec = VersionSpec(
            tree=f"{n:064x}", size=1, flavor="sklearn", serialization="skops", unsafe=False,
            model_path="model.skops", model_digest=f"{n + 9:064x}", signature=None, source="/m",
        )  # fmt: skip
        out.append(registry.create_version("churn", spec, Audit("t")).id)
    return out


def _spec(candidate: str, champion: str | None, results: str, **kw: object) -> EvaluationSpec:
    comparisons = () if champion is None else (
        Comparison("accuracy", 0.9, 0.8, 0.1, 0.05, 0.15, "paired bootstrap", None, 0.01,
                   "better", se=0.02),
    )  # fmt: skip
    base: dict[str, object] = {
        "model_version_id": candidate, "model_ref": "churn@2", "dataset_version_id": "d" * 32,
        "dataset_ref": "holdout@1", "target": "label", "task": "classification", "rows": 800,
        "confidence": 0.95, "resamples": 200, "results": results,
        "metrics": (MetricValue("accuracy", 0.9, 0.88, 0.92),
                    MetricValue("log_loss", math.nan, None, None, higher_is_better=False)),
        "comparisons": comparisons, "champion_version_id": champion,
        "champion_ref": None if champion is None else "churn@1",
    }  # fmt: skip
    base.update(kw)
    return EvaluationSpec(**base)  # type: ignore[arg-type]


def test_records_round_trip_and_reference_their_results(
    engine: sa.Engine, store: SqlEvaluationStore
) -> None:
    v1, v2, _ = _versions(engine)
    e = store.add(_spec(v2, v1, RESULTS[0], latency_ms_per_row=0.25), "ann")
    assert (e.created_by, e.model_version_id, e.champion_version_id) == ("ann", v2, v1)
    assert e.metric("accuracy") == MetricValue("accuracy", 0.9, 0.88, 0.92)
    log_loss = e.metric("log_loss")
    assert log_loss is not None
    assert log_loss.value is None  # a NaN is stored as undefined
    assert log_loss.higher_is_better is False
    compared = e.comparison("accuracy")
    assert compared is not None
    assert (compared.verdict, compared.se) == ("better", 0.02)
    assert e.latency_ms_per_row == 0.25
    assert store.get(e.id) == e
    assert store.get(e.id[:10].upper()) == e
    owners = BlobRefs(engine).owners(RESULTS[0])  # type: ignore[arg-type]
    assert [(r.kind, r.owner_id) for r in owners] == [("evaluation", e.id)]


def test_missing_and_ambiguous_ids(engine: sa.Engine, store: SqlEvaluationStore) -> None:
    v1, v2, _ = _versions(engine)
    with pytest.raises(NotFoundError, match="evaluations list"):
        store.get("f" * 32)
    with pytest.raises(NotFoundError, match="ids are hex"):
        store.get("not-an-id")
    made = [store.add(_spec(v2, v1, RESULTS[n % 3]), "t") for n in range(4)]
    common = made[0].id[:6]
    if sum(m.id.startswith(common) for m in made) > 1:
        with pytest.raises(InvalidArgumentError, match="ambiguous"):
            store.get(common)
    with pytest.raises(NotFoundError, match="model version"):
        store.add(_spec("0" * 32, None, RESULTS[0]), "t")  # no such candidate
    with pytest.raises(NotFoundError, match="model version"):
        store.add(_spec(v2, "0" * 32, RESULTS[0]), "t")  # no such champion


def test_listing_and_finding(engine: sa.Engine, store: SqlEvaluationStore) -> None:
    v1, v2, v3 = _versions(engine)
    first = store.add(_spec(v2, v1, RESULTS[0]), "t")
    alone = store.add(_spec(v3, None, RESULTS[1], target="churned"), "t")
    second = store.add(_spec(v2, v1, RESULTS[2]), "t")
    assert [e.id for e in store.list_evaluations()] == [second.id, alone.id, first.id]
    assert [e.id for e in store.list_evaluations(limit=1)] == [second.id]
    assert [e.id for e in store.list_evaluations(model_version_ids=(v1,))] == [
        second.id,
        first.id,
    ]  # as champion
    assert store.list_evaluations(model_version_ids=()) == []
    found = store.find(v2, v1)
    assert found is not None
    assert found.id == second.id
    assert store.find(v2, None) is None
    got = store.find(v3, None, "d" * 32, "churned")
    assert got is not None
    assert got.id == alone.id
    assert store.find(v3, None, target="label") is None
