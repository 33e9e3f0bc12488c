"""The SQL tracking store (SQLite and PostgreSQL): the only module with tracking SQL.

Rows never leave this module; callers get :mod:`~syllabus.tracking.models` values. Hot
paths avoid per-row ORM work: metric points go in with one driver-level ``executemany``
(SQLite, rows of ``metrics``) or as chunks of ``metric_chunks`` (PostgreSQL: one row per
series of a flush, in one statement or a binary ``COPY``); metric key ids and run keys are
cached per store (neither changes once assigned).
"""

from __future__ import annotations

import math
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain, islice
from operator import itemgetter
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite

from syllabus._utils.ids import MIN_PREFIX, is_id, is_id_prefix, new_id
from syllabus.errors import (
    AlreadyExistsError,
    ConflictError,
    DatabaseError,
    InvalidArgumentError,
    NotFoundError,
)
from syllabus.meta import BlobRef, BlobRefs, transaction
from syllabus.meta.engine import one_line
from syllabus.meta.tables import tracking as _tables
from syllabus.meta.tables.tracking import (
    CHUNK_POINTS,
    experiments,
    latest_metrics,
    metric_chunks,
    metric_keys,
    metrics,
    run_inputs,
    runs,
)
from syllabus.tracking import pg_arrays, search
from syllabus.tracking.models import (
    Artifact,
    Experiment,
    Metric,
    Run,
    RunInput,
    RunPage,
    RunStatus,
)
from syllabus.tracking.store import DeletedFilter, PointBatch, RunEnd

__all__ = ["Guard", "SqlTrackingStore"]

# Tables whose names are also the names of arguments.
params_table: Final = _tables.params
tags_table: Final = _tables.tags
artifacts_table: Final = _tables.artifacts
_INSERT_RUN: Final = sa.insert(runs)
_INSERT_PARAMS: Final = sa.insert(params_table)
_INSERT_TAGS: Final = sa.insert(tags_table)

_EXPERIMENT_QMARK: Final = "SELECT pk, id, name, deleted_at FROM experiments WHERE id = ?"
_INSERT_RUN_QMARK: Final = (
    "INSERT INTO runs (id, experiment_pk, parent_pk, name, status, user_name, host, "
    "start_time, heartbeat_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)"
)
_INSERT_PARAM_QMARK: Final = "INSERT INTO params (run_pk, key, value) VALUES (?, ?, ?)"
_INSERT_TAG_QMARK: Final = "INSERT INTO tags (run_pk, key, value) VALUES (?, ?, ?)"
_END_QMARK: Final = (
    "UPDATE runs SET status = ?, end_time = ?, error = coalesce(?, error) WHERE pk = ?"
)
_IN_BATCH: Final = 500
_COPY_SQL: Final = (
    "COPY metric_chunks (run_pk, key_id, first_seq, steps, timestamps, vals) "
    "FROM STDIN (FORMAT BINARY)"
)
# PostgreSQL's binary COPY: a signature, flags and header extension length, then per row
# the number of fields and each field's length and big-endian value (length -1: NULL),
# then -1. metric_chunks is (bigint, integer, bigint, bigint[], bigint[], float8[]); an
# array field is the binary array of :mod:`~syllabus.tracking.pg_arrays`.
_COPY_HEAD: Final = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TAIL: Final = struct.pack(">h", -1)
_COPY_CHUNK: Final = struct.Struct(">hiqiiiq").pack
_COPY_LEN: Final = struct.Struct(">i").pack
# SQLite: a series' latest value recomputed from its stored points.
_LATEST_BODY: Final = (
    "INSERT INTO latest_metrics (run_pk, key_id, step, timestamp, value) "
    "SELECT run_pk, key_id, step, timestamp, value FROM metrics "
    "WHERE run_pk = {run} AND key_id = {key} "
    "ORDER BY step DESC, timestamp DESC, seq DESC LIMIT 1 "
    "ON CONFLICT (run_pk, key_id) DO UPDATE SET step = excluded.step, "
    "timestamp = excluded.timestamp, value = excluded.value"
)
_LATEST_QMARK: Final = _LATEST_BODY.format(run="?1", key="?2")
# PostgreSQL: a series' latest value from the flush's own points (they come after every
# stored one, so they win ties), unless the stored one has a higher (step, timestamp).
_LATEST_UPSERT: Final = (
    "INSERT INTO latest_metrics AS x (run_pk, key_id, step, timestamp, value) "
    "{rows} ON CONFLICT (run_pk, key_id) DO UPDATE SET step = excluded.step, "
    "timestamp = excluded.timestamp, value = excluded.value "
    "WHERE (excluded.step, excluded.timestamp) >= (x.step, x.timestamp)"
)
_LATEST_PG: Final = sa.text(
    _LATEST_UPSERT.format(rows="VALUES (:run_pk, :key_id, :step, :timestamp, :value)")
)
# PostgreSQL: a series' chunks, whose arrays are read in binary and their points sorted
# here (three times faster than unnest and ORDER BY in the server, then a row per point).
_HISTORY_PG: Final = (
    "SELECT first_seq, steps, timestamps, vals FROM metric_chunks "
    "WHERE run_pk = %s AND key_id = %s ORDER BY first_seq"
)
_SEQ_QMARK: Final = "UPDATE runs SET next_seq = ? WHERE pk = ?"
# PostgreSQL, one run: lock it and reserve the batch's seqs in one statement (psycopg's
# %s parameters, sent as they are).
_RESERVE_SQL: Final = "UPDATE runs SET next_seq = next_seq + %s WHERE pk = %s RETURNING next_seq"
# PostgreSQL, a batch of one run (a client's usual flush), as one statement in autocommit
# (one round trip, no BEGIN, COPY or COMMIT of its own; atomic as any statement): the
# optional guard ({guard}: ``g AS (...), `` and {only}), the lock of the run that reserves
# the batch's seqs, the points (binary arrays, numbered from the first seq in their order)
# and each series' latest value, computed from the batch itself (its points come after
# every stored one, so they win ties): the stored latest value is replaced unless it has
# a higher (step, timestamp). Answers (whether the guard let the batch in, the batch's
# first seq or NULL when the run no longer exists). The points travel as three flat
# arrays, series after series; each chunk is a slice of them: its key, its offset in them
# (also its seqs' offset from the batch's first) and its length.
_ONE_RUN_SQL: Final = (
    "WITH {guard}r AS (UPDATE runs SET next_seq = next_seq + %(_n)s WHERE pk = %(_pk)s{only} "
    "RETURNING next_seq - %(_n)s AS first_seq), "
    "p AS (INSERT INTO metric_chunks (run_pk, key_id, first_seq, steps, timestamps, vals) "
    "SELECT %(_pk)s, u.k, r.first_seq + u.o, (%(_ps)s::bigint[])[u.o + 1 : u.o + u.n], "
    "(%(_pt)s::bigint[])[u.o + 1 : u.o + u.n], (%(_pv)s::float8[])[u.o + 1 : u.o + u.n] "
    "FROM r, unnest(%(_ck)s::integer[], %(_co)s::integer[], %(_cn)s::integer[]) AS u(k, o, n)), "
    "l AS ("
    + _LATEST_UPSERT.format(
        rows="SELECT %(_pk)s, u.k, u.s, u.t, u.v FROM r, unnest(%(_k)s::integer[], "
        "%(_s)s::bigint[], %(_t)s::bigint[], %(_v)s::float8[]) AS u(k, s, t, v)"
    )
    + ") SELECT {applied}, (SELECT first_seq FROM r)"
)
_STEP_TIME: Final = itemgetter(0, 1)
_GUARDS_KEPT: Final = 16  # compiled guard statements cached, at most
# SQLite: points go in as multi-row VALUES statements of one series each: ?1 run, ?2 key,
# ?3 the first seq, then (step, timestamp, value) per row. Binding a flat tuple per
# statement (built in C from the buffer's tuples) instead of a tuple per point halves the
# cost, and the GIL is released once per statement rather than once per point.
_ROWS_PER_INSERT: Final = (256, 16, 1)


def _binary_copy(todo: Iterable[_Series]) -> bytes:
    """The points of ``todo`` as one binary COPY payload of ``metric_chunks`` rows, a
    chunk every :data:`CHUNK_POINTS` points of a series. Raises ``struct.error`` for an
    integer past 64 bits."""
    parts = [_COPY_HEAD]
    for pk, kid, seq, series in todo:
        for at in range(0, len(series), CHUNK_POINTS):
            steps, times, values = zip(*series[at : at + CHUNK_POINTS], strict=True)
            parts.append(_COPY_CHUNK(6, 8, pk, 4, kid, 8, seq + at))
            for array in (
                pg_arrays.int8s(steps),
                pg_arrays.int8s(times),
                pg_arrays.float8s(values),  # NaN is NULL, as SQLite stores it
            ):
                parts += [_COPY_LEN(len(array)), array]
    parts.append(_COPY_TAIL)
    return b"".join(parts)


def _latest(series: Sequence[tuple[int, int, float]]) -> tuple[int, int, float | None]:
    """The point of ``series`` with the highest (step, timestamp), the last logged of equal
    ones, with NaN as None (NULL)."""
    step, ts, value = max(reversed(series), key=_STEP_TIME)
    return step, ts, value if value == value else None  # noqa: PLR0124 - NaN is NULL


def _columns(points: PointBatch) -> tuple[list[int], list[int], list[float]]:
    """The steps, timestamps and values of every point of ``points``, series after series."""
    steps: list[int] = []
    times: list[int] = []
    values: list[float] = []
    for series in points.values():
        if series:
            s, t, v = zip(*series, strict=True)
            steps += s
            times += t
            values += v
    return steps, times, values


def _points_per_run(points: PointBatch) -> dict[str, int]:
    counts: dict[str, int] = {}
    for (run_id, _), series in points.items():
        counts[run_id] = counts.get(run_id, 0) + len(series)
    return counts


def _values_sql(n: int) -> str:
    rows = ",".join(f"(?1,?2,?{4 + 3 * i},?{5 + 3 * i},?3+{i},?{6 + 3 * i})" for i in range(n))
    return f"INSERT INTO metrics (run_pk, key_id, step, timestamp, seq, value) VALUES {rows}"


_INSERT_SQL: Final = {n: _values_sql(n) for n in _ROWS_PER_INSERT}
_PKS: Final[sa.BindParameter[Any]] = sa.bindparam("pks", expanding=True)
# A page's params, tags and latest metric values in one statement (one round trip instead
# of three): (kind 0 param / 1 tag / 2 metric, run pk, key, text value, metric value,
# step, timestamp).
_NO_TEXT: Final = sa.null().cast(sa.String)
_NO_FLOAT: Final = sa.null().cast(sa.Float)
_NO_INT: Final = sa.null().cast(sa.BigInteger)


def _details_of(of: Callable[[Any], Any]) -> sa.CompoundSelect[Any]:
    """The statement, with ``of(run_pk column)`` choosing the page's runs."""
    return sa.union_all(
        sa.select(
            sa.literal_column("0", sa.Integer), params_table.c.run_pk, params_table.c.key,
            params_table.c.value, _NO_FLOAT, _NO_INT, _NO_INT,
        ).where(of(params_table.c.run_pk)),
        sa.select(
            sa.literal_column("1", sa.Integer), tags_table.c.run_pk, tags_table.c.key,
            tags_table.c.value, _NO_FLOAT, _NO_INT, _NO_INT,
        ).where(of(tags_table.c.run_pk)),
        sa.select(
            sa.literal_column("2", sa.Integer), latest_metrics.c.run_pk, metric_keys.c.key,
            _NO_TEXT, latest_metrics.c.value, latest_metrics.c.step, latest_metrics.c.timestamp,
        )
        .join(metric_keys, metric_keys.c.id == latest_metrics.c.key_id)
        .where(of(latest_metrics.c.run_pk)),
    )  # fmt: skip


# On PostgreSQL the keys go as one array (= ANY): one statement text whatever their
# number, prepared once per connection, and no expansion of the IN list per execution.
_PK_ARRAY: Final = sa.bindparam("pks", type_=postgresql.ARRAY(sa.BigInteger()))
_DETAILS_OF: Final = {
    "sqlite": _details_of(lambda pk: pk.in_(_PKS)),
    "postgresql": _details_of(lambda pk: pk == sa.any_(_PK_ARRAY)),
}
_EXP_COLS: Final = sa.select(
    experiments.c.pk,
    experiments.c.id,
    experiments.c.name,
    experiments.c.created_at,
    experiments.c.description,
    experiments.c.deleted_at,
)
_EXP_BY_ID: Final = _EXP_COLS.where(experiments.c.id == sa.bindparam("ref"))
_EXP_BY_NAME: Final = _EXP_COLS.where(experiments.c.active_name == sa.bindparam("ref"))
_KEY_IDS_OF: Final = sa.select(metric_keys.c.key, metric_keys.c.id).where(
    metric_keys.c.key.in_(sa.bindparam("keys", expanding=True))
)
_PARENT: Final = runs.alias("parent")
_RUN_SELECT: Final = sa.select(
    runs.c.pk,
    runs.c.id,
    experiments.c.id.label("experiment_id"),
    runs.c.name,
    runs.c.status,
    runs.c.user_name,
    runs.c.host,
    runs.c.start_time,
    runs.c.end_time,
    runs.c.heartbeat_at,
    _PARENT.c.id.label("parent_id"),
    runs.c.error,
    runs.c.deleted_at,
).select_from(
    runs.join(experiments, experiments.c.pk == runs.c.experiment_pk).outerjoin(
        _PARENT, _PARENT.c.pk == runs.c.parent_pk
    )
)
_RUNS_OF: Final = {
    "sqlite": _RUN_SELECT.where(runs.c.pk.in_(_PKS)),
    "postgresql": _RUN_SELECT.where(runs.c.pk == sa.any_(_PK_ARRAY)),
}
_MAX_RESULTS: Final = 50_000
_DELETED_WHERE: Final[dict[str, list[Any]]] = {
    "active": [runs.c.deleted_at.is_(None)],
    "deleted": [runs.c.deleted_at.is_not(None)],
    "all": [],
}
_Series = tuple[int, int, int, Sequence[tuple[int, int, float]]]  # run pk, key id, seq, points


@dataclass
class Guard:
    """A statement that runs first in the transaction that writes a metric batch (the
    server records an idempotent batch's id with it): an ``INSERT ... RETURNING`` of at
    most one row, with ``params`` for its bound parameters. When it returns no row,
    nothing is written; ``passed`` tells afterwards whether it returned one. On
    PostgreSQL a batch of one run runs it inside the statement that reserves the run's
    seqs (a data-modifying ``WITH``): no round trip of its own."""

    statement: sa.Insert
    params: Mapping[str, Any]
    passed: bool = field(default=False, init=False)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _chunks(items: Iterable[Any], n: int = _IN_BATCH) -> Iterable[list[Any]]:
    it = iter(items)
    while batch := list(islice(it, n)):
        yield batch


def _value(v: float | None) -> float:
    return math.nan if v is None else float(v)


class SqlTrackingStore:
    """:class:`~syllabus.tracking.store.TrackingStore` over a SQLAlchemy engine whose schema
    is at head. ``stale_after`` (seconds) is how old a running run's heartbeat may be before
    the run reads as crashed."""

    def __init__(self, engine: Engine, *, stale_after: float = 90.0) -> None:
        self.engine = engine
        self.stale_after = stale_after
        self._dialect = engine.dialect.name
        self._lock = threading.Lock()
        self._key_ids: dict[str, int] = {}
        self._run_pks: dict[str, int] = {}
        self._guards: dict[int, tuple[sa.Insert, str]] = {}
        self._exp_pks: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"SqlTrackingStore({self.engine.url.render_as_string(hide_password=True)!r})"

    @contextmanager
    def _autocommit(self) -> Iterator[Connection]:
        """A PostgreSQL connection in autocommit mode: each statement its own transaction."""
        try:
            with self.engine.connect() as conn:
                yield conn.execution_options(isolation_level="AUTOCOMMIT")
        except sa.exc.OperationalError as exc:
            raise DatabaseError(f"database error: {one_line(exc)}") from exc

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A connection for read-only work. On PostgreSQL it runs in autocommit mode: at
        READ COMMITTED every statement takes its own snapshot inside a transaction too,
        so a transaction would only add a ``BEGIN`` and a ``COMMIT`` round trip."""
        if self._dialect != "postgresql":
            with transaction(self.engine, readonly=True) as conn:
                yield conn
            return
        with self._autocommit() as conn:
            yield conn

    def _insert(self, table: sa.Table) -> Any:
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _stale_before(self) -> int:
        return _now_ms() - int(self.stale_after * 1000)

    # -- experiments -----------------------------------------------------------------------

    def create_experiment(self, name: str, description: str | None = None) -> Experiment:
        exp = Experiment(id=new_id(), name=name, created_at=_now_ms(), description=description)
        try:
            with transaction(self.engine) as conn:
                conn.execute(
                    sa.insert(experiments).values(
                        id=exp.id,
                        name=name,
                        active_name=name,
                        description=description,
                        created_at=exp.created_at,
                    )
                )
        except sa.exc.IntegrityError:
            raise AlreadyExistsError(
                f"experiment {name!r} already exists; pick another name or use it"
            ) from None
        return exp

    def _experiment_row(self, conn: Connection, ref: str, *, by_name: bool) -> Any:
        if by_name:
            row = conn.execute(_EXP_BY_NAME, {"ref": ref}).first()
            if row is None:
                raise NotFoundError(
                    f"experiment {ref!r} not found; `syllabus experiments list` shows them"
                )
            return row
        if is_id(ref):  # the usual case, with a prebuilt statement
            found = conn.execute(_EXP_BY_ID, {"ref": ref}).all()
        else:
            found = conn.execute(
                _prefix_where(_EXP_COLS, experiments.c.id, ref, "experiment")
            ).all()
        if not found:
            raise NotFoundError(
                f"experiment {ref!r} not found; `syllabus experiments list` shows them"
            )
        if len(found) > 1:
            raise InvalidArgumentError(
                f"experiment id prefix {ref!r} is ambiguous; give more characters"
            )
        return found[0]

    def _experiment_pks(
        self, conn: Connection, refs: Iterable[str], *, cached: bool = True
    ) -> tuple[list[int], bool]:
        """The keys of experiments by id or prefix (NotFoundError for a missing one), and
        whether any came from the cache of full ids (an id's key never changes, but the
        experiment may have been purged since: the caller checks again when it finds
        nothing)."""
        pks: list[int] = []
        hit = False
        for ref in refs:
            pk = self._exp_pks.get(ref) if cached else None
            if pk is None:
                row = self._experiment_row(conn, ref, by_name=False)
                pk = int(row.pk)
                with self._lock:
                    self._exp_pks[str(row.id)] = pk
            else:
                hit = True
            pks.append(pk)
        return pks, hit

    @staticmethod
    def _experiment(row: sa.Row[Any]) -> Experiment:
        return Experiment(
            id=row.id,
            name=row.name,
            created_at=row.created_at,
            description=row.description,
            deleted_at=row.deleted_at,
        )

    def get_experiment(self, ref: str, *, by_name: bool = False) -> Experiment:
        with transaction(self.engine, readonly=True) as conn:
            return self._experiment(self._experiment_row(conn, ref, by_name=by_name))

    def list_experiments(self, *, deleted: DeletedFilter = "active") -> list[Experiment]:
        stmt = sa.select(experiments).order_by(experiments.c.created_at, experiments.c.id)
        if deleted == "active":
            stmt = stmt.where(experiments.c.deleted_at.is_(None))
        elif deleted == "deleted":
            stmt = stmt.where(experiments.c.deleted_at.is_not(None))
        with transaction(self.engine, readonly=True) as conn:
            return [self._experiment(row) for row in conn.execute(stmt)]

    def update_experiment(
        self,
        ref: str,
        *,
        name: str | None = None,
        description: str | None = None,
        deleted: bool | None = None,
    ) -> Experiment:
        try:
            with transaction(self.engine) as conn:
                row = self._experiment_row(conn, ref, by_name=False)
                values: dict[str, Any] = {}
                live = row.deleted_at is None
                if deleted is not None:
                    live = not deleted
                    values["deleted_at"] = None if live else (row.deleted_at or _now_ms())
                new_name = name if name is not None else row.name
                values["name"] = new_name
                values["active_name"] = new_name if live else None
                if description is not None:
                    values["description"] = description
                conn.execute(
                    sa.update(experiments).where(experiments.c.pk == row.pk).values(**values)
                )
                row = self._experiment_row(conn, row.id, by_name=False)
                return self._experiment(row)
        except sa.exc.IntegrityError:
            raise AlreadyExistsError(
                f"experiment {name or ref!r} already exists; pick another name"
            ) from None

    # -- runs ------------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: str,
        *,
        run_id: str,
        name: str,
        user: str,
        host: str,
        start_time: int,
        parent_id: str | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Run:
        with transaction(self.engine) as conn:
            if self._dialect == "sqlite" and is_id(experiment_id):
                exp = conn.exec_driver_sql(_EXPERIMENT_QMARK, (experiment_id,)).first()
                if exp is None:
                    raise NotFoundError(
                        f"experiment {experiment_id!r} not found; "
                        "`syllabus experiments list` shows them"
                    )
            else:
                exp = self._experiment_row(conn, experiment_id, by_name=False)
            if exp.deleted_at is not None:
                raise ConflictError(
                    f"experiment {exp.name!r} is deleted; restore it "
                    "(`syllabus experiments restore`) or use another"
                )
            parent_pk = None
            full_parent = None
            if parent_id is not None:
                parent_pk, full_parent = self._run_key(conn, parent_id)
            status = RunStatus.RUNNING.value
            if self._dialect == "sqlite":
                # The raw driver: this transaction is most of what creating a run costs.
                values = (run_id, exp.pk, parent_pk, name, status, user, host, start_time)
                pk = int(conn.exec_driver_sql(_INSERT_RUN_QMARK, values).lastrowid)
                if params:
                    rows = [(pk, k, v) for k, v in params.items()]
                    conn.exec_driver_sql(_INSERT_PARAM_QMARK, rows)
                if tags:
                    rows = [(pk, k, v) for k, v in tags.items()]
                    conn.exec_driver_sql(_INSERT_TAG_QMARK, rows)
            else:
                pk = self._insert_run_rows(
                    conn,
                    {
                        "id": run_id,
                        "experiment_pk": exp.pk,
                        "parent_pk": parent_pk,
                        "name": name,
                        "status": status,
                        "user_name": user,
                        "host": host,
                        "start_time": start_time,
                        "heartbeat_at": start_time,
                    },
                    params,
                    tags,
                )
        with self._lock:
            self._run_pks[run_id] = pk
        return Run(
            id=run_id,
            experiment_id=exp.id,
            name=name,
            status=RunStatus.RUNNING,
            user=user,
            host=host,
            start_time=start_time,
            end_time=None,
            heartbeat_at=start_time,
            parent_id=full_parent,
            params=dict(params or {}),
            tags=dict(tags or {}),
        )

    @staticmethod
    def _insert_run_rows(
        conn: Connection,
        row: dict[str, Any],
        params: Mapping[str, str] | None,
        tags: Mapping[str, str] | None,
    ) -> int:
        inserted = conn.execute(_INSERT_RUN, row).inserted_primary_key
        assert inserted is not None
        pk = int(inserted[0])
        if params:
            conn.execute(
                _INSERT_PARAMS, [{"run_pk": pk, "key": k, "value": v} for k, v in params.items()]
            )
        if tags:
            conn.execute(
                _INSERT_TAGS, [{"run_pk": pk, "key": k, "value": v} for k, v in tags.items()]
            )
        return pk

    def _run_key(self, conn: Connection, ref: str) -> tuple[int, str]:
        """``(pk, full id)`` of a run from an id or unique prefix."""
        pk = self._run_pks.get(ref)
        if pk is not None:
            return pk, ref
        found = conn.execute(
            _prefix_where(sa.select(runs.c.pk, runs.c.id), runs.c.id, ref, "run")
        ).all()
        if not found:
            raise NotFoundError(f"run {ref!r} not found; `syllabus runs list` shows runs")
        if len(found) > 1:
            raise InvalidArgumentError(f"run id prefix {ref!r} is ambiguous; give more characters")
        pk, full = int(found[0].pk), str(found[0].id)
        with self._lock:
            self._run_pks[full] = pk
        return pk, full

    @staticmethod
    def _run_select() -> sa.Select[Any]:
        return _RUN_SELECT

    def _runs_from_rows(self, conn: Connection, rows: Sequence[Any]) -> list[Run]:
        pks = [int(r.pk) for r in rows]
        p: dict[int, dict[str, str]] = {pk: {} for pk in pks}
        t: dict[int, dict[str, str]] = {pk: {} for pk in pks}
        m: dict[int, dict[str, Metric]] = {pk: {} for pk in pks}
        for batch in _chunks(pks):
            # A prebuilt statement (no SQL construction per search), rows fetched at once.
            for kind, rp, key, text, value, step, ts in conn.execute(
                _DETAILS_OF[self._dialect], {"pks": batch}
            ).all():
                if kind == 2:
                    m[rp][key] = Metric(key, _value(value), int(step), int(ts))
                else:
                    (t if kind else p)[rp][key] = text
        stale_before = self._stale_before()
        out = []
        for r in rows:
            status = RunStatus(r.status)
            if status is RunStatus.RUNNING and r.heartbeat_at < stale_before:
                status = RunStatus.CRASHED
            out.append(
                Run(
                    id=r.id,
                    experiment_id=r.experiment_id,
                    name=r.name,
                    status=status,
                    user=r.user_name,
                    host=r.host,
                    start_time=int(r.start_time),
                    end_time=None if r.end_time is None else int(r.end_time),
                    heartbeat_at=int(r.heartbeat_at),
                    parent_id=r.parent_id,
                    error=r.error,
                    deleted_at=r.deleted_at,
                    params=p[r.pk],
                    tags=t[r.pk],
                    metrics=m[r.pk],
                )
            )
        return out

    def get_run(self, ref: str) -> Run:
        with self._reading() as conn:
            pk, _ = self._run_key(conn, ref)
            rows = conn.execute(self._run_select().where(runs.c.pk == pk)).all()
            if not rows:
                raise NotFoundError(f"run {ref!r} not found; `syllabus runs list` shows runs")
            return self._runs_from_rows(conn, rows)[0]

    def update_run(
        self,
        ref: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        error: str | None = None,
        heartbeat_at: int | None = None,
        deleted: bool | None = None,
    ) -> None:
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = status
        if end_time is not None:
            values["end_time"] = end_time
        if error is not None:
            values["error"] = error
        if heartbeat_at is not None:
            values["heartbeat_at"] = heartbeat_at
        if deleted is not None:
            values["deleted_at"] = _now_ms() if deleted else None
        if not values:
            return
        with transaction(self.engine) as conn:
            pk, _ = self._run_key(conn, ref)
            result = conn.execute(sa.update(runs).where(runs.c.pk == pk).values(**values))
            if result.rowcount == 0:
                raise NotFoundError(f"run {ref!r} not found; `syllabus runs list` shows runs")

    def heartbeat(self, run_ids: Sequence[str], at: int) -> None:
        if not run_ids:
            return
        with transaction(self.engine) as conn:
            for batch in _chunks(run_ids):
                conn.execute(
                    sa.update(runs)
                    .where(runs.c.id.in_(batch), runs.c.status == RunStatus.RUNNING.value)
                    .values(heartbeat_at=at)
                )

    # -- params, tags, metrics -------------------------------------------------------------

    def log_batch(
        self,
        ref: str,
        *,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        if not params and not tags:
            return
        with transaction(self.engine) as conn:
            pk, full = self._run_key(conn, ref)
            if params:
                self._add_params(conn, pk, full, params)
            if tags:
                table = tags_table
                stmt = self._insert(table)
                stmt = stmt.on_conflict_do_update(
                    index_elements=[table.c.run_pk, table.c.key],
                    set_={"value": stmt.excluded.value},
                )
                conn.execute(stmt, [{"run_pk": pk, "key": k, "value": v} for k, v in tags.items()])

    def _add_params(self, conn: Connection, pk: int, run_id: str, new: Mapping[str, str]) -> None:
        table = params_table
        existing: dict[str, str] = {}
        for batch in _chunks(new):
            existing.update(
                list(
                    conn.execute(
                        sa.select(table.c.key, table.c.value).where(
                            table.c.run_pk == pk, table.c.key.in_(batch)
                        )
                    ).all()
                )
            )
        for key, value in new.items():
            old = existing.get(key)
            if old is not None and old != value:
                raise ConflictError(
                    f"param {key!r} of run {run_id} is already {_short(old)!r}; params are "
                    f"immutable, so {_short(value)!r} was refused (log it under another key)"
                )
        rows = [{"run_pk": pk, "key": k, "value": v} for k, v in new.items() if k not in existing]
        if rows:
            conn.execute(self._insert(table).on_conflict_do_nothing(), rows)

    def _ensure_keys(self, keys: Iterable[str]) -> dict[str, int]:
        wanted = set(keys)
        missing = wanted - self._key_ids.keys()
        if missing:
            # Own transaction: ids are cached only once committed.
            with transaction(self.engine) as conn:
                conn.execute(
                    self._insert(metric_keys).on_conflict_do_nothing(),
                    [{"key": k} for k in sorted(missing)],
                )
                found: dict[str, int] = {}
                for batch in _chunks(sorted(missing)):
                    found.update(
                        list(
                            conn.execute(
                                sa.select(metric_keys.c.key, metric_keys.c.id).where(
                                    metric_keys.c.key.in_(batch)
                                )
                            ).all()
                        )
                    )
            with self._lock:
                self._key_ids.update(found)
        return {k: self._key_ids[k] for k in wanted}

    def _key_ids_known(self, conn: Connection, keys: Iterable[str]) -> dict[str, int]:
        wanted = set(keys)
        out = {k: self._key_ids[k] for k in wanted if k in self._key_ids}
        missing = sorted(wanted - out.keys())
        found: dict[str, int] = {}
        for batch in _chunks(missing):
            found.update((k, int(i)) for k, i in conn.execute(_KEY_IDS_OF, {"keys": batch}))
        if found:  # committed ids, which never change
            with self._lock:
                self._key_ids.update(found)
        out.update(found)
        return out

    def log_metrics(
        self,
        points: PointBatch,
        *,
        end: RunEnd | None = None,
        first: Guard | None = None,
    ) -> None:
        """See :meth:`TrackingStore.log_metrics`. ``first`` runs first inside the
        transaction that writes the points, before any run is locked; when it returns no
        row nothing is written. The server records an idempotent batch's id with it, so
        the id commits (or rolls back) with its points."""
        if not points and end is None:
            return
        key_ids = self._ensure_keys({key for (_, key), series in points.items() if series})
        if self._dialect == "postgresql" and end is None:
            run_ids = {run_id for run_id, _ in points}
            pk = self._run_pks.get(next(iter(run_ids))) if len(run_ids) == 1 else None
            if pk is not None:
                self._log_one_run(pk, points, key_ids, first)
                return
        with transaction(self.engine) as conn:
            if first is not None:
                first.passed = conn.execute(first.statement, first.params).first() is not None
                if not first.passed:
                    return
            run_ids = {run_id for run_id, _ in points}
            if end is not None:
                run_ids.add(end.run_id)
            pks, seqs, missing, reserved = self._lock_runs(conn, run_ids, _points_per_run(points))
            todo: list[_Series] = []
            for (run_id, key), series in points.items():
                run_pk = pks.get(run_id)
                if run_pk is None or not series:
                    continue
                todo.append((run_pk, key_ids[key], seqs[run_pk], series))
                seqs[run_pk] += len(series)
            if todo:
                self._append_points(conn, todo)
                self._after_append(conn, todo, seqs, reserved=reserved)
            if end is not None and end.run_id in pks:
                self._end_run(conn, pks[end.run_id], end)
        if missing:
            self._forget_runs(missing)

    def _end_run(self, conn: Connection, pk: int, end: RunEnd) -> None:
        if self._dialect == "sqlite":
            conn.exec_driver_sql(_END_QMARK, (end.status, end.end_time, end.error, pk))
            return
        values: dict[str, Any] = {"status": end.status, "end_time": end.end_time}
        if end.error is not None:
            values["error"] = end.error
        conn.execute(sa.update(runs).where(runs.c.pk == pk).values(**values))

    def _forget_runs(self, missing: list[str]) -> None:
        with self._lock:
            for run_id in missing:
                self._run_pks.pop(run_id, None)
        raise NotFoundError(
            f"run {', '.join(missing)} not found (purged?): its metric points were "
            "dropped; `syllabus runs list` shows runs"
        )

    def _log_one_run(
        self, pk: int, points: PointBatch, key_ids: dict[str, int], first: Guard | None
    ) -> None:
        """A batch of one run on PostgreSQL: one statement in autocommit (see
        :data:`_ONE_RUN_SQL`), one round trip."""
        import psycopg

        keys, steps, times, values = [], [], [], []
        chunk_keys: list[int] = []
        chunk_at: list[int] = []
        chunk_len: list[int] = []
        n = 0
        for (_, key), series in points.items():
            if not series:
                continue
            kid = key_ids[key]
            step, ts, value = _latest(series)
            keys.append(kid)
            steps.append(step)
            times.append(ts)
            values.append(value)
            size = len(series)
            for at in range(0, size, CHUNK_POINTS):
                chunk_keys.append(kid)
                chunk_at.append(n + at)
                chunk_len.append(min(CHUNK_POINTS, size - at))
            n += size
        ps, pt, pv = _columns(points)  # the latest steps and times are among them
        try:
            params: dict[str, Any] = {
                "_n": n,
                "_pk": pk,
                "_k": keys,
                "_s": steps,
                "_t": times,
                "_v": values,
                "_ck": pg_arrays.int8s(chunk_keys),
                "_co": pg_arrays.int8s(chunk_at),
                "_cn": pg_arrays.int8s(chunk_len),
                "_ps": pg_arrays.int8s(ps),
                "_pt": pg_arrays.int8s(pt),
                "_pv": pg_arrays.float8s(pv),
            }
        except struct.error as exc:  # as sqlite3 reports an integer past 64 bits
            raise OverflowError(f"a metric point is out of range: {exc}") from None
        sql = self._one_run_sql(first)
        if first is not None:
            params.update(first.params)
        with self._autocommit() as conn:
            driver = conn.connection.driver_connection
            assert driver is not None
            pg_arrays.register(conn.connection.info, driver)
            with driver.cursor() as cur:
                try:
                    cur.execute(sql, params)
                except psycopg.OperationalError as exc:  # the driver's own: as transaction()
                    raise DatabaseError(f"database error: {one_line(exc)}") from exc
                row = cur.fetchone()
        assert row is not None
        applied, seq = row
        if first is not None:
            first.passed = bool(applied)
        if applied and seq is None:
            self._forget_runs([next(iter(points))[0]])

    def _one_run_sql(self, first: Guard | None) -> str:
        """:data:`_ONE_RUN_SQL` with ``first`` (compiled once per statement) as its guard."""
        if first is None:
            return _ONE_RUN_SQL.format(guard="", only="", applied="1")
        cached = self._guards.get(id(first.statement))
        if cached is None or cached[0] is not first.statement:
            compiled = first.statement.compile(dialect=self.engine.dialect)
            sql = _ONE_RUN_SQL.format(
                guard=f"g AS ({compiled}), ",
                only=" AND EXISTS (SELECT FROM g)",
                applied="(SELECT count(*) FROM g)",
            )
            cached = (first.statement, sql)
            with self._lock:
                if len(self._guards) >= _GUARDS_KEPT:  # callers keep a few statements
                    self._guards.clear()
                self._guards[id(first.statement)] = cached
        return cached[1]

    def _after_append(
        self, conn: Connection, todo: list[_Series], seqs: dict[int, int], *, reserved: bool
    ) -> None:
        """Store the runs' next seqs (unless ``reserved``: the lock stored them already) and
        the latest value of each written series (SQLite recomputes it from the stored
        points; PostgreSQL, whose chunks have no index by step, takes the flush's own
        latest point unless the stored one has a higher (step, timestamp): the flush's
        points have the run's highest seqs, and its lock keeps other flushes out)."""
        written = sorted({pk for pk, _, _, _ in todo})
        if self._dialect == "sqlite":
            conn.exec_driver_sql(_SEQ_QMARK, [(seqs[pk], pk) for pk in written])
            conn.exec_driver_sql(_LATEST_QMARK, [(pk, kid) for pk, kid, _, _ in todo])
            return
        if not reserved:
            conn.execute(
                sa.update(runs)
                .where(runs.c.pk == sa.bindparam("b_pk"))
                .values(next_seq=sa.bindparam("b_seq")),
                [{"b_pk": pk, "b_seq": seqs[pk]} for pk in written],
            )
        latest = []
        for pk, kid, _, series in todo:
            step, ts, value = _latest(series)
            latest.append(
                {"run_pk": pk, "key_id": kid, "step": step, "timestamp": ts, "value": value}
            )
        conn.execute(_LATEST_PG, latest)

    def _lock_runs(
        self, conn: Connection, run_ids: Iterable[str], adds: dict[str, int]
    ) -> tuple[dict[str, int], dict[int, int], list[str], bool]:
        """``({run id: pk}, {pk: next seq}, [missing run ids], reserved)``: checks that the
        runs still exist (the points table has no foreign keys) and, on PostgreSQL, locks
        them, so one writer at a time appends to a run and none while it is purged. With
        one run on PostgreSQL (a client's usual flush) the lock is the update that reserves
        ``adds[run id]`` seqs, one statement instead of a lock and a later update: then
        ``reserved`` is True."""
        pks: dict[str, int] = {}
        missing: list[str] = []
        for run_id in sorted(run_ids):
            try:
                pks[run_id] = self._run_key(conn, run_id)[0]
            except NotFoundError:
                missing.append(run_id)
        seqs: dict[int, int] = {}
        if self._dialect == "postgresql" and len(pks) == 1:
            ((run_id, pk),) = pks.items()
            n = adds.get(run_id, 0)
            row = conn.exec_driver_sql(_RESERVE_SQL, (n, pk)).first()
            if row is None:
                return {}, {}, sorted([*missing, run_id]), True
            return pks, {pk: int(row[0]) - n}, sorted(missing), True
        for batch in _chunks(sorted(set(pks.values()))):
            if self._dialect == "postgresql":
                stmt = (
                    sa.select(runs.c.pk, runs.c.next_seq)
                    .where(runs.c.pk.in_(batch))
                    .order_by(runs.c.pk)
                    .with_for_update()
                )
                seqs.update((int(pk), int(seq)) for pk, seq in conn.execute(stmt))
            else:
                marks = ",".join("?" * len(batch))
                sql = f"SELECT pk, next_seq FROM runs WHERE pk IN ({marks})"
                seqs.update(
                    (int(pk), int(seq)) for pk, seq in conn.exec_driver_sql(sql, tuple(batch))
                )
        for run_id, pk in list(pks.items()):
            if pk not in seqs:
                missing.append(run_id)
                del pks[run_id]
        return pks, seqs, sorted(missing), False

    def _append_points(self, conn: Connection, todo: list[_Series]) -> None:
        driver = conn.connection.driver_connection
        assert driver is not None
        if self._dialect == "postgresql":
            try:
                data = _binary_copy(todo)
            except struct.error as exc:  # as sqlite3 reports an integer past 64 bits
                raise OverflowError(f"a metric point is out of range: {exc}") from None
            with driver.cursor() as cur, cur.copy(_COPY_SQL) as copy:
                copy.write(data)
            return
        params: dict[int, list[tuple[Any, ...]]] = {n: [] for n in _ROWS_PER_INSERT}
        for pk, kid, seq, series in todo:
            at, size = 0, len(series)
            for n in _ROWS_PER_INSERT:
                rows = params[n]
                while size - at >= n:
                    rows.append((pk, kid, seq + at, *chain.from_iterable(series[at : at + n])))
                    at += n
        for n, rows in params.items():
            if rows:
                conn.exec_driver_sql(_INSERT_SQL[n], rows)

    def get_metric_history(self, ref: str, key: str) -> list[Metric]:
        with self._reading() as conn:
            pk, _ = self._run_key(conn, ref)
            kid = self._key_ids_known(conn, [key]).get(key)
            if kid is None:
                return []
            if self._dialect == "postgresql":
                return [Metric(key, _value(v), s, t) for s, t, _, v in _pg_history(conn, pk, kid)]
            stmt = (
                sa.select(metrics.c.step, metrics.c.timestamp, metrics.c.value)
                .where(metrics.c.run_pk == pk, metrics.c.key_id == kid)
                .order_by(metrics.c.step, metrics.c.timestamp, metrics.c.seq)
            )
            return [Metric(key, _value(v), int(s), int(t)) for s, t, v in conn.execute(stmt).all()]

    # -- search ----------------------------------------------------------------------------

    def search_runs(
        self,
        experiment_ids: Sequence[str] | None = None,
        *,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        parent_id: str | None = None,
        deleted: DeletedFilter = "active",
    ) -> RunPage:
        if not 0 < max_results <= _MAX_RESULTS:
            raise InvalidArgumentError(
                f"max_results must be between 1 and {_MAX_RESULTS}, not {max_results}"
            )
        node = search.parse_filter(filter)
        order = search.parse_order_by(order_by)
        query = [sorted(experiment_ids or []), filter, list(order_by or []), parent_id, deleted]
        offset, after = search.decode_page_cursor(page_token, query)
        keyset = search.keyset_columns(order)
        if after is not None and not _fits_keyset(keyset, after):
            raise InvalidArgumentError(f"invalid page token {str(page_token)[:40]!r}")
        with self._reading() as conn:
            key_ids = self._key_ids_known(conn, search.metric_keys_of(node, order))
            where = [
                search.compile_filter(
                    node,
                    key_ids=key_ids,
                    dialect=self._dialect,
                    stale_before=self._stale_before(),
                )
            ]
            cached = False
            if experiment_ids is not None:
                exp_pks, cached = self._experiment_pks(conn, experiment_ids)
                where.append(runs.c.experiment_pk.in_(exp_pks))
            if parent_id is not None:
                where.append(runs.c.parent_pk == self._run_key(conn, parent_id)[0])
            where += _DELETED_WHERE[deleted]
            joins, clauses = search.compile_order(
                order, key_ids=key_ids, required=search.metrics_required(node)
            )
            skip = offset
            if keyset is not None and after is not None:
                # Keyset: start right after the previous page's last row, through the
                # order's index, instead of reading and skipping `offset` rows.
                cols = [runs.c[name] for name in keyset]
                where.append(sa.tuple_(*cols) < sa.tuple_(*after))
                skip = 0
            want = max_results + 1
            if order and order[0].field.kind == "metrics" and joins:
                pks = self._metric_ordered_page(
                    conn,
                    where,
                    joins,
                    clauses,
                    want=want,
                    offset=skip,
                    descending=order[0].descending,
                    valued=order[0].field.key in search.metrics_valued(node),
                )
            else:
                pks = _page_pks(conn, where, joins, clauses, limit=want, offset=skip)
            if not pks and cached:  # a purged experiment is not found, as when not cached
                self._experiment_pks(conn, experiment_ids or (), cached=False)
            more = len(pks) > max_results
            pks = pks[:max_results]
            rows_by_pk: dict[int, Any] = {}
            for batch in _chunks(pks):
                for row in conn.execute(_RUNS_OF[self._dialect], {"pks": batch}).all():
                    rows_by_pk[int(row.pk)] = row
            found = self._runs_from_rows(conn, [rows_by_pk[pk] for pk in pks if pk in rows_by_pk])
        token = None
        if more:
            last = rows_by_pk.get(pks[-1]) if keyset is not None else None
            next_after = None if last is None else [getattr(last, c) for c in keyset or ()]
            token = search.encode_page_token(offset + max_results, query, next_after)
        return RunPage(tuple(found), token)

    @staticmethod
    def _metric_ordered_page(
        conn: Connection,
        where: list[Any],
        joins: list[tuple[Any, Any, bool]],
        clauses: list[Any],
        *,
        want: int,
        offset: int,
        descending: bool,
        valued: bool,
    ) -> list[int]:
        """A page ordered first by a metric: runs with a value come first, read through
        the (metric, value) index up to the page's end; runs without one (or NaN), which
        sort last, are read only when the page reaches them. The same rows in the same
        order as the join (outer when the filter does not require the metric), without
        reading and sorting every run.

        With ``valued`` (the filter matches only runs with a value: see
        :func:`~syllabus.tracking.search.metrics_valued`) there is no second part.

        The valued part orders by the value without NULLS LAST (it has no NULL): on
        PostgreSQL, ``DESC NULLS LAST`` is not the index's backward order and would sort
        every value of the metric."""
        table, on, _ = joins[0]
        inner = [(table, on, False), *joins[1:]]
        valued_where = [*where, table.c.value.is_not(None)]
        by_value = table.c.value.desc() if descending else table.c.value.asc()
        pks = _page_pks(
            conn, valued_where, inner, [by_value, *clauses[1:]], limit=want, offset=offset
        )
        if len(pks) < want and not valued:
            if pks:
                n_valued = offset + len(pks)
            else:
                n_valued = int(
                    conn.execute(_page_base(valued_where, inner, sa.func.count())).scalar_one()
                )
            rest = [*where, table.c.value.is_(None)]
            left = want - len(pks)
            pks += _page_pks(
                conn, rest, joins, clauses[1:], limit=left, offset=max(0, offset - n_valued)
            )
        return pks

    # -- artifacts and inputs --------------------------------------------------------------

    def add_artifacts(self, ref: str, artifacts: Sequence[Artifact]) -> None:
        if not artifacts:
            return
        now = _now_ms()
        with transaction(self.engine) as conn:
            pk, full = self._run_key(conn, ref)
            stmt = self._insert(artifacts_table)
            stmt = stmt.on_conflict_do_update(
                index_elements=[artifacts_table.c.run_pk, artifacts_table.c.path],
                set_={
                    "digest": stmt.excluded.digest,
                    "size": stmt.excluded.size,
                    "created_at": stmt.excluded.created_at,
                },
            )
            for batch in _chunks(artifacts, 1000):
                conn.execute(
                    stmt,
                    [
                        {
                            "run_pk": pk,
                            "path": a.path,
                            "digest": a.digest,
                            "size": a.size,
                            "created_at": now,
                        }
                        for a in batch
                    ],
                )
            BlobRefs(self.engine).add(
                (BlobRef(a.digest, "artifact", "run", full) for a in artifacts), conn
            )

    def list_artifacts(self, ref: str, prefix: str = "") -> list[Artifact]:
        prefix = prefix.strip("/")
        with transaction(self.engine, readonly=True) as conn:
            pk, _ = self._run_key(conn, ref)
            stmt = (
                sa.select(artifacts_table.c.path, artifacts_table.c.digest, artifacts_table.c.size)
                .where(artifacts_table.c.run_pk == pk)
                .order_by(artifacts_table.c.path)
            )
            if prefix:
                stmt = stmt.where(
                    sa.or_(
                        artifacts_table.c.path == prefix,
                        sa.and_(
                            artifacts_table.c.path > prefix + "/",
                            artifacts_table.c.path < prefix + "0",
                        ),
                    )
                )
            return [Artifact(p, d, int(s)) for p, d, s in conn.execute(stmt).all()]

    def log_inputs(self, ref: str, inputs: Sequence[RunInput]) -> None:
        if not inputs:
            return
        with transaction(self.engine) as conn:
            pk, _ = self._run_key(conn, ref)
            stmt = self._insert(run_inputs)
            stmt = stmt.on_conflict_do_update(
                index_elements=[
                    run_inputs.c.run_pk,
                    run_inputs.c.kind,
                    run_inputs.c.target_id,
                    run_inputs.c.role,
                ],
                set_={"name": stmt.excluded.name, "digest": stmt.excluded.digest},
            )
            conn.execute(
                stmt,
                [
                    {
                        "run_pk": pk,
                        "kind": i.kind,
                        "target_id": i.target_id,
                        "name": i.name,
                        "digest": i.digest,
                        "role": i.role,
                    }
                    for i in inputs
                ],
            )

    def _inputs(self, conn: Connection, where: sa.ColumnElement[bool]) -> list[RunInput]:
        stmt = (
            sa.select(
                run_inputs.c.kind,
                run_inputs.c.target_id,
                run_inputs.c.name,
                run_inputs.c.digest,
                run_inputs.c.role,
                runs.c.id,
            )
            .join(runs, runs.c.pk == run_inputs.c.run_pk)
            .where(where)
            .order_by(runs.c.id, run_inputs.c.pk)
        )
        return [
            RunInput(kind=k, target_id=t, name=n, digest=d, role=r, run_id=rid)
            for k, t, n, d, r, rid in conn.execute(stmt).all()
        ]

    def list_inputs(self, ref: str) -> list[RunInput]:
        with transaction(self.engine, readonly=True) as conn:
            pk, _ = self._run_key(conn, ref)
            return self._inputs(conn, run_inputs.c.run_pk == pk)

    def runs_with_input(self, kind: str, target_id: str) -> list[RunInput]:
        with transaction(self.engine, readonly=True) as conn:
            return self._inputs(
                conn,
                sa.and_(run_inputs.c.kind == kind, run_inputs.c.target_id == target_id),
            )

    # -- purge -----------------------------------------------------------------------------

    def purge_deleted(self, older_than: int) -> int:
        removed = 0
        refs = BlobRefs(self.engine)
        points = metric_chunks if self._dialect == "postgresql" else metrics
        with transaction(self.engine) as conn:
            old_exps = sa.select(experiments.c.pk).where(experiments.c.deleted_at <= older_than)
            doomed = conn.execute(
                sa.select(runs.c.pk, runs.c.id).where(
                    sa.or_(runs.c.deleted_at <= older_than, runs.c.experiment_pk.in_(old_exps))
                )
            ).all()
            for batch in _chunks(doomed):
                for row in batch:
                    refs.remove_owner("run", row.id, conn)
                pks = [r.pk for r in batch]
                # Runs first: a flush that locked one of them (PostgreSQL) is waited for,
                # then its points go too (the points tables have no foreign key to cascade
                # them).
                conn.execute(sa.delete(runs).where(runs.c.pk.in_(pks)))
                conn.execute(sa.delete(points).where(points.c.run_pk.in_(pks)))
                removed += len(batch)
            conn.execute(sa.delete(experiments).where(experiments.c.deleted_at <= older_than))
        with self._lock:
            for row in doomed:
                self._run_pks.pop(row.id, None)
        return removed


def _pg_history(conn: Connection, pk: int, kid: int) -> list[tuple[int, int, int, float | None]]:
    """The points of a series on PostgreSQL as ``(step, timestamp, seq, value)``, in order
    of step, timestamp and seq (seqs are unique, so values are never compared)."""
    import psycopg

    driver = conn.connection.driver_connection
    assert driver is not None
    try:
        with driver.cursor(binary=True) as cur:
            chunks = cur.execute(_HISTORY_PG, (pk, kid)).fetchall()
    except psycopg.OperationalError as exc:  # the driver's own: as transaction()
        raise DatabaseError(f"database error: {one_line(exc)}") from exc
    points: list[tuple[int, int, int, float | None]] = []
    for seq, steps, times, values in chunks:
        points += zip(steps, times, range(seq, seq + len(steps)), values, strict=True)
    points.sort()
    return points


def _page_base(where: list[Any], joins: list[tuple[Any, Any, bool]], column: Any) -> Any:
    base: Any = runs
    for table, on, outer in joins:
        base = base.outerjoin(table, on) if outer else base.join(table, on)
    return sa.select(column).select_from(base).where(*where)


def _page_pks(
    conn: Connection,
    where: list[Any],
    joins: list[tuple[Any, Any, bool]],
    clauses: list[Any],
    *,
    limit: int,
    offset: int,
) -> list[int]:
    """The run keys of one page of a search."""
    stmt = _page_base(where, joins, runs.c.pk).order_by(*clauses).limit(limit).offset(offset)
    return [int(pk) for pk in conn.execute(stmt).scalars()]


def _fits_keyset(keyset: list[str] | None, after: list[str | int]) -> bool:
    """Whether a token's ``after`` values match the order's keyset columns (an integer
    start time, text for the rest)."""
    if keyset is None or len(after) != len(keyset):
        return False
    return all(
        isinstance(v, int) if c == "start_time" else isinstance(v, str)
        for c, v in zip(keyset, after, strict=True)
    )


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _prefix_where(stmt: sa.Select[Any], column: Any, ref: str, what: str) -> sa.Select[Any]:
    """``stmt`` restricted to ids equal to ``ref`` or starting with it (at most 2 rows)."""
    ref = ref.strip().lower()
    if is_id(ref):
        return stmt.where(column == ref)
    if not is_id_prefix(ref):
        raise NotFoundError(
            f"{what} {ref!r} not found (ids are hex; give at least {MIN_PREFIX} characters)"
        )
    return stmt.where(column >= ref, column < ref + "g").limit(2)
