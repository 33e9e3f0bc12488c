"""Statistics for evaluations: the vectorized bootstrap, intervals, and paired tests.

The bootstrap draws ``B`` resamples of the row indices with a fixed seed and turns each
into a row of counts (a ``b x n`` weight matrix, made in chunks so memory stays bounded):
a metric written as a function of weights computes all its resamples with matrix
products. Two models scored on the same rows share the same resamples, which is what
makes the bootstrap *paired*.

Paired tests: McNemar (exact binomial below 25 discordant pairs) for accuracy, DeLong for
ROC AUC, a paired t-test on per-row losses, and a paired-bootstrap p-value for the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
from scipy import stats as sps

__all__ = [
    "DEFAULT_RESAMPLES",
    "DEFAULT_SEED",
    "TestResult",
    "Verdict",
    "bootstrap_p",
    "delong",
    "interval",
    "mcnemar",
    "paired_t",
    "resamples",
    "verdict",
]

Array = np.ndarray[Any, Any]
Verdict = Literal["better", "worse", "no significant difference"]
DEFAULT_RESAMPLES: Final = 1000
DEFAULT_SEED: Final = 20240607
_MAX_CELLS: Final = 4_000_000  # weights held at once (32 MB of float64)
_EXACT_BELOW: Final = 25


@dataclass(frozen=True, slots=True)
class TestResult:
    """A paired test: its name, statistic and two-sided p-value."""

    test: str
    statistic: float
    p_value: float


def resamples(n: int, count: int, seed: int) -> Iterator[tuple[Array, Array]]:
    """``(indices, weights)`` chunks of ``count`` bootstrap resamples of ``n`` rows:
    ``indices`` is ``b x n`` row numbers, ``weights`` the same as counts per row."""
    rng = np.random.default_rng(seed)
    chunk = max(1, min(count, _MAX_CELLS // max(n, 1)))
    done = 0
    while done < count:
        b = min(chunk, count - done)
        idx = rng.integers(0, n, size=(b, n))
        flat = (np.arange(b)[:, None] * n + idx).ravel()
        weights = np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)
        yield idx, weights
        done += b


def interval(samples: Array, confidence: float) -> tuple[Array, Array]:
    """Percentile interval along axis 0, ignoring NaN resamples (NaN when all are)."""
    alpha = (1 - confidence) / 2
    samples = np.asarray(samples, dtype=np.float64)
    finite = np.isfinite(samples)
    if finite.all():
        lo, hi = np.quantile(samples, [alpha, 1 - alpha], axis=0)
        return lo, hi
    ok = finite.any(axis=0)
    if not np.any(ok):
        nan = np.full(samples.shape[1:], np.nan)
        return nan, nan.copy()
    filled = np.where(finite, samples, np.nan)
    lo = np.full(samples.shape[1:], np.nan)
    hi = np.full(samples.shape[1:], np.nan)
    q = np.nanquantile(filled[:, ok], [alpha, 1 - alpha], axis=0)
    lo[ok], hi[ok] = q[0], q[1]
    return lo, hi


def mcnemar(correct_a: Array, correct_b: Array) -> TestResult:
    """McNemar's test on paired correctness: exact binomial when fewer than 25 rows
    disagree, else chi-square with continuity correction."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    only_a = int(np.sum(a & ~b))
    only_b = int(np.sum(~a & b))
    n = only_a + only_b
    if n == 0:
        return TestResult("mcnemar exact", 0.0, 1.0)
    if n < _EXACT_BELOW:
        p = float(min(1.0, 2 * sps.binom.cdf(min(only_a, only_b), n, 0.5)))
        return TestResult("mcnemar exact", float(min(only_a, only_b)), p)
    stat = (abs(only_a - only_b) - 1) ** 2 / n
    return TestResult("mcnemar", float(stat), float(sps.chi2.sf(stat, 1)))


def _midrank_components(scores: Array, positive: Array) -> tuple[Array, Array, float]:
    """DeLong's structural components (V10 for positives, V01 for negatives) and the AUC."""
    pos, neg = scores[positive], scores[~positive]
    m, n = len(pos), len(neg)
    rank_all = sps.rankdata(np.concatenate([pos, neg]))
    rank_pos = sps.rankdata(pos)
    rank_neg = sps.rankdata(neg)
    v10 = (rank_all[:m] - rank_pos) / n
    v01 = 1.0 - (rank_all[m:] - rank_neg) / m
    auc = float(v10.mean())
    return v10, v01, auc


def delong(y_positive: Array, scores_a: Array, scores_b: Array) -> tuple[float, float, TestResult]:
    """DeLong's test for two correlated ROC AUCs on the same rows: ``(auc_a, auc_b,
    test)``; z is ``(auc_a - auc_b) / se``."""
    positive = np.asarray(y_positive, dtype=bool)
    m, n = int(positive.sum()), int((~positive).sum())
    if m < 2 or n < 2:
        return float("nan"), float("nan"), TestResult("delong", float("nan"), float("nan"))
    a10, a01, auc_a = _midrank_components(np.asarray(scores_a, dtype=np.float64), positive)
    b10, b01, auc_b = _midrank_components(np.asarray(scores_b, dtype=np.float64), positive)
    s10 = np.cov(np.vstack([a10, b10]))
    s01 = np.cov(np.vstack([a01, b01]))
    cov = s10 / m + s01 / n
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = auc_a - auc_b
    if var <= 1e-300:
        p = 1.0 if diff == 0 else 0.0
        return auc_a, auc_b, TestResult("delong", 0.0 if diff == 0 else float("inf"), p)
    z = diff / np.sqrt(var)
    return auc_a, auc_b, TestResult("delong", float(z), float(2 * sps.norm.sf(abs(z))))


def paired_t(loss_a: Array, loss_b: Array) -> TestResult:
    """Paired t-test on per-row losses (identical losses: p = 1)."""
    d = np.asarray(loss_a, dtype=np.float64) - np.asarray(loss_b, dtype=np.float64)
    n = len(d)
    sd = float(d.std(ddof=1)) if n > 1 else 0.0
    mean = float(d.mean()) if n else 0.0
    if n < 2 or sd == 0.0:
        return TestResult("paired t", 0.0, 1.0 if mean == 0 else 0.0)
    t = mean / (sd / np.sqrt(n))
    return TestResult("paired t", float(t), float(2 * sps.t.sf(abs(t), n - 1)))


def bootstrap_p(deltas: Array) -> TestResult:
    """Two-sided paired-bootstrap p-value of ``delta == 0`` from resampled deltas."""
    d = np.asarray(deltas, dtype=np.float64)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return TestResult("paired bootstrap", float("nan"), float("nan"))
    if np.all(d == 0):
        return TestResult("paired bootstrap", 0.0, 1.0)
    below = (np.sum(d <= 0) + 1) / (len(d) + 1)
    above = (np.sum(d >= 0) + 1) / (len(d) + 1)
    return TestResult("paired bootstrap", float(np.mean(d)), float(min(1.0, 2 * min(below, above))))


def verdict(delta: float, p_value: float, *, higher_is_better: bool, confidence: float) -> Verdict:
    """``better`` or ``worse`` when the test rejects equality at ``confidence``, else
    ``no significant difference``."""
    if not np.isfinite(p_value) or not np.isfinite(delta) or p_value >= 1 - confidence:
        return "no significant difference"
    if delta == 0:
        return "no significant difference"
    return "better" if (delta > 0) == higher_is_better else "worse"
