"""PostgreSQL arrays of numbers in binary form, packed with :mod:`struct` for the metric
batch statement and the fields of a binary ``COPY`` of metric chunks (see
:mod:`syllabus.tracking.sql`).

psycopg adapts a Python list element by element (about 6 ms of CPU for the three columns
of a 1,000-point batch); packing the binary array format in one ``struct`` call costs a
few hundredths of that. The packed bytes travel as parameters typed ``bigint[]`` or
``float8[]`` through the two dumpers :func:`register` adds to a connection.

The binary format: dimensions, a has-nulls flag, the element type, then per dimension
its length and lower bound (1), then per element its byte length (-1: NULL) and its
big-endian value.
"""

from __future__ import annotations

import math
import struct
from collections.abc import MutableMapping, Sequence
from functools import cache, lru_cache
from typing import Any, Final

__all__ = ["Float8s", "Int8s", "float8s", "int8s", "register"]

_INT8: Final = 20
_FLOAT8: Final = 701
_INT8_ARRAY: Final = 1016
_FLOAT8_ARRAY: Final = 1022
_HEAD: Final = struct.Struct(">iiiii")
_EMPTY: Final = struct.Struct(">iii")
_NULL: Final = struct.pack(">i", -1)
_FLOAT: Final = struct.Struct(">id").pack
_REGISTERED: Final = "syllabus_pg_arrays"


class Int8s(bytes):
    """A ``bigint[]`` in PostgreSQL's binary format."""

    __slots__ = ()


class Float8s(bytes):
    """A ``float8[]`` in PostgreSQL's binary format."""

    __slots__ = ()


@lru_cache(maxsize=32)
def _body(code: str, n: int) -> struct.Struct:
    return struct.Struct(">" + ("i" + code) * n)


def _pack(code: str, oid: int, values: Sequence[Any]) -> bytes:
    n = len(values)
    if not n:
        return _EMPTY.pack(0, 0, oid)
    flat: list[Any] = [8] * (2 * n)
    flat[1::2] = values
    return _HEAD.pack(1, 0, oid, n, 1) + _body(code, n).pack(*flat)


def int8s(values: Sequence[int]) -> Int8s:
    """``values`` as a ``bigint[]``; ``struct.error`` for an integer past 64 bits."""
    return Int8s(_pack("q", _INT8, values))


def float8s(values: Sequence[float]) -> Float8s:
    """``values`` as a ``float8[]`` in which NaN is NULL (as Syllabus stores it)."""
    if not any(map(math.isnan, values)):
        return Float8s(_pack("d", _FLOAT8, values))
    parts = [_HEAD.pack(1, 1, _FLOAT8, len(values), 1)]
    parts += [_NULL if math.isnan(v) else _FLOAT(8, v) for v in values]
    return Float8s(b"".join(parts))


@cache
def _dumpers() -> tuple[type[Any], type[Any]]:
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    class _Int8sDumper(Dumper):
        format = Format.BINARY
        oid = _INT8_ARRAY

        def dump(self, obj: Any) -> bytes:
            return bytes(obj)

    class _Float8sDumper(_Int8sDumper):
        oid = _FLOAT8_ARRAY

    return _Int8sDumper, _Float8sDumper


def register(info: MutableMapping[Any, Any], driver: Any) -> None:
    """Let the psycopg connection ``driver`` send :class:`Int8s` and :class:`Float8s`
    (once per connection: ``info`` is its pool record's dictionary)."""
    if info.get(_REGISTERED):
        return
    int8s_dumper, float8s_dumper = _dumpers()
    driver.adapters.register_dumper(Int8s, int8s_dumper)
    driver.adapters.register_dumper(Float8s, float8s_dumper)
    info[_REGISTERED] = True
