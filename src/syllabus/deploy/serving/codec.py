"""Request and response bodies of the inference server, checked against a model signature.

Inputs arrive as Open Inference Protocol v2 tensors, JSON records, JSON columns or CSV;
each becomes :class:`Batch`: typed numpy columns named after the signature (or one array
for a tensor signature). Every refusal is a :class:`RequestError` naming the field, which
the server turns into RFC 9457 problem JSON with status 400.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from syllabus.registry.packaging.signature import Schema, TensorSpec

__all__ = [
    "DATATYPES",
    "Batch",
    "RequestError",
    "datatype_of",
    "decode_csv",
    "decode_json_payload",
    "decode_v2",
    "schema_metadata",
    "to_json_values",
]

MAX_ROWS: Final = 1_000_000

DATATYPES: Final[dict[str, str]] = {
    "BOOL": "bool",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}
_SIG_TO_V2: Final = {
    "bool": "BOOL",
    "int32": "INT32",
    "int64": "INT64",
    "float32": "FP32",
    "float64": "FP64",
    "string": "BYTES",
    "datetime64": "BYTES",
}


class RequestError(Exception):
    """A request the signature refuses; ``field`` names the part at fault."""

    def __init__(self, detail: str, *, field: str | None = None, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.status = status


@dataclass(frozen=True, slots=True)
class Batch:
    """A checked request: ``columns`` (signature order) or ``tensor``, and its row count."""

    rows: int
    columns: dict[str, np.ndarray[Any, Any]] | None = None
    tensor: np.ndarray[Any, Any] | None = None


# -- values ----------------------------------------------------------------------------------


def _kind_name(arr: np.ndarray[Any, Any]) -> str:
    kind = arr.dtype.kind
    return {
        "b": "booleans",
        "i": "integers",
        "u": "integers",
        "f": "numbers",
        "U": "strings",
        "S": "strings",
    }.get(kind, "mixed values")


def _flat_types(values: list[Any]) -> set[type]:
    kinds = set(map(type, values))
    if list in kinds:
        flat: list[Any] = []
        stack = [values]
        while stack:
            for v in stack.pop():
                (stack.append(v) if isinstance(v, list) else flat.append(v))
        kinds = set(map(type, flat))
    return kinds


def _check_json_values(field: str, values: list[Any], label: str | None = None) -> None:
    """Refuse lists numpy would silently coerce: booleans or text mixed with numbers,
    objects."""
    kinds = _flat_types(values)
    if kinds <= _NUMBERS or kinds == {bool} or kinds <= _TEXT:
        return
    names = ", ".join(sorted(k.__name__ for k in kinds))
    what = f"is {label} but has" if label else "has mixed values:"
    raise RequestError(f"{field} {what} {names}", field=field)


_NUMBERS: Final = frozenset((int, float, type(None)))
_TEXT: Final = frozenset((str, type(None)))


def _coerce(  # noqa: PLR0912 - one branch per signature type
    field: str, values: Any, expected: str
) -> np.ndarray[Any, Any]:
    """``values`` (a list or an array) as the signature type ``expected``, else RequestError."""
    if isinstance(values, np.ndarray):
        arr = values
    else:
        if isinstance(values, list):
            _check_json_values(field, values)
        try:
            arr = np.asarray(values)
        except (ValueError, TypeError):
            raise RequestError(f"{field} has values of uneven shape", field=field) from None
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 0 or (arr.ndim == 2 and arr.shape[1] == 1) else arr
        if arr.ndim != 1:
            raise RequestError(f"{field} must be a flat list of values", field=field)
    kind = arr.dtype.kind
    if kind == "O":
        arr = _from_objects(field, arr, expected)
        kind = arr.dtype.kind
    if expected in ("float64", "float32"):
        if kind in "iuf":
            return arr.astype(expected, copy=False)
    elif expected in ("int64", "int32"):
        if kind in "iu":
            if arr.size and expected == "int32":
                info = np.iinfo(np.int32)
                if arr.min() < info.min or arr.max() > info.max:
                    raise RequestError(f"{field} has values outside int32", field=field)
            return arr.astype(expected, copy=False)
        if kind == "f":
            if np.all(np.isfinite(arr)) and np.all(np.mod(arr, 1) == 0):
                return arr.astype(expected)
            raise RequestError(
                f"{field} expects {expected}, got numbers with fractions", field=field
            )
    elif expected == "bool":
        if kind == "b":
            return arr
    elif expected == "string":
        if kind in "US":
            return arr.astype(object)
        if kind == "O":
            return arr  # strings (and nulls), checked by _from_objects
    elif expected == "datetime64" and kind in "USM":
        try:
            return arr.astype("datetime64[ns]")
        except ValueError:
            raise RequestError(
                f"{field} has values that are not dates or times", field=field
            ) from None
    raise RequestError(f"{field} expects {expected}, got {_kind_name(arr)}", field=field)


def _from_objects(field: str, arr: np.ndarray[Any, Any], expected: str) -> np.ndarray[Any, Any]:
    """An object array (nulls, mixed types, nested lists) narrowed to one type."""
    values = arr.tolist()
    if expected in ("float64", "float32"):
        if all(
            v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values
        ):
            return np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    elif expected == "string":
        if all(isinstance(v, str) for v in values):
            return arr
        if all(v is None or isinstance(v, str) for v in values):
            return arr  # nulls in a text column stay nulls
    elif expected == "datetime64" and all(isinstance(v, str) for v in values):
        return np.array(values, dtype=str)
    elif expected in ("int64", "int32") and any(v is None for v in values):
        raise RequestError(f"{field} has nulls but expects {expected}", field=field)
    kinds = sorted({type(v).__name__ for v in values})
    raise RequestError(f"{field} expects {expected}, got {', '.join(kinds)} values", field=field)


def _check_rows(rows: int) -> int:
    if rows > MAX_ROWS:
        raise RequestError(f"at most {MAX_ROWS} rows per request, got {rows}", status=413)
    return rows


# -- JSON bodies (/predict) --------------------------------------------------------------------


def decode_json_payload(  # noqa: PLR0912 - one branch per accepted form
    schema: Schema | None, doc: Any
) -> Batch:
    """A ``/predict`` JSON body: records (a list of objects, or one object of scalars),
    columns (``{"col": [...]}``), a list of rows for tensors, or the same inside
    ``inputs`` / ``instances`` / ``dataframe_records`` / ``dataframe_split``."""
    if isinstance(doc, dict):
        for key in ("inputs", "instances", "dataframe_records"):
            if key in doc:
                return decode_json_payload(schema, doc[key])
        if "dataframe_split" in doc:
            split = doc["dataframe_split"]
            if not isinstance(split, dict) or not isinstance(split.get("data"), list):
                raise RequestError(
                    "dataframe_split needs 'columns' and 'data' lists", field="dataframe_split"
                )
            names = split.get("columns")
            if not isinstance(names, list):
                return decode_json_payload(schema, split["data"])
            rows = split["data"]
            if any(not isinstance(r, list) or len(r) != len(names) for r in rows):
                raise RequestError(
                    f"every row of dataframe_split.data must have {len(names)} values",
                    field="dataframe_split.data",
                )
            cols = {str(n): [r[i] for r in rows] for i, n in enumerate(names)}
            return _columns(schema, cols, len(rows))
    if schema is None:
        raise RequestError("the model has no signature; send OIP v2 tensors or rows")
    if schema.tensor is not None:
        if isinstance(doc, dict):
            raise RequestError("the model takes a tensor: send a list of rows", field="inputs")
        return _tensor(schema.tensor, "inputs", doc, None)
    if isinstance(doc, list):
        if not doc:
            raise RequestError("the request has no rows", field="inputs")
        kinds = set(map(type, doc))  # JSON gives dicts and lists: no ABC checks per row
        if kinds == {dict}:
            return _records(schema, doc)
        if kinds == {list}:
            width = len(schema.columns)
            if any(len(r) != width for r in doc):
                raise RequestError(
                    f"every row must have {width} values ({schema.describe()})", field="inputs"
                )
            cols = {c.name: [r[i] for r in doc] for i, c in enumerate(schema.columns)}
            return _columns(schema, cols, len(doc))
        raise RequestError(
            "expected a list of records (objects) or of rows (lists)", field="inputs"
        )
    if isinstance(doc, dict):
        if not doc:
            raise RequestError("the request has no columns", field="inputs")
        values = list(doc.values())
        if all(isinstance(v, list) for v in values):
            lengths = {len(v) for v in values}
            if len(lengths) > 1:
                raise RequestError(
                    "columns have different lengths "
                    f"({', '.join(str(n) for n in sorted(lengths))})",
                    field="inputs",
                )
            return _columns(schema, doc, lengths.pop())
        if not any(isinstance(v, list | dict) for v in values):
            return _records(schema, [doc])  # one record
        raise RequestError("expected columns (lists of values) or one record", field="inputs")
    raise RequestError(
        "expected JSON records, columns or rows, not a " + type(doc).__name__, field="inputs"
    )


def _records(schema: Schema, records: Sequence[Mapping[str, Any]]) -> Batch:
    rows = _check_rows(len(records))
    cols: dict[str, np.ndarray[Any, Any]] = {}
    for spec in schema.columns:
        name = spec.name
        try:
            values = [r[name] for r in records]
        except KeyError:
            at = next(i for i, r in enumerate(records) if name not in r)
            raise RequestError(
                f"record {at} is missing column {name!r} (expected {spec.type})", field=name
            ) from None
        cols[name] = _coerce(name, values, spec.type)
    return Batch(rows, columns=cols)


def _columns(schema: Schema | None, doc: Mapping[str, Any], rows: int) -> Batch:
    if schema is None or schema.tensor is not None:
        raise RequestError("the model takes a tensor, not named columns", field="inputs")
    _check_rows(rows)
    cols: dict[str, np.ndarray[Any, Any]] = {}
    for spec in schema.columns:
        if spec.name not in doc:
            raise RequestError(
                f"input is missing column {spec.name!r} (expected {spec.type})", field=spec.name
            )
        cols[spec.name] = _coerce(spec.name, doc[spec.name], spec.type)
        if len(cols[spec.name]) != rows:
            raise RequestError(
                f"column {spec.name!r} has {len(cols[spec.name])} values, expected {rows}",
                field=spec.name,
            )
    if rows == 0:
        raise RequestError("the request has no rows", field="inputs")
    return Batch(rows, columns=cols)


def _tensor(spec: TensorSpec, field: str, data: Any, shape: Sequence[int] | None) -> Batch:
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError):
        raise RequestError(f"{field} has values of uneven shape", field=field) from None
    if arr.dtype.kind == "O":
        raise RequestError(f"{field} has values of uneven shape or mixed types", field=field)
    if shape is not None:
        arr = arr.reshape(shape)
    if arr.ndim != len(spec.shape):
        raise RequestError(
            f"{field} expects {len(spec.shape)} dimensions {list(spec.shape)}, got shape "
            f"{list(arr.shape)}",
            field=field,
        )
    for axis, (want, got) in enumerate(zip(spec.shape, arr.shape, strict=True)):
        if want not in (-1, got):
            raise RequestError(
                f"{field} dimension {axis} expects size {want}, got {got}", field=field
            )
    if arr.shape[0] == 0:
        raise RequestError("the request has no rows", field=field)
    _check_rows(arr.shape[0])
    flat = _coerce(field, arr.reshape(-1), spec.dtype)
    return Batch(arr.shape[0], tensor=flat.reshape(arr.shape))


# -- CSV ---------------------------------------------------------------------------------------

_TRUE = frozenset(("true", "1", "yes", "t", "y"))
_FALSE = frozenset(("false", "0", "no", "f", "n"))


def decode_csv(schema: Schema | None, body: bytes) -> Batch:
    """A CSV body with a header row naming the columns (extra columns are ignored)."""
    if schema is None or schema.tensor is not None:
        raise RequestError("CSV needs a model with named input columns", field="body")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RequestError("the CSV body is not UTF-8 text", field="body") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
        rows = [r for r in reader if r]
    except csv.Error as exc:
        raise RequestError(f"malformed CSV: {exc}", field="body") from None
    except StopIteration:
        raise RequestError("the CSV body is empty", field="body") from None
    if not rows:
        raise RequestError("the CSV body has a header but no rows", field="body")
    _check_rows(len(rows))
    index = {name.strip(): i for i, name in enumerate(header)}
    cols: dict[str, np.ndarray[Any, Any]] = {}
    for spec in schema.columns:
        i = index.get(spec.name)
        if i is None:
            raise RequestError(
                f"CSV header is missing column {spec.name!r} (expected {spec.type})",
                field=spec.name,
            )
        try:
            raw = [r[i] for r in rows]
        except IndexError:
            at = next(n for n, r in enumerate(rows) if len(r) <= i)
            raise RequestError(
                f"CSV row {at + 1} has no value for {spec.name!r}", field=spec.name
            ) from None
        cols[spec.name] = _csv_column(spec.name, raw, spec.type)
    return Batch(len(rows), columns=cols)


def _csv_column(name: str, raw: list[str], expected: str) -> np.ndarray[Any, Any]:
    try:
        if expected in ("float64", "float32"):
            return np.array([v if v.strip() else "nan" for v in raw], dtype=expected)
        if expected in ("int64", "int32"):
            return np.array([int(v) for v in raw], dtype=expected)
    except (ValueError, OverflowError):
        raise RequestError(
            f"{name} expects {expected}, got text that is not one", field=name
        ) from None
    if expected == "bool":
        out = []
        for v in raw:
            low = v.strip().lower()
            if low not in _TRUE and low not in _FALSE:
                raise RequestError(f"{name} expects bool, got {v!r}", field=name)
            out.append(low in _TRUE)
        return np.array(out, dtype=bool)
    return _coerce(name, np.array(raw, dtype=object).astype(str), expected)


# -- Open Inference Protocol v2 ------------------------------------------------------------------


def _v2_tensor(  # noqa: PLR0912 - one check per field of a tensor
    item: Any, at: int
) -> tuple[str, list[int], np.ndarray[Any, Any]]:
    if not isinstance(item, dict):
        raise RequestError(f"inputs[{at}] must be an object", field=f"inputs[{at}]")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise RequestError(f"inputs[{at}] needs a name", field=f"inputs[{at}].name")
    datatype = item.get("datatype")
    if datatype not in DATATYPES:
        raise RequestError(
            f"input {name!r} has datatype {datatype!r}; expected one of {', '.join(DATATYPES)}",
            field=f"{name}.datatype",
        )
    shape = item.get("shape")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
    ):
        raise RequestError(f"input {name!r} needs a shape (a list of sizes)", field=f"{name}.shape")
    data = item.get("data")
    if not isinstance(data, list):
        raise RequestError(f"input {name!r} needs data (a list)", field=f"{name}.data")
    _check_json_values(name, data, datatype)
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError):
        raise RequestError(f"input {name!r} has data of uneven shape", field=name) from None
    arr = arr.reshape(-1) if arr.ndim != 1 else arr
    size = math.prod(shape)
    if arr.size != size:
        raise RequestError(
            f"input {name!r} has {arr.size} values for shape {shape} ({size} expected)",
            field=name,
        )
    kind = arr.dtype.kind
    want = DATATYPES[datatype]
    if size:
        if datatype == "BOOL":
            ok = kind == "b"
        elif datatype == "BYTES":
            ok = kind == "U" or (kind == "O" and all(isinstance(v, str) for v in arr.tolist()))
        elif datatype.startswith(("INT", "UINT")):
            ok = kind in "iu"
            if ok:
                info = np.iinfo(want)
                ok = bool(arr.min() >= info.min and arr.max() <= info.max)
                if not ok:
                    raise RequestError(f"input {name!r} has values outside {datatype}", field=name)
        else:
            ok = kind in "iuf"
        if not ok:
            raise RequestError(
                f"input {name!r} is {datatype} but has {_kind_name(arr)}", field=name
            )
        arr = arr.astype(want, copy=False) if datatype != "BYTES" else arr.astype(object)
    return name, shape, arr.reshape(shape)


def _v2_to_signature(name: str, arr: np.ndarray[Any, Any], expected: str) -> np.ndarray[Any, Any]:
    kind = arr.dtype.kind
    if expected == "string" and kind != "O":
        raise RequestError(f"{name} expects string (BYTES), got {arr.dtype}", field=name)
    if expected == "bool" and kind != "b":
        raise RequestError(f"{name} expects bool (BOOL), got {arr.dtype}", field=name)
    if expected in ("int32", "int64", "float32", "float64") and kind not in "iuf":
        raise RequestError(f"{name} expects {expected}, got {arr.dtype}", field=name)
    if expected == "float64" and kind == "f" and arr.dtype.itemsize < 8:
        return arr.astype(np.float64)
    return _coerce(name, arr, expected)


def decode_v2(schema: Schema | None, doc: Any) -> Batch:
    """An OIP v2 inference request: one tensor per signature column (shape ``[n]`` or
    ``[n, 1]``), one ``[n, k]`` tensor for ``k`` columns in signature order, or the tensor
    of a tensor signature."""
    if not isinstance(doc, dict):
        raise RequestError("an inference request is a JSON object", field="body")
    items = doc.get("inputs")
    if not isinstance(items, list) or not items:
        raise RequestError("an inference request needs a list of inputs", field="inputs")
    tensors = [_v2_tensor(item, i) for i, item in enumerate(items)]
    if schema is None:
        raise RequestError("the model has no signature to map inputs to", field="inputs")
    if schema.tensor is not None:
        name, shape, arr = tensors[0]
        return _tensor(schema.tensor, name, arr, shape)
    by_name = {name: (shape, arr) for name, shape, arr in tensors}
    if len(tensors) == 1 and tensors[0][0] not in {c.name for c in schema.columns}:
        name, shape, arr = tensors[0]
        width = len(schema.columns)
        if len(shape) == 2 and shape[1] == width:
            cols = {
                c.name: _v2_to_signature(c.name, arr[:, i], c.type)
                for i, c in enumerate(schema.columns)
            }
            if not shape[0]:
                raise RequestError("the request has no rows", field=name)
            return Batch(_check_rows(shape[0]), columns=cols)
    cols = {}
    rows = -1
    for spec in schema.columns:
        found = by_name.get(spec.name)
        if found is None:
            raise RequestError(
                f"inputs are missing {spec.name!r} ({_SIG_TO_V2.get(spec.type, spec.type)}; "
                f"the model takes {schema.describe()})",
                field=spec.name,
            )
        shape, arr = found
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise RequestError(
                f"input {spec.name!r} must have shape [n] or [n, 1], got {shape}", field=spec.name
            )
        if rows not in (-1, shape[0]):
            raise RequestError(
                f"input {spec.name!r} has {shape[0]} rows, others have {rows}", field=spec.name
            )
        rows = shape[0]
        cols[spec.name] = _v2_to_signature(spec.name, arr.reshape(-1), spec.type)
    if rows <= 0:
        raise RequestError("the request has no rows", field="inputs")
    return Batch(_check_rows(rows), columns=cols)


# -- responses -----------------------------------------------------------------------------------


def datatype_of(arr: np.ndarray[Any, Any]) -> str:
    """The OIP v2 datatype of an output array."""
    kind = arr.dtype.kind
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return f"{'UINT' if kind == 'u' else 'INT'}{arr.dtype.itemsize * 8}"
    if kind == "f":
        return f"FP{arr.dtype.itemsize * 8}"
    return "BYTES"


def to_json_values(arr: np.ndarray[Any, Any]) -> list[Any]:
    """An output array as JSON-able values (NaN and infinities become null)."""
    kind = arr.dtype.kind
    if kind in "biu":
        return arr.tolist()  # type: ignore[no-any-return]
    if kind == "f":
        if arr.size and not np.isfinite(arr).all():
            out = arr.astype(object)
            out[~np.isfinite(arr)] = None
            return out.tolist()  # type: ignore[no-any-return]
        return arr.tolist()  # type: ignore[no-any-return]
    return [
        v if v is None or isinstance(v, str | int | float | bool) else str(v) for v in arr.tolist()
    ]


def schema_metadata(schema: Schema | None) -> list[dict[str, Any]]:
    """The OIP v2 ``inputs``/``outputs`` metadata of a signature schema."""
    if schema is None:
        return []
    if schema.tensor is not None:
        dtype = schema.tensor.dtype
        return [
            {
                "name": "input",
                "datatype": _SIG_TO_V2.get(dtype, "BYTES"),
                "shape": list(schema.tensor.shape),
            }
        ]
    return [
        {"name": c.name, "datatype": _SIG_TO_V2.get(c.type, "BYTES"), "shape": [-1]}
        for c in schema.columns
    ]
