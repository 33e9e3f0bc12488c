"""Differences between two versions: files, table schemas, statistics and keyed rows.

File-level changes come from the two manifests. For a tabular file present in both
versions, the stored profiles give schema changes (columns added, removed, retyped), the
row counts and the statistics that moved; with a key, DuckDB joins the two files (streaming,
out of core) and counts rows added, removed and changed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from syllabus.datasets.models import FileChange
from syllabus.datasets.profile import (
    ColumnProfile,
    TableFormat,
    TableProfile,
    connect,
    quote,
    source_sql,
)
from syllabus.errors import InvalidArgumentError

__all__ = [
    "DatasetDiff",
    "RowDiff",
    "StatChange",
    "TableDiff",
    "compare_profiles",
    "diff_rows",
]

_REL_TOL: Final = 1e-9
_QUANTILE_TOL: Final = 1e-3  # approximate quantiles jitter; relative to the column's range
_EXAMPLES: Final = 5


@dataclass(frozen=True, slots=True)
class StatChange:
    """One statistic of one column that moved from ``a`` to ``b``."""

    column: str
    stat: str  # "mean", "std", "null_rate", "min", "max", "p50", "distinct", "top"
    a: Any
    b: Any


@dataclass(frozen=True, slots=True)
class RowDiff:
    """Rows matched on ``key``: added, removed, changed (any shared column differs) and
    unchanged. Duplicate keys make counts ambiguous; they are reported."""

    key: tuple[str, ...]
    added: int
    removed: int
    changed: int
    unchanged: int
    compared_columns: tuple[str, ...]
    duplicate_keys_a: int = 0
    duplicate_keys_b: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TableDiff:
    """How one tabular file changed."""

    path: str
    rows_a: int | None
    rows_b: int | None
    columns_added: tuple[tuple[str, str], ...] = ()
    columns_removed: tuple[tuple[str, str], ...] = ()
    columns_retyped: tuple[tuple[str, str, str], ...] = ()
    stats: tuple[StatChange, ...] = ()
    rows: RowDiff | None = None

    @property
    def rows_delta(self) -> int | None:
        if self.rows_a is None or self.rows_b is None:
            return None
        return self.rows_b - self.rows_a


@dataclass(frozen=True, slots=True)
class DatasetDiff:
    """Everything that changed from version ``a`` to version ``b``."""

    a: str
    b: str
    added: tuple[FileChange, ...]
    removed: tuple[FileChange, ...]
    modified: tuple[FileChange, ...]
    tables: tuple[TableDiff, ...] = ()

    @property
    def same(self) -> bool:
        return not (self.added or self.removed or self.modified)


def _moved(a: float | None, b: float | None, tol: float, scale: float = 0.0) -> bool:
    if a is None or b is None:
        return a is not b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) != math.isnan(b)
    return abs(a - b) > tol * max(abs(a), abs(b), scale, 1e-300)


def _column_changes(a: ColumnProfile, b: ColumnProfile) -> list[StatChange]:
    out: list[StatChange] = []
    if _moved(a.null_rate, b.null_rate, _REL_TOL):
        out.append(StatChange(a.name, "null_rate", a.null_rate, b.null_rate))
    for stat in ("mean", "std"):
        va, vb = getattr(a, stat), getattr(b, stat)
        if _moved(va, vb, _REL_TOL):
            out.append(StatChange(a.name, stat, va, vb))
    for stat in ("min", "max"):
        va, vb = getattr(a, stat), getattr(b, stat)
        if va != vb:
            out.append(StatChange(a.name, stat, va, vb))
    if a.quantiles and b.quantiles:
        spread = 0.0
        if isinstance(a.min, int | float) and isinstance(b.max, int | float):
            spread = max(float(b.max), float(a.max or 0)) - min(float(a.min), float(b.min or 0))
        for q, va in a.quantiles.items():
            vb = b.quantiles.get(q)
            if _moved(va, vb, _QUANTILE_TOL, abs(spread)):
                label = f"p{float(q) * 100:g}"
                out.append(StatChange(a.name, label, va, vb))
    if a.distinct is not None and b.distinct is not None and a.distinct != b.distinct:
        out.append(StatChange(a.name, "distinct", a.distinct, b.distinct))
    if a.top is not None and b.top is not None and list(a.top) != list(b.top):
        out.append(StatChange(a.name, "top", list(a.top), list(b.top)))
    return out


def compare_profiles(path: str, a: TableProfile | None, b: TableProfile | None) -> TableDiff:
    """Schema, row count and statistics changes between two profiles of ``path``."""
    if a is None or b is None:
        return TableDiff(path, a.rows if a else None, b.rows if b else None)
    sa_, sb = a.schema, b.schema
    added = tuple((c, t) for c, t in sb.items() if c not in sa_)
    removed = tuple((c, t) for c, t in sa_.items() if c not in sb)
    retyped = tuple((c, sa_[c], t) for c, t in sb.items() if c in sa_ and sa_[c] != t)
    stats: list[StatChange] = []
    for col in a.columns:
        other = b.column(col.name)
        if other is not None:
            stats.extend(_column_changes(col, other))
    return TableDiff(path, a.rows, b.rows, added, removed, retyped, tuple(stats))


def diff_rows(
    path_a: Path,
    fmt_a: TableFormat,
    path_b: Path,
    fmt_b: TableFormat,
    key: Sequence[str],
) -> RowDiff:
    """Join two tabular files on ``key`` and count rows added, removed and changed."""
    import duckdb

    key = tuple(key)
    if not key:
        raise InvalidArgumentError("a row diff needs at least one key column")
    con = connect()
    try:
        src_a, src_b = source_sql(fmt_a, "$a"), source_sql(fmt_b, "$b")
        params = {"a": str(path_a), "b": str(path_b)}
        cols_a = [
            str(r[0])
            for r in con.execute(f"DESCRIBE SELECT * FROM {src_a}", {"a": params["a"]}).fetchall()
        ]
        cols_b = [
            str(r[0])
            for r in con.execute(f"DESCRIBE SELECT * FROM {src_b}", {"b": params["b"]}).fetchall()
        ]
        for k in key:
            if k not in cols_a or k not in cols_b:
                side = "first" if k not in cols_a else "second"
                raise InvalidArgumentError(
                    f"key column {k!r} is not in the {side} version of the table "
                    f"(columns: {', '.join(cols_a if side == 'first' else cols_b)})"
                )
        shared = tuple(c for c in cols_a if c in cols_b and c not in key)
        keys_sql = ", ".join(quote(k) for k in key)
        dup = "SELECT count(*) FROM (SELECT {k} FROM {s} GROUP BY {k} HAVING count(*) > 1)"
        dup_a = con.execute(dup.format(k=keys_sql, s=src_a), {"a": params["a"]}).fetchone()
        dup_b = con.execute(dup.format(k=keys_sql, s=src_b), {"b": params["b"]}).fetchone()
        on = " AND ".join(f"a.{quote(k)} IS NOT DISTINCT FROM b.{quote(k)}" for k in key)
        if shared:
            left = ", ".join(f"a.{quote(c)}::VARCHAR" for c in shared)
            right = ", ".join(f"b.{quote(c)}::VARCHAR" for c in shared)
            differs = f"row({left}) IS DISTINCT FROM row({right})"
        else:
            differs = "false"
        key_text = " || '|' || ".join(f"coalesce(a.{quote(k)}, b.{quote(k)})::VARCHAR" for k in key)
        joined = (
            f"SELECT a.__in AS in_a, b.__in AS in_b, ({differs}) AS differs, {key_text} AS k "
            f"FROM (SELECT *, true AS __in FROM {src_a}) a "
            f"FULL OUTER JOIN (SELECT *, true AS __in FROM {src_b}) b ON {on}"
        )
        query = (
            f"SELECT count(*) FILTER (WHERE in_a IS NULL), "
            f"count(*) FILTER (WHERE in_b IS NULL), "
            f"count(*) FILTER (WHERE in_a AND in_b AND differs), "
            f"count(*) FILTER (WHERE in_a AND in_b AND NOT differs), "
            f"min(k, {_EXAMPLES}) FILTER (WHERE in_a IS NULL), "
            f"min(k, {_EXAMPLES}) FILTER (WHERE in_b IS NULL), "
            f"min(k, {_EXAMPLES}) FILTER (WHERE in_a AND in_b AND differs) "
            f"FROM ({joined})"
        )
        row = con.execute(query, params).fetchone()
    except duckdb.Error as exc:
        message = " ".join(str(exc).split())[:300]
        raise InvalidArgumentError(f"cannot compare rows: {message}") from exc
    finally:
        con.close()
    assert row is not None
    assert dup_a is not None
    assert dup_b is not None
    examples = {
        name: [str(v) for v in (values or [])]
        for name, values in zip(("added", "removed", "changed"), row[4:7], strict=True)
    }
    return RowDiff(
        key=key,
        added=int(row[0]),
        removed=int(row[1]),
        changed=int(row[2]),
        unchanged=int(row[3]),
        compared_columns=shared,
        duplicate_keys_a=int(dup_a[0]),
        duplicate_keys_b=int(dup_b[0]),
        examples=examples,
    )
