"""Metric values equal scikit-learn's; bootstrap intervals cover known values."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from syllabus.errors import InvalidArgumentError
from syllabus.evaluation.metrics import (
    bootstrap,
    infer_task,
    score_classification,
    score_regression,
)


def _values(scored, n, count=200):  # type: ignore[no-untyped-def]
    (out,) = bootstrap([scored], n, count=count, seed=1, confidence=0.95)
    return out


def test_binary_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(0)
    n = 1500
    y = rng.integers(0, 2, n)
    s = np.round(np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1), 2)  # ties on purpose
    proba = np.column_stack([1 - s, s])
    pred = (s > 0.5).astype(int)
    v = _values(score_classification(y, pred, proba, [0, 1]), n)
    assert v["accuracy"].value == pytest.approx(skm.accuracy_score(y, pred))
    assert v["precision"].value == pytest.approx(skm.precision_score(y, pred))
    assert v["recall"].value == pytest.approx(skm.recall_score(y, pred))
    assert v["f1"].value == pytest.approx(skm.f1_score(y, pred))
    assert v["f1_macro"].value == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert v["f1_weighted"].value == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert v["roc_auc"].value == pytest.approx(skm.roc_auc_score(y, s))
    assert v["pr_auc"].value == pytest.approx(skm.average_precision_score(y, s))
    assert v["log_loss"].value == pytest.approx(skm.log_loss(y, proba))
    assert v["brier"].value == pytest.approx(skm.brier_score_loss(y, s))
    np.testing.assert_allclose(v["per_class.f1"].value, skm.f1_score(y, pred, average=None))
    for name in ("accuracy", "roc_auc", "log_loss"):
        assert v[name].low <= v[name].value <= v[name].high


def test_multiclass_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(1)
    n = 900
    y = rng.integers(0, 3, n)
    p = rng.dirichlet([1, 1, 1], n)
    p[np.arange(n), y] += 0.5
    p /= p.sum(axis=1, keepdims=True)
    pred = p.argmax(axis=1)
    v = _values(score_classification(y, pred, p, [0, 1, 2]), n)
    assert v["roc_auc"].value == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"))
    assert v["pr_auc"].value == pytest.approx(
        skm.average_precision_score(np.eye(3)[y], p, average="macro")
    )
    assert v["log_loss"].value == pytest.approx(skm.log_loss(y, p))
    assert v["precision_macro"].value == pytest.approx(
        skm.precision_score(y, pred, average="macro")
    )
    assert v["recall_macro"].value == pytest.approx(skm.recall_score(y, pred, average="macro"))


def test_labels_only_classification_and_confusion() -> None:
    y = np.array(["a", "b", "b", "c", "a", "c"], dtype=object)
    pred = np.array(["a", "b", "c", "c", "b", "c"], dtype=object)
    scored = score_classification(y, pred, None, ["a", "b", "c"])
    v = _values(scored, len(y))
    assert "roc_auc" not in v
    assert v["f1_macro"].value == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert scored.confusion == skm.confusion_matrix(y, pred, labels=["a", "b", "c"]).tolist()


def test_regression_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(10, 3, 1000)
    f = y + rng.normal(0, 1, 1000)
    v = _values(score_regression(y, f), 1000)
    assert v["rmse"].value == pytest.approx(skm.root_mean_squared_error(y, f))
    assert v["mae"].value == pytest.approx(skm.mean_absolute_error(y, f))
    assert v["r2"].value == pytest.approx(skm.r2_score(y, f))
    assert v["mape"].value == pytest.approx(skm.mean_absolute_percentage_error(y, f))


def test_intervals_cover_known_values() -> None:
    """Over 40 synthetic sets, the 95% intervals of accuracy (true 0.8) and RMSE (true 1)
    cover the truth in most of them."""
    covered_acc = covered_rmse = 0
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        y = rng.integers(0, 2, 400)
        pred = np.where(rng.random(400) < 0.8, y, 1 - y)
        acc = _values(score_classification(y, pred, None, [0, 1]), 400)["accuracy"]
        covered_acc += acc.low <= 0.8 <= acc.high
        t = rng.normal(size=400)
        rmse = _values(score_regression(t, t + rng.normal(size=400)), 400)["rmse"]
        covered_rmse += rmse.low <= 1.0 <= rmse.high
    assert covered_acc >= 34
    assert covered_rmse >= 34


def test_custom_metric_gets_an_interval() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=300)
    f = y + rng.normal(size=300)

    def max_error(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.max(np.abs(a - b)))

    max_error.greater_is_better = False  # type: ignore[attr-defined]
    v = _values(score_regression(y, f, custom={"max_error": max_error}), 300, count=50)
    assert v["max_error"].value == pytest.approx(skm.max_error(y, f))
    assert v["max_error"].low <= v["max_error"].high


def _cost(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per row: a missed positive costs 5, a false alarm 1."""
    return np.where(y_true == 1, 5.0, 1.0) * (y_true != y_pred)


def test_per_row_custom_metric_resamples_like_the_plain_function() -> None:
    """A per-row custom metric is the mean of its rows; its resamples are exactly those
    of the same metric written as a plain function (rows are the units here)."""
    rng = np.random.default_rng(4)
    n = 900
    y = rng.integers(0, 2, n)
    pred = np.where(rng.random(n) < 0.8, y, 1 - y)

    def cost(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return float(_cost(y_true, y_pred).mean())

    vectorized = _cost
    vectorized.per_row = True  # type: ignore[attr-defined]
    vectorized.greater_is_better = False  # type: ignore[attr-defined]
    scored = score_classification(
        y, pred, None, [0, 1], custom={"cost": cost, "fast_cost": vectorized}
    )
    by_name = {m.name: m for m in scored.metrics}
    assert by_name["fast_cost"].test == "paired_t"
    assert not by_name["fast_cost"].higher_is_better
    v = _values(scored, n, count=100)
    assert v["fast_cost"].value == pytest.approx(cost(y, pred))
    np.testing.assert_allclose(v["fast_cost"].samples, v["cost"].samples, rtol=1e-12)
    assert v["fast_cost"].low == pytest.approx(v["cost"].low)


def test_per_row_custom_metric_with_finish() -> None:
    """``n x k`` statistics and ``finish(sums)``: precision as true positives over
    predicted positives equals scikit-learn's, resample by resample."""
    rng = np.random.default_rng(5)
    n = 700
    y = rng.integers(0, 2, n)
    pred = np.where(rng.random(n) < 0.7, y, 1 - y)

    def precision(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.column_stack([(y_true == 1) & (y_pred == 1), y_pred == 1])

    precision.per_row = True  # type: ignore[attr-defined]
    precision.finish = lambda sums: sums[:, 0] / sums[:, 1]  # type: ignore[attr-defined]
    v = _values(score_classification(y, pred, None, [0, 1], custom={"p": precision}), n, 80)
    assert v["p"].value == pytest.approx(skm.precision_score(y, pred))
    np.testing.assert_allclose(v["p"].samples, v["precision"].samples, rtol=1e-12)


def test_per_row_custom_metric_of_the_wrong_shape_is_refused() -> None:
    def two(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.column_stack([y_true, y_pred])

    two.per_row = True  # type: ignore[attr-defined]
    y = np.array([0, 1, 1, 0])
    with pytest.raises(InvalidArgumentError, match="give it finish"):
        score_classification(y, y, None, [0, 1], custom={"two": two})

    def short(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.zeros(2)

    short.per_row = True  # type: ignore[attr-defined]
    with pytest.raises(InvalidArgumentError, match="expected 4 values"):
        score_regression(y.astype(float), y.astype(float), custom={"short": short})


def test_infer_task() -> None:
    assert infer_task(np.array([0, 1, 1]), has_proba=True) == "classification"
    assert infer_task(np.array(["a", "b"], dtype=object)) == "classification"
    assert infer_task(np.array([0.5, 1.2, 3.3])) == "regression"
    assert infer_task(np.array([0.0, 1.0, 1.0])) == "classification"
    assert infer_task(np.array([0, 1]), output_type="float64") == "regression"


def test_results_of_a_metric_undefined_on_every_resample_are_json() -> None:
    """All resamples NaN: the interval is a 0-d NaN array, stored as null."""
    from syllabus.evaluation.service import _jsonable

    y = np.array([0, 1, 0, 1, 1, 0])

    def precision(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.column_stack([(y_true == 1) & (y_pred == 1), y_pred == 1])

    precision.per_row = True  # type: ignore[attr-defined]
    precision.finish = lambda sums: sums[:, 0] / sums[:, 1]  # type: ignore[attr-defined]
    zeros = np.zeros(6, dtype=int)  # never predicts a positive: precision undefined
    v = _values(score_classification(y, zeros, None, [0, 1], custom={"p": precision}), 6, 20)
    assert _jsonable({"low": v["p"].low, "value": v["p"].value}) == {"low": None, "value": None}
