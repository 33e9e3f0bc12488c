"""Web UI benchmark: the runs page of a workspace holding 100,000 runs.

Workload (issue 12, "Tests"): an embedded workspace with N finished runs (default
100,000) in one experiment, each with 5 params and 5 metrics (``acc`` uniform, ``loss``,
``lr`` cycling 0.1/0.01/0.001, ``model`` one of gbm/rf/lr), served by ``syllabus ui``'s
application on a real uvicorn server on 127.0.0.1. Timed over HTTP, as a browser asks:

* the runs table (50 rows, newest first), with and without the experiment chosen;
* a filter (``metrics.acc > 0.5 and params.model = 'gbm'``), an order by a metric
  (``metrics.acc desc``), both, and 200 rows a page;
* the next page (following the page's own link), the page half-way through the runs
  (as pressing "next" 1,000 times would reach it), a run's page and the comparison of
  two runs.

Each request is sent once untimed (warm-up), then ``--reps`` times; figures are the median,
min and max wall-clock time of the whole HTTP request (server render included) and the
verdict is PASS when the median is under one second (the issue's target).

Peer: MLflow's UI asks its server's ``ajax-api/2.0/mlflow/runs/search`` for the same
table. Filling MLflow with 100,000 runs through its client runs at ~61 runs/s here (see
bench/tracking.py), about half an hour, so this benchmark reports absolute times only
(``bench/tracking.py`` compares the search itself with MLflow's on the same data).

Run: ``.venv/bin/python bench/ui.py`` (``--runs N`` or ``BENCH_SIZE=small`` for 20,000).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

try:  # run as a script (bench/ on sys.path) or as `python -m bench.ui`
    from _common import git_describe, span, write_json
except ImportError:  # pragma: no cover
    from bench._common import git_describe, span, write_json

BENCH_DIR = Path(__file__).resolve().parent
SIZES = {"small": 20_000, "full": 100_000}
TARGET_S = 1.0
console = Console(stderr=True)


def fill(client: Any, runs: int, seed: int) -> list[str]:
    """``runs`` finished runs in experiment ``bench`` (5 params and 5 metrics each)."""
    rng = random.Random(seed)
    exp = client.create_experiment("bench").id
    ids = []
    t0 = time.perf_counter()
    base = 1_700_000_000_000
    for i in range(runs):
        run = client.create_run(
            exp,
            name=f"run-{i}",
            start_time=base + i * 1000,
            params={
                "lr": (0.1, 0.01, 0.001)[i % 3],
                "model": ("gbm", "rf", "lr")[rng.randrange(3)],
                "depth": rng.randrange(2, 10),
                "seed": i,
                "data": f"churn@{1 + i % 4}",
            },
        )
        acc = rng.random()
        client.log_metrics(
            run.id,
            [
                ("acc", acc, 0, base),
                ("loss", 1 - acc, 0, base),
                ("auc", rng.random(), 0, base),
                ("f1", rng.random(), 0, base),
                ("rows", float(rng.randrange(1000, 10_000)), 0, base),
            ],
        )
        client.end_run(run.id, end_time=base + i * 1000 + 500)
        ids.append(run.id)
        if (i + 1) % 10_000 == 0:
            rate = (i + 1) / (time.perf_counter() - t0)
            console.print(f"  {i + 1:,} runs ({rate:,.0f} runs/s)")
    return ids


def _deep_page(offset: int) -> str | None:
    """The runs table's page starting at ``offset`` (newest first), as a reader who pressed
    "next" offset/50 times would reach it (its token made directly; None if unknown)."""
    from urllib.parse import urlencode

    from syllabus.tracking.search import encode_page_token

    # the search the table makes: all experiments, no filter, newest first, live runs
    token = encode_page_token(offset, [[], None, ["start_time desc"], None, "active"])
    return "/runs?" + urlencode({"token": token, "back": "-"})


@contextmanager
def serving(app: Any) -> Iterator[str]:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def timed(http: httpx.Client, path: str, reps: int) -> dict[str, Any]:
    first = http.get(path)  # warm-up (and a check that the page answers)
    if first.status_code != 200:
        raise SystemExit(f"GET {path} answered {first.status_code}: {first.text[:300]}")
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        response = http.get(path)
        times.append(time.perf_counter() - t)
        response.raise_for_status()
    rows = len(re.findall(r'<tr data-run="', first.text))
    return {"path": path, "rows": rows, "bytes": len(first.content), "seconds": times}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=sorted(SIZES), default=os.environ.get("BENCH_SIZE"))
    ap.add_argument("--runs", type=int, help="runs in the workspace (default 100,000)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--json", help="also write every repetition as JSON here")
    ap.add_argument("--workdir", type=Path, default=BENCH_DIR / ".work")
    ap.add_argument("--keep", action="store_true", help="keep the workspace")
    args = ap.parse_args()
    runs = args.runs or (SIZES[args.size] if args.size else SIZES["full"])

    sys.path.insert(0, str(BENCH_DIR.parent / "src"))
    from syllabus import Client
    from syllabus.client import init_workspace
    from syllabus.server.ui import create_ui_app

    args.workdir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="ui-", dir=args.workdir))
    results = []
    try:
        ws = init_workspace(folder)
        with Client(ws, blobs=ws / "blobs", cwd=folder) as c:
            console.print(f"Filling a workspace with {runs:,} runs ...")
            t = time.perf_counter()
            ids = fill(c, runs, args.seed)
            filled_s = time.perf_counter() - t
            console.print(f"  done in {filled_s:.0f} s")
            a, b = ids[len(ids) // 2], ids[-1]
            pages = [
                ("runs table, newest first", "/runs"),
                ("  in experiment bench", "/runs?experiment=bench"),
                ("  filter", "/runs?filter=metrics.acc+>+0.5+and+params.model+%3D+%27gbm%27"),
                ("  order by metrics.acc desc", "/runs?order=metrics.acc+desc"),
                (
                    "  filter + order",
                    "/runs?filter=metrics.acc+>+0.5+and+params.model+%3D+%27gbm%27"
                    "&order=metrics.acc+desc",
                ),
                ("  200 rows a page", "/runs?size=200"),
                ("run page", f"/runs/{a}"),
                ("compare two runs", f"/compare?runs={a}&runs={b}"),
            ]
            with serving(create_ui_app(c)) as url, httpx.Client(base_url=url, timeout=60) as h:
                first = h.get("/runs").text
                found = re.search(r'<a href="([^"]+)" rel="next">', first)
                if found:
                    pages.insert(6, ("  next page", found.group(1).replace("&amp;", "&")))
                deep = _deep_page(runs // 2)
                if deep:
                    pages.insert(7, (f"  page at run {runs // 2:,}", deep))
                for label, path in pages:
                    results.append({"label": label, **timed(h, path, args.reps)})
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)

    table = Table(title=f"Web UI with {runs:,} runs (HTTP round trip, {args.reps} reps)")
    for col in ("page", "rows", "median", "min", "max", f"< {TARGET_S:g} s"):
        table.add_column(col, justify="left" if col == "page" else "right")
    for r in results:
        s = span(r["seconds"])
        assert s is not None
        table.add_row(
            r["label"],
            str(r["rows"]),
            f"{s['median'] * 1000:.0f} ms",
            f"{s['min'] * 1000:.0f} ms",
            f"{s['max'] * 1000:.0f} ms",
            "PASS" if s["median"] < TARGET_S else "MISS",
        )
    Console().print(table)
    print(
        "MLflow peer not run: filling it with as many runs takes ~30 min here "
        "(61 runs/s, bench/tracking.py); absolute times above."
    )
    if args.json:
        write_json(
            args.json,
            {
                "benchmark": "ui",
                "commit": git_describe(),
                "python": platform.python_version(),
                "runs": runs,
                "fill_seconds": filled_s,
                "reps": args.reps,
                "results": results,
                "median_ms": {
                    r["label"].strip(): statistics.median(r["seconds"]) * 1000 for r in results
                },
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
