"""The bootstrap's design: resampling units, rank metrics' expansions, coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn import metrics as skm

from syllabus.evaluation.metrics import (
    Columns,
    Ranked,
    bootstrap,
    score_classification,
    score_regression,
)
from syllabus.evaluation.stats import delong, placements, plan, resamples


def test_plan_uses_rows_then_balanced_random_groups() -> None:
    assert plan(500, 100, 1).units is None
    p = plan(10_007, 100, 1, max_units=1000)
    assert p.units is not None
    assert p.size == 1000
    sizes = np.bincount(p.units, minlength=1000)
    assert (sizes.min(), sizes.max()) == (10, 11)  # equal within one row
    assert not np.array_equal(p.units[:1000], np.arange(1000))  # dealt at random
    np.testing.assert_array_equal(p.units, plan(10_007, 100, 1, max_units=1000).units)
    idx, _w = next(p.resamples())
    rows = p.rows_of(idx[:2])
    for chosen, r in zip(idx[:2], rows, strict=True):
        # every row of every chosen group, as many times as the group was drawn
        assert len(r) == sizes[chosen].sum()
        picked = np.bincount(chosen, minlength=1000)
        np.testing.assert_array_equal(np.bincount(p.units[r], minlength=1000), picked * sizes)
        np.testing.assert_array_equal(np.bincount(r, minlength=10_007), picked[p.units])
    even = plan(10_000, 10, 2, max_units=1000)  # groups of exactly 10 rows: no padding
    idx, _w = next(even.resamples())
    for chosen, r in zip(idx, even.rows_of(idx), strict=True):
        np.testing.assert_array_equal(
            np.bincount(r, minlength=10_000), np.bincount(chosen, minlength=1000)[even.units]
        )


def test_resample_weights_are_counts_of_indices() -> None:
    idx, w = next(resamples(50, 7, 3))
    assert w.shape == (7, 50)
    for i in range(7):
        np.testing.assert_array_equal(w[i], np.bincount(idx[i], minlength=50))
    assert (w.sum(axis=1) == 50).all()


@pytest.mark.parametrize("decimals", [None, 2])
def test_ranked_point_values_placements_and_ap_influence(decimals: int | None) -> None:
    rng = np.random.default_rng(4)
    n = 3000
    y = rng.integers(0, 2, n)
    s = 0.4 * y + rng.random(n)
    if decimals is not None:
        s = np.round(s, decimals)  # ties
    r = Ranked(s, y == 1)
    assert r.auc == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert r.ap == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    np.testing.assert_allclose(r.placements, placements(s, y == 1))
    assert r.placements[y == 1].mean() == pytest.approx(r.auc)
    assert r.placements[y == 0].mean() == pytest.approx(r.auc)
    # the influence values are the derivatives of sklearn's AP in the row weights
    assert abs(r.ap_influence.sum()) < 1e-9
    for k in (0, 7, 1234):
        w = np.ones(n)
        w[k] += 1e-4
        moved = skm.average_precision_score(y, s, sample_weight=w)
        assert (moved - r.ap) / 1e-4 == pytest.approx(r.ap_influence[k], rel=1e-3, abs=1e-9)
    curve = r.roc_curve()
    assert (curve["x"][0], curve["x"][-1], curve["y"][-1]) == (0.0, 1.0, 1.0)


def test_expansions_agree_with_exact_resampled_rank_metrics() -> None:
    """At 2,000 rows, the first-order expansions of ROC AUC and PR AUC give the same
    resample quantiles as recomputing them per resample (within a tenth of the spread)."""
    rng = np.random.default_rng(8)
    n = 2000
    y = rng.integers(0, 2, n)
    s = y + rng.normal(size=n)
    r = Ranked(s, y == 1)
    cols = Columns(n)
    lin_auc, lin_ap = r.expanded(cols)
    ex_auc, ex_ap = r.weighted()
    _idx, w = next(resamples(n, 1000, 2))
    sums = w @ cols.by_unit(None, n)
    for exact, linear in ((ex_auc(w), lin_auc(sums)), (ex_ap(w), lin_ap(sums))):
        sd = exact.std()
        assert linear.std() == pytest.approx(sd, rel=0.05)
        q = [0.025, 0.5, 0.975]
        np.testing.assert_allclose(np.quantile(linear, q), np.quantile(exact, q), atol=0.1 * sd)


def test_grouped_bootstrap_matches_the_row_bootstrap_spread() -> None:
    rng = np.random.default_rng(9)
    n = 6000
    y = rng.integers(0, 2, n)
    p = 1 / (1 + np.exp(-(y + rng.normal(size=n) - 0.5)))
    scored = score_classification(y, (p > 0.5).astype(int), np.column_stack([1 - p, p]), [0, 1])
    (rows,) = bootstrap([scored], n, count=1000, seed=1, confidence=0.95)
    (groups,) = bootstrap([scored], n, count=1000, seed=1, confidence=0.95, max_units=600)
    for name in ("accuracy", "f1", "roc_auc", "pr_auc", "log_loss", "brier", "ece"):
        assert groups[name].value == rows[name].value, name
        sd_rows, sd_groups = rows[name].samples.std(), groups[name].samples.std()
        assert sd_groups == pytest.approx(sd_rows, rel=0.15), name


def _binormal(rng: np.random.Generator, n: int, mu: float) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, n)
    return y, mu * y + rng.normal(size=n)


def test_grouped_intervals_cover_known_truth() -> None:
    """Rows dealt into groups (forced at a small size): the 95 % intervals of accuracy,
    ROC AUC, PR AUC and the paired ROC AUC delta cover the known truth in about 95 % of
    60 synthetic test sets."""
    true_auc = float(sps.norm.cdf(1 / math.sqrt(2)))
    true_acc = float(sps.norm.cdf(0.5))
    big_y, big_s = _binormal(np.random.default_rng(0), 500_000, 1.0)
    true_ap = skm.average_precision_score(big_y, big_s)
    covered = dict.fromkeys(("accuracy", "roc_auc", "pr_auc", "delta"), 0)
    sets = 60
    for seed in range(sets):
        rng = np.random.default_rng(1000 + seed)
        y, s = _binormal(rng, 4000, 1.0)
        other = 1.0 * y + rng.normal(size=4000)  # a different model of the same skill
        models = []
        for score in (s, other):
            prob = 1 / (1 + np.exp(-(score - 0.5)))
            proba = np.column_stack([1 - prob, prob])
            models.append(score_classification(y, (score > 0.5).astype(int), proba, [0, 1]))
        a, b = bootstrap(models, 4000, count=300, seed=seed, confidence=0.95, max_units=400)
        covered["accuracy"] += a["accuracy"].low <= true_acc <= a["accuracy"].high
        covered["roc_auc"] += a["roc_auc"].low <= true_auc <= a["roc_auc"].high
        covered["pr_auc"] += a["pr_auc"].low <= true_ap <= a["pr_auc"].high
        d = a["roc_auc"].samples - b["roc_auc"].samples
        lo, hi = np.quantile(d, [0.025, 0.975])
        covered["delta"] += lo <= 0 <= hi
    for name, hits in covered.items():
        assert 52 <= hits <= 60, (name, hits)  # P(<= 51 of 60 | 95 %) < 1 %


def test_grouped_custom_metric_and_regression() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=5000)
    f = y + rng.normal(size=5000)

    def max_error(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.max(np.abs(a - b)))

    scored = score_regression(y, f, custom={"max_error": max_error})
    (v,) = bootstrap([scored], 5000, count=40, seed=1, confidence=0.95, max_units=500)
    assert v["max_error"].value == pytest.approx(skm.max_error(y, f))
    assert v["max_error"].low <= v["max_error"].high
    assert v["rmse"].value == pytest.approx(skm.root_mean_squared_error(y, f))
    assert v["rmse"].low < 1.0 < v["rmse"].high


def test_delong_from_one_sort_matches_rank_definition() -> None:
    rng = np.random.default_rng(12)
    y = rng.integers(0, 2, 5000)
    a = np.round(y + rng.normal(size=5000), 1)
    b = np.round(0.8 * y + rng.normal(size=5000), 1)
    auc_a, auc_b, result = delong(y == 1, a, b)
    assert auc_a == pytest.approx(skm.roc_auc_score(y, a))
    assert auc_b == pytest.approx(skm.roc_auc_score(y, b))
    assert result.se is not None
    assert result.statistic == pytest.approx((auc_a - auc_b) / result.se)


@pytest.mark.parametrize(("n", "units"), [(500, None), (10_007, 1000), (10_000, 1000)])
def test_takes_give_each_resamples_rows(n: int, units: int | None) -> None:
    """Custom metrics see each resample's values, grouped rows copied group by group:
    the same values as gathering the resample's rows one by one."""
    p = plan(n, 5, 4, max_units=units)
    values = np.random.default_rng(1).normal(size=n)
    labels = np.arange(n) % 3
    idx, _w = next(p.resamples())
    for rows, take in zip(p.rows_of(idx), p.takes(idx), strict=True):
        np.testing.assert_array_equal(take(values), values[rows])
        np.testing.assert_array_equal(take(labels), labels[rows])
