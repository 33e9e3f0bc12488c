"""Metrics by task, each written over additive per-row statistics so one matrix product
computes all the bootstrap resamples of every metric of a model.

A model's predictions become a table of per-row statistics (:class:`Columns`: per-row
values such as the log loss, and counts per category such as true positives per class).
Every metric is a function of the *sums* of those statistics (``finish``), so it is exact
at the data (point values equal scikit-learn's; the tests check them) and, for a
bootstrap resample, needs only the weighted sums ``W @ S`` (see :func:`bootstrap`).

ROC AUC and PR AUC are rank statistics, not sums. Their point values come from one sort of
the scores (ties count one half, :class:`Ranked`). Up to :data:`EXACT_RANKED_ROWS` rows
each resample's value is recomputed exactly from its weights in score order; above, from
the statistics' first-order expansion in the weights, which is a sum: DeLong's placement
values for ROC AUC, the influence function of average precision for PR AUC. The error of
that expansion is of order ``1/n`` against a sampling spread of order ``1/sqrt(n)``: at
2,000 rows the 2.5 % and 97.5 % resample quantiles of both ways agree within 0.001 (a
tenth of the spread), and closer as ``n`` grows (measured; ``tests/evaluation``).

Classification: accuracy, precision, recall and F1 (of the positive class for two
classes, macro and weighted averages, and per class), ROC AUC and PR AUC (one-vs-rest
macro for several classes), log loss, Brier score and expected calibration error (when
the model gives probabilities), and the confusion matrix. Regression: RMSE, MAE, R2,
MAPE.

Custom metrics (``f.greater_is_better = False`` for losses) come in two kinds:

* ``f(y_true, y_pred) -> float``: any function of the labels and predictions (numpy
  arrays). It is called on the data and on each bootstrap resample's rows: ``B + 1``
  calls per model, each on ``n`` rows (slow at a million rows: its own cost times 1,001).
* ``f.per_row = True``: ``f(y_true, y_pred)`` is called once and returns per-row
  statistics, like the built-in metrics: ``n`` values, whose mean is the metric (compared
  with a paired t-test, as the losses), or an ``n x k`` array together with
  ``f.finish(sums) -> values``, which turns ``b x k`` column sums (one row per resample,
  and the data's) into ``b`` values (compared with the paired bootstrap). Its
  resamples then cost one matrix product, as for the built-in metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np

from syllabus.errors import InvalidArgumentError
from syllabus.evaluation.stats import Plan, interval, plan

__all__ = [
    "EXACT_RANKED_ROWS",
    "Columns",
    "CustomMetric",
    "Metric",
    "MetricSamples",
    "Ranked",
    "Scored",
    "Task",
    "bootstrap",
    "infer_task",
    "score_classification",
    "score_regression",
]

Array = np.ndarray[Any, Any]
Task = Literal["classification", "regression"]
CustomMetric = Callable[[Any, Any], Any]
Finish = Callable[[Array], Array]
_EPS: Final = float(np.finfo(np.float64).eps)
_BINS: Final = 10
_MAX_CLASSES_INFERRED: Final = 20
_CURVE_POINTS: Final = 200
EXACT_RANKED_ROWS: Final = 2_000  # rank metrics recomputed per resample up to this many rows


# --------------------------------------------------------------------------- statistics


class Columns:
    """Additive per-row statistics of one model, laid out as columns.

    ``add(values)`` is one column (``values`` per row, ones when None);
    ``add(values, category, k)`` is ``k`` columns: ``values`` counted in the column of
    each row's category. Sums over rows (:meth:`total`) or over groups of rows
    (:meth:`by_unit`) are bincounts, never a dense ``n x k`` matrix, except for the
    per-row layout of small data."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.width = 0
        self._parts: list[tuple[int, Array | None, Array | None, int]] = []

    def add(self, values: Array | None = None, category: Array | None = None, k: int = 1) -> int:
        """Add a statistic; returns its first column."""
        start = self.width
        vals = None if values is None else np.asarray(values, dtype=np.float64)
        cat = None if category is None else np.asarray(category, dtype=np.int64)
        self._parts.append((start, vals, cat, k if cat is not None else 1))
        self.width += k if cat is not None else 1
        return start

    def total(self) -> Array:
        """Sums over all rows (``width``)."""
        out = np.zeros(self.width)
        for start, vals, cat, k in self._parts:
            if cat is None:
                out[start] = self.n if vals is None else float(vals.sum())
            else:
                out[start : start + k] = np.bincount(cat, vals, minlength=k)[:k]
        return out

    def by_unit(self, units: Array | None, count: int) -> Array:
        """Sums per resampling unit (``count x width``): per row when ``units`` is None,
        else per group ``units[i]`` of row ``i``."""
        out = np.zeros((count, self.width))
        for start, vals, cat, k in self._parts:
            if units is None:
                if cat is None:
                    out[:, start] = 1.0 if vals is None else vals
                else:
                    out[np.arange(self.n), start + cat] = 1.0 if vals is None else vals
            elif cat is None:
                out[:, start] = np.bincount(units, vals, minlength=count)
            else:
                flat = np.bincount(units * k + cat, vals, minlength=count * k)
                out[:, start : start + k] = flat.reshape(count, k)
        return out


@dataclass(frozen=True)
class Metric:
    """One metric: how to compute it from the sums of its model's :class:`Columns`
    (``finish``: ``b x width`` sums to ``b`` values, ``b x k`` for per-class metrics),
    its direction, and the paired test that compares two models on it (``rows`` are the
    per-row values that test uses; ``positive`` the rows of the positive class for
    DeLong's test, whose rows are the placement values)."""

    name: str
    finish: Finish | None
    higher_is_better: bool
    test: str = "bootstrap"  # mcnemar | delong | paired_t | bootstrap
    rows: Array | None = None
    positive: Array | None = None
    exact: Callable[[Array], Array] | None = None  # row weights -> values (rank metrics)
    point: float | None = None  # the exact value, when ``finish`` is an expansion
    # custom metrics: (per-row array -> the resample's values) -> value
    indexed: Callable[[Callable[[Any], Array]], float] | None = None
    per_class: bool = False


@dataclass
class Scored:
    """One model's predictions turned into statistics, metrics, curves and a confusion
    matrix."""

    task: Task
    metrics: list[Metric]
    columns: Columns
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


def _div(num: Array, den: Array) -> Array:
    return np.divide(
        num, den, out=np.zeros(np.broadcast_shapes(np.shape(num), np.shape(den))), where=den > 0
    )


def _nan_div(num: Array, den: Array) -> Array:
    out: Array = np.full(np.broadcast_shapes(np.shape(num), np.shape(den)), np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


# --------------------------------------------------------------------------- rank metrics


class Ranked:
    """A score and a binary outcome, sorted once: exact ROC AUC and average precision
    (ties count one half, as scikit-learn), DeLong's placement values, the influence
    values of average precision, the ROC and PR curves, and both metrics over row
    weights."""

    def __init__(self, score: Array, positive: Array) -> None:
        score = np.asarray(score, dtype=np.float64)
        positive = np.asarray(positive, dtype=bool)
        self.n = n = len(score)
        self.positive = positive
        order = np.argsort(-score)  # descending; ties are grouped below, order among them moot
        s = score[order]
        sp = positive[order]
        new = np.empty(n, dtype=bool)
        new[:1] = True
        np.not_equal(s[1:], s[:-1], out=new[1:])
        self.ties = ties = not bool(new.all())
        # tie level of each sorted row (0 = highest); without ties, the row itself
        level = np.cumsum(new) - 1 if ties else np.arange(n)
        levels = int(level[-1]) + 1 if n else 0
        p_at = np.bincount(level, sp, minlength=levels) if ties else sp.astype(np.float64)
        q_at = (np.bincount(level, minlength=levels) if ties else 1.0) - p_at
        self.order, self.starts, self.sorted_positive = order, np.flatnonzero(new), sp
        self.p = p = float(p_at.sum())
        self.q = q = float(n - p)
        tp, fp = np.cumsum(p_at), np.cumsum(q_at)  # at or above each level
        # placements: a positive's share of negatives below it, a negative's share of
        # positives above it (ties one half); their means are the AUC
        neg_below = q - fp + 0.5 * q_at
        pos_above = tp - 0.5 * p_at
        with np.errstate(invalid="ignore", divide="ignore"):
            share_below, share_above = neg_below / q, pos_above / p
        if ties:
            share_below, share_above = share_below[level], share_above[level]
        placed = np.where(sp, share_below, share_above)
        self.placements = np.empty(n)
        self.placements[order] = placed
        self.auc = float(np.dot(p_at, neg_below) / (p * q)) if p and q else float("nan")
        # average precision and its influence values (derivative in the row weights)
        depth = tp + fp
        precision = tp / depth
        self.ap = float(np.dot(p_at, precision) / p) if p else float("nan")
        self.ap_influence = np.zeros(n)
        if p:
            a = np.cumsum((p_at / depth)[::-1])[::-1]  # over this level and below
            b = np.cumsum((p_at * precision / depth)[::-1])[::-1]
            y = sp.astype(np.float64)
            if ties:
                precision_l, a, b = precision[level], a[level], b[level]
            else:
                precision_l = precision
            self.ap_influence[order] = (y * (precision_l + a - self.ap) - b) / p
        self._tp, self._fp, self._precision = tp, fp, precision

    def roc_curve(self) -> dict[str, list[float]]:
        x = np.r_[0.0, _div(self._fp, np.asarray(self.q))]
        y = np.r_[0.0, _div(self._tp, np.asarray(self.p))]
        return _curve_points(x, y)

    def pr_curve(self) -> dict[str, list[float]]:
        recall = np.r_[0.0, _div(self._tp, np.asarray(self.p))]
        return _curve_points(recall, np.r_[1.0, self._precision])

    def weighted(self) -> tuple[Callable[[Array], Array], Callable[[Array], Array]]:
        """Exact ROC AUC and average precision of ``b x n`` row weights, sharing the
        gather in score order (and the sums per tie level) per weight matrix."""
        order, starts, sp, ties = self.order, self.starts, self.sorted_positive, self.ties
        memo: list[Any] = [None, None]

        def sums(w: Array) -> tuple[Array, Array]:
            if memo[0] is not w:
                ws = w[:, order]
                gp = np.where(sp, ws, 0.0)
                gn = ws - gp
                if ties:
                    gp = np.add.reduceat(gp, starts, axis=1)
                    gn = np.add.reduceat(gn, starts, axis=1)
                memo[0], memo[1] = w, (gp, gn)
            out: tuple[Array, Array] = memo[1]
            return out

        def auc(w: Array) -> Array:
            gp, gn = sums(w)  # descending score: negatives below = total - at or above
            cn = np.cumsum(gn, axis=1)
            below = cn[:, -1:] - cn + 0.5 * gn
            num = np.einsum("ij,ij->i", gp, below)
            return _nan_div(num, gp.sum(axis=1) * cn[:, -1])

        def average_precision(w: Array) -> Array:
            gp, gn = sums(w)
            tp, fp = np.cumsum(gp, axis=1), np.cumsum(gn, axis=1)
            precision = _div(tp, tp + fp)
            return _nan_div(np.einsum("ij,ij->i", gp, precision), tp[:, -1])

        return auc, average_precision

    def expanded(self, cols: Columns) -> tuple[Finish, Finish]:
        """ROC AUC and average precision as functions of sums (first-order expansions in
        the weights): AUC as the weighted mean placement of positives plus that of
        negatives minus the AUC; AP plus the weighted mean of its influence values."""
        pos = self.positive.astype(np.float64)
        c_pos = cols.add(pos)
        c_place_pos = cols.add(np.where(self.positive, self.placements, 0.0))
        c_place_neg = cols.add(np.where(self.positive, 0.0, self.placements))
        c_ap = cols.add(self.ap_influence)
        c_n = cols.add()
        auc0, ap0 = self.auc, self.ap

        def auc(s: Array) -> Array:
            neg = s[:, c_n] - s[:, c_pos]
            return (
                _nan_div(s[:, c_place_pos], s[:, c_pos]) + _nan_div(s[:, c_place_neg], neg) - auc0
            )

        def ap(s: Array) -> Array:
            return ap0 + self.n * _nan_div(s[:, c_ap], s[:, c_n])

        return auc, ap


def _mean_of_classes(values: Sequence[Array]) -> Array:
    with np.errstate(invalid="ignore"):
        stacked = np.stack(values, axis=1)
        ok = np.isfinite(stacked)
        total = np.where(ok, stacked, 0.0).sum(axis=1)
        return _nan_div(total, ok.sum(axis=1))


def _curve_points(x: Array, y: Array) -> dict[str, list[float]]:
    if len(x) > _CURVE_POINTS:
        keep = np.unique(np.linspace(0, len(x) - 1, _CURVE_POINTS).round().astype(int))
        x, y = x[keep], y[keep]
    return {"x": [round(float(v), 6) for v in x], "y": [round(float(v), 6) for v in y]}


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


def _custom(name: str, fn: CustomMetric, y_true: Any, y_pred: Any, cols: Columns) -> Metric:
    """A custom metric: per resample (``f(y_true, y_pred) -> float``), or, when
    ``fn.per_row`` is true, per-row statistics added to ``cols`` (see the module)."""
    better = bool(getattr(fn, "greater_is_better", True))
    if not getattr(fn, "per_row", False):

        def indexed(take: Callable[[Any], Array]) -> float:
            return float(fn(take(y_true), take(y_pred)))

        return Metric(name, None, better, "bootstrap", indexed=indexed)
    n = len(y_true)
    values = np.asarray(fn(y_true, y_pred), dtype=np.float64)
    finish = getattr(fn, "finish", None)
    if values.ndim not in (1, 2) or values.shape[0] != n:
        raise InvalidArgumentError(
            f"custom metric {name!r} (per_row) returned shape {list(values.shape)}; "
            f"expected {n} values or {n} rows of statistics"
        )
    if not np.isfinite(values).all():
        raise InvalidArgumentError(f"custom metric {name!r} returned non-finite per-row values")
    if finish is None:
        if values.ndim == 2 and values.shape[1] != 1:
            raise InvalidArgumentError(
                f"custom metric {name!r} returns {values.shape[1]} statistics per row; "
                "give it finish(sums) -> values"
            )
        per_row = values.reshape(n)
        c_v, c_n = cols.add(per_row), cols.add()
        return Metric(
            name, lambda s: _nan_div(s[:, c_v], s[:, c_n]), better, "paired_t", rows=per_row
        )
    table = values.reshape(n, -1)
    k = table.shape[1]
    start = cols.add(table[:, 0])
    for j in range(1, k):
        cols.add(table[:, j])

    def finished(s: Array) -> Array:
        out = np.asarray(finish(s[:, start : start + k]), dtype=np.float64)
        if out.size != len(s):
            raise InvalidArgumentError(
                f"custom metric {name!r}: finish returned {out.size} values for {len(s)} "
                "rows of sums"
            )
        return out.reshape(len(s))

    return Metric(name, finished, better, "bootstrap")


# --------------------------------------------------------------------------- classification


def _encode(values: Array, labels: list[Any], index: dict[Any, int], *, grow: bool) -> Array:
    """Class numbers of ``values`` (labels not yet known are appended when ``grow``)."""
    values = np.asarray(values)
    small = values.dtype.kind in "iub" and len(values) > 0
    if small:
        lo, hi = int(values.min()), int(values.max())
        small = hi - lo < 1_000_000
    if small:  # integer labels: a lookup table instead of a sort
        shifted = values.astype(np.int64) - lo
        seen = np.flatnonzero(np.bincount(shifted))
        table = np.zeros(hi - lo + 1, dtype=np.int64)
        table[seen] = np.arange(len(seen))
        uniques, inverse = (seen + lo).astype(values.dtype), table[shifted]
    else:
        try:
            uniques, inverse = np.unique(values, return_inverse=True)
        except TypeError:  # mixed Python objects: no order, map one by one
            uniques = np.array(list(dict.fromkeys(values.tolist())), dtype=object)
            position = {v: i for i, v in enumerate(uniques.tolist())}
            inverse = np.fromiter((position[v] for v in values.tolist()), np.int64, len(values))
    codes = np.empty(len(uniques), dtype=np.int64)
    for i, value in enumerate(uniques.tolist()):
        if value not in index:
            if not grow:
                raise InvalidArgumentError(
                    f"label {value!r} is not one of the model's classes {labels[:10]}"
                )
            index[value] = len(labels)
            labels.append(value)
        codes[i] = index[value]
    return codes[np.asarray(inverse).reshape(-1)]


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
    grow = proba is None
    t = _encode(y_true, labels, index, grow=grow)
    p = _encode(y_pred, labels, index, grow=grow)
    k = len(labels)
    correct = (t == p).astype(np.float64)
    cols = Columns(n)
    c_correct = cols.add(correct)
    c_n = cols.add()
    c_tp = cols.add(correct, t, k)
    c_pred = cols.add(None, p, k)
    c_true = cols.add(None, t, k)
    present = np.flatnonzero(np.bincount(t, minlength=k) + np.bincount(p, minlength=k))
    memo: list[Any] = [None, None]

    def per_class(s: Array) -> tuple[Array, Array, Array, Array]:
        if memo[0] is not s:
            tp, pred = s[:, c_tp : c_tp + k], s[:, c_pred : c_pred + k]
            true = s[:, c_true : c_true + k]
            memo[0] = s
            memo[1] = (_div(tp, pred), _div(tp, true), _div(2 * tp, pred + true), true)
        out: tuple[Array, Array, Array, Array] = memo[1]
        return out

    def pick(which: int, average: str, cls: int | None = None) -> Finish:
        def fn(s: Array) -> Array:
            parts = per_class(s)
            values, support = parts[which], parts[3]
            if cls is not None:
                return np.asarray(values[:, cls])
            if average == "macro":
                return np.asarray(values[:, present].mean(axis=1))
            return _div((values * support).sum(axis=1), support.sum(axis=1))

        return fn

    def accuracy(s: Array) -> Array:
        return _div(s[:, c_correct], s[:, c_n])

    metrics = [Metric("accuracy", accuracy, True, "mcnemar", rows=correct)]
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

    def part(which: int) -> Finish:
        return lambda s: per_class(s)[which]

    for which, name in enumerate(("precision", "recall", "f1")):
        metrics.append(Metric(f"per_class.{name}", part(which), True, per_class=True))
    scored = Scored("classification", metrics, cols, labels)
    scored.confusion = np.bincount(t * k + p, minlength=k * k).reshape(k, k).tolist()
    if proba is not None:
        _probability_metrics(scored, t, proba, k, curves=curves)
    for name, fn in (custom or {}).items():
        metrics.append(_custom(name, fn, y_true, y_pred, cols))
    return scored


def _probability_metrics(scored: Scored, t: Array, proba: Array, k: int, *, curves: bool) -> None:
    n = len(t)
    cols = scored.columns
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape != (n, k):
        raise InvalidArgumentError(
            f"the model's probabilities have shape {list(proba.shape)}, expected [{n}, {k}]"
        )
    rows = np.arange(n)
    log_loss = -np.log(np.clip(proba[rows, t], _EPS, 1 - _EPS))
    ranked: list[Ranked]
    if k == 2:
        pos = proba[:, 1]
        positive = t == 1
        brier = (pos - positive) ** 2
        ranked = [Ranked(pos, positive)]
        conf, outcome = pos, positive.astype(np.float64)
    else:
        sq = proba**2
        brier = sq.sum(axis=1) - 2 * proba[rows, t] + 1
        ranked = [Ranked(proba[:, c], t == c) for c in range(k)]
        conf = proba.max(axis=1)
        outcome = (proba.argmax(axis=1) == t).astype(np.float64)
    expanded = [r.expanded(cols) for r in ranked]
    weighted = [r.weighted() for r in ranked]

    def macro(fns: Sequence[Callable[[Array], Array]]) -> Callable[[Array], Array]:
        if len(fns) == 1:
            return fns[0]
        return lambda x: _mean_of_classes([f(x) for f in fns])

    def macro_point(values: Sequence[float]) -> float:
        ok = [v for v in values if np.isfinite(v)]
        return float(np.mean(ok)) if ok else float("nan")

    c_n = cols.add()
    c_log = cols.add(log_loss)
    c_brier = cols.add(brier)
    bins = np.minimum((conf * _BINS).astype(np.int64), _BINS - 1)
    c_out = cols.add(outcome, bins, _BINS)
    c_conf = cols.add(conf, bins, _BINS)

    def mean_of(c: int) -> Finish:
        return lambda s: _div(s[:, c], s[:, c_n])

    def ece(s: Array) -> Array:
        gap = np.abs(s[:, c_out : c_out + _BINS] - s[:, c_conf : c_conf + _BINS]).sum(axis=1)
        return _div(gap, s[:, c_n])

    binary = k == 2
    scored.metrics += [
        Metric("roc_auc", macro([e[0] for e in expanded]), True,
               "delong" if binary else "bootstrap",
               rows=ranked[0].placements if binary else None,
               positive=ranked[0].positive if binary else None,
               exact=macro([w[0] for w in weighted]),
               point=macro_point([r.auc for r in ranked])),
        Metric("pr_auc", macro([e[1] for e in expanded]), True,
               exact=macro([w[1] for w in weighted]),
               point=macro_point([r.ap for r in ranked])),
        Metric("log_loss", mean_of(c_log), False, "paired_t", rows=log_loss),
        Metric("brier", mean_of(c_brier), False, "paired_t", rows=brier),
        Metric("ece", ece, False),
    ]  # fmt: skip
    if curves:
        if binary:
            scored.curves["roc"] = ranked[0].roc_curve()
            scored.curves["pr"] = ranked[0].pr_curve()
        scored.curves["calibration"] = _calibration(conf, outcome)


# --------------------------------------------------------------------------- regression


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
    cols = Columns(n)
    c_se, c_ae, c_ape = cols.add(se), cols.add(ae), cols.add(ape)
    c_y, c_y2, c_n = cols.add(y), cols.add(y**2), cols.add()

    def rmse(s: Array) -> Array:
        return np.sqrt(_div(s[:, c_se], s[:, c_n]))

    def r2(s: Array) -> Array:
        total = s[:, c_y2] - _div(s[:, c_y] ** 2, s[:, c_n])
        scale = np.maximum(s[:, c_y2], 1)
        return np.where(total > 1e-12 * scale, 1 - _div(s[:, c_se], total), np.nan)

    def mean_of(c: int) -> Finish:
        return lambda s: _div(s[:, c], s[:, c_n])

    metrics = [
        Metric("rmse", rmse, False, "paired_t", rows=se),
        Metric("mae", mean_of(c_ae), False, "paired_t", rows=ae),
        Metric("r2", r2, True, "paired_t", rows=-se),
        Metric("mape", mean_of(c_ape), False, "paired_t", rows=ape),
    ]
    for name, fn in (custom or {}).items():
        metrics.append(_custom(name, fn, y_true, y_pred, cols))
    scored = Scored("regression", metrics, cols)
    if curves:
        order = np.argsort(f, kind="stable")
        scored.curves["residuals"] = _curve_points(f[order], err[order])
    return scored


# --------------------------------------------------------------------------- bootstrap


def bootstrap(
    models: Sequence[Scored],
    n: int,
    *,
    count: int,
    seed: int,
    confidence: float,
    max_units: int | None = None,
) -> list[dict[str, MetricSamples]]:
    """Every metric of every model: point value, interval and resamples. The models share
    the same resamples (the paired bootstrap); see :func:`syllabus.evaluation.stats.plan`
    for how resamples are drawn."""
    p = plan(n, count, seed, max_units=max_units)
    if p.count > 0:
        with _one_blas_thread():
            samples = _resampled(models, p)
    else:
        samples = [[[] for _ in m.metrics] for m in models]
    out: list[dict[str, MetricSamples]] = []
    for mi, model in enumerate(models):
        total = model.columns.total()[None, :]
        result: dict[str, MetricSamples] = {}
        for ki, metric in enumerate(model.metrics):
            if metric.point is not None:
                point: Any = metric.point
            elif metric.finish is not None:
                point = _call(metric.finish, total)[0]
            else:
                assert metric.indexed is not None
                point = metric.indexed(np.asarray)  # the data itself
            chunks = samples[mi][ki]
            drawn = np.concatenate(chunks) if chunks else np.empty((0,))
            if len(drawn):
                low, high = interval(drawn, confidence)
            else:
                low = high = np.full(np.shape(point), np.nan)
            result[metric.name] = MetricSamples(point, low, high, drawn)
        out.append(result)
    return out


def _one_blas_thread() -> AbstractContextManager[Any]:
    """The resample products are many small matrix products: threaded BLAS spends more
    on waking and spinning its threads than on the work (10x slower on a busy machine,
    measured), so they run on one thread."""
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return nullcontext()
    limits: AbstractContextManager[Any] = threadpool_limits(1, user_api="blas")
    return limits


def _resampled(models: Sequence[Scored], p: Plan) -> list[list[list[Array]]]:
    """The resampled values of every metric of every model, in chunks."""
    samples: list[list[list[Array]]] = [[[] for _ in m.metrics] for m in models]
    per_unit = [m.columns.by_unit(p.units, p.size) for m in models]
    n = p.n
    indexed = [
        (mi, ki, metric)
        for mi, model in enumerate(models)
        for ki, metric in enumerate(model.metrics)
        if metric.finish is None
    ]
    for idx, w in p.resamples():
        for mi, model in enumerate(models):
            sums = w @ per_unit[mi]
            for ki, metric in enumerate(model.metrics):
                if metric.finish is None:
                    continue
                if metric.exact is not None and p.units is None and n <= EXACT_RANKED_ROWS:
                    value = _call(metric.exact, w)
                else:
                    value = _call(metric.finish, sums)
                samples[mi][ki].append(value)
        if indexed:  # custom functions: resample by resample, every model on its rows
            values = np.empty((len(indexed), len(idx)))
            for r, take in enumerate(p.takes(idx)):
                for j, (_, _, metric) in enumerate(indexed):
                    assert metric.indexed is not None
                    values[j, r] = metric.indexed(take)
            for j, (mi, ki, _) in enumerate(indexed):
                samples[mi][ki].append(values[j])
    return samples


def _call(fn: Callable[[Array], Array], x: Array) -> Array:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(fn(x), dtype=np.float64)
