"""Evaluations through the client: verdicts, slices, stored records, reports, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from syllabus import Client
from syllabus.errors import InvalidArgumentError, NotFoundError
from tests.evaluation.conftest import log, make_data, populate, write_csv


def test_clearly_better_challenger_is_better(prepared: Client) -> None:
    e = prepared.evaluate("churn@2", "holdout@1", "label", against="churn@production")
    assert (e.model_ref, e.champion_ref, e.dataset_ref, e.task) == (
        "churn@2",
        "churn@1",
        "holdout@1",
        "classification",
    )
    for name in ("accuracy", "roc_auc", "log_loss", "brier"):
        assert e.comparison(name).verdict == "better", name  # type: ignore[union-attr]
    assert e.comparison("accuracy").test == "mcnemar"  # type: ignore[union-attr]
    assert e.comparison("roc_auc").test == "delong"  # type: ignore[union-attr]
    worse = prepared.evaluate("churn@1", "holdout@1", "label", against="churn@2")
    assert worse.comparison("roc_auc").verdict == "worse"  # type: ignore[union-attr]
    assert e.latency_ms_per_row is not None
    assert e.latency_ms_per_row > 0


def test_identical_models_show_no_significant_difference(prepared: Client) -> None:
    e = prepared.evaluate("churn@3", "holdout@1", "label", against="churn@1")
    assert {c.verdict for c in e.comparisons} == {"no significant difference"}
    assert e.comparison("roc_auc").delta == 0  # type: ignore[union-attr]


def test_record_round_trip_and_results(prepared: Client) -> None:
    e = prepared.evaluate("churn@2", "holdout@1", "label", slice_column="region", resamples=200)
    again = prepared.get_evaluation(e.id[:8])
    assert again == e
    assert [x.id for x in prepared.list_evaluations("churn@2")] == [e.id]
    assert prepared.list_evaluations("churn@1") == []
    auc = e.metric("roc_auc")
    assert auc is not None
    assert auc.low is not None
    assert auc.low < auc.value < auc.high
    results = prepared.evaluation_results(e.id)
    groups = {g["value"]: g for g in results["slices"]["groups"]}
    assert groups["z"]["rows"] == 3
    assert "too few rows" in groups["z"]["note"]
    assert groups["north"]["metrics"]["accuracy"]["value"] > 0.7
    assert results["candidate"]["confusion"]
    assert results["candidate"]["curves"]["roc"]["x"]
    from syllabus.meta import BlobRefs

    kinds = BlobRefs(prepared._open(write=False).engine).count_by_kind()
    assert kinds["evaluation"] == (1, 1)
    with pytest.raises(NotFoundError):
        prepared.get_evaluation("0123456789abcdef")


def test_html_report_has_the_charts(prepared: Client) -> None:
    e = prepared.evaluate(
        "churn@2", "holdout@1", "label", against="churn@1", slice_column="region", resamples=100
    )
    html = prepared.evaluation_report(e.id)
    for chart in ("roc", "pr", "calibration", "deltas", "slices"):
        assert f'data-chart="{chart}"' in html, chart
    assert "<script" not in html
    assert "http" not in html.replace("http://www.w3.org", "")
    assert "better" in html


def test_regression_and_paired_losses(workdir: Path) -> None:
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(3)
    x = rng.normal(size=600)
    y = 2 * x + rng.normal(size=600)
    write_csv(workdir / "r.csv", {"x": x, "y": y})
    with Client(cwd=workdir) as client:
        client.add_dataset("reg", workdir / "r.csv")
        ex = {"x": x[:5]}
        log(client, "price", LinearRegression().fit(x[:, None] * 0, y), ex)
        import pandas as pd

        good = LinearRegression().fit(pd.DataFrame({"x": x}), y)
        log(client, "price", good, pd.DataFrame({"x": x[:5]}))
        e = client.evaluate("price@2", "reg@1", "y", against="price@1", resamples=200)
        assert e.task == "regression"
        assert e.comparison("rmse").verdict == "better"  # type: ignore[union-attr]
        assert e.comparison("rmse").test == "paired t"  # type: ignore[union-attr]
        html = client.evaluation_report(e.id)
        assert 'data-chart="residuals"' in html


def test_mismatched_schema_and_bad_columns(prepared: Client, workdir: Path) -> None:
    data = make_data(50, 9)
    del data["x1"]
    write_csv(workdir / "other.csv", data)
    prepared.add_dataset("other", workdir / "other.csv")
    with pytest.raises(InvalidArgumentError, match=r"lacks column.*'x1'.*churn@2"):
        prepared.evaluate("churn@2", "other@1", "label")
    with pytest.raises(InvalidArgumentError, match="no target column 'nope'"):
        prepared.evaluate("churn@2", "holdout@1", "nope")
    with pytest.raises(InvalidArgumentError, match="no slice column"):
        prepared.evaluate("churn@2", "holdout@1", "label", slice_column="nope")
    with pytest.raises(InvalidArgumentError, match="against itself"):
        prepared.evaluate("churn@2", "holdout@1", "label", against="churn@2")


@pytest.mark.postgres
def test_record_round_trip_on_postgresql(pg_url: str, workdir: Path, tmp_path: Path) -> None:
    with Client(pg_url, blobs=str(tmp_path / "blobs"), cwd=workdir) as client:
        populate(client, workdir)
        e = client.evaluate("churn@2", "holdout@1", "label", against="churn@1", resamples=100)
        assert client.get_evaluation(e.id) == e
        assert [x.id for x in client.list_evaluations("churn@1")] == [e.id]
        assert client.evaluation_results(e.id)["champion"]["model"] == "churn@1"


def test_rows_stream_in_batches(
    prepared: Client, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of 64 rows give the same evaluation as one batch; rows without a label
    are left out, whichever batch they fall in."""
    import syllabus.evaluation.service as service

    whole = prepared.evaluate("churn@2", "holdout@1", "label", against="churn@1", resamples=50)
    seen: list[int] = []
    original = service._Scorer.predict

    def spy(self: service._Scorer, batch: object, dataset: object) -> None:
        seen.append(batch.num_rows)  # type: ignore[attr-defined]
        original(self, batch, dataset)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "_BATCH", 64)
    monkeypatch.setattr(service._Scorer, "predict", spy)
    heard: list[int] = []
    batched = prepared.evaluate(
        "churn@2",
        "holdout@1",
        "label",
        against="churn@1",
        resamples=50,
        progress=lambda rows, total: heard.append(rows),
    )
    assert heard == [64] * 12 + [32]  # the rows read, batch by batch
    assert max(seen) == 64
    assert sum(seen) == 2 * 800
    assert batched.metrics == whole.metrics
    assert batched.comparisons == whole.comparisons
    text = (workdir / "holdout.csv").read_text().splitlines()
    header, rows = text[0], text[1:]
    label = header.split(",").index("label")
    blanked = [
        ",".join("" if j == label and i % 100 == 5 else v for j, v in enumerate(r.split(",")))
        for i, r in enumerate(rows)
    ]
    (workdir / "holdout.csv").write_text("\n".join([header, *blanked]) + "\n")
    prepared.add_dataset("holdout", workdir / "holdout.csv")
    partial = prepared.evaluate("churn@2", "holdout@2", "label", resamples=20)
    assert partial.rows == 800 - 8


def test_per_row_custom_metric_is_compared_with_a_paired_test(prepared: Client) -> None:
    def cost(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.where(y_true == 1, 5.0, 1.0) * (y_true != y_pred)

    cost.per_row = True  # type: ignore[attr-defined]
    cost.greater_is_better = False  # type: ignore[attr-defined]
    e = prepared.evaluate(
        "churn@2", "holdout@1", "label", against="churn@1", metrics={"cost": cost}, resamples=200
    )
    c = e.comparison("cost")
    assert c is not None
    assert (c.test, c.verdict) == ("paired t", "better")
    value = e.metric("cost")
    assert value is not None
    assert value.low is not None
    assert value.high is not None
    assert value.low < value.value < value.high  # type: ignore[operator]
