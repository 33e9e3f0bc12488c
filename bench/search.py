"""Run search benchmark: ``search_runs`` over 100,000 runs, with and without an experiment.

Workload: the web UI benchmark's (``bench/ui.py``): N finished runs (default 100,000) in
one experiment, each with 5 params and 5 metrics, filled through the client. Timed in
process, straight through ``Client.search_runs`` (no HTTP, no rendering), as the runs page
asks:

* newest first, 50 rows, over all runs and within the experiment;
* a filter (``metrics.acc > 0.5 and params.model = 'gbm'``), an order by a metric
  (``metrics.acc desc``), both, over all runs and within the experiment;
* the next page (by the first page's token) and the page half-way through the runs (as
  pressing "next" N/100 times would reach it), over all runs.

``--pg URL`` also copies the workspace's rows into a scratch database on that PostgreSQL
server (created at the current schema, dropped afterwards) and times the same searches
there. Each search runs once untimed, then ``--reps`` times; the table shows the median,
min and max.

Peer: MLflow's ``search_runs`` is compared on the same workload at 10,000 runs and fewer
in ``bench/tracking.py`` (filling MLflow with 100,000 runs takes ~30 min here at ~61
runs/s), so this benchmark reports absolute times only.

Run: ``.venv/bin/python bench/search.py`` (``--runs N``; ``--workspace DIR`` reuses a
filled workspace, made with ``--keep``).
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

try:  # run as a script (bench/ on sys.path) or as `python -m bench.search`
    from _common import git_describe, span, write_json
    from ui import fill
except ImportError:  # pragma: no cover
    from bench._common import git_describe, span, write_json
    from bench.ui import fill

BENCH_DIR = Path(__file__).resolve().parent
FILTER = "metrics.acc > 0.5 and params.model = 'gbm'"
NEWEST = ["start_time desc"]  # the runs table's order
console = Console(stderr=True)


def cases(store: Any, exp_id: str, runs: int) -> list[tuple[str, Callable[[], Any]]]:
    """The searches to time, each a callable on a tracking store."""
    from syllabus.tracking.search import encode_page_token

    def search(exps: list[str] | None, **kw: Any) -> Callable[[], Any]:
        kw.setdefault("order_by", NEWEST)
        kw.setdefault("max_results", 50)
        return lambda: store.search_runs(exps, **kw)

    first = store.search_runs(None, order_by=NEWEST, max_results=50)
    half = runs // 2
    deep = encode_page_token(half, [[], None, NEWEST, None, "active"])
    out: list[tuple[str, Callable[[], Any]]] = []
    for label, exps in (("all runs", None), ("in experiment", [exp_id])):
        out += [
            (f"{label}: newest first", search(exps)),
            (f"{label}: filter", search(exps, filter=FILTER)),
            (f"{label}: order by metrics.acc desc", search(exps, order_by=["metrics.acc desc"])),
            (
                f"{label}: filter + order",
                search(exps, filter=FILTER, order_by=["metrics.acc desc"]),
            ),
        ]
    out += [
        ("all runs: 200 rows", search(None, max_results=200)),
        ("all runs: next page", search(None, page_token=first.next_page_token)),
        (f"all runs: page at run {half:,}", search(None, page_token=deep)),
    ]
    return out


def timed(fn: Callable[[], Any], reps: int) -> tuple[int, list[float]]:
    rows = len(fn().runs)  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return rows, times


@contextmanager
def pg_copy(sqlite_engine: Any, server: str) -> Iterator[Any]:
    """A scratch PostgreSQL database at the current schema holding the workspace's rows."""
    import sqlalchemy as sa

    from syllabus.meta.engine import create_engine
    from syllabus.meta.migrate import ensure_schema
    from syllabus.meta.tables import tracking

    admin_url = sa.engine.make_url(server).set(drivername="postgresql+psycopg")
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = f"syllabus_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = admin_url.set(drivername="postgresql", database=name)
    engine = create_engine(url.render_as_string(hide_password=False))
    try:
        ensure_schema(engine)
        tables = [
            tracking.experiments,
            tracking.runs,
            tracking.metric_keys,
            tracking.latest_metrics,
            tracking.params,
            tracking.tags,
        ]
        with sqlite_engine.connect() as src, engine.begin() as dst:
            for table in tables:
                rows = [dict(r._mapping) for r in src.execute(sa.select(table))]
                for i in range(0, len(rows), 10_000):
                    dst.execute(table.insert(), rows[i : i + 10_000])
            for table, key in (("experiments", "pk"), ("runs", "pk"), ("metric_keys", "id")):
                dst.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{key}'), "
                    f"(SELECT max({key}) FROM {table}))"
                )
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def run_cases(store: Any, exp_id: str, runs: int, reps: int, backend: str) -> list[dict]:
    results = []
    for label, fn in cases(store, exp_id, runs):
        rows, times = timed(fn, reps)
        results.append({"backend": backend, "label": label, "rows": rows, "seconds": times})
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100_000, help="runs in the workspace")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--pg", help="also time on a scratch database of this PostgreSQL server")
    ap.add_argument("--workspace", type=Path, help="reuse this filled workspace folder")
    ap.add_argument("--json", help="also write every repetition as JSON here")
    ap.add_argument("--workdir", type=Path, default=BENCH_DIR / ".work")
    ap.add_argument("--keep", action="store_true", help="keep the workspace")
    args = ap.parse_args()

    sys.path.insert(0, str(BENCH_DIR.parent / "src"))
    from syllabus import Client
    from syllabus.client import init_workspace
    from syllabus.meta.engine import create_engine
    from syllabus.meta.migrate import upgrade
    from syllabus.tracking.sql import SqlTrackingStore

    folder = args.workspace
    made = folder is None
    if folder is None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="search-", dir=args.workdir))
        init_workspace(folder)
    results: list[dict] = []
    try:
        ws = folder / ".syllabus"
        if made:
            with Client(ws, blobs=ws / "blobs", cwd=folder) as c:
                console.print(f"Filling a workspace with {args.runs:,} runs ...")
                t = time.perf_counter()
                fill(c, args.runs, args.seed)
                console.print(f"  done in {time.perf_counter() - t:.0f} s")
        engine = create_engine(f"sqlite:///{ws / 'syllabus.db'}")
        upgrade(engine)  # a kept workspace from an older schema
        try:
            sqlite = SqlTrackingStore(engine)
            exp_id = sqlite.get_experiment("bench", by_name=True).id
            console.print("Timing SQLite ...")
            results += run_cases(sqlite, exp_id, args.runs, args.reps, "sqlite")
            if args.pg:
                console.print("Copying to PostgreSQL and timing ...")
                with pg_copy(engine, args.pg) as pg:
                    store = SqlTrackingStore(pg)
                    results += run_cases(store, exp_id, args.runs, args.reps, "postgresql")
        finally:
            engine.dispose()
    finally:
        if made and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        elif made:
            console.print(f"kept {folder}")

    table = Table(title=f"search_runs with {args.runs:,} runs ({args.reps} reps)")
    for col in ("backend", "search", "rows", "median", "min", "max"):
        table.add_column(col, justify="left" if col in ("backend", "search") else "right")
    for r in results:
        s = span(r["seconds"])
        assert s is not None
        table.add_row(
            r["backend"],
            r["label"],
            str(r["rows"]),
            f"{s['median'] * 1000:.1f} ms",
            f"{s['min'] * 1000:.1f} ms",
            f"{s['max'] * 1000:.1f} ms",
        )
    Console().print(table)
    print(
        "MLflow peer not run at this size (filling it takes ~30 min here); "
        "bench/tracking.py compares the search with MLflow's on the same data."
    )
    if args.json:
        write_json(
            args.json,
            {
                "benchmark": "search",
                "commit": git_describe(),
                "python": platform.python_version(),
                "runs": args.runs,
                "reps": args.reps,
                "results": results,
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
