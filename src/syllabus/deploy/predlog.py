"""The prediction log: what a served model was asked and answered, in Parquet segments.

The inference server writes, monitoring reads. Layout under a root folder (the
``predictions`` setting, default ``<workspace>/.syllabus/predictions``)::

    <root>/<service>/predictions/seg-<uuid7>.parquet
    <root>/<service>/feedback/seg-<uuid7>.parquet

Each segment is written whole to a hidden temp name in the same folder and renamed, so a
reader never sees a partial file; segment names sort in time order.

The root may instead be an S3 URL, ``s3://bucket/prefix`` (the default when the blobs are
on S3: ``<blobs URL>/predictions``); the same layout is then in keys under that prefix, each
segment uploaded whole in one PUT when it is sealed (a reader sees all of it or nothing).
:func:`open_segments` lists and opens one service's segments wherever they are (S3
segments are read with ranged GETs: only the footer and the column chunks asked for).

Prediction columns: ``request_id`` string, ``row`` int32 (row within the request), ``ts``
timestamp[ms, UTC] (request time), ``model`` string, ``version`` int32, ``variant`` string
(``primary``, ``canary`` or ``shadow``), ``latency_ms`` float64 (whole request), one
``in.<column>`` per input column, ``out.prediction``, ``out.score`` float64 (nullable) and
any more ``out.*`` columns. Feedback columns: ``request_id``, ``row``, ``ts`` and ``label``.

:class:`PredictionLogWriter` is thread-safe: :meth:`~PredictionLogWriter.log` only appends
to a buffer under a lock; a background thread turns the buffer into Arrow columns and writes
a segment when ``flush_rows`` rows are waiting or ``flush_seconds`` have passed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from syllabus._utils.ids import new_id
from syllabus.blobs.s3io import S3Objects, make_client, parse_s3_url
from syllabus.config import Settings
from syllabus.errors import ConfigError, InvalidArgumentError

__all__ = [
    "FEEDBACK",
    "PREDICTIONS",
    "LogRoot",
    "PredictionLogWriter",
    "SegmentFolder",
    "SegmentKind",
    "is_s3",
    "list_segments",
    "log_root",
    "open_segments",
    "predictions_root",
    "read_segments",
    "service_folder",
]

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

SegmentKind = Literal["predictions", "feedback"]
PREDICTIONS: SegmentKind = "predictions"
FEEDBACK: SegmentKind = "feedback"
_PREFIX = "seg-"
_SUFFIX = ".parquet"
_TS = pa.timestamp("ms", tz="UTC")
_VARIANTS = ("primary", "canary", "shadow")


def _check_service(service: str) -> str:
    if (
        not service
        or service in (".", "..")
        or "/" in service
        or "\\" in service
        or "\x00" in service
        or service.startswith(".")
    ):
        raise InvalidArgumentError(
            f"invalid service name {service!r} for a prediction log (a plain folder name)"
        )
    return service


LogRoot = Path | str  # a folder, or an ``s3://bucket/prefix`` URL


def is_s3(root: LogRoot) -> bool:
    """Whether a log root is an S3 URL."""
    return isinstance(root, str) and root.startswith("s3://")


def log_root(path: str) -> LogRoot:
    """A configured log location: an ``s3://`` URL as given, else a folder."""
    if is_s3(path):
        parse_s3_url(path)  # validates
        return path.rstrip("/")
    return Path(path).expanduser()


def predictions_root(settings: Settings) -> LogRoot:
    """The prediction log root: the ``predictions`` setting (a folder or an S3 URL), else
    ``<blobs URL>/predictions`` when the blobs are on S3, else ``<workspace>/predictions``."""
    if settings.predictions:
        return log_root(settings.predictions)
    if settings.blobs and is_s3(settings.blobs):
        return settings.blobs.rstrip("/") + "/predictions"
    if settings.workspace is None:
        raise ConfigError(
            "no workspace for the prediction log; set SYLLABUS_PREDICTIONS to a folder "
            "or run inside a workspace"
        )
    return settings.workspace / "predictions"


def service_folder(root: Path | str, service: str) -> Path:
    """``<root>/<service>``: where one service's segments live."""
    return Path(root) / _check_service(service)


class SegmentFolder:
    """One service's segments, in a local folder (:class:`LocalSegments`) or under an S3
    prefix (:class:`S3Segments`): listed by name, opened for pyarrow, written whole."""

    location: str

    def listing(self, kind: SegmentKind) -> list[tuple[str, float]]:
        """``(name, modified time in seconds)`` of the complete segments, oldest first."""
        raise NotImplementedError

    def names(self, kind: SegmentKind) -> list[str]:
        return [name for name, _ in self.listing(kind)]

    def open(self, kind: SegmentKind, name: str) -> Any:
        """What ``pyarrow.parquet.ParquetFile`` reads: a path or a seekable file."""
        raise NotImplementedError

    def write(self, kind: SegmentKind, table: pa.Table) -> str:
        """Seal ``table`` as a new segment; its name."""
        raise NotImplementedError

    def where(self, kind: SegmentKind, name: str) -> str:
        return f"{self.location}/{kind}/{name}"


def _check_kind(kind: str) -> None:
    if kind not in (PREDICTIONS, FEEDBACK):
        raise InvalidArgumentError(f"kind must be {PREDICTIONS!r} or {FEEDBACK!r}, not {kind!r}")


def _segment_name() -> str:
    return f"{_PREFIX}{new_id()}{_SUFFIX}"


class LocalSegments(SegmentFolder):
    """Segments in ``<root>/<service>/<kind>/``: written to a hidden temp file, synced and
    renamed."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.location = str(folder)

    def listing(self, kind: SegmentKind) -> list[tuple[str, float]]:
        _check_kind(kind)
        try:
            found = [
                (e.name, e.stat().st_mtime)
                for e in os.scandir(self.folder / kind)
                if e.name.startswith(_PREFIX) and e.name.endswith(_SUFFIX) and e.is_file()
            ]
        except FileNotFoundError:
            return []
        return sorted(found)

    def open(self, kind: SegmentKind, name: str) -> Any:
        return str(self.folder / kind / name)

    def write(self, kind: SegmentKind, table: pa.Table) -> str:
        folder = self.folder / kind
        folder.mkdir(parents=True, exist_ok=True)
        name = _segment_name()
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        try:
            pq.write_table(table, tmp, **_parquet_options(table.schema))
            with tmp.open("rb+") as fh:
                os.fsync(fh.fileno())
            tmp.replace(folder / name)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return name


class S3Segments(SegmentFolder):
    """Segments under ``s3://bucket/prefix/<service>/<kind>/``: encoded in memory and
    uploaded in one PUT (atomic); read back with ranged GETs."""

    def __init__(self, objects: S3Objects, service: str) -> None:
        self.objects = objects
        self.rel = service
        self.location = objects.where(objects.key(service))

    def _key(self, kind: SegmentKind, name: str) -> str:
        return self.objects.key(f"{self.rel}/{kind}/{name}")

    def listing(self, kind: SegmentKind) -> list[tuple[str, float]]:
        _check_kind(kind)
        return sorted(
            (rel, mtime)
            for rel, _, mtime in self.objects.list(f"{self.rel}/{kind}/")
            if "/" not in rel and rel.startswith(_PREFIX) and rel.endswith(_SUFFIX)
        )

    def open(self, kind: SegmentKind, name: str) -> Any:
        key = self._key(kind, name)
        size = self.objects.head_size(key)
        if size is None:
            raise InvalidArgumentError(f"no prediction log segment {self.objects.where(key)}")
        return _RangedObject(self.objects, key, size)

    def write(self, kind: SegmentKind, table: pa.Table) -> str:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, **_parquet_options(table.schema))
        name = _segment_name()
        self.objects.put(self._key(kind, name), sink.getvalue().to_pybytes())
        return name


class _RangedObject(io.RawIOBase):
    """A read-only, seekable S3 object: each read is one ranged GET."""

    def __init__(self, objects: S3Objects, key: str, size: int) -> None:
        super().__init__()
        self._objects = objects
        self._key = key
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = min(len(view), self._size - self._pos)
        if n <= 0:
            return 0
        view[:n] = self._objects.get(self._key, (self._pos, self._pos + n))
        self._pos += n
        return n


def open_segments(
    root: LogRoot,
    service: str,
    *,
    s3_client: S3Client | None = None,
    s3_endpoint_url: str | None = None,
) -> SegmentFolder:
    """One service's segments under ``root`` (a folder or an ``s3://`` URL). For S3, pass
    a boto3 client (the blob store's, to share its settings) or an endpoint URL."""
    _check_service(service)
    if isinstance(root, str) and is_s3(root):
        bucket, prefix = parse_s3_url(root)
        client = s3_client if s3_client is not None else make_client(s3_endpoint_url, workers=2)
        return S3Segments(S3Objects(bucket, prefix, client), service)
    return LocalSegments(service_folder(root, service))


def _ts_ms(ts: datetime | float | int | None) -> int:
    if ts is None:
        return time.time_ns() // 1_000_000
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            raise InvalidArgumentError("prediction log times must be timezone-aware")
        return int(ts.timestamp() * 1000)
    return int(float(ts) * 1000)  # seconds since the epoch


class _Batch(NamedTuple):
    """One request's rows, kept as given (references, no copies) until the writer thread
    builds Arrow columns from many requests at once."""

    request_id: str
    ts_ms: int
    model: str
    version: int
    variant: str
    latency_ms: float
    rows: int
    inputs: Mapping[str, Any]  # column -> sequence or array of `rows` values
    outputs: Mapping[str, Any]  # "prediction", "score", ... -> the same


_INPUTS = _Batch._fields.index("inputs")
_OUTPUTS = _Batch._fields.index("outputs")


@dataclass(slots=True)
class _Feedback:
    request_id: str
    ts_ms: int
    rows: list[int]
    labels: list[Any]


def _length(value: Any) -> int:
    try:
        return len(value)
    except TypeError:  # a 0-d array or a scalar
        return 1


def _numbers(arr: np.ndarray[Any, Any]) -> pa.Array:
    """A 1-d numpy array of numbers, booleans or datetimes as an Arrow array, typed from
    its dtype: without a type pyarrow infers one (through pandas: about a millisecond per
    10,000 values), with it the conversion is a copy at most, and none for contiguous
    integers and floats (the Arrow array shares the numpy buffer)."""
    if arr.dtype.kind in "iuf" and arr.dtype.isnative and arr.flags.c_contiguous:
        kind = pa.from_numpy_dtype(arr.dtype)
        return pa.Array.from_buffers(kind, len(arr), [None, pa.py_buffer(arr)])
    return pa.array(arr, type=pa.from_numpy_dtype(arr.dtype))


def _to_arrow(parts: list[Any]) -> pa.Array | pa.ChunkedArray:
    """One column from per-request pieces (arrays or lists), typed by pyarrow."""
    if set(map(type, parts)) == {np.ndarray}:  # the server's case: one concatenation
        try:
            whole = np.concatenate(parts)
        except ValueError:
            whole = None
        if whole is not None and whole.ndim == 1:
            if whole.dtype.kind in "biufM":
                return _numbers(whole)
            if whole.dtype.kind in "OU":
                try:
                    return pa.array(whole.tolist())  # a list: no pandas import
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    pass  # mixed kinds: typed piece by piece below
    chunks: list[pa.Array] = []
    for p in parts:
        if isinstance(p, np.ndarray):
            a = p.reshape(-1) if p.ndim == 0 else p
            chunks.append(pa.array(a.tolist() if a.dtype.kind in "OUS" or a.ndim > 1 else a))
        elif isinstance(p, pa.Array):
            chunks.append(p)
        else:
            chunks.append(pa.array(list(p)))
    if len({c.type for c in chunks}) > 1:
        chunks = _unify(chunks)
    return pa.chunked_array(chunks)


def _unify(chunks: list[pa.Array]) -> list[pa.Array]:
    """Cast pieces of one column to a common type (nulls, ints with floats, ...)."""
    types = [c.type for c in chunks if not pa.types.is_null(c.type)]
    if not types:
        return chunks
    target = types[0]
    for t in types[1:]:
        if t == target:
            continue
        if pa.types.is_integer(t) and pa.types.is_floating(target):
            continue
        if (pa.types.is_floating(t) and pa.types.is_integer(target)) or (
            pa.types.is_integer(t)
            and pa.types.is_integer(target)
            and t.bit_width > target.bit_width
        ):
            target = t
        elif pa.types.is_floating(t) and pa.types.is_floating(target):
            target = pa.float64()
        else:
            target = pa.string()  # mixed kinds: keep every value readable
    out = []
    for c in chunks:
        if c.type == target:
            out.append(c)
        elif pa.types.is_string(target) and not pa.types.is_null(c.type):
            out.append(pa.array([None if v is None else str(v) for v in c.to_pylist()], target))
        else:
            out.append(c.cast(target))
    return out


class PredictionLogWriter:
    """Buffered, thread-safe writer of one service's prediction and feedback segments.

    ``log`` and ``log_feedback`` cost a list append; a background thread writes a segment
    once ``flush_rows`` rows wait or ``flush_seconds`` pass. ``flush`` writes now; ``close``
    flushes and stops the thread (also on ``with`` exit). Write errors are logged and the
    rows are dropped, so a full disk never stops the server answering.
    """

    def __init__(
        self,
        root: LogRoot,
        service: str,
        *,
        flush_rows: int = 10_000,
        flush_seconds: float = 5.0,
        s3_client: S3Client | None = None,
        s3_endpoint_url: str | None = None,
    ) -> None:
        if flush_rows < 1:
            raise InvalidArgumentError(f"flush_rows must be at least 1, not {flush_rows}")
        if flush_seconds <= 0:
            raise InvalidArgumentError(f"flush_seconds must be positive, not {flush_seconds}")
        self.segments = open_segments(
            root, service, s3_client=s3_client, s3_endpoint_url=s3_endpoint_url
        )
        self.service = service
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one segment write at a time, in order
        self._wake = threading.Condition(self._lock)
        self._batches: list[_Batch] = []
        self._feedback: list[_Feedback] = []
        self._pending_rows = 0
        self._closed = False
        self.rows_written = 0
        self.segments_written = 0
        self.errors = 0
        # pyarrow imports pandas on its first numpy conversion (a second of CPU): pay it
        # now, at start-up, rather than in the middle of serving.
        pa.array(np.zeros(1))
        self._thread = threading.Thread(target=self._run, name=f"predlog-{service}", daemon=True)
        self._thread.start()

    # -- writing -----------------------------------------------------------------------

    def log(
        self,
        *,
        request_id: str,
        model: str,
        version: int,
        inputs: Mapping[str, Any],
        outputs: Mapping[str, Any],
        variant: str = "primary",
        latency_ms: float = 0.0,
        ts: datetime | float | None = None,
    ) -> None:
        """Log one request: ``inputs`` (column -> values) and ``outputs`` (``prediction``,
        ``score``, ... -> values), each with one value per row of the request. ``ts`` is the
        request time (a timezone-aware datetime or seconds since the epoch; default now).
        The mappings and arrays are kept by reference until the next flush: do not change
        them after logging."""
        # The request path: checks and one tuple of references, nothing per row (the
        # arrays are not copied: callers hand over values they no longer change).
        if variant not in _VARIANTS:
            raise InvalidArgumentError(f"variant must be one of {', '.join(_VARIANTS)}")
        try:
            lengths = set(map(len, inputs.values()))
            lengths.update(map(len, outputs.values()))
        except TypeError:  # a 0-d array or a scalar counts as one row
            lengths = {_length(v) for v in (*inputs.values(), *outputs.values())}
        if len(lengths) != 1:
            if not lengths:
                raise InvalidArgumentError("a prediction log entry needs inputs or outputs")
            counts = ", ".join(
                [f"in.{k}: {_length(v)}" for k, v in inputs.items()]
                + [f"out.{k}: {_length(v)}" for k, v in outputs.items()]
            )
            raise InvalidArgumentError(f"prediction log columns differ in length ({counts})")
        rows = lengths.pop()
        batch = _Batch(
            request_id,
            _ts_ms(ts),
            model,
            int(version),
            variant,
            float(latency_ms),
            rows,
            inputs,
            outputs,
        )
        with self._lock:
            if self._closed:
                raise InvalidArgumentError("the prediction log is closed")
            self._batches.append(batch)
            self._pending_rows += rows
            if self._pending_rows >= self.flush_rows:
                self._wake.notify()

    def log_feedback(
        self,
        request_id: str,
        labels: Sequence[Any] | Any,
        *,
        rows: Sequence[int] | None = None,
        ts: datetime | float | None = None,
    ) -> None:
        """Record ground truth for the rows of a logged request (all rows from 0 by default)."""
        values = (
            list(labels)
            if isinstance(labels, Sequence | np.ndarray) and not isinstance(labels, str | bytes)
            else [labels]
        )
        row_ids = list(range(len(values))) if rows is None else [int(r) for r in rows]
        if len(row_ids) != len(values):
            raise InvalidArgumentError(f"feedback has {len(values)} labels for {len(row_ids)} rows")
        item = _Feedback(request_id, _ts_ms(ts), row_ids, values)
        with self._lock:
            if self._closed:
                raise InvalidArgumentError("the prediction log is closed")
            self._feedback.append(item)
            self._pending_rows += len(values)
            if self._pending_rows >= self.flush_rows:
                self._wake.notify()

    def flush(self) -> None:
        """Write what is buffered now (a no-op when nothing is)."""
        with self._lock:
            batches, self._batches = self._batches, []
            feedback, self._feedback = self._feedback, []
            self._pending_rows = 0
        self._write(batches, feedback)

    def close(self) -> None:
        """Flush and stop the background thread. Closing twice is harmless."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wake.notify()
        self._thread.join()
        self.flush()

    def __enter__(self) -> PredictionLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- background --------------------------------------------------------------------

    def _run(self) -> None:
        deadline = time.monotonic() + self.flush_seconds
        while True:
            with self._lock:
                while (
                    not self._closed
                    and self._pending_rows < self.flush_rows
                    and time.monotonic() < deadline
                ):
                    self._wake.wait(max(0.0, deadline - time.monotonic()))
                if self._closed:
                    return
            self.flush()
            deadline = time.monotonic() + self.flush_seconds

    def _write(self, batches: list[_Batch], feedback: list[_Feedback]) -> None:
        with self._write_lock:
            if batches:
                self._write_table(PREDICTIONS, lambda: _predictions_table(batches))
            if feedback:
                self._write_table(FEEDBACK, lambda: _feedback_table(feedback))

    def _write_table(self, kind: SegmentKind, build: Any) -> None:
        try:
            table: pa.Table = build()
            self.segments.write(kind, table)
            self.rows_written += table.num_rows
            self.segments_written += 1
        except Exception:  # the server keeps answering when its log cannot be written
            self.errors += 1
            log.exception("prediction log %s/%s: could not write a segment", self.service, kind)


# Parquet options chosen for what writing costs the server (the segment's encoding is
# most of the log's CPU): snappy, cheap to encode and read everywhere; dictionary pages
# only for the text columns that repeat per request (request ids, models, variants), which
# the table already holds dictionary-encoded, so the writer copies the dictionary instead
# of hashing every value (request ids stay plain strings when every request has one row:
# all distinct, a dictionary would only cost); statistics only for the columns a reader
# filters on; no Arrow schema in the footer, so those columns read back as plain strings.
_DICTIONARY = ("request_id", "model", "variant")
_STATISTICS = ("request_id", "row", "ts", "model", "version", "variant")


def _parquet_options(schema: pa.Schema) -> dict[str, Any]:
    return {
        "compression": "snappy",
        "use_dictionary": [
            n
            for n in _DICTIONARY
            if n in schema.names and pa.types.is_dictionary(schema.field(n).type)
        ],
        "write_statistics": [n for n in _STATISTICS if n in schema.names],
        "store_schema": False,
    }


def _per_row(values: list[str], which: pa.Array) -> pa.DictionaryArray:
    """One text value per request as a column with one value per row: the distinct values
    once, and each row's index into them (no string is copied per row)."""
    encoded = pc.dictionary_encode(pa.array(values, pa.string()))
    return pa.DictionaryArray.from_arrays(encoded.indices.take(which), encoded.dictionary)


def _predictions_table(batches: list[_Batch]) -> pa.Table:
    n_rows = [b.rows for b in batches]
    total = sum(n_rows)

    def repeat(values: Iterable[Any], dtype: Any) -> np.ndarray[Any, Any]:
        return np.repeat(np.fromiter(values, dtype=dtype, count=len(batches)), n_rows)

    # Text columns: one value per request, dictionary-encoded (no object arrays: pyarrow
    # would import pandas to read them, seconds of one server's first flush).
    which = _numbers(np.repeat(np.arange(len(batches), dtype=np.int32), n_rows))
    starts = np.repeat(np.cumsum([0, *n_rows[:-1]]), n_rows)
    arrays: dict[str, Any] = {
        # one row per request (all distinct): plain strings, cheaper than a dictionary
        "request_id": pa.array([b.request_id for b in batches], pa.string())
        if total == len(batches)
        else _per_row([b.request_id for b in batches], which),
        "row": _numbers((np.arange(total) - starts).astype(np.int32)),
        "ts": _numbers(repeat((b.ts_ms for b in batches), np.int64)).view(_TS),
        "model": _per_row([b.model for b in batches], which),
        "version": _numbers(repeat((b.version for b in batches), np.int32)),
        "variant": _per_row([b.variant for b in batches], which),
        "latency_ms": _numbers(repeat((b.latency_ms for b in batches), np.float64)),
    }
    logged: dict[str, Any] = {}
    for side, prefix in ((_INPUTS, "in."), (_OUTPUTS, "out.")):
        maps: list[Mapping[str, Any]] = list(map(itemgetter(side), batches))
        # Requests to one model share their columns: one set of names for most flushes.
        shapes = set(map(tuple, maps))
        uniform = len(shapes) == 1
        for name in sorted({n for shape in shapes for n in shape}):
            if uniform:  # the usual case: one C-level pass per column
                parts = list(map(itemgetter(name), maps))
            else:
                parts = [
                    m[name] if name in m else pa.nulls(b.rows)
                    for m, b in zip(maps, batches, strict=True)
                ]
            col = _to_arrow(parts)
            if prefix + name == "out.score" and not pa.types.is_floating(col.type):
                col = col.cast(pa.float64())
            logged[prefix + name] = col
    for name in sorted(logged, key=lambda n: (not n.startswith("in."), n != "out.prediction", n)):
        arrays[name] = logged[name]
    return pa.table(arrays)


def _feedback_table(items: list[_Feedback]) -> pa.Table:
    counts = [len(f.rows) for f in items]
    ids = pa.array([f.request_id for f in items], pa.string()).take(
        _numbers(np.repeat(np.arange(len(items)), counts))
    )
    ts = np.repeat(np.fromiter((f.ts_ms for f in items), np.int64, len(items)), counts)
    labels = _to_arrow(
        [[v.item() if isinstance(v, np.generic) else v for v in f.labels] for f in items]
    )
    return pa.table(
        {
            "request_id": ids,
            "row": pa.array([r for f in items for r in f.rows], pa.int32()),
            "ts": _numbers(ts).view(_TS),
            "label": labels.combine_chunks() if isinstance(labels, pa.ChunkedArray) else labels,
        }
    )


# -- reading -------------------------------------------------------------------------------


def list_segments(root: Path | str, service: str, kind: SegmentKind = PREDICTIONS) -> list[Path]:
    """Complete segments of one kind in a local log, oldest first (temp files of a write in
    progress are never listed)."""
    folder = LocalSegments(service_folder(root, service))
    return [folder.folder / kind / n for n in folder.names(kind)]


def read_segments(paths: Sequence[Path | str], columns: Sequence[str] | None = None) -> pa.Table:
    """The rows of the given segments as one table (columns missing from older segments are
    null; ``columns`` limits what is read)."""
    tables = []
    for path in paths:
        schema = pq.read_schema(path)
        wanted = None if columns is None else [c for c in columns if c in schema.names]
        tables.append(pq.read_table(path, columns=wanted))
    if not tables:
        return pa.table({c: pa.array([], pa.null()) for c in columns or ()})
    table = pa.concat_tables(tables, promote_options="permissive")
    if columns is not None:
        for c in columns:
            if c not in table.column_names:
                table = table.append_column(c, pa.nulls(table.num_rows))
        table = table.select(list(columns))
    return table
