"""Serving benchmark: ``syllabus serve`` vs ``mlflow models serve``, same model, same load.

Workload (issue 8): one fitted scikit-learn pipeline (StandardScaler + LogisticRegression
on 8 numeric columns) served

* by Syllabus: registered in a fresh workspace, ``syllabus serve model@1`` (one worker,
  prediction logging on: Parquet segments under the workspace), ``POST /predict``;
* by MLflow: saved with ``mlflow.sklearn.save_model`` (signature from a DataFrame) in
  MLflow's own venv, ``mlflow models serve --env-manager local`` (one worker, its default),
  ``POST /invocations``.

Both get the same body, ``{"dataframe_records": [...]}`` (MLflow's records format, which
``/predict`` also reads), with 1 or 100 rows. The load generator is the same for both:
``--clients`` separate processes, each one keep-alive HTTP/1.1 connection to 127.0.0.1
sending requests back to back for ``--seconds`` (10 by default) per case after a short
warm-up, timing each request from the first byte sent to the last byte received; the
servers take turns going first from case to case. Figures: requests per second over all
clients, p50 and p99 latency, and the server's CPU time per request (its process and
children, from psutil: steadier than throughput on a shared machine). Start-up is the
time from launching the server process to its first successful answer.
``--log-overhead`` adds the same Syllabus server with ``--no-log``.

Targets (issue 8): at least 3x MLflow's throughput and at most a third of its p99.

Run: ``.venv/bin/python bench/serving.py`` (``--seconds 5`` for a quicker look). MLflow
comes from ``bench/.venv-mlflow`` (created on first use, see bench/_mlflow.py); without it
the Syllabus column is printed alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

try:  # run as a script (bench/ on sys.path) or as `python -m bench.serving`
    import _mlflow
except ImportError:  # pragma: no cover
    from bench import _mlflow

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
FEATURES = 8
TARGET_THROUGHPUT = 3.0
TARGET_P99 = 1 / 3

_SAVE_MLFLOW = """
import pickle, sys
import pandas as pd
import mlflow.sklearn
from mlflow.models import infer_signature
model = pickle.load(open(sys.argv[1], "rb"))
example = pd.read_json(sys.argv[2], orient="records")
signature = infer_signature(example, model.predict(example))
mlflow.sklearn.save_model(model, sys.argv[3], signature=signature, input_example=example.head(2))
"""


# -- the model -------------------------------------------------------------------------------------


def fit_model(seed: int = 0) -> tuple[Any, list[dict[str, float]]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(5000, FEATURES)) * np.arange(1, FEATURES + 1)
    y = (x @ rng.normal(size=FEATURES) + rng.normal(size=5000) > 0).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    records = [{f"f{j}": float(v) for j, v in enumerate(row)} for row in x[:100]]
    return model, records


# -- servers ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(port: int, path: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode())
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server not ready after {timeout:.0f} s")


class Server:
    def __init__(self, name: str, cmd: list[str], port: int, ready_path: str, path: str,
                 cwd: Path, env: dict[str, str]) -> None:  # fmt: skip
        self.name, self.port, self.path = name, port, path
        self.log = (cwd / f"{name}.log").open("wb")
        started = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self.log, stderr=self.log)
        _wait_http(port, ready_path, self.proc, 180)
        self.startup = time.perf_counter() - started

    def cpu_seconds(self) -> float:
        """CPU time of the server process and its children (MLflow's uvicorn is a child)."""
        import psutil

        total = 0.0
        try:
            root = psutil.Process(self.proc.pid)
            for p in (root, *root.children(recursive=True)):
                with contextlib.suppress(psutil.Error):
                    t = p.cpu_times()
                    total += t.user + t.system
        except psutil.Error:
            pass
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def start_syllabus(
    model: Any, records: list[dict[str, float]], work: Path, *, log: bool = True
) -> Server:
    from syllabus import Client

    folder = work / "syllabus"
    if not folder.exists():
        folder.mkdir()
        example = {k: np.array([r[k] for r in records[:5]]) for k in records[0]}
        with Client(cwd=folder) as client:
            run = client.create_run("bench")
            client.log_model(run.id, model, input_example=example, registered_name="model")
            client.end_run(run.id)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYLLABUS_")}
    cmd = [str(ROOT / ".venv/bin/python"), "-m", "syllabus", "serve", "model@1",
           "--port", str(port), *([] if log else ["--no-log"])]  # fmt: skip
    name = "syllabus" if log else "syllabus-nolog"
    return Server(name, cmd, port, "/v2/health/ready", "/predict", folder, env)


def start_mlflow(mlflow: Any, model: Any, records: list[dict[str, float]], work: Path) -> Server:
    folder = work / "mlflow"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    (folder / "example.json").write_text(json.dumps(records[:5]))
    env = _mlflow.worker_env()
    subprocess.run(
        [str(mlflow.python), "-c", _SAVE_MLFLOW, "model.pkl", "example.json", "model"],
        cwd=folder, env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    port = _free_port()
    mlflow_bin = Path(mlflow.python).parent / "mlflow"
    env["PATH"] = f"{mlflow_bin.parent}{os.pathsep}{env.get('PATH', '')}"  # it execs uvicorn
    cmd = [str(mlflow_bin), "models", "serve", "-m", "model", "--env-manager", "local",
           "-h", "127.0.0.1", "-p", str(port), "-w", "1"]  # fmt: skip
    return Server("mlflow", cmd, port, "/ping", "/invocations", folder, env)


# -- load generator --------------------------------------------------------------------------------


def _client(port: int, request: bytes, seconds: float, warmup: float, out: Any) -> None:
    """One keep-alive connection sending ``request`` back to back; latencies in seconds."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    latencies: list[float] = []
    errors = 0
    clock = time.perf_counter
    start = clock()
    measure_from = start + warmup
    stop = measure_from + seconds
    buf = b""
    try:
        while True:
            t0 = clock()
            if t0 >= stop:
                break
            sock.sendall(request)
            while b"\r\n\r\n" not in buf:
                buf += sock.recv(65536)
            head, _, buf = buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(buf) < length:
                buf += sock.recv(65536)
            buf = buf[length:]
            t1 = clock()
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
            if t0 >= measure_from:
                latencies.append(t1 - t0)
    finally:
        sock.close()
    out.put((latencies, errors))


def load(port: int, path: str, body: bytes, clients: int, seconds: float) -> dict[str, float]:
    request = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body
    ctx = get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_client, args=(port, request, seconds, 1.0, queue))
             for _ in range(clients)]  # fmt: skip
    for p in procs:
        p.start()
    results = [queue.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(30)
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = sum(e for _, e in results)
    if not latencies:
        return {"rps": 0.0, "p50_ms": float("nan"), "p99_ms": float("nan"), "errors": errors}
    return {
        "rps": len(latencies) / seconds,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "mean_ms": 1000 * statistics.fmean(latencies),
        "requests": len(latencies),
        "errors": errors,
    }


# -- main ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", "10")))
    ap.add_argument("--rows", type=int, nargs="+", default=[1, 100])
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--no-mlflow", action="store_true", help="measure Syllabus alone")
    ap.add_argument(
        "--log-overhead",
        action="store_true",
        help="also serve with --no-log and print what the prediction log costs",
    )
    ap.add_argument("--json", type=Path, help="also write the results as JSON")
    args = ap.parse_args(argv)

    mlflow = None
    if not args.no_mlflow:
        mlflow, status = _mlflow.provision()
        print(status if mlflow else f"MLflow column dropped: {status}")
    model, records = fit_model()
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    servers: list[Server] = []
    results: dict[str, Any] = {"seconds": args.seconds, "cases": []}
    try:
        servers.append(start_syllabus(model, records, work))
        if args.log_overhead:
            servers.append(start_syllabus(model, records, work, log=False))
        if mlflow is not None:
            servers.append(start_mlflow(mlflow, model, records, work))
        for server in servers:
            print(f"{server.name}: ready {server.startup:.1f} s after launch")
            results[f"{server.name}_startup_s"] = server.startup
        for rows in args.rows:
            body = json.dumps({"dataframe_records": records[:rows]}).encode()
            for clients in args.clients:
                case: dict[str, Any] = {"rows": rows, "clients": clients}
                # alternate who goes first: the machine's load drifts between measurements
                order = servers if len(results["cases"]) % 2 == 0 else servers[::-1]
                for server in order:
                    before = server.cpu_seconds()
                    result = load(server.port, server.path, body, clients, args.seconds)
                    cpu = server.cpu_seconds() - before  # includes the warm-up second
                    result["cpu_ms_per_request"] = 1000 * cpu / max(1, result.get("requests", 0) * (
                        1 + 1 / args.seconds))  # fmt: skip
                    case[server.name] = result
                results["cases"].append(case)
                _print_case(case)
        logged = _logged_rows(work / "syllabus")
        results["syllabus_logged_rows_before_shutdown"] = logged
    finally:
        for server in servers:
            server.stop()
    results["syllabus_logged_rows"] = _logged_rows(work / "syllabus")
    print(
        f"syllabus: {results['syllabus_logged_rows']:,} prediction rows in the log after shutdown"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


def _logged_rows(folder: Path) -> int:
    import pyarrow.parquet as pq

    root = folder / ".syllabus" / "predictions"
    return sum(pq.read_metadata(p).num_rows for p in root.glob("*/predictions/seg-*.parquet"))


def _print_case(case: dict[str, Any]) -> None:
    s = case["syllabus"]
    line = (f"{case['rows']:>3} rows x {case['clients']} clients | syllabus {s['rps']:7.0f} req/s "
            f"p50 {s['p50_ms']:6.2f} ms p99 {s['p99_ms']:6.2f} ms "
            f"cpu {s['cpu_ms_per_request']:.2f} ms/req")  # fmt: skip
    m = case.get("mlflow")
    if m:
        line += (f" | mlflow {m['rps']:6.0f} req/s p50 {m['p50_ms']:6.2f} ms "
                 f"p99 {m['p99_ms']:6.2f} ms cpu {m['cpu_ms_per_request']:.2f} ms/req"
                 f" | throughput x{s['rps'] / m['rps']:.1f} (target >= {TARGET_THROUGHPUT:g}: "
                 f"{'PASS' if s['rps'] >= TARGET_THROUGHPUT * m['rps'] else 'MISS'}),"
                 f" p99 {s['p99_ms'] / m['p99_ms']:.2f} of mlflow's (target <= 0.33: "
                 f"{'PASS' if s['p99_ms'] <= TARGET_P99 * m['p99_ms'] else 'MISS'}),"
                 f" cpu per request x{m['cpu_ms_per_request'] / s['cpu_ms_per_request']:.1f}"
                 " less")  # fmt: skip
    n = case.get("syllabus-nolog")
    if n:
        line += (f" | log costs {100 * (1 - s['rps'] / n['rps']):+.1f}% of throughput, "
                 f"{100 * (s['cpu_ms_per_request'] / n['cpu_ms_per_request'] - 1):+.1f}% of cpu "
                 "per request")  # fmt: skip
    if s.get("errors") or (m and m.get("errors")):
        line += f" | errors {s.get('errors')}/{m.get('errors') if m else '-'}"
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
