"""The columnar drift and data-quality engine.

A numeric column is summarised against a *grid*: the reference's sorted distinct values
when it has at most :data:`GRID_POINTS` of them (then every statistic below is exact), else
its quantiles at :data:`GRID_POINTS` evenly spaced probabilities (the first and last being
its min and max). Any set of values — the reference itself, a window of the prediction log,
a batch of a file — becomes :class:`NumericCells`: how many values fall strictly between
consecutive grid points, how many equal each grid point, and the sum of the values in each
gap. Cells are counts, so batches and windows merge by addition and nothing is kept per row.
One batch costs a sort (numpy's vectorized sort) and two binary searches of the grid into
the sorted values.

From the reference's and the current cells:

- Kolmogorov-Smirnov ``D``: the largest gap between the two empirical CDFs at every grid
  point (exact for an exact grid; otherwise within the reference mass of one cell, at most
  ``1 / GRID_POINTS``), with its two-sample p-value;
- Wasserstein-1 distance, normalized by the reference standard deviation (Evidently's
  "normed Wasserstein"), integrated cell by cell;
- PSI on the reference deciles;
- the share of values outside the reference's [min, max].

Categorical columns are category counts; drift is Jensen-Shannon distance (natural log, as
scipy and Evidently), chi-square homogeneity p-value, PSI, and the categories that are new
or have vanished. Nothing here loops over rows in Python.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import special
from scipy import stats as sps

__all__ = [
    "GRID_POINTS",
    "MAX_CATEGORIES",
    "CategoryCounts",
    "FeatureDrift",
    "NumericCells",
    "Thresholds",
    "categorical_drift",
    "column_kind",
    "make_grid",
    "numeric_drift",
    "to_float",
    "to_text",
]

Array = np.ndarray[Any, Any]
Kind = Literal["numeric", "categorical"]

GRID_POINTS: Final = 1001
"""Reference quantiles kept per numeric column (resolution 0.1% of the reference)."""
MAX_CATEGORIES: Final = 2000
"""Distinct categories kept per categorical column; rarer ones count as ``OTHER``."""
OTHER: Final = "\x00other"
_KS_EXACT_N: Final = 2000  # effective sample sizes above this use the asymptotic KS law
_EPS: Final = 1e-4  # PSI: floor of a bin's share, so empty bins give a finite value


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a feature counts as drifted.

    A feature is flagged when *both* its statistical test rejects sameness (``p < alpha``,
    Bonferroni-corrected over the features compared: the family-wise rate stays at
    ``alpha`` on small windows) *and* its effect size reaches the threshold (on large
    windows a test rejects even negligible shifts; the effect size keeps those quiet).
    Numeric effect: ``numeric_method`` (``wasserstein``: normed Wasserstein, ``psi``,
    ``ks``: the KS statistic D). Categorical effect: ``categorical_method`` (``js``:
    Jensen-Shannon distance, ``psi``). With fewer than ``min_rows`` values on either side
    nothing is flagged (the statistics are still reported).
    """

    alpha: float = 0.05
    numeric_method: str = "wasserstein"
    numeric_threshold: float = 0.1
    categorical_method: str = "js"
    categorical_threshold: float = 0.1
    min_rows: int = 30
    drift_share: float = 0.5  # the dataset drifts when this share of features does
    bonferroni: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "numeric_method": self.numeric_method,
            "numeric_threshold": self.numeric_threshold,
            "categorical_method": self.categorical_method,
            "categorical_threshold": self.categorical_threshold,
            "min_rows": self.min_rows,
            "drift_share": self.drift_share,
            "bonferroni": self.bonferroni,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Thresholds:
        from syllabus.errors import InvalidArgumentError

        if not data:
            return cls()
        known = set(cls().to_dict())
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidArgumentError(
                f"unknown drift setting {unknown[0]!r}; known: {', '.join(sorted(known))}"
            )
        t = cls(**{k: data[k] for k in data})
        if t.numeric_method not in ("wasserstein", "psi", "ks"):
            raise InvalidArgumentError(
                f"numeric_method must be wasserstein, psi or ks, not {t.numeric_method!r}"
            )
        if t.categorical_method not in ("js", "psi"):
            raise InvalidArgumentError(
                f"categorical_method must be js or psi, not {t.categorical_method!r}"
            )
        if not 0 < float(t.alpha) < 1:
            raise InvalidArgumentError(f"alpha must be between 0 and 1, not {t.alpha!r}")
        if int(t.min_rows) < 1:
            raise InvalidArgumentError("min_rows must be at least 1")
        return t


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """One feature's drift and data quality against the reference.

    ``drifted`` is None when either side had fewer than ``min_rows`` values. ``stats``
    holds every statistic computed (psi, ks, ks_p, wasserstein for numeric; js, chi2_p,
    psi for categorical); ``method``/``score``/``threshold`` say which one decided.
    """

    name: str
    kind: Kind
    rows: int
    reference_rows: int
    drifted: bool | None
    method: str
    score: float | None
    threshold: float
    p_value: float | None
    stats: Mapping[str, float | None]
    null_rate: float | None
    reference_null_rate: float | None
    out_of_range: float | None
    type_errors: int = 0
    new_categories: tuple[tuple[str, int], ...] = ()
    vanished_categories: tuple[str, ...] = ()
    mean: float | None = None
    reference_mean: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "rows": self.rows,
            "reference_rows": self.reference_rows,
            "drifted": self.drifted,
            "method": self.method,
            "score": _num(self.score),
            "threshold": self.threshold,
            "p_value": _num(self.p_value),
            "stats": {k: _num(v) for k, v in self.stats.items()},
            "null_rate": _num(self.null_rate),
            "reference_null_rate": _num(self.reference_null_rate),
            "out_of_range": _num(self.out_of_range),
            "type_errors": self.type_errors,
            "new_categories": [list(c) for c in self.new_categories],
            "vanished_categories": list(self.vanished_categories),
            "mean": _num(self.mean),
            "reference_mean": _num(self.reference_mean),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureDrift:
        return cls(
            name=d["name"],
            kind=d["kind"],
            rows=int(d["rows"]),
            reference_rows=int(d["reference_rows"]),
            drifted=d["drifted"],
            method=d["method"],
            score=d["score"],
            threshold=float(d["threshold"]),
            p_value=d["p_value"],
            stats=dict(d["stats"]),
            null_rate=d["null_rate"],
            reference_null_rate=d["reference_null_rate"],
            out_of_range=d["out_of_range"],
            type_errors=int(d.get("type_errors", 0)),
            new_categories=tuple((str(a), int(b)) for a, b in d.get("new_categories", ())),
            vanished_categories=tuple(d.get("vanished_categories", ())),
            mean=d.get("mean"),
            reference_mean=d.get("reference_mean"),
        )


def _num(value: float | None) -> float | None:
    if value is None:
        return None
    v = float(value)
    if math.isnan(v):
        return None
    if math.isinf(v):
        return 1e308 if v > 0 else -1e308
    return v


# -- column types -------------------------------------------------------------------------


def column_kind(type_: pa.DataType) -> Kind | None:
    """``numeric`` for integers, floats and decimals; ``categorical`` for strings,
    booleans and dictionaries; None for what is not a feature (times, lists, ...)."""
    if pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_decimal(type_):
        return "numeric"
    if (
        pa.types.is_string(type_)
        or pa.types.is_large_string(type_)
        or pa.types.is_boolean(type_)
        or pa.types.is_dictionary(type_)
    ):
        return "categorical"
    return None


def _chunks(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


def to_float(column: pa.Array | pa.ChunkedArray) -> tuple[Array, int, int]:
    """(non-null float64 values, nulls, type errors) of a column that should be numeric.

    Strings are parsed (per distinct value, not per row); values that do not parse are
    type errors, counted apart from nulls. NaN counts as null.
    """
    arr = _chunks(column)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if column_kind(arr.type) == "numeric" or pa.types.is_boolean(arr.type):
        values = arr.cast(pa.float64()).to_numpy(zero_copy_only=False)
        errors = 0
    else:
        encoded = pc.dictionary_encode(arr.cast(pa.string()))
        parsed, bad = [], []
        for v in encoded.dictionary.to_pylist():
            try:
                parsed.append(float(v))
                bad.append(False)
            except (TypeError, ValueError):
                parsed.append(math.nan)
                bad.append(True)
        idx = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        present = idx >= 0
        lookup = np.asarray([*parsed, math.nan], np.float64)
        values = lookup[idx]  # index -1 (null) reads the trailing NaN
        errors = int(np.asarray([*bad, False], bool)[idx][present].sum())
    keep = ~np.isnan(values)
    out = values[keep] if not keep.all() else values
    return out, len(arr) - int(out.size) - errors, errors


def to_text(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A categorical column as strings (booleans ``true``/``false``, numbers as written)."""
    arr = _chunks(column)
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if not pa.types.is_string(arr.type):
        if pa.types.is_large_string(arr.type):
            return arr.cast(pa.string())
        if pa.types.is_floating(arr.type):
            # 1.0 and 1 are the same category: integral floats as integers
            values = arr.to_numpy(zero_copy_only=False)
            integral = np.isfinite(values) & (values == np.round(values))
            if bool(np.all(integral | np.isnan(values))):
                arr = pc.cast(pc.if_else(pc.is_nan(arr), None, arr), pa.int64())
        arr = arr.cast(pa.string())
    return arr


# -- numeric cells ------------------------------------------------------------------------


def make_grid(values: Array, *, presorted: bool = False) -> tuple[Array, bool]:
    """The grid of a reference column and whether it is exact (its distinct values)."""
    if values.size == 0:
        return np.empty(0), True
    sorted_values = values if presorted else np.sort(values)
    distinct = sorted_values[np.concatenate(([True], sorted_values[1:] > sorted_values[:-1]))]
    if distinct.size <= GRID_POINTS:
        return distinct, True
    # linear-interpolated quantiles of the sorted values (numpy's default method)
    pos = np.linspace(0.0, sorted_values.size - 1, GRID_POINTS)
    low = np.floor(pos).astype(np.int64)
    high = np.minimum(low + 1, sorted_values.size - 1)
    frac = pos - low
    grid = sorted_values[low] * (1 - frac) + sorted_values[high] * frac
    grid = np.unique(grid)
    return grid, False


@dataclass
class NumericCells:
    """Counts of values against a grid of ``q`` points: ``eq[i]`` values equal to
    ``grid[i]``, ``gap[i]`` values strictly between ``grid[i-1]`` and ``grid[i]`` (``gap[0]``
    below the grid, ``gap[q]`` above it), ``gap_sum[i]`` their sum. Plus totals."""

    eq: Array
    gap: Array
    gap_sum: Array
    rows: int = 0
    nulls: int = 0
    type_errors: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    min: float = math.inf
    max: float = -math.inf

    @classmethod
    def empty(cls, q: int) -> NumericCells:
        return cls(np.zeros(q, np.int64), np.zeros(q + 1, np.int64), np.zeros(q + 1))

    @property
    def count(self) -> int:
        """Non-null values."""
        return int(self.eq.sum() + self.gap.sum())

    def add(
        self,
        grid: Array,
        values: Array,
        nulls: int = 0,
        type_errors: int = 0,
        *,
        presorted: bool = False,
    ) -> None:
        """Count more values (any order unless ``presorted``; NaN already removed)."""
        self.rows += int(values.size) + nulls + type_errors
        self.nulls += nulls
        self.type_errors += type_errors
        if values.size == 0:
            return
        s = values if presorted else np.sort(values)
        left = np.searchsorted(s, grid, side="left")  # values < grid[i]
        right = np.searchsorted(s, grid, side="right")  # values <= grid[i]
        self.eq += right - left
        bounds = np.concatenate(([0], right))
        ends = np.concatenate((left, [s.size]))
        self.gap += ends - bounds
        csum = np.empty(s.size + 1)
        csum[0] = 0.0
        np.cumsum(s, out=csum[1:])
        self.gap_sum += csum[ends] - csum[bounds]
        self.total += float(csum[-1])
        self.total_sq += float(np.einsum("i,i->", s, s))  # no BLAS threads
        self.min = min(self.min, float(s[0]))
        self.max = max(self.max, float(s[-1]))

    def merge(self, other: NumericCells) -> None:
        self.eq += other.eq
        self.gap += other.gap
        self.gap_sum += other.gap_sum
        self.rows += other.rows
        self.nulls += other.nulls
        self.type_errors += other.type_errors
        self.total += other.total
        self.total_sq += other.total_sq
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    @property
    def mean(self) -> float | None:
        n = self.count
        return self.total / n if n else None

    @property
    def std(self) -> float | None:
        n = self.count
        if n < 2:
            return None
        var = (self.total_sq - self.total**2 / n) / (n - 1)
        return math.sqrt(max(var, 0.0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "eq": self.eq.tolist(),
            "gap": self.gap.tolist(),
            "gap_sum": self.gap_sum.tolist(),
            "rows": self.rows,
            "nulls": self.nulls,
            "type_errors": self.type_errors,
            "total": self.total,
            "total_sq": self.total_sq,
            "min": self.min if math.isfinite(self.min) else None,
            "max": self.max if math.isfinite(self.max) else None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NumericCells:
        return cls(
            np.asarray(d["eq"], np.int64),
            np.asarray(d["gap"], np.int64),
            np.asarray(d["gap_sum"], np.float64),
            rows=int(d["rows"]),
            nulls=int(d["nulls"]),
            type_errors=int(d.get("type_errors", 0)),
            total=float(d["total"]),
            total_sq=float(d["total_sq"]),
            min=math.inf if d["min"] is None else float(d["min"]),
            max=-math.inf if d["max"] is None else float(d["max"]),
        )


def _interleaved(c: NumericCells) -> Array:
    """gap[0], eq[0], gap[1], eq[1], ..., eq[q-1], gap[q]."""
    out = np.empty(c.eq.size + c.gap.size, np.float64)
    out[0::2] = c.gap
    out[1::2] = c.eq
    return out


def _ks_p(d: float, n: int, m: int) -> float:
    if d <= 0:
        return 1.0
    en = n * m / (n + m)
    if en <= _KS_EXACT_N:
        return float(min(1.0, max(0.0, sps.kstwo.sf(d, max(1, round(en))))))
    # the limiting distribution with Stephens' small-sample correction (as exact here)
    root = math.sqrt(en)
    return float(min(1.0, max(0.0, special.kolmogorov((root + 0.12 + 0.11 / root) * d))))


def _psi(r: Array, c: Array) -> float:
    pr = np.maximum(r / max(r.sum(), 1), _EPS)
    pc_ = np.maximum(c / max(c.sum(), 1), _EPS)
    return float(np.sum((pc_ - pr) * np.log(pc_ / pr)))


def _decile_bins(ref: Array) -> Array:
    """Indices into the interleaved cells where decile bins end (inclusive boundaries at
    grid points)."""
    cum = np.cumsum(ref)
    total = cum[-1]
    eq_positions = np.arange(1, ref.size, 2)
    cuts = []
    for j in range(1, 10):
        k = int(np.searchsorted(cum[eq_positions], total * j / 10, side="left"))
        if k < eq_positions.size:
            cuts.append(int(eq_positions[k]) + 1)
    return np.unique(np.asarray([c for c in cuts if 0 < c < ref.size], np.int64))


def numeric_drift(  # noqa: PLR0917 - the two sides and how to judge them
    name: str,
    grid: Array,
    ref: NumericCells,
    cur: NumericCells,
    th: Thresholds,
    alpha: float,
    *,
    exact: bool = True,
) -> FeatureDrift:
    """Drift of ``cur`` against ``ref`` (both counted on ``grid``)."""
    n_r, n_c = ref.count, cur.count
    stats: dict[str, float | None] = {}
    p_value: float | None = None
    if n_r and n_c and grid.size:
        r, c = _interleaved(ref), _interleaved(cur)
        fr, fc = np.cumsum(r) / n_r, np.cumsum(c) / n_c
        d = float(np.max(np.abs(fr - fc)))
        p_value = _ks_p(d, n_r, n_c)
        stats["ks"] = d
        stats["ks_p"] = p_value
        # Wasserstein-1: integrate |F_ref - F_cur| over each gap between grid points.
        width = np.diff(grid)
        start_r, start_c = fr[1:-2:2], fc[1:-2:2]  # F after eq[i-1], for gaps 1..q-1
        hi = grid[1:]

        def integral(cells: NumericCells, start: Array, n: int) -> Array:
            inner_count = cells.gap[1:-1]
            inner_sum = cells.gap_sum[1:-1]
            return start * width + (inner_count * hi - inner_sum) / n

        inner = np.abs(integral(cur, start_c, n_c) - integral(ref, start_r, n_r)).sum()
        below = (cur.gap[0] * grid[0] - cur.gap_sum[0]) / n_c - (
            ref.gap[0] * grid[0] - ref.gap_sum[0]
        ) / n_r
        above = (cur.gap_sum[-1] - cur.gap[-1] * grid[-1]) / n_c - (
            ref.gap_sum[-1] - ref.gap[-1] * grid[-1]
        ) / n_r
        w = float(inner + abs(below) + abs(above))
        std = ref.std or 0.0
        stats["wasserstein_raw"] = w
        stats["wasserstein"] = w / std if std > 0 else (0.0 if w == 0 else math.inf)
        cuts = _decile_bins(r)
        stats["psi"] = _psi(np.add.reduceat(r, np.r_[0, cuts]), np.add.reduceat(c, np.r_[0, cuts]))
    method = th.numeric_method
    score = stats.get(method)
    drifted: bool | None = None
    if n_r >= th.min_rows and n_c >= th.min_rows and score is not None and p_value is not None:
        drifted = bool(p_value < alpha and score >= th.numeric_threshold)
    outside = int(cur.gap[0] + cur.gap[-1]) if grid.size else n_c
    return FeatureDrift(
        name=name,
        kind="numeric",
        rows=cur.rows,
        reference_rows=ref.rows,
        drifted=drifted,
        method=method,
        score=score,
        threshold=th.numeric_threshold,
        p_value=p_value,
        stats={**stats, "exact_grid": 1.0 if exact else 0.0},
        null_rate=(cur.nulls / cur.rows) if cur.rows else None,
        reference_null_rate=(ref.nulls / ref.rows) if ref.rows else None,
        out_of_range=(outside / n_c) if n_c else None,
        type_errors=cur.type_errors,
        mean=cur.mean,
        reference_mean=ref.mean,
    )


# -- categorical counts -------------------------------------------------------------------


@dataclass
class CategoryCounts:
    """Counts per category (strings), nulls and type errors."""

    counts: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    nulls: int = 0
    type_errors: int = 0

    def add(self, column: pa.Array | pa.ChunkedArray) -> None:
        text = to_text(column)
        self.rows += len(text)
        self.nulls += text.null_count
        if len(text) == text.null_count:
            return
        vc = pc.value_counts(text.drop_null())
        values = vc.field("values").to_pylist()
        counts = vc.field("counts").to_numpy()
        for v, n in zip(values, counts.tolist(), strict=True):
            self.counts[v] = self.counts.get(v, 0) + n
        self._cap()

    def _cap(self) -> None:
        if len(self.counts) <= MAX_CATEGORIES:
            return
        ranked = sorted(self.counts.items(), key=lambda kv: (kv[0] != OTHER, -kv[1]))
        keep = dict(ranked[: MAX_CATEGORIES - 1])
        rest = sum(n for k, n in ranked[MAX_CATEGORIES - 1 :])
        keep[OTHER] = keep.get(OTHER, 0) + rest
        self.counts = keep

    def merge(self, other: CategoryCounts) -> None:
        for k, n in other.counts.items():
            self.counts[k] = self.counts.get(k, 0) + n
        self.rows += other.rows
        self.nulls += other.nulls
        self.type_errors += other.type_errors
        self._cap()

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "rows": self.rows,
            "nulls": self.nulls,
            "type_errors": self.type_errors,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CategoryCounts:
        return cls(
            {str(k): int(v) for k, v in d["counts"].items()},
            int(d["rows"]),
            int(d["nulls"]),
            int(d.get("type_errors", 0)),
        )


def categorical_drift(
    name: str, ref: CategoryCounts, cur: CategoryCounts, th: Thresholds, alpha: float
) -> FeatureDrift:
    keys = sorted(set(ref.counts) | set(cur.counts))
    r = np.asarray([ref.counts.get(k, 0) for k in keys], np.float64)
    c = np.asarray([cur.counts.get(k, 0) for k in keys], np.float64)
    n_r, n_c = float(r.sum()), float(c.sum())
    stats: dict[str, float | None] = {}
    p_value: float | None = None
    if n_r and n_c:
        pr, pc_ = r / n_r, c / n_c
        m = (pr + pc_) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            kl_r = np.where(pr > 0, pr * np.log(pr / m), 0.0).sum()
            kl_c = np.where(pc_ > 0, pc_ * np.log(pc_ / m), 0.0).sum()
        stats["js"] = float(math.sqrt(max((kl_r + kl_c) / 2, 0.0)))
        total = r + c
        used = total > 0
        if used.sum() > 1:
            obs = np.vstack([r[used], c[used]])
            exp = np.outer([n_r, n_c], total[used]) / (n_r + n_c)
            chi2 = float(((obs - exp) ** 2 / exp).sum())
            p_value = float(sps.chi2.sf(chi2, int(used.sum()) - 1))
            stats["chi2"] = chi2
        else:
            p_value = 1.0
        stats["chi2_p"] = p_value
        stats["psi"] = _psi(r, c)
    method = th.categorical_method
    score = stats.get(method)
    drifted: bool | None = None
    if n_r >= th.min_rows and n_c >= th.min_rows and score is not None and p_value is not None:
        drifted = bool(p_value < alpha and score >= th.categorical_threshold)
    new = sorted(
        ((k, cur.counts[k]) for k in cur.counts if k not in ref.counts and k != OTHER),
        key=lambda kv: -kv[1],
    )
    vanished = [k for k in ref.counts if k not in cur.counts and k != OTHER] if n_c else []
    new_rows = sum(n for _, n in new)
    return FeatureDrift(
        name=name,
        kind="categorical",
        rows=cur.rows,
        reference_rows=ref.rows,
        drifted=drifted,
        method=method,
        score=score,
        threshold=th.categorical_threshold,
        p_value=p_value,
        stats={**stats, "new_categories": float(len(new))},
        null_rate=(cur.nulls / cur.rows) if cur.rows else None,
        reference_null_rate=(ref.nulls / ref.rows) if ref.rows else None,
        out_of_range=(new_rows / n_c) if n_c else None,
        type_errors=cur.type_errors,
        new_categories=tuple(new[:20]),
        vanished_categories=tuple(sorted(vanished, key=lambda k: -ref.counts[k])[:20]),
    )
