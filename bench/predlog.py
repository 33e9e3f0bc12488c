"""What the prediction log costs the inference server: the same app with the log on and off.

Workload: the model of ``bench/serving.py`` (StandardScaler + LogisticRegression on 8
numeric columns) registered in a fresh workspace and served by two instances of the serving
application (the ASGI app ``syllabus serve`` runs) built from the same code in this process:
one with the prediction log on (its default flush settings, segments in a temp folder), one
with it off. Both are called directly (no sockets: the HTTP layer costs the same with and
without the log, so leaving it out makes the log's share *larger*, never smaller) with the
same ``POST /predict`` body of 1 or 100 JSON records.

The two apps take turns of about 200 rows' worth of requests, back to back, in the
same order switched every turn, for ``--rounds`` rounds. What the log costs:

* on the request path: this thread's CPU time per turn with the log over that of the
  neighbouring turn without it; the median over all turns (on a shared machine a turn
  is sometimes slowed by other work: the median ignores those, the quartiles show them);
* off it: the CPU time of every other thread of the process (the log's writer thread
  building Arrow columns and encoding Parquet, and any thread it uses) over the whole
  case, plus the final flush of what is still buffered, as a share of the CPU time the
  requests took without the log.

The sum is the log's cost in CPU per request, i.e. the throughput lost when the server has
one core (the issue's "logging costs at most 5% of throughput"); the wall-clock change in
requests per second is printed too. Afterwards every logged row is checked to have landed
in a segment.

Run: ``.venv/bin/python bench/predlog.py`` (``--rounds 9 --requests 2000`` by default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

try:  # run as a script (bench/ on sys.path) or as `python -m bench.predlog`
    from serving import fit_model
except ImportError:  # pragma: no cover
    from bench.serving import fit_model

TARGET = 5.0  # % of throughput


def _apps(work: Path) -> tuple[Any, Any]:
    from syllabus import Client
    from syllabus.cli.serve import build_app
    from syllabus.deploy.serving import ServingConfig
    from syllabus.deploy.serving.config import LogSpec

    model, records = fit_model()
    folder = work / "ws"
    folder.mkdir()
    example = {k: np.array([r[k] for r in records[:5]]) for k in records[0]}
    with Client(cwd=folder) as client:
        run = client.create_run("bench")
        client.log_model(run.id, model, input_example=example, registered_name="model")
        client.end_run(run.id)
    apps = []
    for enabled in (True, False):
        config = ServingConfig.for_model(
            "model@1",
            uri=str(folder),
            blobs=str(folder / ".syllabus" / "blobs"),
            port=0,
            log=LogSpec(enabled=enabled, path=str(work / "predictions")),
        )
        app = build_app(config, 0, 0)
        app.load()
        assert app.ready, app.reason
        apps.append(app)
    return apps[0], apps[1]


async def _block(app: Any, body: bytes, n: int) -> None:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/predict",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))],
    }
    message = {"type": "http.request", "body": body, "more_body": False}
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return message

    async def send(msg: dict[str, Any]) -> None:
        if msg["type"] == "http.response.start":
            status.append(msg["status"])

    for _ in range(n):
        await app(scope, receive, send)
    if set(status) != {200}:
        raise SystemExit(f"unexpected answers: {sorted(set(status))}")


def _run(app: Any, body: bytes, n: int, loop: asyncio.AbstractEventLoop) -> tuple[float, float]:
    """(CPU seconds of this thread, wall seconds) for ``n`` requests."""
    cpu, wall = time.thread_time(), time.perf_counter()
    loop.run_until_complete(_block(app, body, n))
    return time.thread_time() - cpu, time.perf_counter() - wall


def _case(
    on: Any, off: Any, body: bytes, rows: int, args: argparse.Namespace,
    loop: asyncio.AbstractEventLoop,
) -> dict[str, Any]:  # fmt: skip
    chunk = max(2, args.chunk_rows // rows)  # requests per turn
    turns = max(2, args.requests // chunk)  # turns per app and round
    for app in (on, off):  # warm-up (its log rows are flushed before measuring)
        _run(app, body, chunk * 4, loop)
    on.writer.flush()
    # The log's off-path cost: every thread but this one (the writer thread, and any
    # thread pyarrow uses), from the process's CPU time less this thread's.
    others = time.process_time() - time.thread_time()
    cpu_ratios, wall_ratios = [], []
    total = {True: [0.0, 0.0], False: [0.0, 0.0]}
    for r in range(args.rounds):
        acc = {True: [0.0, 0.0], False: [0.0, 0.0]}
        for t in range(turns):
            turn = {}
            for app in (on, off) if (r + t) % 2 == 0 else (off, on):
                turn[app is on] = cpu, wall = _run(app, body, chunk, loop)
                acc[app is on][0] += cpu
                acc[app is on][1] += wall
            # One ratio per turn: the two apps measured back to back, under the same load.
            cpu_ratios.append(turn[True][0] / turn[False][0])
        wall_ratios.append(acc[True][1] / acc[False][1])
        for k in (True, False):
            total[k][0] += acc[k][0]
            total[k][1] += acc[k][1]
    flush_cpu = time.thread_time()
    on.writer.flush()  # what is still buffered: its encoding is the log's cost too
    flush_cpu = time.thread_time() - flush_cpu
    writer_cpu = time.process_time() - time.thread_time() - others + flush_cpu
    n = args.rounds * turns * chunk
    path_pct = 100 * (statistics.median(cpu_ratios) - 1)
    q1, _, q3 = statistics.quantiles(cpu_ratios, n=4)
    writer_pct = 100 * writer_cpu / total[False][0]
    return {
        "rows": rows,
        "requests": n,
        "cpu_ms_per_request_no_log": 1000 * total[False][0] / n,
        "cpu_ms_per_request_log_request_path": 1000 * total[True][0] / n,
        "cpu_ms_per_request_log_writer": 1000 * writer_cpu / n,
        "request_path_overhead_pct": path_pct,
        "request_path_overhead_quartiles_pct": [100 * (q1 - 1), 100 * (q3 - 1)],
        "request_path_overhead_of_sums_pct": 100 * (total[True][0] / total[False][0] - 1),
        "writer_overhead_pct": writer_pct,
        "overhead_pct": path_pct + writer_pct,
        "wall_overhead_pct": 100 * (1 - 1 / statistics.median(wall_ratios)),
        "cpu_ratios": cpu_ratios,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1, 100])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--requests", type=int, default=2000, help="requests per app and round")
    ap.add_argument("--chunk-rows", type=int, default=200, help="rows per turn")
    ap.add_argument("--json", type=Path, help="also write the results as JSON")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-predlog-"))
    results: dict[str, Any] = {"rounds": args.rounds, "cases": []}
    loop = asyncio.new_event_loop()
    try:
        on, off = _apps(work)
        _, records = fit_model()
        sent = 0
        for rows in args.rows:
            body = json.dumps({"dataframe_records": records[:rows]}).encode()
            before = on.writer.rows_written
            case = _case(on, off, body, rows, args, loop)
            sent += on.writer.rows_written - before  # checked against the segments below
            results["cases"].append(case)
            lo, hi = case["request_path_overhead_quartiles_pct"]
            print(
                f"{rows:>3} rows/request, {case['requests']:,} requests each | cpu per request "
                f"{case['cpu_ms_per_request_no_log']:.3f} ms without the log; with it "
                f"{case['cpu_ms_per_request_log_request_path']:.3f} ms on the request path "
                f"+ {case['cpu_ms_per_request_log_writer']:.3f} ms on the writer thread | log "
                f"costs {case['overhead_pct']:+.1f}% of cpu per request "
                f"(request path {case['request_path_overhead_pct']:+.1f}%, median of "
                f"{len(case['cpu_ratios'])} back-to-back turns, quartiles "
                f"{lo:+.1f}..{hi:+.1f}; writer "
                f"{case['writer_overhead_pct']:+.1f}%), wall clock "
                f"{case['wall_overhead_pct']:+.1f}% | target <= {TARGET:g}%: "
                f"{'PASS' if case['overhead_pct'] <= TARGET else 'MISS'}",
                flush=True,
            )
        on.close()
        off.close()
        from syllabus.deploy.predlog import list_segments, read_segments

        logged = read_segments(list_segments(work / "predictions", on.config.service)).num_rows
        results["logged_rows"] = logged
        print(f"{logged:,} prediction rows in the log's segments ({on.writer.errors} write errors)")
        if on.writer.errors or logged != on.writer.rows_written:
            print("ROWS MISSING FROM THE LOG", file=sys.stderr)
            return 1
    finally:
        loop.close()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
