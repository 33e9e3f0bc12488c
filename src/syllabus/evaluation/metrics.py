"""Metrics by task, each written over bootstrap weights so one matrix product computes
all its resamples.

A :class:`Metric` is a function of a ``b x n`` weight matrix (row counts of ``b``
resamples; a row of ones is the data as it is) returning ``b`` values (or ``b x k`` for
per-class metrics). Point values equal scikit-learn's; the tests check them.

Classification: accuracy, precision, recall and F1 (of the positive class for two
classes, macro and weighted averages, and per class), ROC AUC and PR AUC (one-vs-rest
macro for several classes), log loss, Brier score and expected calibration error (when
the model gives probabilities), and the confusion matrix. Regression: RMSE, MAE, R2,
MAPE. Custom metrics are functions ``f(y_true, y_pred) -> float``
(``f.greater_is_better = False`` for losses).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np

from syllabus.errors import InvalidArgumentError
from syllabus.evaluation.stats import interval, resamples

__all__ = [
    "CustomMetric",
    "Metric",
    "MetricSamples",
    "Scored",
    "Task",
    "bootstrap",
    "infer_task",
    "score_classification",
    "score_regression",
]

Array = np.ndarray[Any, Any]
Task = Literal["classification", "regression"]
CustomMetric = Callable[[Any, Any], float]
Weighted = Callable[[Array], Array]
_EPS: Final = float(np.finfo(np.float64).eps)
_BINS: Final = 10
_MAX_CLASSES_INFERRED: Final = 20
_CURVE_POINTS: Final = 200


@dataclass(frozen=True)
class Metric:
    """One metric: how to compute it over weights, its direction, and the paired test
    that compares two models on it (``rows`` are the per-row values that test uses)."""

    name: str
    weighted: Weighted | None
    higher_is_better: bool
    test: str = "bootstrap"  # mcnemar | delong | paired_t | bootstrap
    rows: Array | None = None
    indexed: Callable[[Array], float] | None = None  # custom metrics: row indices -> value
    per_class: bool = False


@dataclass
class Scored:
    """One model's predictions turned into metrics, curves and a confusion matrix."""

    task: Task
    metrics: list[Metric]
    classes: list[Any] = field(default_factory=list)
    curves: dict[str, Any] = field(default_factory=dict)
    confusion: list[list[int]] | None = None


@dataclass(frozen=True)
class MetricSamples:
    """A metric's value, its interval and the bootstrap resamples behind it."""

    value: Any
    low: Any
    high: Any
    samples: Array


def infer_task(y: Array, *, has_proba: bool = False, output_type: str | None = None) -> Task:
    """Classification when the model gives probabilities, its signature says it returns
    labels (strings, booleans, integers) or the target looks like labels; else
    regression."""
    if has_proba:
        return "classification"
    if output_type is not None:
        if output_type.startswith("float"):
            return "regression"
        if output_type in ("string", "bool", "int32", "int64"):
            return "classification"
    kind = y.dtype.kind
    if kind in ("O", "U", "S", "b"):
        return "classification"
    if kind in ("i", "u"):
        return "classification" if len(np.unique(y)) <= _MAX_CLASSES_INFERRED else "regression"
    finite = y[np.isfinite(y)] if kind == "f" else y
    integral = kind == "f" and bool(np.all(finite == np.round(finite)))
    if integral and len(np.unique(finite)) <= _MAX_CLASSES_INFERRED:
        return "classification"
    return "regression"


def _linear(columns: Array, finish: Callable[[Array], Array]) -> Weighted:
    """A metric that is a function of weighted column sums ``W @ columns``."""
    by_column = _by_column(columns)

    def fn(w: Array) -> Array:
        return finish(_weighted_sums(w, by_column))

    return fn


def _by_column(columns: Array) -> Array:
    """``columns`` (``n x k``) laid out one column after the other, for
    :func:`_weighted_sums`."""
    return np.ascontiguousarray(np.asarray(columns, dtype=np.float64).T)


def _weighted_sums(w: Array, by_column: Array) -> Array:
    """``W @ columns`` (``b x k``) from the columns laid out by :func:`_by_column`.

    The product is taken as ``columns.T @ W.T``: with ``n``-long rows on both sides BLAS
    streams them; ``W @ columns`` with ``columns`` row-major was ~20x slower at a million
    rows (measured by bench/evaluation.py).
    """
    out: Array = (by_column @ w.T).T
    return out


def _div(num: Array, den: Array) -> Array:
    return np.divide(
        num, den, out=np.zeros(np.broadcast_shapes(num.shape, den.shape)), where=den > 0
    )


def _nan_div(num: Array, den: Array) -> Array:
    out: Array = np.full(np.shape(num), np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _last(fn: Callable[[Array], Any]) -> Callable[[Array], Any]:
    """``fn`` remembering its result for the last weight matrix: the metrics sharing it
    (per-class counts, the ranked sums) are computed once per bootstrap chunk."""
    memo: list[Any] = [None, None]

    def cached(w: Array) -> Any:
        if memo[0] is not w:
            memo[1] = fn(w)
            memo[0] = w
        return memo[1]

    return cached


def _ranked(score: Array, positive: Array) -> tuple[Weighted, Weighted]:
    """ROC AUC (ties count one half, the Mann-Whitney statistic) and average precision
    (PR AUC as scikit-learn computes it) over weights, sharing one pass over the weights
    in score order (the gather, the sums per distinct score) per chunk."""
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    ties = len(starts) < len(s)
    p = positive[order]

    @_last
    def sums(w: Array) -> tuple[Array, Array]:
        ws = w[:, order]
        gp = np.where(p, ws, 0.0)
        gn = ws - gp
        if ties:
            gp = np.add.reduceat(gp, starts, axis=1)
            gn = np.add.reduceat(gn, starts, axis=1)
        return gp, gn

    def auc(w: Array) -> Array:
        gp, gn = sums(w)
        below = np.cumsum(gn, axis=1)
        below -= 0.5 * gn
        num = np.einsum("ij,ij->i", gp, below)
        den = gp.sum(axis=1) * gn.sum(axis=1)
        return _nan_div(num, den)

    def average_precision(w: Array) -> Array:
        # in descending score order: true and false positives at or above each score
        gp, gn = sums(w)
        cp, cn = np.cumsum(gp, axis=1), np.cumsum(gn, axis=1)
        total_p, total_n = cp[:, -1:], cn[:, -1:]
        tp = total_p - cp + gp
        fp = total_n - cn + gn
        precision = _div(tp, tp + fp)
        return _nan_div(np.einsum("ij,ij->i", gp, precision), total_p[:, 0])

    return auc, average_precision


def _auc(score: Array, positive: Array) -> Weighted:
    """ROC AUC over weights (ties count one half), as the Mann-Whitney statistic."""
    return _ranked(score, positive)[0]


def _average_precision(score: Array, positive: Array) -> Weighted:
    """Average precision (PR AUC as scikit-learn computes it) over weights."""
    return _ranked(score, positive)[1]


def _mean_of_classes(fns: Sequence[Weighted]) -> Weighted:
    def fn(w: Array) -> Array:
        with np.errstate(invalid="ignore"):
            stacked = np.stack([f(w) for f in fns], axis=1)
            ok = np.isfinite(stacked)
            count = ok.sum(axis=1)
            total = np.where(ok, stacked, 0.0).sum(axis=1)
        return _nan_div(total, count)

    return fn


def _curve_points(x: Array, y: Array) -> dict[str, list[float]]:
    if len(x) > _CURVE_POINTS:
        keep = np.unique(np.linspace(0, len(x) - 1, _CURVE_POINTS).round().astype(int))
        x, y = x[keep], y[keep]
    return {"x": [round(float(v), 6) for v in x], "y": [round(float(v), 6) for v in y]}


def _roc_curve(score: Array, positive: Array) -> dict[str, list[float]]:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(positive, score)
    return _curve_points(fpr, tpr)


def _pr_curve(score: Array, positive: Array) -> dict[str, list[float]]:
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(positive, score)
    return _curve_points(recall[::-1], precision[::-1])


def _calibration(prob: Array, outcome: Array) -> dict[str, list[float]]:
    bins = np.minimum((prob * _BINS).astype(int), _BINS - 1)
    count = np.bincount(bins, minlength=_BINS)
    mean_p = _div(np.bincount(bins, prob, _BINS), count)
    mean_y = _div(np.bincount(bins, outcome.astype(np.float64), _BINS), count)
    keep = count > 0
    return {
        "x": [round(float(v), 6) for v in mean_p[keep]],
        "y": [round(float(v), 6) for v in mean_y[keep]],
        "count": [int(c) for c in count[keep]],
    }


def _custom(name: str, fn: CustomMetric, y_true: Any, y_pred: Any, n: int) -> Metric:
    def indexed(idx: Array) -> float:
        return float(fn(y_true[idx], y_pred[idx]))

    better = bool(getattr(fn, "greater_is_better", True))
    return Metric(name, None, better, "bootstrap", indexed=indexed)


def score_classification(
    y_true: Array,
    y_pred: Array,
    proba: Array | None,
    classes: Sequence[Any],
    *,
    custom: Mapping[str, CustomMetric] | None = None,
    curves: bool = True,
) -> Scored:
    """Classification metrics. ``proba`` has one column per class in ``classes`` order;
    with two classes the second is the positive one."""
    n = len(y_true)
    labels = list(classes)
    index = {c: i for i, c in enumerate(labels)}
    for value in np.unique(np.concatenate([y_true, y_pred]).astype(object)):
        if value not in index:
            if proba is not None:
                raise InvalidArgumentError(
                    f"label {value!r} is not one of the model's classes {labels[:10]}"
                )
            index[value] = len(labels)
            labels.append(value)
    k = len(labels)
    t = np.array([index[v] for v in y_true.tolist()], dtype=np.int64)
    p = np.array([index[v] for v in y_pred.tolist()], dtype=np.int64)
    onehot_t = np.eye(k)[t]
    onehot_p = np.eye(k)[p]
    correct = (t == p).astype(np.float64)
    present = np.flatnonzero(onehot_t.sum(0) + onehot_p.sum(0) > 0)
    counts = _by_column(np.column_stack([onehot_t * onehot_p, onehot_p, onehot_t, np.ones(n)]))

    @_last
    def per_class(w: Array) -> tuple[Array, Array, Array, Array]:
        s = _weighted_sums(w, counts)
        tp, pred, true = s[:, :k], s[:, k : 2 * k], s[:, 2 * k : 3 * k]
        return _div(tp, pred), _div(tp, true), _div(2 * tp, pred + true), true

    def pick(which: int, average: str, cls: int | None = None) -> Weighted:
        def fn(w: Array) -> Array:
            parts = per_class(w)
            values, support = parts[which], parts[3]
            if cls is not None:
                return np.asarray(values[:, cls])
            if average == "macro":
                return np.asarray(values[:, present].mean(axis=1))
            return _div((values * support).sum(axis=1), support.sum(axis=1))

        return fn

    metrics = [
        Metric("accuracy", _linear(np.column_stack([correct, np.ones(n)]),
                                   lambda s: _div(s[:, 0], s[:, 1])),
               True, "mcnemar", rows=correct),
    ]  # fmt: skip
    if k == 2:
        metrics += [
            Metric("precision", pick(0, "", 1), True),
            Metric("recall", pick(1, "", 1), True),
            Metric("f1", pick(2, "", 1), True),
        ]
    metrics += [
        Metric("precision_macro", pick(0, "macro"), True),
        Metric("recall_macro", pick(1, "macro"), True),
        Metric("f1_macro", pick(2, "macro"), True),
        Metric("f1_weighted", pick(2, "weighted"), True),
    ]

    def part(which: int) -> Weighted:
        return lambda w: per_class(w)[which]

    for which, name in enumerate(("precision", "recall", "f1")):
        metrics.append(Metric(f"per_class.{name}", part(which), True, per_class=True))
    scored = Scored("classification", metrics, labels)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (t, p), 1)
    scored.confusion = confusion.tolist()
    if proba is not None:
        _probability_metrics(scored, t, proba, k, curves=curves)
    for name, fn in (custom or {}).items():
        metrics.append(_custom(name, fn, y_true, y_pred, n))
    return scored


def _probability_metrics(scored: Scored, t: Array, proba: Array, k: int, *, curves: bool) -> None:
    n = len(t)
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape != (n, k):
        raise InvalidArgumentError(
            f"the model's probabilities have shape {list(proba.shape)}, expected [{n}, {k}]"
        )
    onehot = np.eye(k)[t]
    clipped = np.clip(proba, _EPS, 1 - _EPS)
    log_loss = -np.log(clipped[np.arange(n), t])
    if k == 2:
        pos = proba[:, 1]
        positive = t == 1
        brier = (pos - positive) ** 2
        auc, ap = _ranked(pos, positive)
        conf, outcome = pos, positive.astype(np.float64)
        delong_rows: Array | None = pos
    else:
        brier = ((proba - onehot) ** 2).sum(axis=1)
        ranked = [_ranked(proba[:, c], t == c) for c in range(k)]
        auc = _mean_of_classes([r[0] for r in ranked])
        ap = _mean_of_classes([r[1] for r in ranked])
        conf = proba.max(axis=1)
        outcome = (proba.argmax(axis=1) == t).astype(np.float64)
        delong_rows = None
    bins = np.minimum((conf * _BINS).astype(int), _BINS - 1)
    onehot_bins = np.eye(_BINS)[bins]
    ece_cols = np.column_stack([onehot_bins * outcome[:, None], onehot_bins * conf[:, None]])

    def ece(s: Array) -> Array:
        gap = np.abs(s[:, :_BINS] - s[:, _BINS : 2 * _BINS]).sum(axis=1)
        return _div(gap, s[:, -1])

    ones = np.ones((n, 1))
    scored.metrics += [
        Metric("roc_auc", auc, True, "delong" if delong_rows is not None else "bootstrap",
               rows=delong_rows),
        Metric("pr_auc", ap, True),
        Metric("log_loss", _linear(np.column_stack([log_loss, ones]),
                                   lambda s: _div(s[:, 0], s[:, 1])),
               False, "paired_t", rows=log_loss),
        Metric("brier", _linear(np.column_stack([brier, ones]),
                                lambda s: _div(s[:, 0], s[:, 1])),
               False, "paired_t", rows=brier),
        Metric("ece", _linear(np.column_stack([ece_cols, ones]), ece), False),
    ]  # fmt: skip
    if curves:
        if k == 2:
            scored.curves["roc"] = _roc_curve(proba[:, 1], t == 1)
            scored.curves["pr"] = _pr_curve(proba[:, 1], t == 1)
        scored.curves["calibration"] = _calibration(conf, outcome)


def score_regression(
    y_true: Array,
    y_pred: Array,
    *,
    custom: Mapping[str, CustomMetric] | None = None,
    curves: bool = True,
) -> Scored:
    """Regression metrics: RMSE, MAE, R2 and MAPE."""
    y = np.asarray(y_true, dtype=np.float64)
    f = np.asarray(y_pred, dtype=np.float64).reshape(len(y), -1)[:, 0]
    n = len(y)
    err = f - y
    se, ae = err**2, np.abs(err)
    ape = ae / np.maximum(np.abs(y), _EPS)
    ones = np.ones(n)
    cols = np.column_stack([se, ae, ape, y, y**2, ones])

    def rmse(s: Array) -> Array:
        return np.sqrt(_div(s[:, 0], s[:, 5]))

    def r2(s: Array) -> Array:
        total = s[:, 4] - _div(s[:, 3] ** 2, s[:, 5])
        return np.where(total > 1e-12 * np.maximum(s[:, 4], 1), 1 - _div(s[:, 0], total), np.nan)

    metrics = [
        Metric("rmse", _linear(cols, rmse), False, "paired_t", rows=se),
        Metric("mae", _linear(cols, lambda s: _div(s[:, 1], s[:, 5])), False, "paired_t", rows=ae),
        Metric("r2", _linear(cols, r2), True, "paired_t", rows=-se),
        Metric("mape", _linear(cols, lambda s: _div(s[:, 2], s[:, 5])), False, "paired_t",
               rows=ape),
    ]  # fmt: skip
    for name, fn in (custom or {}).items():
        metrics.append(_custom(name, fn, y_true, y_pred, n))
    scored = Scored("regression", metrics)
    if curves:
        order = np.argsort(f, kind="mergesort")
        scored.curves["residuals"] = _curve_points(f[order], err[order])
    return scored


def bootstrap(
    models: Sequence[Scored],
    n: int,
    *,
    count: int,
    seed: int,
    confidence: float,
) -> list[dict[str, MetricSamples]]:
    """Every metric of every model: point value, interval and resamples. The models share
    the same resamples (the paired bootstrap)."""
    ones = np.ones((1, n))
    everything = np.arange(n)
    chunks: list[list[list[Array]]] = [[[] for _ in m.metrics] for m in models]
    if count > 0 and n > 0:
        for idx, w in resamples(n, count, seed):
            for mi, model in enumerate(models):
                for ki, metric in enumerate(model.metrics):
                    chunks[mi][ki].append(_values(metric, w, idx))
    out: list[dict[str, MetricSamples]] = []
    for mi, model in enumerate(models):
        result: dict[str, MetricSamples] = {}
        for ki, metric in enumerate(model.metrics):
            point = _values(metric, ones, everything[None, :])[0]
            samples = np.concatenate(chunks[mi][ki]) if chunks[mi][ki] else np.empty((0,))
            if len(samples):
                low, high = interval(samples, confidence)
            else:
                low = high = np.full(np.shape(point), np.nan)
            result[metric.name] = MetricSamples(point, low, high, samples)
        out.append(result)
    return out


def _values(metric: Metric, w: Array, idx: Array) -> Array:
    if metric.weighted is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(metric.weighted(w), dtype=np.float64)
    assert metric.indexed is not None
    return np.array([metric.indexed(row) for row in idx], dtype=np.float64)
