"""Team server under load: 50 concurrent clients logging metric batches and searching runs,
against ``syllabus server`` and ``mlflow server`` on the same PostgreSQL, in one run.

Each client (an asyncio task with its own HTTP connection, all in one process on
127.0.0.1) creates a run, then until the deadline logs batches of metric points and, every
``--search-every`` batches, searches the runs of the experiment. Afterwards every run's
series is read back and must hold exactly the points its client sent (no loss, no
duplicate). Both servers get a fresh database on the PostgreSQL server (created and
dropped here) and ``--workers`` worker processes. Also measured: start-up (spawn to a
healthy answer) and idle memory (RSS of the whole process tree).

Usage: .venv/bin/python bench/server.py [--duration 20] [--clients 50] [--workers 2]
       [--batch 200] [--pg postgresql://postgres@127.0.0.1:5432/test] [--no-mlflow]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

import contextlib

import httpx
import psutil
import sqlalchemy as sa

from _common import git_describe, write_json

VENV = Path(sys.executable).parent


@dataclass
class Stats:
    log_lat: list[float] = field(default_factory=list)
    search_lat: list[float] = field(default_factory=list)
    points: int = 0
    errors: int = 0  # failed calls in the window, logs and searches
    log_errors: int = 0  # of them, failed metric batches


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tree(pid: int) -> list[psutil.Process]:
    """A process and its children (none if it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_rss(pid: int) -> int:
    total = 0
    for p in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its children."""
    total = 0.0
    for p in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def postgres_cpu() -> float:
    """CPU seconds used so far by the local PostgreSQL server's processes."""
    total = 0.0
    for p in psutil.process_iter(["name"]):
        if (p.info["name"] or "").startswith("postgres"):
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
    return total


def cpu_snapshot(server_pid: int | None) -> dict[str, float]:
    """CPU seconds so far of the load generator (this process), the server's process tree
    and PostgreSQL."""
    own = os.times()
    return {
        "load_generator": own.user + own.system,
        "server": tree_cpu(server_pid) if server_pid else 0.0,
        "postgresql": postgres_cpu(),
    }


def tree_count(pid: int) -> int:
    try:
        return 1 + len(psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return 0


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 600) -> float:
    started = time.perf_counter()
    # One client for every probe: httpx.get() makes a new client (and TLS context) per
    # call, tens of ms of CPU that the poll took from the server it was waiting for.
    with httpx.Client(timeout=2) as http:
        while time.perf_counter() - started < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                if http.get(url).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.02)
    raise RuntimeError(f"{url} not healthy after {timeout} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()


# -- the HTTP client -------------------------------------------------------------------------


class TransportError(Exception):
    """The connection failed or closed before a whole answer arrived."""


class Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: a request at a time, the answer
    read whole (Content-Length or chunked); reconnects after the server closes it. The load
    generator shares the machine's two cores with the server it measures: with an httpx
    client per connection and json.dumps of every batch it used 4.7 ms of CPU per
    1,000-point batch, 0.6 ms with this and :class:`Batches`."""

    def __init__(self, base: str) -> None:
        host, _, port = base.removeprefix("http://").partition(":")
        self.host, self.port = host, int(port)
        self.head = f"Host: {base.removeprefix('http://')}\r\n".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes = b"", timeout: float = 120
    ) -> tuple[int, bytes]:
        try:
            return await asyncio.wait_for(self._request(method, path, body), timeout)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                TimeoutError) as exc:  # fmt: skip
            await self.close()
            raise TransportError(f"{type(exc).__name__}: {exc}") from None

    async def _request(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.reader, self.writer
        writer.write(
            b"%s %s HTTP/1.1\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (method.encode(), path.encode(), self.head, len(body))
        )
        if body:
            writer.write(body)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, chunked, close = None, False, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif name == "connection":
                close = "close" in value.lower()
        if chunked:
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")  # no trailers are sent to us
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            data = b"".join(parts)
        elif length is not None:
            data = await reader.readexactly(length)
        else:
            data = await reader.read()
            close = True
        if close:
            await self.close()
        return status, data

    async def close(self) -> None:
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class Batches:
    """Request bodies for batches of metric points, spliced into a template encoded once.

    A batch's points are ``(step, timestamp, value)``: steps ``start, start + 1, ...``, one
    timestamp (the time the batch is made, in ms) and values that depend on the position in
    the batch, ``1 / (k + 1) + 0.5``, encoded once. What varies is spliced in: the steps'
    digits (``str`` of consecutive ints) and the timestamp (one ``str.replace``); encoding
    1,000 points costs a few hundred microseconds instead of the 2 ms that json.dumps took
    from a list of tuples.
    ``point`` is the format of one point with ``{step}``, ``{ts}`` and ``{value}`` fields,
    ``joiner`` what separates two points."""

    TS = "\x02"

    def __init__(self, batch: int, point: str, joiner: str = ",") -> None:
        self.batch = batch
        parts = point.split("{step}")
        if len(parts) != 2:
            raise ValueError("a point has exactly one {step}")
        self.head = parts[0].format(ts=self.TS, value="{value}")
        values = [repr(1.0 / (k + 1) + 0.5) for k in range(batch)]
        tails = [parts[1].format(ts=self.TS, value=v) for v in values]
        if "{value}" in self.head:
            raise ValueError("{value} goes after {step}")
        self.after = [t + joiner + self.head for t in tails[:-1]] + [tails[-1]]

    def points(self, start: int, ts: int) -> str:
        """The JSON text of the points from step ``start`` (without the enclosing list)."""
        steps = map(str, range(start, start + self.batch))
        text = self.head + "".join(
            itertools.chain.from_iterable(zip(steps, self.after, strict=True))
        )
        return text.replace(self.TS, str(ts))


# -- the two APIs ---------------------------------------------------------------------------


async def _post(http: Connection, path: str, body: bytes) -> bytes:
    status, data = await http.request("POST", path, body)
    if status != 200:
        raise RuntimeError(f"{path}: {status} {data[:200].decode('utf-8', 'replace')}")
    return data


class SyllabusApi:
    name = "syllabus"
    pid: int | None = None  # the server's process (its CPU is measured)

    def __init__(self, base: str) -> None:
        self.base = base
        self.api = "/api/v1/w/default"
        self.batches: Batches | None = None

    async def post(self, http: Connection, path: str, body: dict[str, Any]) -> Any:
        return json.loads(await _post(http, f"{self.api}/{path}", json.dumps(body).encode()))

    async def setup(self, http: Connection, experiment: str) -> str:
        try:
            exp = await self.post(http, "tracking/create_experiment", {"name": experiment})
        except RuntimeError:
            exp = await self.post(
                http, "tracking/get_experiment", {"ref": experiment, "by_name": True}
            )
        return str(exp["id"])

    async def create_run(self, http: Connection, exp_id: str, i: int) -> str:
        now = int(time.time() * 1000)
        run_id = uuid.uuid4().hex
        body = {
            "experiment_id": exp_id, "run_id": run_id, "name": f"client-{i}", "user": "bench",
            "host": "bench", "start_time": now, "params": {"lr": "0.01"},
        }  # fmt: skip
        await self.post(http, "tracking/create_run", body)
        return run_id

    async def log(self, http: Connection, run_id: str, start: int, batch: int) -> None:
        # {"points": [{"run_id": ..., "key": "loss", "points": [[step, ts, value], ...]}],
        #  "batch_id": ...}, as json.dumps wrote it before
        if self.batches is None or self.batches.batch != batch:
            self.batches = Batches(batch, "[{step},{ts},{value}]")
        points = self.batches.points(start, int(time.time() * 1000))
        body = (
            f'{{"points":[{{"run_id":"{run_id}","key":"loss","points":[{points}]}}],'
            f'"batch_id":"{uuid.uuid4().hex}"}}'
        )
        await _post(http, f"{self.api}/tracking/log_metrics", body.encode())

    async def search(self, http: Connection, exp_id: str) -> int:
        body = {
            "experiment_ids": [exp_id], "filter": "metrics.loss > 0.5",
            "order_by": ["metrics.loss DESC"], "max_results": 100,
        }  # fmt: skip
        return len((await self.post(http, "tracking/search_runs", body))["runs"])

    async def count(self, http: Connection, run_id: str) -> int:
        return len(
            await self.post(http, "tracking/get_metric_history", {"ref": run_id, "key": "loss"})
        )


class MlflowApi:
    name = "mlflow"
    pid: int | None = None

    def __init__(self, base: str) -> None:
        self.base = base
        self.api = "/api/2.0/mlflow"
        self.batches: Batches | None = None

    async def post(self, http: Connection, path: str, body: dict[str, Any]) -> Any:
        return json.loads(await _post(http, f"{self.api}/{path}", json.dumps(body).encode()))

    async def get(self, http: Connection, path: str, params: dict[str, Any]) -> Any:
        status, data = await http.request("GET", f"{self.api}/{path}?{urlencode(params)}")
        if status != 200:
            raise RuntimeError(f"{path}: {status} {data[:200].decode('utf-8', 'replace')}")
        return json.loads(data)

    async def setup(self, http: Connection, experiment: str) -> str:
        try:
            return str(
                (await self.post(http, "experiments/create", {"name": experiment}))["experiment_id"]
            )
        except RuntimeError:
            doc = await self.get(http, "experiments/get-by-name", {"experiment_name": experiment})
            return str(doc["experiment"]["experiment_id"])

    async def create_run(self, http: Connection, exp_id: str, i: int) -> str:
        body = {
            "experiment_id": exp_id, "run_name": f"client-{i}",
            "start_time": int(time.time() * 1000),
            "tags": [{"key": "mlflow.user", "value": "bench"}],
        }  # fmt: skip
        run = await self.post(http, "runs/create", body)
        run_id = str(run["run"]["info"]["run_id"])
        await self.post(
            http, "runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.01"}
        )
        return run_id

    async def log(self, http: Connection, run_id: str, start: int, batch: int) -> None:
        # {"run_id": ..., "metrics": [{"key": "loss", "value": v, "timestamp": t,
        #  "step": s}, ...]}, as json.dumps wrote it before
        if self.batches is None or self.batches.batch != batch:
            self.batches = Batches(
                batch, '{{"key":"loss","step":{step},"value":{value},"timestamp":{ts}}}'
            )
        points = self.batches.points(start, int(time.time() * 1000))
        body = f'{{"run_id":"{run_id}","metrics":[{points}]}}'
        await _post(http, f"{self.api}/runs/log-batch", body.encode())

    async def search(self, http: Connection, exp_id: str) -> int:
        body = {
            "experiment_ids": [exp_id], "filter": "metrics.loss > 0.5",
            "order_by": ["metrics.loss DESC"], "max_results": 100,
        }  # fmt: skip
        return len((await self.post(http, "runs/search", body)).get("runs", []))

    async def count(self, http: Connection, run_id: str) -> int:
        total, token = 0, None
        while True:
            params: dict[str, Any] = {"run_id": run_id, "metric_key": "loss", "max_results": 25000}
            if token:
                params["page_token"] = token
            doc = await self.get(http, "metrics/get-history", params)
            total += len(doc.get("metrics", []))
            token = doc.get("next_page_token")
            if not token:
                return total


# -- the workload ---------------------------------------------------------------------------


async def _retried(call: Callable[[], Any], attempts: int = 3) -> Any:
    """Set-up calls retried on a dropped connection (a loaded machine makes either server
    drop one now and then before the measured part starts)."""
    for attempt in range(attempts):
        try:
            return await call()
        except TransportError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(1.0)
    raise AssertionError("unreachable")


async def workload(
    api: Any,
    clients: int,
    warmup: float,
    measure: float,
    batch: int,
    search_every: int,
    experiment: str,
) -> dict[str, Any]:
    """One slice: ``clients`` fresh runs in a fresh experiment, load for ``warmup`` seconds
    (not counted) then ``measure`` seconds (counted), then the requests in flight finish
    (not counted) and every run's series is read back."""
    stats = Stats()
    first_error: list[str] = []
    done: list[tuple[float, int]] = []  # (when a log call was acknowledged, points)

    # One keep-alive connection per client, and one for the set-up.
    http = Connection(api.base)
    own = [Connection(api.base) for _ in range(clients)]
    try:
        exp_id = await _retried(lambda: api.setup(http, experiment))
        run_ids = await asyncio.gather(
            *(
                _retried(functools.partial(api.create_run, own[i], exp_id, i))
                for i in range(clients)
            )
        )
        sent = dict.fromkeys(run_ids, 0)
        started = time.perf_counter()
        window = (started + warmup, started + warmup + measure)

        def counted(t: float) -> bool:
            return window[0] <= t < window[1]

        async def client(run_id: str, http: Connection) -> None:
            step = 0
            n = 0
            while time.perf_counter() < window[1]:
                t0 = time.perf_counter()
                try:
                    await api.log(http, run_id, step, batch)
                except (RuntimeError, TransportError) as exc:
                    if time.perf_counter() >= window[0]:
                        stats.errors += 1
                        stats.log_errors += 1
                    if not first_error:
                        first_error.append(f"log: {type(exc).__name__}: {str(exc)[:160]}")
                    continue
                t1 = time.perf_counter()
                done.append((t1, batch))
                sent[run_id] += batch
                step += batch
                n += 1
                if counted(t1):
                    stats.points += batch
                if t1 >= window[0]:  # the slow calls that finish while draining count too
                    stats.log_lat.append(t1 - t0)
                if n % search_every == 0 and t1 < window[1]:
                    t0 = time.perf_counter()
                    try:
                        await api.search(http, exp_id)
                        t1 = time.perf_counter()
                        if t1 >= window[0]:
                            stats.search_lat.append(t1 - t0)
                    except (RuntimeError, TransportError) as exc:
                        if time.perf_counter() >= window[0]:
                            stats.errors += 1
                        if not first_error:
                            first_error.append(f"search: {type(exc).__name__}: {str(exc)[:160]}")

        cpu: dict[str, float] = {}

        async def probe() -> None:
            # CPU seconds of each side over the measured window (the same for both servers).
            await asyncio.sleep(max(0.0, window[0] - time.perf_counter()))
            before = cpu_snapshot(getattr(api, "pid", None))
            await asyncio.sleep(max(0.0, window[1] - time.perf_counter()))
            after = cpu_snapshot(getattr(api, "pid", None))
            cpu.update({k: after[k] - before[k] for k in after})

        await asyncio.gather(probe(), *(client(r, c) for r, c in zip(run_ids, own, strict=True)))
        drained = time.perf_counter() - window[1]
        gate = asyncio.Semaphore(4)  # reading every series back, a few at a time

        async def count(run_id: str, http: Connection) -> int:
            async with gate:
                for attempt in range(3):
                    try:
                        return int(await api.count(http, run_id))
                    except TransportError:
                        if attempt == 2:
                            raise
                        await asyncio.sleep(1.0)
                raise AssertionError("unreachable")

        counts = await asyncio.gather(*(count(r, c) for r, c in zip(run_ids, own, strict=True)))
    finally:
        for c in (http, *own):
            await c.close()
    exact = all(counts[i] == sent[r] for i, r in enumerate(run_ids))
    # Steady state: the points acknowledged in each 5 s of the slice, warm-up included.
    timeline = [0] * (int((warmup + measure) // 5) + 1)
    for t, n in done:
        if t < window[1]:
            timeline[int((t - started) // 5)] += n
    half = window[0] + measure / 2
    first = sum(n for t, n in done if window[0] <= t < half)
    second = sum(n for t, n in done if half <= t < window[1])
    return {
        "points": stats.points,
        "seconds": measure,
        "clients": clients,
        "batch": batch,
        "points_per_s": stats.points / measure,
        "first_half_points_per_s": first / (measure / 2),
        "second_half_points_per_s": second / (measure / 2),
        "timeline_points_per_s": [n / 5 for n in timeline],
        "drain_s": drained,
        "batches": len(stats.log_lat),
        "searches": len(stats.search_lat),
        "log_p50_ms": pct(stats.log_lat, 0.5),
        "log_p99_ms": pct(stats.log_lat, 0.99),
        "search_p50_ms": pct(stats.search_lat, 0.5),
        "search_p99_ms": pct(stats.search_lat, 0.99),
        "errors": stats.errors,
        "log_errors": stats.log_errors,
        "first_error": first_error[0] if first_error else None,
        "exactly_once": exact,
        "sent_points": sum(sent.values()),
        "stored_points": sum(counts),
        "cpu_s": cpu,
        "cpu_ms_per_batch": {k: v * 1000 / max(stats.points / batch, 1) for k, v in cpu.items()},
    }


# -- servers ----------------------------------------------------------------------------------


def start_syllabus(
    db: str, blobs: Path, workers: int, tmp: Path
) -> tuple[subprocess.Popen[bytes], str, float]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYLLABUS_")}
    cmd = [
        str(VENV / "python"), "-m", "syllabus", "server", "--db", db, "--blobs", str(blobs),
        "--port", str(port), "--workers", str(workers), "--no-ui",
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    wait_healthy(f"{base}/api/v1/health", proc)
    return proc, base, time.perf_counter() - t0


def start_mlflow(
    db: str, artifacts: Path, workers: int, tmp: Path, pool: int | None = None
) -> tuple[subprocess.Popen[bytes], str, float]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _mlflow import VENV_DIR, worker_env

    mlflow = VENV_DIR / "bin" / "mlflow"
    port = free_port()
    cmd = [
        str(mlflow), "server", "--backend-store-uri", db, "--default-artifact-root",
        artifacts.as_uri(), "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    t0 = time.perf_counter()
    env = worker_env()
    if pool is not None:  # MLflow's own settings (its default: 5 kept + 10 overflow)
        env["MLFLOW_SQLALCHEMYSTORE_POOL_SIZE"] = str(pool)
        env["MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW"] = str(pool)
    proc = subprocess.Popen(
        cmd, env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    wait_healthy(f"{base}/health", proc)
    return proc, base, time.perf_counter() - t0


def ensure_mlflow_pg() -> str | None:
    """MLflow on PostgreSQL needs psycopg2 in its venv; install it there once."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _mlflow import provision

    found, status = provision()
    if found is None:
        return status
    probe = subprocess.run(
        [str(found.python), "-c", "import psycopg2"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        pip = [
            str(found.python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "psycopg2-binary",
        ]
        if subprocess.run(pip, capture_output=True, check=False, timeout=600).returncode != 0:
            return "could not install psycopg2-binary into the MLflow venv"
    return None


def start_measured(
    label: str,
    start: Callable[..., tuple[subprocess.Popen[bytes], str, float]],
    db: str,
    args: argparse.Namespace,
    tmp: Path,
) -> tuple[subprocess.Popen[bytes], str, dict[str, Any]]:
    """Start a server twice (the first start creates the schema, the second is timed on an
    existing database) and measure its idle memory; the second one stays up."""
    first, _, created = start(db, tmp / f"{label}-blobs", args.workers, tmp)
    stop(first)
    print(f"{label}: first start (creates the schema) {created:.2f} s")
    proc, base, started = start(db, tmp / f"{label}-blobs", args.workers, tmp)
    time.sleep(2.0)  # let it settle before measuring idle memory
    idle = tree_rss(proc.pid)
    procs = tree_count(proc.pid)
    print(
        f"{label}: started in {started:.2f} s, idle RSS {idle / 2**20:.0f} MB in {procs} processes"
    )
    info = {"start_s": started, "first_start_s": created, "idle_rss_mb": idle / 2**20}
    info["processes"] = procs
    return proc, base, info


def run_slice(label: str, api: Any, number: int, args: argparse.Namespace) -> dict[str, Any]:
    measure = args.duration / args.slices
    result: dict[str, Any] = asyncio.run(
        workload(
            api, args.clients, args.warmup, measure, args.batch, args.search_every,
            f"load-{number}",
        )
    )  # fmt: skip
    result.update(server=label, slice=number, load_average=os.getloadavg()[0])
    steady = result["second_half_points_per_s"] / max(result["first_half_points_per_s"], 1e-9)
    timeline = " ".join(f"{v / 1000:.1f}" for v in result["timeline_points_per_s"])
    print(
        f"slice {number} {label:8}: {result['points_per_s']:>9,.0f} points/s "
        f"(halves {result['first_half_points_per_s']:,.0f} / "
        f"{result['second_half_points_per_s']:,.0f}, {steady:.2f}), "
        f"log p50 {result['log_p50_ms']:.0f} ms p99 {result['log_p99_ms']:.0f} ms, "
        f"search p50 {result['search_p50_ms']:.0f} ms p99 {result['search_p99_ms']:.0f} ms, "
        f"errors {result['errors']} ({result['log_errors']} logs), "
        f"exactly once: {result['exactly_once']} "
        f"({result['stored_points']:,} of {result['sent_points']:,}), "
        f"drain {result['drain_s']:.1f} s, load {result['load_average']:.1f}"
    )
    print(f"  {label} thousand points/s per 5 s, warm-up included: {timeline}")
    print(
        f"  {label} CPU s over the measured {measure:.0f} s (ms per counted batch): "
        + ", ".join(
            f"{k.replace('_', ' ')} {v:.1f} ({result['cpu_ms_per_batch'][k]:.2f})"
            for k, v in result["cpu_s"].items()
        )
    )
    if result["first_error"]:
        print(f"  {label} first failed call: {result['first_error']}")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--duration", type=float, default=60.0,
        help="measured seconds per server, split evenly across the slices",
    )  # fmt: skip
    parser.add_argument("--slices", type=int, default=3, help="slices per server")
    parser.add_argument(
        "--warmup", type=float, default=10.0,
        help="seconds of load at the start of each slice that are not counted",
    )  # fmt: skip
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1000, help="points per batch (MLflow's max)")
    parser.add_argument("--search-every", type=int, default=3, help="batches between searches")
    parser.add_argument(
        "--pg",
        default=os.environ.get("SYLLABUS_TEST_PG") or "postgresql://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument(
        "--mlflow-pool", type=int, metavar="N",
        help="MLflow's connection pool per worker: N kept and N more under bursts "
        "(default: MLflow's own, 5 and 10)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, help="shuffle the order within each pair")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    if args.slices < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--slices must be at least 1, --duration positive, --warmup not negative")

    admin = sa.create_engine(
        sa.engine.make_url(args.pg).set(drivername="postgresql+psycopg"),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
    )
    suffix = uuid.uuid4().hex[:8]
    names = {"syllabus": f"bench_syllabus_{suffix}", "mlflow": f"bench_mlflow_{suffix}"}
    results: dict[str, Any] = {"version": git_describe(), "args": vars(args), "slices": []}
    tmp = Path(tempfile.mkdtemp(prefix="syllabus-bench-server-"))
    procs: list[subprocess.Popen[bytes]] = []
    apis: dict[str, Any] = {}
    try:
        with admin.connect() as conn:
            for name in names.values():
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = sa.engine.make_url(args.pg)
        syl_db = url.set(drivername="postgresql", database=names["syllabus"])
        proc, base, results["syllabus"] = start_measured(
            "syllabus", start_syllabus, syl_db.render_as_string(False), args, tmp
        )
        procs.append(proc)
        apis["syllabus"] = SyllabusApi(base)
        apis["syllabus"].pid = proc.pid
        if not args.no_mlflow:
            problem = ensure_mlflow_pg()
            if problem:
                print(f"mlflow: skipped ({problem})")
            else:
                ml_db = url.set(drivername="postgresql+psycopg2", database=names["mlflow"])
                proc, base, results["mlflow"] = start_measured(
                    "mlflow",
                    functools.partial(start_mlflow, pool=args.mlflow_pool),
                    ml_db.render_as_string(False),
                    args,
                    tmp,
                )
                procs.append(proc)
                apis["mlflow"] = MlflowApi(base)
                apis["mlflow"].pid = proc.pid
        # Both servers stay up; the load alternates between them, one slice at a time, so
        # that what else the machine is doing falls on both alike. Pair i runs Syllabus
        # first when i is even and MLflow first when it is odd (or a seeded shuffle).
        shuffle = random.Random(args.seed) if args.seed is not None else None
        number = 0
        pairs: list[dict[str, dict[str, Any]]] = []
        for i in range(args.slices):
            order = list(apis)
            if shuffle is not None:
                shuffle.shuffle(order)
            elif i % 2:
                order.reverse()
            pair: dict[str, dict[str, Any]] = {}
            for label in order:
                number += 1
                pair[label] = run_slice(label, apis[label], number, args)
                results["slices"].append(pair[label])
            pairs.append(pair)
        summarize(results, pairs)
    finally:
        for proc in procs:
            stop(proc)
        with admin.connect() as conn:
            for name in names.values():
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        write_json(args.json, results)
    return 0 if results["syllabus"]["exactly_once"] else 1


def _credited(r: dict[str, Any]) -> float:
    """An MLflow slice's points/s as if its failed calls had cost it nothing: each one's
    client counted as idle for the whole window, each failed batch counted as arrived."""
    clients, errors = r["clients"], r["errors"]
    rate = r["points_per_s"] * clients / max(clients - errors, 1)
    return float(rate + r["log_errors"] * r["batch"] / r["seconds"])


def summarize(results: dict[str, Any], pairs: list[dict[str, dict[str, Any]]]) -> None:
    syl = [p["syllabus"] for p in pairs]
    s = results["syllabus"]
    s["exactly_once"] = all(r["exactly_once"] for r in syl)
    s["points_per_s"] = statistics.median(r["points_per_s"] for r in syl)
    print(
        f"syllabus: median {s['points_per_s']:,.0f} points/s over {len(syl)} slices, "
        f"exactly once in every slice: {s['exactly_once']}; "
        f"start {s['start_s']:.2f} s ({'PASS' if s['start_s'] < 2 else 'MISS'} < 2 s), "
        f"idle {s['idle_rss_mb']:.0f} MB ({'PASS' if s['idle_rss_mb'] < 300 else 'MISS'} "
        f"< 300 MB)"
    )
    if "mlflow" not in results:
        return
    m = results["mlflow"]
    mls = [p["mlflow"] for p in pairs]
    m["exactly_once"] = all(r["exactly_once"] for r in mls)
    m["points_per_s"] = statistics.median(r["points_per_s"] for r in mls)
    ratios = [
        p["syllabus"]["points_per_s"] / p["mlflow"]["points_per_s"]
        if p["mlflow"]["points_per_s"]
        else float("inf")
        for p in pairs
    ]
    ratio = statistics.median(ratios)
    results["ratios"] = ratios
    results["ratio"] = ratio
    # MLflow credited for its failed calls, at the most they could have cost it: each one
    # as if it had kept its client idle for the whole window (a pool timeout holds one for
    # 30 s), and each failed batch as if it had arrived.
    bounded = [
        p["syllabus"]["points_per_s"] / _credited(p["mlflow"])
        if p["mlflow"]["points_per_s"]
        else float("inf")
        for p in pairs
    ]
    results["ratio_credited"] = statistics.median(bounded)
    print(
        f"mlflow: median {m['points_per_s']:,.0f} points/s, exactly once in every slice: "
        f"{m['exactly_once']}, errors {sum(r['errors'] for r in mls)}; start "
        f"{m['start_s']:.2f} s, idle {m['idle_rss_mb']:.0f} MB in {m['processes']} processes"
    )
    # A pair whose MLflow slice failed calls (its pool timing out) measures in part MLflow's
    # failure: the verdict is then taken on the ratios with MLflow credited for them, and
    # withheld when more than a tenth of its clients' time could have been lost.
    failed = sum(r["errors"] for r in mls)
    verdict = "PASS" if results["ratio_credited"] >= 20 else "MISS"
    if failed and any(r["errors"] > r["clients"] / 10 for r in mls):
        verdict = "no verdict: MLflow failed too many calls"
    elif failed:
        verdict += (
            f"; {results['ratio_credited']:.1f}x with MLflow credited for {failed} failed calls"
        )
    print(
        "paired ratios (Syllabus / MLflow points/s): "
        + ", ".join(f"{r:.1f}x" for r in ratios)
        + f"; median {ratio:.1f}x ({verdict}; target >= 20x)"
    )


if __name__ == "__main__":
    sys.exit(main())
