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
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    errors: int = 0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_rss(pid: int) -> int:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


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


# -- the two APIs ---------------------------------------------------------------------------


class SyllabusApi:
    name = "syllabus"

    def __init__(self, base: str) -> None:
        self.api = f"{base}/api/v1/w/default"

    async def post(self, http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> Any:
        r = await http.post(f"{self.api}/{path}", content=json.dumps(body))
        if r.status_code != 200:
            raise RuntimeError(f"{path}: {r.status_code} {r.text[:200]}")
        return r.json()

    async def setup(self, http: httpx.AsyncClient, experiment: str) -> str:
        try:
            exp = await self.post(http, "tracking/create_experiment", {"name": experiment})
        except RuntimeError:
            exp = await self.post(
                http, "tracking/get_experiment", {"ref": experiment, "by_name": True}
            )
        return str(exp["id"])

    async def create_run(self, http: httpx.AsyncClient, exp_id: str, i: int) -> str:
        now = int(time.time() * 1000)
        run_id = uuid.uuid4().hex
        body = {
            "experiment_id": exp_id, "run_id": run_id, "name": f"client-{i}", "user": "bench",
            "host": "bench", "start_time": now, "params": {"lr": "0.01"},
        }  # fmt: skip
        await self.post(http, "tracking/create_run", body)
        return run_id

    async def log(
        self, http: httpx.AsyncClient, run_id: str, points: list[tuple[int, int, float]]
    ) -> None:
        series = [{"run_id": run_id, "key": "loss", "points": points}]
        await self.post(
            http, "tracking/log_metrics", {"points": series, "batch_id": uuid.uuid4().hex}
        )

    async def search(self, http: httpx.AsyncClient, exp_id: str) -> int:
        body = {
            "experiment_ids": [exp_id], "filter": "metrics.loss > 0.5",
            "order_by": ["metrics.loss DESC"], "max_results": 100,
        }  # fmt: skip
        return len((await self.post(http, "tracking/search_runs", body))["runs"])

    async def count(self, http: httpx.AsyncClient, run_id: str) -> int:
        return len(
            await self.post(http, "tracking/get_metric_history", {"ref": run_id, "key": "loss"})
        )


class MlflowApi:
    name = "mlflow"

    def __init__(self, base: str) -> None:
        self.api = f"{base}/api/2.0/mlflow"

    async def post(self, http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> Any:
        r = await http.post(f"{self.api}/{path}", json=body)
        if r.status_code != 200:
            raise RuntimeError(f"{path}: {r.status_code} {r.text[:200]}")
        return r.json()

    async def setup(self, http: httpx.AsyncClient, experiment: str) -> str:
        try:
            return str(
                (await self.post(http, "experiments/create", {"name": experiment}))["experiment_id"]
            )
        except RuntimeError:
            r = await http.get(
                f"{self.api}/experiments/get-by-name", params={"experiment_name": experiment}
            )
            return str(r.json()["experiment"]["experiment_id"])

    async def create_run(self, http: httpx.AsyncClient, exp_id: str, i: int) -> str:
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

    async def log(
        self, http: httpx.AsyncClient, run_id: str, points: list[tuple[int, int, float]]
    ) -> None:
        metrics = [{"key": "loss", "value": v, "timestamp": t, "step": s} for s, t, v in points]
        await self.post(http, "runs/log-batch", {"run_id": run_id, "metrics": metrics})

    async def search(self, http: httpx.AsyncClient, exp_id: str) -> int:
        body = {
            "experiment_ids": [exp_id], "filter": "metrics.loss > 0.5",
            "order_by": ["metrics.loss DESC"], "max_results": 100,
        }  # fmt: skip
        return len((await self.post(http, "runs/search", body)).get("runs", []))

    async def count(self, http: httpx.AsyncClient, run_id: str) -> int:
        total, token = 0, None
        while True:
            params: dict[str, Any] = {"run_id": run_id, "metric_key": "loss", "max_results": 25000}
            if token:
                params["page_token"] = token
            r = await http.get(f"{self.api}/metrics/get-history", params=params)
            doc = r.json()
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
        except httpx.TransportError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(1.0)
    raise AssertionError("unreachable")


async def workload(
    api: Any, clients: int, duration: float, batch: int, search_every: int
) -> dict[str, Any]:
    stats = Stats()

    def connection() -> httpx.AsyncClient:
        # One connection per client: a pool shared by all clients scans every connection
        # on each request (a third of the load generator's CPU, which competes with the
        # server for the machine's two cores).
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        return httpx.AsyncClient(
            timeout=120, limits=limits, headers={"Content-Type": "application/json"}
        )

    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(connection())
        own = [await stack.enter_async_context(connection()) for _ in range(clients)]
        exp_id = await _retried(lambda: api.setup(http, "load"))
        run_ids = await asyncio.gather(
            *(
                _retried(functools.partial(api.create_run, own[i], exp_id, i))
                for i in range(clients)
            )
        )
        sent = dict.fromkeys(run_ids, 0)
        deadline = time.perf_counter() + duration

        async def client(run_id: str, http: httpx.AsyncClient) -> None:
            step = 0
            n = 0
            while time.perf_counter() < deadline:
                now = int(time.time() * 1000)
                points = [(step + k, now, 1.0 / (step + k + 1) + 0.5) for k in range(batch)]
                t0 = time.perf_counter()
                try:
                    await api.log(http, run_id, points)
                except (RuntimeError, httpx.HTTPError):
                    stats.errors += 1
                    continue
                stats.log_lat.append(time.perf_counter() - t0)
                sent[run_id] += batch
                stats.points += batch
                step += batch
                n += 1
                if n % search_every == 0:
                    t0 = time.perf_counter()
                    try:
                        await api.search(http, exp_id)
                        stats.search_lat.append(time.perf_counter() - t0)
                    except (RuntimeError, httpx.HTTPError):
                        stats.errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(client(r, c) for r, c in zip(run_ids, own, strict=True)))
        elapsed = time.perf_counter() - started
        gate = asyncio.Semaphore(4)  # reading every series back, a few at a time

        async def count(run_id: str, http: httpx.AsyncClient) -> int:
            async with gate:
                for attempt in range(3):
                    try:
                        return int(await api.count(http, run_id))
                    except httpx.TransportError:
                        if attempt == 2:
                            raise
                        await asyncio.sleep(1.0)
                raise AssertionError("unreachable")

        counts = await asyncio.gather(*(count(r, c) for r, c in zip(run_ids, own, strict=True)))
    exact = all(counts[i] == sent[r] for i, r in enumerate(run_ids))
    return {
        "points": stats.points,
        "seconds": elapsed,
        "points_per_s": stats.points / elapsed,
        "batches": len(stats.log_lat),
        "searches": len(stats.search_lat),
        "log_p50_ms": pct(stats.log_lat, 0.5),
        "log_p99_ms": pct(stats.log_lat, 0.99),
        "search_p50_ms": pct(stats.search_lat, 0.5),
        "search_p99_ms": pct(stats.search_lat, 0.99),
        "errors": stats.errors,
        "exactly_once": exact,
        "stored_points": sum(counts),
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
    db: str, artifacts: Path, workers: int, tmp: Path
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
    proc = subprocess.Popen(
        cmd, env=worker_env(), cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
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


def run_one(
    label: str,
    start: Callable[..., tuple[subprocess.Popen[bytes], str, float]],
    api_cls: Any,
    db: str,
    args: argparse.Namespace,
    tmp: Path,
) -> dict[str, Any]:
    first, _, created = start(db, tmp / f"{label}-blobs", args.workers, tmp)
    stop(first)  # the first start creates the schema; the timed one opens an existing database
    print(f"{label}: first start (creates the schema) {created:.2f} s")
    proc, base, started = start(db, tmp / f"{label}-blobs", args.workers, tmp)
    try:
        time.sleep(2.0)  # let it settle before measuring idle memory
        idle = tree_rss(proc.pid)
        procs = tree_count(proc.pid)
        print(
            f"{label}: started in {started:.2f} s, idle RSS {idle / 2**20:.0f} MB "
            f"in {procs} processes"
        )
        result: dict[str, Any] = asyncio.run(
            workload(api_cls(base), args.clients, args.duration, args.batch, args.search_every)
        )
        result.update(
            start_s=started, first_start_s=created, idle_rss_mb=idle / 2**20, processes=procs
        )
        print(
            f"{label}: {result['points_per_s']:,.0f} points/s, "
            f"log p50 {result['log_p50_ms']:.1f} ms "
            f"p99 {result['log_p99_ms']:.1f} ms, search p50 {result['search_p50_ms']:.1f} ms "
            f"p99 {result['search_p99_ms']:.1f} ms, errors {result['errors']}, "
            f"exactly once: {result['exactly_once']}"
        )
        return result
    finally:
        stop(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1000, help="points per batch (MLflow's max)")
    parser.add_argument("--search-every", type=int, default=3, help="batches between searches")
    parser.add_argument(
        "--pg",
        default=os.environ.get("SYLLABUS_TEST_PG") or "postgresql://postgres@127.0.0.1:5432/test",
    )
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    admin = sa.create_engine(
        sa.engine.make_url(args.pg).set(drivername="postgresql+psycopg"),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
    )
    suffix = uuid.uuid4().hex[:8]
    names = {"syllabus": f"bench_syllabus_{suffix}", "mlflow": f"bench_mlflow_{suffix}"}
    results: dict[str, Any] = {"version": git_describe(), "args": vars(args)}
    tmp = Path(tempfile.mkdtemp(prefix="syllabus-bench-server-"))
    try:
        with admin.connect() as conn:
            for name in names.values():
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = sa.engine.make_url(args.pg)
        syl_db = url.set(drivername="postgresql", database=names["syllabus"]).render_as_string(
            False
        )
        results["syllabus"] = run_one("syllabus", start_syllabus, SyllabusApi, syl_db, args, tmp)
        if not args.no_mlflow:
            problem = ensure_mlflow_pg()
            if problem:
                print(f"mlflow: skipped ({problem})")
            else:
                ml_db = url.set(drivername="postgresql+psycopg2", database=names["mlflow"])
                ml_db = ml_db.render_as_string(False)
                results["mlflow"] = run_one("mlflow", start_mlflow, MlflowApi, ml_db, args, tmp)
                s, m = results["syllabus"], results["mlflow"]
                ratio = s["points_per_s"] / m["points_per_s"] if m["points_per_s"] else float("inf")
                results["ratio"] = ratio
                print(
                    f"ratio: {ratio:.1f}x the points/s of MLflow; start {s['start_s']:.2f} s vs "
                    f"{m['start_s']:.2f} s; idle {s['idle_rss_mb']:.0f} MB vs "
                    f"{m['idle_rss_mb']:.0f} MB"
                )
    finally:
        with admin.connect() as conn:
            for name in names.values():
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        write_json(args.json, results)
    ok = results["syllabus"]["exactly_once"] and results.get("mlflow", {}).get("exactly_once", True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
