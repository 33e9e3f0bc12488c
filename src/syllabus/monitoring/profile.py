"""Reference profiles and the accumulated state of current data, and the comparison of the two.

A :class:`Profile` is computed once from the reference (one column at a time, so only one
column is in memory) and stored as JSON in the blob store; a window or a batch file is
summarised into a :class:`DataState` against it, one Arrow record batch at a time
(bounded memory), and :func:`compare` turns the pair into a :class:`DriftReport` without
reading the reference again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pyarrow as pa

from syllabus.errors import InvalidArgumentError
from syllabus.monitoring.stats import (
    CategoryCounts,
    FeatureDrift,
    Kind,
    NumericCells,
    Thresholds,
    categorical_drift,
    column_kind,
    make_grid,
    numeric_drift,
    to_float,
)

__all__ = [
    "ColumnProfile",
    "DataState",
    "DriftReport",
    "Profile",
    "build_profile",
    "compare",
    "profile_table",
]

FORMAT: Final = 1
_THREADS: Final = 2


@dataclass
class ColumnProfile:
    """One reference column: its kind, and its grid and cells (numeric) or counts."""

    name: str
    kind: Kind
    type: str
    grid: np.ndarray[Any, Any] | None = None
    exact: bool = True
    cells: NumericCells | None = None
    categories: CategoryCounts | None = None

    def empty_state(self) -> NumericCells | CategoryCounts:
        if self.kind == "numeric":
            assert self.grid is not None
            return NumericCells.empty(self.grid.size)
        return CategoryCounts()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "type": self.type}
        if self.kind == "numeric":
            assert self.grid is not None
            assert self.cells is not None
            out.update(grid=self.grid.tolist(), exact=self.exact, cells=self.cells.to_dict())
        else:
            assert self.categories is not None
            out["categories"] = self.categories.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ColumnProfile:
        if d["kind"] == "numeric":
            return cls(
                d["name"],
                "numeric",
                d["type"],
                grid=np.asarray(d["grid"], np.float64),
                exact=bool(d["exact"]),
                cells=NumericCells.from_dict(d["cells"]),
            )
        return cls(
            d["name"],
            "categorical",
            d["type"],
            categories=CategoryCounts.from_dict(d["categories"]),
        )


@dataclass
class Profile:
    """The reference: rows and a profile per column, and where it came from."""

    rows: int
    columns: dict[str, ColumnProfile]
    source: str = ""

    def to_json(self) -> bytes:
        doc = {
            "format": FORMAT,
            "rows": self.rows,
            "source": self.source,
            "columns": [c.to_dict() for c in self.columns.values()],
        }
        return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> Profile:
        doc = json.loads(data)
        if doc.get("format") != FORMAT:
            raise InvalidArgumentError(f"unsupported profile format {doc.get('format')!r}")
        cols = [ColumnProfile.from_dict(c) for c in doc["columns"]]
        return cls(int(doc["rows"]), {c.name: c for c in cols}, doc.get("source", ""))

    def state(self) -> DataState:
        """An empty state to accumulate current data against this profile."""
        return DataState({n: c.empty_state() for n, c in self.columns.items()})


def _column(table: pa.Table, name: str) -> pa.ChunkedArray:
    return table.column(name)


def profile_table(
    table: pa.Table, columns: Sequence[str] | None = None, *, source: str = ""
) -> Profile:
    """The reference profile of ``table`` (its feature columns, or ``columns``)."""
    names = list(columns) if columns is not None else list(table.column_names)
    missing = [n for n in names if n not in table.column_names]
    if missing:
        raise InvalidArgumentError(
            f"the reference has no column {missing[0]!r} (it has: "
            f"{', '.join(table.column_names[:20])})"
        )

    def one(name: str) -> ColumnProfile | None:
        col = _column(table, name)
        kind = column_kind(col.type)
        if kind is None:
            if columns is not None:
                raise InvalidArgumentError(
                    f"column {name!r} of type {col.type} is neither numeric nor categorical"
                )
            return None
        if kind == "numeric":
            values, nulls, errors = to_float(col)
            values = np.sort(values)
            grid, exact = make_grid(values, presorted=True)
            cells = NumericCells.empty(grid.size)
            cells.add(grid, values, nulls, errors, presorted=True)
            return ColumnProfile(name, kind, str(col.type), grid=grid, exact=exact, cells=cells)
        counts = CategoryCounts()
        counts.add(col)
        return ColumnProfile(name, kind, str(col.type), categories=counts)

    with ThreadPoolExecutor(_THREADS) as pool:
        profiled = list(pool.map(one, names))
    cols = {p.name: p for p in profiled if p is not None}
    return Profile(table.num_rows, cols, source)


def build_profile(
    batches: Iterable[pa.RecordBatch] | pa.Table,
    columns: Sequence[str] | None = None,
    *,
    source: str = "",
) -> Profile:
    """:func:`profile_table` over batches (they are gathered per column)."""
    table = batches if isinstance(batches, pa.Table) else pa.Table.from_batches(list(batches))
    return profile_table(table, columns, source=source)


@dataclass
class DataState:
    """Current data accumulated against a profile: cells or counts per column. Mergeable."""

    columns: dict[str, NumericCells | CategoryCounts]
    rows: int = 0

    def add(
        self,
        profile: Profile,
        batch: pa.RecordBatch | pa.Table,
        names: Mapping[str, str] | None = None,
    ) -> None:
        """Count one batch; ``names`` maps profile columns to the batch's (``age`` ->
        ``in.age``); columns absent from the batch are an error."""
        self.rows += batch.num_rows
        schema_names = set(batch.schema.names)

        def one(name: str) -> None:
            col_name = names.get(name, name) if names else name
            if col_name not in schema_names:
                raise InvalidArgumentError(f"the current data has no column {col_name!r}")
            ref = profile.columns[name]
            state = self.columns[name]
            col = batch.column(col_name)
            if ref.kind == "numeric":
                assert isinstance(state, NumericCells)
                assert ref.grid is not None
                values, nulls, errors = to_float(col)
                state.add(ref.grid, values, nulls, errors)
            else:
                assert isinstance(state, CategoryCounts)
                state.add(col)

        names_ = list(self.columns)
        if batch.num_rows >= 50_000 and len(names_) > 1:
            with ThreadPoolExecutor(_THREADS) as pool:
                list(pool.map(one, names_))
        else:
            for n in names_:
                one(n)

    def merge(self, other: DataState) -> None:
        self.rows += other.rows
        for name, state in other.columns.items():
            mine = self.columns.get(name)
            if mine is None:
                self.columns[name] = state
            else:
                mine.merge(state)  # type: ignore[arg-type]

    def to_json(self) -> bytes:
        doc = {
            "format": FORMAT,
            "rows": self.rows,
            "columns": {
                n: {"kind": "numeric" if isinstance(s, NumericCells) else "categorical",
                    **s.to_dict()}
                for n, s in self.columns.items()
            },
        }  # fmt: skip
        return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> DataState:
        doc = json.loads(data)
        cols: dict[str, NumericCells | CategoryCounts] = {}
        for n, d in doc["columns"].items():
            cols[n] = NumericCells.from_dict(d) if d["kind"] == "numeric" else (
                CategoryCounts.from_dict(d))  # fmt: skip
        return cls(cols, int(doc["rows"]))


@dataclass(frozen=True)
class DriftReport:
    """Drift and data quality of current data against a reference profile."""

    rows: int
    reference_rows: int
    features: tuple[FeatureDrift, ...]
    thresholds: Thresholds = field(default_factory=Thresholds)

    @property
    def drifted(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.drifted)

    @property
    def drift_share(self) -> float | None:
        decided = [f for f in self.features if f.drifted is not None]
        if not decided:
            return None
        return sum(1 for f in decided if f.drifted) / len(decided)

    @property
    def dataset_drift(self) -> bool | None:
        share = self.drift_share
        return None if share is None else share >= self.thresholds.drift_share

    def feature(self, name: str) -> FeatureDrift:
        for f in self.features:
            if f.name == name:
                return f
        raise InvalidArgumentError(f"no feature {name!r} in this report")

    def to_dict(self) -> dict[str, Any]:
        share = self.drift_share
        return {
            "rows": self.rows,
            "reference_rows": self.reference_rows,
            "drift_share": share,
            "dataset_drift": self.dataset_drift,
            "drifted": list(self.drifted),
            "thresholds": self.thresholds.to_dict(),
            "features": [f.to_dict() for f in self.features],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DriftReport:
        return cls(
            int(d["rows"]),
            int(d["reference_rows"]),
            tuple(FeatureDrift.from_dict(f) for f in d["features"]),
            Thresholds.from_dict(d.get("thresholds")),
        )


def compare(
    profile: Profile, state: DataState, thresholds: Thresholds | None = None
) -> DriftReport:
    """Drift of ``state`` against ``profile``, feature by feature."""
    th = thresholds or Thresholds()
    names = [n for n in profile.columns if n in state.columns]
    alpha = th.alpha / max(len(names), 1) if th.bonferroni else th.alpha
    features = []
    for name in names:
        ref = profile.columns[name]
        cur = state.columns[name]
        if ref.kind == "numeric":
            assert ref.grid is not None
            assert ref.cells is not None
            assert isinstance(cur, NumericCells)
            features.append(numeric_drift(name, ref.grid, ref.cells, cur, th, alpha,
                                          exact=ref.exact))  # fmt: skip
        else:
            assert ref.categories is not None
            assert isinstance(cur, CategoryCounts)
            features.append(categorical_drift(name, ref.categories, cur, th, alpha))
    return DriftReport(state.rows, profile.rows, tuple(features), th)


def finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value
