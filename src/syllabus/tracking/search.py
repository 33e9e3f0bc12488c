"""The run filter language, parsed here and compiled to parametrized SQLAlchemy expressions.

::

    filter     := or_expr
    or_expr    := and_expr ( "or" and_expr )*
    and_expr   := not_expr ( "and" not_expr )*
    not_expr   := "not" not_expr | "(" or_expr ")" | predicate
    predicate  := field op value
                | field [ "not" ] "in" "(" value ( "," value )* ")"
                | field [ "not" ] ( "like" | "ilike" ) string
                | field "is" [ "not" ] "null"
    field      := ( "metrics" | "params" | "tags" ) "." key | [ "attributes" "." ] attribute
    key        := [A-Za-z0-9_.\\-/]+  |  `any text`  (backquotes; `` doubles one)
    attribute  := id | name | status | user | host | start_time | end_time
                | parent_id | experiment_id
    op         := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    value      := number | 'string' | "string"     ('' or \\' inside a string is a quote)

Keywords are case-insensitive. Metrics compare as numbers against each run's latest value;
params and tags compare as text; ``start_time``/``end_time`` take Unix milliseconds or an
ISO 8601 date (``'2025-01-31'``, ``'2025-01-31T12:00:00Z'``). ``status = 'crashed'`` finds
running runs whose heartbeat is stale. ``like`` is case-sensitive and ``ilike`` is not, on
every backend. Values are always bound parameters, never spliced into SQL; a syntax error
names the character where it happened.

``order_by`` items are ``field [asc|desc]``; runs missing the field sort last.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeAlias

import sqlalchemy as sa

from syllabus.errors import InvalidArgumentError
from syllabus.meta.tables.tracking import experiments, latest_metrics, params, runs, tags

__all__ = [
    "ATTRIBUTES",
    "Field",
    "Node",
    "OrderItem",
    "compile_filter",
    "compile_order",
    "decode_page_cursor",
    "decode_page_token",
    "encode_page_token",
    "keyset_columns",
    "metric_keys_of",
    "metrics_required",
    "metrics_valued",
    "parse_filter",
    "parse_order_by",
]

ATTRIBUTES: Final = (
    "id",
    "name",
    "status",
    "user",
    "host",
    "start_time",
    "end_time",
    "parent_id",
    "experiment_id",
)
_PREFIXES: Final = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "tags": "tags",
    "tag": "tags",
    "attributes": "attr",
    "attribute": "attr",
    "attr": "attr",
    "run": "attr",
}
_KEYWORDS: Final = {"and", "or", "not", "in", "like", "ilike", "is", "null", "asc", "desc"}
_OPS: Final = ("==", "!=", "<>", "<=", ">=", "=", "<", ">")
_MAX_FILTER: Final = 10_000

Kind = Literal["metrics", "params", "tags", "attr"]


# --- tokens -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # "word", "field", "str", "num", "op", "(", ")", ",", "end"
    text: str
    pos: int
    value: Any = None


def _error(source: str, pos: int, why: str) -> InvalidArgumentError:
    pos = max(0, min(pos, len(source)))
    marked = source[:pos] + ">>" + source[pos : pos + 1] + "<<" + source[pos + 1 :]
    if len(marked) > 120:
        marked = "..." + marked[max(0, pos - 50) : pos + 55] + "..."
    return InvalidArgumentError(f"invalid filter: {why} at character {pos + 1}: {marked}")


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYCHARS = re.compile(r"[A-Za-z0-9_.\-/]+")


def _read_quoted(source: str, i: int, quote: str, what: str) -> tuple[str, int]:
    """Read a quoted text starting at ``source[i] == quote``; returns (text, next index)."""
    out: list[str] = []
    j = i + 1
    while j < len(source):
        ch = source[j]
        if ch == "\\" and quote != "`" and j + 1 < len(source):
            out.append(source[j + 1])
            j += 2
            continue
        if ch == quote:
            if j + 1 < len(source) and source[j + 1] == quote:
                out.append(quote)
                j += 2
                continue
            return "".join(out), j + 1
        out.append(ch)
        j += 1
    raise _error(source, i, f"unterminated {what}")


def _tokenize(source: str) -> list[_Tok]:  # noqa: PLR0912, PLR0915 - one branch per token kind
    toks: list[_Tok] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "(),":
            toks.append(_Tok(ch, ch, i))
            i += 1
            continue
        if ch in "'\"":
            text, j = _read_quoted(source, i, ch, "string")
            toks.append(_Tok("str", source[i:j], i, text))
            i = j
            continue
        op = next((o for o in _OPS if source.startswith(o, i)), None)
        if op is not None:
            toks.append(_Tok("op", op, i))
            i += len(op)
            continue
        if ch.isdigit() or (ch in "-+." and _NUMBER.match(source, i)):
            m = _NUMBER.match(source, i)
            assert m is not None
            toks.append(_Tok("num", m.group(), i, float(m.group())))
            i = m.end()
            continue
        if ch == "`":
            raise _error(source, i, "a quoted key needs a prefix: metrics., params. or tags.")
        m = _WORD.match(source, i)
        if m is None:
            raise _error(source, i, f"unexpected {ch!r}")
        word, j = m.group(), m.end()
        prefix = _PREFIXES.get(word.lower())
        if prefix is not None and j < n and source[j] == ".":
            j += 1
            if j < n and source[j] == "`":
                key, j = _read_quoted(source, j, "`", "quoted key")
            else:
                km = _KEYCHARS.match(source, j)
                if km is None:
                    raise _error(source, j, f"expected a key after '{word}.'")
                key, j = km.group(), km.end()
            if not key:
                raise _error(source, m.start(), "empty key")
            toks.append(_Tok("field", source[i:j], i, (prefix, key)))
            i = j
            continue
        toks.append(_Tok("word", word, i, word.lower()))
        i = j
    toks.append(_Tok("end", "", n))
    return toks


# --- syntax tree --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    """A metric, param, tag or run attribute named in a filter or an order."""

    kind: Kind
    key: str


@dataclass(frozen=True, slots=True)
class Compare:
    field: Field
    op: str  # = != < <= > >= like ilike
    value: str | float
    pos: int


@dataclass(frozen=True, slots=True)
class In:
    field: Field
    values: tuple[str | float, ...]
    negate: bool
    pos: int


@dataclass(frozen=True, slots=True)
class IsNull:
    field: Field
    negate: bool
    pos: int


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: Literal["and", "or"]
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node: TypeAlias = Compare | In | IsNull | BoolOp | Not


@dataclass(frozen=True, slots=True)
class OrderItem:
    field: Field
    descending: bool


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.toks = _tokenize(source)
        self.i = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def is_word(self, *words: str) -> bool:
        return self.tok.kind == "word" and self.tok.value in words

    def fail(self, why: str, tok: _Tok | None = None) -> InvalidArgumentError:
        tok = tok or self.tok
        return _error(self.source, tok.pos, why)

    def expect_end(self) -> None:
        if self.tok.kind != "end":
            raise self.fail(f"unexpected {self.tok.text!r} (expected 'and', 'or' or the end)")

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.is_word("or"):
            self.take()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def and_expr(self) -> Node:
        items = [self.not_expr()]
        while self.is_word("and"):
            self.take()
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def not_expr(self) -> Node:
        if self.is_word("not"):
            self.take()
            return Not(self.not_expr())
        if self.tok.kind == "(":
            self.take()
            inner = self.or_expr()
            if self.tok.kind != ")":
                raise self.fail("expected ')'")
            self.take()
            return inner
        return self.predicate()

    def field(self) -> Field:
        tok = self.tok
        if tok.kind == "field":
            self.take()
            kind, key = tok.value
            if kind == "attr":
                return self._attribute(key.lower(), tok)
            return Field(kind, key)
        if tok.kind == "word" and tok.value not in _KEYWORDS:
            self.take()
            return self._attribute(tok.value, tok)
        if tok.kind == "end":
            raise self.fail("unexpected end of filter (expected a field such as metrics.acc)")
        raise self.fail(
            f"unexpected {tok.text!r} (expected a field such as metrics.acc, params.lr, "
            "tags.team or status)"
        )

    def _attribute(self, name: str, tok: _Tok) -> Field:
        if name not in ATTRIBUTES:
            raise self.fail(
                f"unknown attribute {name!r} (known: {', '.join(ATTRIBUTES)}; use "
                "metrics., params. or tags. for logged values)",
                tok,
            )
        return Field("attr", name)

    def value(self) -> str | float:
        tok = self.tok
        if tok.kind in ("str", "num"):
            self.take()
            return tok.value  # type: ignore[no-any-return]
        if tok.kind == "end":
            raise self.fail("unexpected end of filter (expected a value)")
        if tok.kind == "word":
            raise self.fail(f"expected a value, found {tok.text!r} (quote strings: 'text')")
        raise self.fail(f"expected a value, found {tok.text!r}")

    def predicate(self) -> Node:  # noqa: PLR0912 - one branch per predicate form
        start = self.tok
        field = self.field()
        tok = self.tok
        if tok.kind == "op":
            self.take()
            op = {"==": "=", "<>": "!="}.get(tok.text, tok.text)
            return Compare(field, op, self.value(), start.pos)
        negate = False
        if self.is_word("not"):
            self.take()
            negate = True
        if self.is_word("in"):
            self.take()
            if self.tok.kind != "(":
                raise self.fail("expected '(' after 'in'")
            self.take()
            values = [self.value()]
            while self.tok.kind == ",":
                self.take()
                values.append(self.value())
            if self.tok.kind != ")":
                raise self.fail("expected ',' or ')' in the list")
            self.take()
            return In(field, tuple(values), negate, start.pos)
        if self.is_word("like", "ilike"):
            op = self.take().value
            pattern = self.tok
            if pattern.kind != "str":
                raise self.fail(f"'{op}' needs a quoted pattern such as 'rf%'")
            self.take()
            node: Node = Compare(field, op, pattern.value, start.pos)
            return Not(node) if negate else node
        if negate:
            raise self.fail("expected 'in', 'like' or 'ilike' after 'not'")
        if self.is_word("is"):
            self.take()
            neg = False
            if self.is_word("not"):
                self.take()
                neg = True
            if not self.is_word("null"):
                raise self.fail("expected 'null'")
            self.take()
            return IsNull(field, neg, start.pos)
        if tok.kind == "end":
            raise self.fail("unexpected end of filter (expected an operator such as = or >)")
        raise self.fail(f"unexpected {tok.text!r} (expected an operator such as =, >, in, like)")


def parse_filter(source: str | None) -> Node | None:
    """The syntax tree of a filter (None for an empty one); InvalidArgumentError on errors."""
    if source is None or not source.strip():
        return None
    if len(source) > _MAX_FILTER:
        raise InvalidArgumentError(f"filter is longer than {_MAX_FILTER} characters")
    parser = _Parser(source)
    node = parser.or_expr()
    parser.expect_end()
    _check(node, source)
    return node


def parse_order_by(items: Iterable[str] | None) -> list[OrderItem]:
    """``["metrics.acc desc", "start_time"]`` as order items."""
    out = []
    for text in items or ():
        parser = _Parser(text)
        field = parser.field()
        descending = False
        if parser.is_word("asc", "desc"):
            descending = parser.take().value == "desc"
        if parser.tok.kind != "end":
            raise InvalidArgumentError(
                f"invalid order_by {text!r}: expected a field and an optional asc or desc "
                f"(unexpected {parser.tok.text!r} at character {parser.tok.pos + 1})"
            )
        out.append(OrderItem(field, descending))
    return out


_STRING_ATTRS: Final = {"name", "status", "user", "host", "id", "parent_id", "experiment_id"}
_TIME_ATTRS: Final = {"start_time", "end_time"}


def _check(node: Node, source: str) -> None:  # noqa: PLR0912 - one branch per rule
    """Type checks the grammar cannot express (numbers for metrics, statuses ...)."""
    if isinstance(node, BoolOp):
        for item in node.items:
            _check(item, source)
        return
    if isinstance(node, Not):
        _check(node.item, source)
        return
    field = node.field
    values: tuple[str | float, ...] = ()
    if isinstance(node, Compare):
        values = (node.value,)
        if field.kind == "metrics" and node.op in ("like", "ilike"):
            raise _error(source, node.pos, f"metrics compare as numbers; '{node.op}' needs text")
        if field.kind in ("params", "tags") and node.op in ("<", "<=", ">", ">="):
            raise _error(
                source,
                node.pos,
                f"{field.kind} are text: use =, !=, in or like (log numbers as metrics to "
                "compare them)",
            )
        if field.kind == "attr" and field.key in _TIME_ATTRS and node.op in ("like", "ilike"):
            raise _error(source, node.pos, f"{field.key} is a time; '{node.op}' needs text")
    elif isinstance(node, In):
        values = node.values
    if field.kind == "metrics":
        for v in values:
            if isinstance(v, str):
                raise _error(source, node.pos, f"metrics.{field.key} compares with numbers")
    if field.kind == "attr" and field.key in _TIME_ATTRS:
        for v in values:
            _to_ms(v, source, node.pos)
    if field.kind == "attr" and field.key == "status":
        from syllabus.tracking.models import RunStatus

        for v in values:
            if str(v).lower() not in {s.value for s in RunStatus}:
                raise _error(
                    source,
                    node.pos,
                    f"unknown status {v!r} (one of {', '.join(s.value for s in RunStatus)})",
                )
    if (
        isinstance(node, IsNull)
        and field.kind == "attr"
        and field.key
        not in (
            "end_time",
            "parent_id",
        )
    ):
        raise _error(source, node.pos, f"{field.key} is never null")


def _to_ms(value: str | float, source: str, pos: int) -> int:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _error(source, pos, "times must be finite")
        return int(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _error(
            source, pos, f"{value!r} is not a time (Unix ms or ISO 8601 like '2025-01-31')"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def metric_keys_of(node: Node | None, order: Sequence[OrderItem] = ()) -> set[str]:
    """Every metric key a filter and an order mention (to resolve their ids in one query)."""
    out = {o.field.key for o in order if o.field.kind == "metrics"}
    stack: list[Node] = [node] if node is not None else []
    while stack:
        item = stack.pop()
        if isinstance(item, BoolOp):
            stack.extend(item.items)
        elif isinstance(item, Not):
            stack.append(item.item)
        elif item.field.kind == "metrics":
            out.add(item.field.key)
    return out


def metrics_required(node: Node | None) -> set[str]:
    """Metric keys that every run matching ``node`` has a latest value of (ordering by one
    of them can then join its values instead of outer-joining them, which lets the database
    walk the value index in order and stop at the page's end)."""
    if isinstance(node, BoolOp):
        parts = [metrics_required(item) for item in node.items]
        if node.op == "and":
            return set().union(*parts)
        return set.intersection(*parts)
    if node is None or isinstance(node, Not) or node.field.kind != "metrics":
        return set()
    if isinstance(node, Compare) or node.negate == isinstance(node, IsNull):
        return {node.field.key}  # a comparison, `in (...)` or `is not null`
    return set()


def metrics_valued(node: Node | None) -> set[str]:
    """Metric keys whose latest value is a number (not NaN) in every run matching ``node``:
    the keys of comparisons and ``in (...)`` that every match passes (NaN is stored as
    NULL, which no comparison matches). A page ordered by one of them has no runs without
    a value to read after the valued ones."""
    if isinstance(node, BoolOp):
        parts = [metrics_valued(item) for item in node.items]
        if node.op == "and":
            return set().union(*parts)
        return set.intersection(*parts)
    if node is None or isinstance(node, Not | IsNull) or node.field.kind != "metrics":
        return set()
    if isinstance(node, Compare) or not node.negate:
        return {node.field.key}
    return set()


# --- compilation --------------------------------------------------------------------------

Expr: TypeAlias = sa.ColumnElement[bool]


@dataclass(frozen=True, slots=True)
class _Context:
    key_ids: dict[str, int]
    dialect: str
    stale_before: int  # heartbeats older than this (Unix ms) mean crashed


def _like(column: Any, pattern: str, op: str, dialect: str) -> Expr:
    if op == "ilike":
        return sa.func.lower(column).like(pattern.lower(), escape="\\")
    if dialect == "sqlite":  # SQLite's LIKE ignores ASCII case; GLOB does not
        return column.op("GLOB")(_like_to_glob(pattern))  # type: ignore[no-any-return]
    return column.like(pattern, escape="\\")  # type: ignore[no-any-return]


def _like_to_glob(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append(f"[{nxt}]" if nxt in "*?[" else nxt)
            i += 2
            continue
        out.append({"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}.get(ch, ch))
        i += 1
    return "".join(out)


def _cmp(column: Any, op: str, value: Any) -> Expr:
    if op == "=":
        return column == value  # type: ignore[no-any-return]
    if op == "!=":
        return column != value  # type: ignore[no-any-return]
    if op == "<":
        return column < value  # type: ignore[no-any-return]
    if op == "<=":
        return column <= value  # type: ignore[no-any-return]
    if op == ">":
        return column > value  # type: ignore[no-any-return]
    assert op == ">="
    return column >= value  # type: ignore[no-any-return]


def _text(value: str | float) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return value


def _kv_exists(table: sa.Table, key: str, cond: Callable[[Any], Expr] | None) -> Expr:
    where = [table.c.run_pk == runs.c.pk, table.c.key == key]
    if cond is not None:
        where.append(cond(table.c.value))
    return sa.exists().where(*where)


def _metric_exists(key_id: int | None, cond: Callable[[Any], Expr] | None) -> Expr:
    if key_id is None:
        return sa.false()
    lm = latest_metrics
    where = [lm.c.run_pk == runs.c.pk, lm.c.key_id == key_id]
    if cond is not None:
        where.append(cond(lm.c.value))
    return sa.exists().where(*where)


def _run_pk_of(run_id: str) -> Any:
    parent = runs.alias("parent_run")
    return sa.select(parent.c.pk).where(parent.c.id == run_id).scalar_subquery()


def _status(value: str, ctx: _Context) -> Expr:
    value = value.lower()
    if value == "crashed":
        return sa.and_(runs.c.status == "running", runs.c.heartbeat_at < ctx.stale_before)
    if value == "running":
        return sa.and_(runs.c.status == "running", runs.c.heartbeat_at >= ctx.stale_before)
    return runs.c.status == value


def _attr(node: Compare | In | IsNull, ctx: _Context) -> Expr:
    key = node.field.key
    if isinstance(node, IsNull):
        column = runs.c.end_time if key == "end_time" else runs.c.parent_pk
        return column.is_not(None) if node.negate else column.is_(None)
    if isinstance(node, In):
        return sa.or_(*(_attr(Compare(node.field, "=", v, node.pos), ctx) for v in node.values))
    op, value = node.op, node.value
    if key in _TIME_ATTRS:
        column = runs.c.start_time if key == "start_time" else runs.c.end_time
        return _cmp(column, op, _to_ms(value, "", node.pos))
    text = _text(value)
    if key == "status":
        expr = _status(text, ctx)
        if op == "=":
            return expr
        if op == "!=":
            return sa.not_(expr)
    simple = {"name": runs.c.name, "user": runs.c.user_name, "host": runs.c.host, "id": runs.c.id}
    if key in simple:
        column = simple[key]
        if op in ("like", "ilike"):
            return _like(column, text, op, ctx.dialect)
        return _cmp(column, op, text)
    if key == "parent_id" and op in ("=", "!="):
        return _cmp(runs.c.parent_pk, op, _run_pk_of(text))
    if key == "experiment_id" and op in ("=", "!="):
        sub = sa.select(experiments.c.pk).where(experiments.c.id == text).scalar_subquery()
        return _cmp(runs.c.experiment_pk, op, sub)
    raise InvalidArgumentError(f"invalid filter: {key} does not support '{op}'")


def _compile(node: Node, ctx: _Context) -> Expr:
    if isinstance(node, BoolOp):
        parts = [_compile(item, ctx) for item in node.items]
        return sa.and_(*parts) if node.op == "and" else sa.or_(*parts)
    if isinstance(node, Not):
        return sa.not_(_compile(node.item, ctx))
    field = node.field
    if field.kind == "attr":
        return _attr(node, ctx)
    if isinstance(node, IsNull):
        if field.kind == "metrics":
            found = _metric_exists(ctx.key_ids.get(field.key), None)
        else:
            found = _kv_exists(params if field.kind == "params" else tags, field.key, None)
        return found if node.negate else sa.not_(found)
    if isinstance(node, In):
        if field.kind == "metrics":
            values = [float(v) for v in node.values]
            found = _metric_exists(ctx.key_ids.get(field.key), lambda c: c.in_(values))
        else:
            texts = [_text(v) for v in node.values]
            table = params if field.kind == "params" else tags
            found = _kv_exists(table, field.key, lambda c: c.in_(texts))
        return sa.not_(found) if node.negate else found
    op, value = node.op, node.value
    if field.kind == "metrics":
        number = float(value)
        return _metric_exists(ctx.key_ids.get(field.key), lambda c: _cmp(c, op, number))
    table = params if field.kind == "params" else tags
    text = _text(value)
    if op in ("like", "ilike"):
        return _kv_exists(table, field.key, lambda c: _like(c, text, op, ctx.dialect))
    return _kv_exists(table, field.key, lambda c: _cmp(c, op, text))


def compile_filter(
    node: Node | None, *, key_ids: dict[str, int], dialect: str, stale_before: int
) -> Expr:
    """A WHERE clause over ``runs`` for ``node`` (``true`` when there is no filter).

    ``key_ids`` maps the metric keys the filter names to their ids (absent keys match
    nothing); ``stale_before`` is the heartbeat time before which a running run counts as
    crashed.
    """
    if node is None:
        return sa.true()
    return _compile(node, _Context(key_ids, dialect, stale_before))


def compile_order(
    order: Sequence[OrderItem], *, key_ids: dict[str, int], required: Collection[str] = ()
) -> tuple[list[tuple[Any, Expr, bool]], list[Any]]:
    """Joins to add (``(table, on, outer)``) and ORDER BY clauses for ``order`` (missing
    values sort last). Metrics in ``required`` (see :func:`metrics_required`) are joined,
    the rest outer-joined.

    Ties are broken by start time and id, newest first, so pages are stable.
    """
    joins: list[tuple[Any, Expr, bool]] = []
    clauses: list[Any] = []
    ordered: list[Any] = []  # the run columns already ordered by
    for n, item in enumerate(order):
        field = item.field
        column: Any
        if field.kind == "metrics":
            alias = latest_metrics.alias(f"order_m{n}")
            key_id = key_ids.get(field.key, -1)
            on = sa.and_(alias.c.run_pk == runs.c.pk, alias.c.key_id == key_id)
            joins.append((alias, on, field.key not in required))
            column = alias.c.value
        elif field.kind in ("params", "tags"):
            table = params if field.kind == "params" else tags
            alias = table.alias(f"order_{field.kind}{n}")
            on = sa.and_(alias.c.run_pk == runs.c.pk, alias.c.key == field.key)
            joins.append((alias, on, True))
            column = alias.c.value
        else:
            column = {
                "id": runs.c.id,
                "name": runs.c.name,
                "status": runs.c.status,
                "user": runs.c.user_name,
                "host": runs.c.host,
                "start_time": runs.c.start_time,
                "end_time": runs.c.end_time,
                "parent_id": runs.c.parent_pk,
                "experiment_id": runs.c.experiment_pk,
            }[field.key]
        if any(column is seen for seen in ordered):
            continue  # ordered by it already: a second clause could never break a tie
        ordered.append(column)
        clause = column.desc() if item.descending else column.asc()
        # NULLS LAST only where a NULL can be: on PostgreSQL it makes `DESC` differ from
        # an index's backward order, so `start_time desc` would sort every run.
        never_null = field.kind == "attr" and not column.nullable
        clauses.append(clause if never_null else clause.nulls_last())
    for column in (runs.c.start_time, runs.c.id):
        if not any(column is seen for seen in ordered):
            clauses.append(column.desc())
    return joins, clauses


# --- page tokens --------------------------------------------------------------------------


def _fingerprint(query: object) -> str:
    raw = json.dumps(query, sort_keys=True, default=str).encode("utf-8")
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


def encode_page_token(offset: int, query: object, after: Sequence[str | int] | None = None) -> str:
    """An opaque token for the page starting at ``offset`` of the search ``query``;
    ``after`` is the previous page's last row's :func:`keyset_columns` values, when the
    order has them (the next page then starts right after that row instead of skipping
    ``offset`` rows)."""
    doc: dict[str, Any] = {"o": offset, "q": _fingerprint(query)}
    if after is not None:
        doc["k"] = list(after)
    raw = json.dumps(doc, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode("ascii")).decode("ascii").rstrip("=")


def decode_page_cursor(token: str | None, query: object) -> tuple[int, list[str | int] | None]:
    """The offset and the ``after`` values (None without) a token stands for;
    InvalidArgumentError if it is malformed or belongs to another search."""
    if not token:
        return 0, None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        offset = int(data["o"])
        fingerprint = str(data["q"])
        after = data.get("k")
    except (ValueError, KeyError, TypeError, UnicodeError, AttributeError):
        raise InvalidArgumentError(f"invalid page token {token[:40]!r}") from None
    if after is not None and (
        not isinstance(after, list)
        or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in after)
    ):
        raise InvalidArgumentError(f"invalid page token {token[:40]!r}")
    if offset < 0 or fingerprint != _fingerprint(query):
        raise InvalidArgumentError(
            "page token belongs to a different search (same filter, order and experiments "
            "are needed)"
        )
    return offset, after


def decode_page_token(token: str | None, query: object) -> int:
    """The offset a token stands for; InvalidArgumentError if it is malformed or belongs to
    another search."""
    return decode_page_cursor(token, query)[0]


# Run columns a keyset page can start after: never NULL, and read back with every run.
_KEYSET: Final = {
    "start_time": "start_time",
    "id": "id",
    "name": "name",
    "status": "status",
    "user": "user_name",
    "host": "host",
}


def keyset_columns(order: Sequence[OrderItem]) -> list[str] | None:
    """The ``runs`` columns of an order that keyset pagination can follow (the order
    items, then the start time and id tie-breakers), or None when it cannot: every item
    must be a never-null run attribute ordered descending like the tie-breakers, so that
    ``(columns) < (last row's values)`` is exactly "after the last row" and walks an
    index."""
    names: list[str] = []
    for item in order:
        column = _KEYSET.get(item.field.key) if item.field.kind == "attr" else None
        if column is None or not item.descending:
            return None
        if column not in names:
            names.append(column)
    for column in ("start_time", "id"):
        if column not in names:
            names.append(column)
    return names
