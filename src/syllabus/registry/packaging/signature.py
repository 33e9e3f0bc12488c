"""Model signatures: what a model takes and returns, inferred from an input example.

A signature has ``inputs`` and optionally ``outputs``, each a :class:`Schema` that is
either named columns (a pandas DataFrame, a dict of columns or a list of records) or one
tensor (a numpy array). Types use numpy names: ``bool``, ``int32``, ``int64``,
``float32``, ``float64``, ``string``, ``datetime64``. The batch (first) dimension of a
tensor is ``-1``.

:func:`enforce` checks an input against a schema and converts it to the shape the model
was given when it was logged; errors name the column and the expected type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from syllabus.errors import InvalidArgumentError

__all__ = [
    "ColSpec",
    "Columns",
    "InputKind",
    "Schema",
    "Signature",
    "TensorSpec",
    "enforce",
    "infer_schema",
    "infer_signature",
    "to_columns",
]

InputKind = Literal["dataframe", "columns", "records", "ndarray"]
_TYPES = ("bool", "int32", "int64", "float32", "float64", "string", "datetime64")
_INT = ("int32", "int64")
_FLOAT = ("float32", "float64")


@dataclass(frozen=True, slots=True)
class ColSpec:
    """One named input column and its type."""

    name: str
    type: str


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One tensor: element type and shape (``-1`` where any size goes)."""

    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Schema:
    """Named columns or one tensor, and the form (``kind``) the model was given."""

    kind: InputKind
    columns: tuple[ColSpec, ...] = ()
    tensor: TensorSpec | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.tensor is not None:
            return {
                "kind": self.kind,
                "tensor": {"dtype": self.tensor.dtype, "shape": list(self.tensor.shape)},
            }
        return {
            "kind": self.kind,
            "columns": [{"name": c.name, "type": c.type} for c in self.columns],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        kind = data.get("kind")
        if kind not in ("dataframe", "columns", "records", "ndarray"):
            raise InvalidArgumentError(f"signature: unknown input kind {kind!r}")
        if "tensor" in data:
            t = data["tensor"]
            return cls(kind, tensor=TensorSpec(str(t["dtype"]), tuple(int(n) for n in t["shape"])))
        cols = tuple(ColSpec(str(c["name"]), str(c["type"])) for c in data.get("columns", ()))
        return cls(kind, columns=cols)

    def describe(self) -> str:
        """``age: float64, city: string`` or ``float32[-1, 4]``."""
        if self.tensor is not None:
            return f"{self.tensor.dtype}[{', '.join(str(n) for n in self.tensor.shape)}]"
        return ", ".join(f"{c.name}: {c.type}" for c in self.columns)


@dataclass(frozen=True, slots=True)
class Signature:
    """Inputs and (when known) outputs of a model."""

    inputs: Schema
    outputs: Schema | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs.to_dict(),
            "outputs": None if self.outputs is None else self.outputs.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        outputs = data.get("outputs")
        return cls(Schema.from_dict(data["inputs"]), Schema.from_dict(outputs) if outputs else None)


# -- columns -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Columns:
    """Named columns as numpy arrays of equal length, in order, and the form they came in."""

    kind: InputKind
    data: dict[str, np.ndarray[Any, Any]]

    @property
    def rows(self) -> int:
        return len(next(iter(self.data.values()))) if self.data else 0

    def to_frame(self) -> Any:
        """A pandas DataFrame (pandas must be installed)."""
        import pandas as pd

        return pd.DataFrame(dict(self.data))

    def to_matrix(self) -> np.ndarray[Any, Any]:
        """A 2-D array, one column per name (object dtype when types differ)."""
        arrays = list(self.data.values())
        if not arrays:
            return np.empty((0, 0))
        kinds = {a.dtype.kind for a in arrays}
        if kinds <= {"i", "u", "f", "b"}:
            return np.column_stack([a.astype(np.float64) for a in arrays])
        return np.column_stack([a.astype(object) for a in arrays])

    def to_original(self) -> Any:
        """The same form as the input example: DataFrame, dict of lists, or records."""
        if self.kind == "dataframe":
            return self.to_frame()
        if self.kind == "records":
            names = list(self.data)
            return [{n: _scalar(self.data[n][i]) for n in names} for i in range(self.rows)]
        return dict(self.data)


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _is_frame(data: Any) -> bool:
    return type(data).__name__ == "DataFrame" and hasattr(data, "columns")


def to_columns(data: Any) -> Columns | None:
    """``data`` as named columns, or None when it is a tensor (array, list of lists)."""
    if _is_frame(data):
        return Columns("dataframe", {str(c): np.asarray(data[c].to_numpy()) for c in data.columns})
    if isinstance(data, Mapping):
        cols: dict[str, np.ndarray[Any, Any]] = {}
        for key, value in data.items():
            arr = np.asarray(value)
            cols[str(key)] = arr.reshape(1) if arr.ndim == 0 else arr
        lengths = {len(a) for a in cols.values()}
        if len(lengths) > 1:
            raise InvalidArgumentError(
                f"input columns have different lengths ({', '.join(map(str, sorted(lengths)))})"
            )
        return Columns("columns", cols)
    if (
        isinstance(data, Sequence)
        and not isinstance(data, str | bytes)
        and data
        and all(isinstance(r, Mapping) for r in data)
    ):
        names: dict[str, None] = {}
        for record in data:
            names.update(dict.fromkeys(str(k) for k in record))
        values = {n: [r.get(n) for r in data] for n in names}
        return Columns("records", {n: _array(v) for n, v in values.items()})
    return None


def _array(values: list[Any]) -> np.ndarray[Any, Any]:
    if any(isinstance(v, str) for v in values):
        return np.asarray(values, dtype=object)
    return np.asarray(values)


def _type_of(arr: np.ndarray[Any, Any]) -> str:
    kind = arr.dtype.kind
    if kind == "b":
        return "bool"
    if kind in "iu":
        return "int32" if arr.dtype.itemsize <= 4 else "int64"
    if kind == "f":
        return "float32" if arr.dtype.itemsize <= 4 else "float64"
    if kind == "M":
        return "datetime64"
    if kind in "USO":
        sample = [v for v in arr[:1000] if v is not None]
        if all(isinstance(v, str) for v in sample):
            return "string"
        if sample and all(isinstance(v, bool) for v in sample):
            return "bool"
        if sample and all(isinstance(v, int | float) for v in sample):
            return "float64"
    raise InvalidArgumentError(
        f"cannot infer a type for values of dtype {arr.dtype} (expected numbers, booleans, "
        "strings or datetimes)"
    )


def infer_schema(data: Any) -> Schema:
    """The schema of an example: columns for frames, dicts and records, else a tensor."""
    cols = to_columns(data)
    if cols is not None:
        specs = []
        for name, arr in cols.data.items():
            try:
                specs.append(ColSpec(name, _type_of(arr)))
            except InvalidArgumentError as exc:
                raise InvalidArgumentError(f"column {name!r}: {exc}") from None
        return Schema(cols.kind, columns=tuple(specs))
    arr = np.asarray(data)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    shape = (-1, *arr.shape[1:])
    return Schema("ndarray", tensor=TensorSpec(_type_of(arr), shape))


def infer_signature(example: Any, output: Any = None) -> Signature:
    """A signature from an input example and, when given, an output example."""
    return Signature(infer_schema(example), None if output is None else infer_schema(output))


# -- enforcement ---------------------------------------------------------------------------


def _cast(name: str, arr: np.ndarray[Any, Any], expected: str) -> np.ndarray[Any, Any]:
    """``arr`` as the ``expected`` type, or InvalidArgumentError naming the column."""
    where = f"column {name!r}" if name else "input"
    try:
        got = _type_of(arr)
    except InvalidArgumentError:
        got = str(arr.dtype)
    if got == expected:
        return arr
    if expected in _FLOAT and got in (*_INT, *_FLOAT, "bool"):
        return arr.astype(expected)
    if expected in _INT and got in _INT:
        return arr.astype(expected)
    if expected in _INT and got in _FLOAT:
        if np.all(np.isfinite(arr)) and np.all(np.mod(arr, 1) == 0):
            return arr.astype(expected)
        raise InvalidArgumentError(
            f"{where} expects {expected}, got {got} values with fractions; round or cast them"
        )
    if expected == "datetime64" and got == "string":
        try:
            return arr.astype("datetime64[ns]")
        except ValueError:
            pass
    raise InvalidArgumentError(f"{where} expects {expected}, got {got}")


def enforce(schema: Schema, data: Any) -> Columns | np.ndarray[Any, Any]:
    """Check ``data`` against ``schema``; returns checked columns or a checked array.

    Columns the schema does not name are dropped; missing ones and wrong types raise
    InvalidArgumentError naming the column and the expected type.
    """
    if schema.tensor is not None:
        return _enforce_tensor(schema.tensor, data)
    cols = to_columns(data)
    if cols is None:
        arr = np.asarray(data)
        if arr.ndim == 2 and arr.shape[1] == len(schema.columns):
            cols = Columns(schema.kind, {c.name: arr[:, i] for i, c in enumerate(schema.columns)})
        else:
            expected = ", ".join(f"{c.name}: {c.type}" for c in schema.columns)
            raise InvalidArgumentError(
                f"model expects named columns ({expected}), got {type(data).__name__}"
            )
    out: dict[str, np.ndarray[Any, Any]] = {}
    for spec in schema.columns:
        if spec.name not in cols.data:
            raise InvalidArgumentError(
                f"input is missing column {spec.name!r} (expected {spec.type})"
            )
        out[spec.name] = _cast(spec.name, cols.data[spec.name], spec.type)
    return Columns(schema.kind, out)


def _enforce_tensor(spec: TensorSpec, data: Any) -> np.ndarray[Any, Any]:
    if to_columns(data) is not None and not isinstance(data, np.ndarray):
        cols = to_columns(data)
        assert cols is not None
        data = cols.to_matrix()
    arr = np.asarray(data)
    if arr.ndim != len(spec.shape):
        raise InvalidArgumentError(
            f"input expects {len(spec.shape)} dimensions {list(spec.shape)}, got shape "
            f"{list(arr.shape)}"
        )
    for axis, (want, got) in enumerate(zip(spec.shape, arr.shape, strict=True)):
        if want not in (-1, got):
            raise InvalidArgumentError(
                f"input dimension {axis} expects size {want}, got {got} (shape {list(arr.shape)})"
            )
    return _cast("", arr, spec.dtype)
