"""Paging searches over every experiment: keyset tokens for newest-first orders, offset
tokens for the rest, and the index that keeps the runs table from sorting every run."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from syllabus.errors import InvalidArgumentError
from syllabus.tracking import search
from syllabus.tracking.sql import SqlTrackingStore

NEWEST = ["start_time desc"]


def _fill(store: SqlTrackingStore) -> list[str]:
    """Nine runs in two experiments, three sharing each start time: ids newest first."""
    exps = [store.create_experiment(f"e{n}").id for n in range(2)]
    made = []
    for i in range(9):
        run = store.create_run(
            exps[i % 2],
            run_id=uuid.uuid4().hex,
            name=f"r{i}",
            user="u",
            host="h",
            start_time=1_000 + (i // 3) * 10,
        )
        made.append((run.start_time, run.id))
    return [rid for _, rid in sorted(made, reverse=True)]


def _all_pages(store: SqlTrackingStore, size: int, **kw: Any) -> list[str]:
    got: list[str] = []
    token = None
    while True:
        page = store.search_runs(None, max_results=size, page_token=token, **kw)
        got += [r.id for r in page.runs]
        token = page.next_page_token
        if token is None:
            return got


@pytest.mark.parametrize("size", [1, 2, 3, 4, 8, 9, 10])
def test_newest_first_pages_cover_every_run_once_in_order(
    store: SqlTrackingStore, size: int
) -> None:
    newest = _fill(store)
    assert _all_pages(store, size, order_by=NEWEST) == newest
    assert _all_pages(store, size) == newest  # the default order is the same
    names = _all_pages(store, size, order_by=["name desc"])
    assert [store.get_run(r).name for r in names] == [f"r{i}" for i in reversed(range(9))]
    names = _all_pages(store, size, order_by=["name"])  # ascending: offset tokens
    assert [store.get_run(r).name for r in names] == [f"r{i}" for i in range(9)]


def test_a_keyset_page_neither_skips_nor_repeats_when_runs_go_away(
    store: SqlTrackingStore,
) -> None:
    newest = _fill(store)
    first = store.search_runs(None, order_by=NEWEST, max_results=3)
    assert [r.id for r in first.runs] == newest[:3]
    store.update_run(newest[0], deleted=True)  # an offset would now skip newest[3]
    second = store.search_runs(
        None, order_by=NEWEST, max_results=3, page_token=first.next_page_token
    )
    assert [r.id for r in second.runs] == newest[3:6]


def test_offset_tokens_still_work(store: SqlTrackingStore) -> None:
    newest = _fill(store)
    token = search.encode_page_token(4, [[], None, NEWEST, None, "active"])
    page = store.search_runs(None, order_by=NEWEST, max_results=2, page_token=token)
    assert [r.id for r in page.runs] == newest[4:6]
    assert search.decode_page_token(page.next_page_token, [[], None, NEWEST, None, "active"]) == 6


@pytest.mark.parametrize(
    "after",
    [["x", "y"], [1000], [1000, 5], [True, "a"], "1000", [[1], "a"], {"a": 1}],
)
def test_a_forged_keyset_token_is_a_clear_error(store: SqlTrackingStore, after: Any) -> None:
    _fill(store)
    query = [[], None, NEWEST, None, "active"]
    token = search.encode_page_token(3, query, None)
    doc = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    forged = json.loads(doc) | {"k": after}
    raw = json.dumps(forged).encode("ascii")
    bad = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    with pytest.raises(InvalidArgumentError, match="invalid page token"):
        store.search_runs(None, order_by=NEWEST, max_results=3, page_token=bad)


@pytest.mark.parametrize(
    "filter", [None, "params.model = 'gbm'", "status = 'running' and name like 'r%'"]
)
def test_newest_first_over_every_experiment_reads_an_index_not_a_sort(
    store: SqlTrackingStore, filter: str | None
) -> None:
    if store.engine.dialect.name != "sqlite":
        pytest.skip("the plan checked is SQLite's (PostgreSQL's depends on statistics)")
    _fill(store)
    seen: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        if "ORDER BY" in statement:
            seen.append((statement, parameters))

    sa.event.listen(store.engine, "before_cursor_execute", capture)
    try:
        store.search_runs(None, filter=filter, order_by=NEWEST, max_results=3)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", capture)
    assert len(seen) == 1
    with store.engine.connect() as conn:
        plan = [r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + seen[0][0], seen[0][1])]
    assert any("ix_runs_start_time_id" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan
