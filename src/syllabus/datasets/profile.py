"""Tabular profiles: schema, row count and per-column statistics of CSV, Parquet and JSON Lines.

DuckDB computes everything in a couple of streaming, multi-threaded passes over the file
(it never holds the whole file): pass one counts rows and takes per column the null rate,
min, max, mean, standard deviation, approximate quantiles (t-digest) and an approximate
distinct count (HyperLogLog); pass two bins numeric columns into a histogram and counts the
most frequent values of categorical ones. A profile is stored with the version as JSON;
monitoring later uses it as the reference.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from syllabus.errors import InvalidArgumentError

__all__ = [
    "PROFILE_VERSION",
    "QUANTILES",
    "ColumnProfile",
    "TableFormat",
    "TableProfile",
    "any_tabular",
    "profile_file",
    "source_sql",
    "table_format",
]

log = logging.getLogger(__name__)

PROFILE_VERSION: Final = 1
QUANTILES: Final = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
TOP_K: Final = 10
HISTOGRAM_BINS: Final = 20
_EXACT_TOP_MAX: Final = 10_000  # count categories in one map up to this many distinct values

TableFormat = Literal["csv", "parquet", "json"]

_SUFFIXES: Final[dict[str, TableFormat]] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "json",
    ".ndjson": "json",
}
_COMPRESSED: Final = (".gz", ".zst")
_ENDINGS: Final = tuple(s + c for s in _SUFFIXES for c in ("", *_COMPRESSED))
_NUMERIC = re.compile(
    r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|"
    r"FLOAT|DOUBLE|REAL|DECIMAL.*)$"
)
_CATEGORICAL = re.compile(r"^(VARCHAR|BOOLEAN|ENUM.*)$")


def table_format(path: str) -> TableFormat | None:
    """The tabular format a file name says (``.csv``, ``.tsv``, ``.parquet``, ``.jsonl``,
    ``.ndjson``, also ``.csv.gz``/``.jsonl.zst``), else None."""
    name = path.rpartition("/")[2].lower()
    if not name.endswith(_ENDINGS):
        return None  # most files: one C call
    for ext in _COMPRESSED:
        if name.endswith(ext):
            name = name[: -len(ext)]
    dot = name.rfind(".")
    return _SUFFIXES.get(name[dot:]) if dot > 0 else None


def any_tabular(paths: Sequence[str]) -> bool:
    """False when no path has a name :func:`table_format` knows (True: some may have):
    for a folder of many files, one lowercase of all the paths joined and a search per
    ending instead of a call per path."""
    joined = "\n".join(paths).lower() + "\n"
    return any(ending + "\n" in joined for ending in _ENDINGS)


def source_sql(fmt: TableFormat, param: str = "?") -> str:
    """A DuckDB table expression reading the file given as a query parameter."""
    if fmt == "csv":
        return f"read_csv({param}, auto_detect = true)"
    if fmt == "parquet":
        return f"read_parquet({param})"
    return f"read_json({param}, format = 'newline_delimited')"


def quote(name: str) -> str:
    """A SQL identifier for a column name."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class ColumnProfile:
    """Statistics of one column. Numeric-only fields are None for other types."""

    name: str
    type: str
    count: int  # non-null values
    null_rate: float
    min: Any = None
    max: Any = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] | None = None  # {"0.5": median, ...}
    distinct: int | None = None  # approximate
    top: list[tuple[str, int]] | None = None  # most frequent values with counts
    histogram: list[tuple[float, float, int]] | None = None  # (low, high, count)

    @property
    def numeric(self) -> bool:
        return _NUMERIC.match(self.type) is not None


@dataclass(frozen=True, slots=True)
class TableProfile:
    """Schema, row count and per-column statistics of one tabular file."""

    format: TableFormat
    rows: int
    columns: tuple[ColumnProfile, ...] = field(default_factory=tuple)
    version: int = PROFILE_VERSION

    def column(self, name: str) -> ColumnProfile | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None

    @property
    def schema(self) -> dict[str, str]:
        """``{column: type}`` in file order."""
        return {c.name: c.type for c in self.columns}

    def to_json(self) -> bytes:
        """Canonical JSON (sorted keys): equal profiles, equal bytes."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> TableProfile:
        raw = json.loads(data)
        columns = []
        for c in raw["columns"]:
            c["top"] = [tuple(t) for t in c["top"]] if c.get("top") is not None else None
            if c.get("histogram") is not None:
                c["histogram"] = [tuple(h) for h in c["histogram"]]
            columns.append(ColumnProfile(**c))
        return cls(raw["format"], int(raw["rows"]), tuple(columns), int(raw.get("version", 1)))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _scalar(value: Any, numeric: bool) -> Any:
    """A JSON-able min/max."""
    if value is None:
        return None
    if numeric:
        try:
            return _finite(float(value)) if not isinstance(value, int) else value
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, bool | int | float):
        return _finite(value)
    return str(value)


def connect(threads: int | None = None) -> Any:
    """A DuckDB in-memory connection set up for streaming scans."""
    import duckdb

    config: dict[str, Any] = {"preserve_insertion_order": False}
    if threads:
        config["threads"] = threads
    return duckdb.connect(config=config)


def profile_file(path: Path, fmt: TableFormat | None = None) -> TableProfile:
    """Profile one file (format from its name unless given).

    Raises InvalidArgumentError when the file is not readable as that format.
    """
    import duckdb

    fmt = fmt or table_format(path.name)
    if fmt is None:
        raise InvalidArgumentError(f"{path.name}: not a CSV, Parquet or JSON Lines file")
    src = source_sql(fmt)
    arg = [str(path)]
    con = connect()
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {src}", arg).fetchall()
        names = [str(r[0]) for r in described]
        types = [str(r[1]) for r in described]
        first = _first_pass(con, src, arg, names, types)
        rows = int(first[0])
        columns = _columns(con, src=src, arg=arg, names=names, types=types, first=first, rows=rows)
    except duckdb.Error as exc:
        message = " ".join(str(exc).split())[:300]
        raise InvalidArgumentError(f"{path.name}: cannot read it as {fmt}: {message}") from exc
    finally:
        con.close()
    return TableProfile(fmt, rows, tuple(columns))


_PER_COLUMN: Final = 7  # aggregates per column in the first pass


def _first_pass(
    con: Any, src: str, arg: list[str], names: list[str], types: list[str]
) -> tuple[Any, ...]:
    quantiles = "[" + ", ".join(str(q) for q in QUANTILES) + "]"
    parts = ["count(*)"]
    for name, typ in zip(names, types, strict=True):
        col = quote(name)
        parts += [f"count({col})", f"min({col})", f"max({col})", f"approx_count_distinct({col})"]
        if _NUMERIC.match(typ):
            as_double = f"{col}::DOUBLE"
            parts += [
                f"avg({as_double})",
                f"stddev_samp({as_double})",
                f"approx_quantile({as_double}, {quantiles})",
            ]
        else:
            parts += ["NULL", "NULL", "NULL"]
    row = con.execute(f"SELECT {', '.join(parts)} FROM {src}", arg).fetchone()
    assert row is not None
    return tuple(row)


def _columns(  # noqa: PLR0912 - one branch per kind of statistic reads best
    con: Any,
    *,
    src: str,
    arg: list[str],
    names: list[str],
    types: list[str],
    first: tuple[Any, ...],
    rows: int,
) -> list[ColumnProfile]:
    stats = []
    second: list[str] = []
    plans: list[tuple[int, str, Any]] = []  # (column index, what, payload)
    for i, (name, typ) in enumerate(zip(names, types, strict=True)):
        count, lo, hi, distinct, mean, std, qs = first[
            1 + i * _PER_COLUMN : 1 + (i + 1) * _PER_COLUMN
        ]
        numeric = _NUMERIC.match(typ) is not None
        stats.append((name, typ, int(count), lo, hi, distinct, mean, std, qs, numeric))
        col = quote(name)
        if numeric and lo is not None and hi is not None:
            low, high = float(lo), float(hi)
            if math.isfinite(low) and math.isfinite(high) and high > low:
                step = (high - low) / HISTOGRAM_BINS
                edges = [low + step * (k + 1) for k in range(HISTOGRAM_BINS - 1)] + [high]
                bounds = "[" + ", ".join(repr(e) for e in edges) + "]::DOUBLE[]"
                plans.append((i, "hist", (low, edges)))
                second.append(f"histogram({col}::DOUBLE, {bounds})")
        elif _CATEGORICAL.match(typ) and distinct is not None:
            if int(distinct) <= _EXACT_TOP_MAX:
                plans.append((i, "top", None))
                second.append(f"histogram({col})")
            else:
                plans.append((i, "topq", None))
    results: dict[int, Any] = {}
    if second:
        row = con.execute(f"SELECT {', '.join(second)} FROM {src}", arg).fetchone()
        assert row is not None
        it = iter(row)
        for i, what, _ in plans:
            if what in ("hist", "top"):
                results[i] = next(it)
    out = []
    for i, (name, typ, count, lo, hi, distinct, mean, std, qs, numeric) in enumerate(stats):
        histogram = top = None
        for j, what, payload in plans:
            if j != i:
                continue
            if what == "hist":
                low, edges = payload
                counts = results.get(i) or {}
                histogram = []
                prev = low
                for edge in edges:
                    histogram.append((prev, edge, int(counts.get(edge, 0))))
                    prev = edge
            elif what == "top":
                pairs = (results.get(i) or {}).items()
                ranked = sorted(
                    ((str(k), int(v)) for k, v in pairs), key=lambda kv: (-kv[1], kv[0])
                )
                top = ranked[:TOP_K]
            else:
                col = quote(name)
                query = (
                    f"SELECT {col}::VARCHAR AS v, count(*) AS n FROM {src} WHERE {col} IS NOT NULL "
                    f"GROUP BY v ORDER BY n DESC, v LIMIT {TOP_K}"
                )
                top = [(str(v), int(n)) for v, n in con.execute(query, arg).fetchall()]
        quantiles = (
            {str(q): _finite(float(v)) for q, v in zip(QUANTILES, qs, strict=True)}
            if qs is not None
            else None
        )
        out.append(
            ColumnProfile(
                name=name,
                type=typ,
                count=count,
                null_rate=(rows - count) / rows if rows else 0.0,
                min=_scalar(lo, numeric),
                max=_scalar(hi, numeric),
                mean=_finite(float(mean)) if mean is not None else None,
                std=_finite(float(std)) if std is not None else None,
                quantiles=quantiles,
                distinct=int(distinct) if distinct is not None else None,
                top=top,
                histogram=histogram,
            )
        )
    return out
