"""Experiment tracking benchmark: Syllabus vs MLflow on SQLite, same workloads, same run.

Workloads (issue 3, "Benchmarks"):

* single-call logging: ``syllabus.log_metric`` N times in one run, timed from the first
  call until every point is durable (the end of the ``with start_run()`` block, which
  flushes); MLflow: ``mlflow.log_metric`` (one committed write per call) through
  ``end_run``;
* batch logging: points through ``Client.log_batch`` / ``MlflowClient.log_batch``, 1,000
  points per call over 10 keys, through the end of the run;
* runs: create N finished runs with 10 params and 10 metrics each (create, log_batch,
  end), then a filtered, ordered search returning 100 rows, repeated;
* artifacts: one 100 MiB random file, then a folder of 1,000 x 1 KiB random files;
* start-up: ``import syllabus``, ``syllabus --help`` and ``import mlflow`` in fresh
  processes (wall clock, interpreter start included, as a user pays it).

Method (as in shared/research/anchor_mlflow.md, and bench/blobs.py): each repetition runs
the two tools in a random order per section, every workload gets a fresh folder and a
fresh SQLite database, ``os.sync()`` (untimed) precedes every timed step, figures are
medians over repetitions and ratios are medians of per-repetition (paired) ratios.
MLflow runs in its own venv (``bench/.venv-mlflow``, see ``bench/_mlflow.py``) as a
worker subprocess that times each workload itself; Syllabus runs in this process. MLflow
is slow, so its single-call and batch workloads are smaller than Syllabus's (and capped in
time for ``--size full``); those sections compare *rates* (points/s) and say so.

Run: ``.venv/bin/python bench/tracking.py`` (small, a few minutes) or ``--size full`` (the
issue's sizes). See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

try:  # run as a script (bench/ on sys.path) or as `python -m bench.tracking`
    import _mlflow
    from _common import git_describe, span, sync, write_json, write_random
except ImportError:  # pragma: no cover
    from bench import _mlflow
    from bench._common import git_describe, span, sync, write_json, write_random

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
MiB = 1 << 20
KiB = 1 << 10

# targets (issue 3)
TARGET_SINGLE = 1000.0  # single-call points/s >= 1,000x MLflow's
TARGET_BATCH = 50.0  # batch points/s >= 50x
TARGET_CREATE = 20.0  # runs created/s >= 20x
TARGET_SEARCH = 30.0  # filtered, ordered search >= 30x faster
TARGET_ARTIFACTS = 2.0  # artifact logging >= 2x faster
TARGET_IMPORT_S = 0.3  # `import syllabus` < 0.3 s
TARGET_HELP_S = 0.5  # `syllabus --help` < 0.5 s

# MLflow 3.17.2 on SQLite as the issue quotes it (research anchor, busy machine, run1)
ANCHOR = {
    "single": "120 points/s",
    "batch": "11,349 points/s",
    "create": "61 runs/s",
    "search": "0.59 s (filter, 5,000 runs)",
    "import": "1.57 s",
}

BATCH_SIZE = 1000  # points per log_batch call (MLflow's per-request limit)
RAW_TXN_POINTS = 50_000  # points per transaction of the raw SQLite reference
BATCH_KEYS = 10
NPARAMS = 10
NMETRICS = 10


@dataclass(frozen=True)
class Size:
    name: str
    single_syl: int  # single log_metric calls, Syllabus
    single_mlf: int  # ... MLflow
    batch_syl: int  # points through log_batch, Syllabus
    batch_mlf: int  # ... MLflow
    runs: int  # runs created by each tool (the same number: the search compares them)
    big_mib: int  # artifact file
    files: int  # artifact folder, 1 KiB each
    reps: int
    searches: int  # search repeats per repetition (median taken)
    mlf_cap_s: float  # time cap of an MLflow single/batch section (rate extrapolated)
    startup_runs: int  # fresh processes per start-up measurement


SIZES = {
    "small": Size(
        "small",
        single_syl=100_000,
        single_mlf=2_000,
        batch_syl=200_000,
        batch_mlf=50_000,
        runs=800,  # ~118 runs match the filter: the search returns 100 rows
        big_mib=100,
        files=1_000,
        reps=3,
        searches=5,
        mlf_cap_s=30.0,
        startup_runs=5,
    ),
    "full": Size(
        "full",
        single_syl=100_000,
        single_mlf=100_000,
        batch_syl=1_000_000,
        batch_mlf=1_000_000,
        runs=10_000,
        big_mib=100,
        files=1_000,
        reps=3,
        searches=5,
        mlf_cap_s=60.0,
        startup_runs=7,
    ),
}

SECTIONS = ("startup", "single", "batch", "runs", "artifacts")
FLOORS = {
    "copy": "kernel copy of the file (shutil.copyfile)",
    "copy_fsync": "kernel copy + fsync",
    "blake3": "BLAKE3 of the file alone (multi-threaded)",
    "cas_parallel": "BLAKE3 || kernel copy + fsync, in parallel",
    "cas": "durable content-addressed floor (the faster of the two above)",
    "tree_copy": "shutil.copytree of the folder (no fsync)",
}


# --------------------------------------------------------------------------- helpers


def make_tree(folder: Path, nfiles: int, rng: random.Random) -> None:
    dirs = 10
    for d in range(dirs):
        sub = folder / f"d{d:02d}"
        sub.mkdir(parents=True)
        for i in range(nfiles // dirs):
            (sub / f"f{i:05d}.bin").write_bytes(rng.randbytes(KiB))


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYLLABUS_")}
    env.pop("PYTHONPATH", None)
    return env


def wall(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
    )
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` exited {proc.returncode}: {proc.stderr[-300:]}")
    return took


def import_breakdown(cmd: list[str], cwd: Path, env: dict[str, str], top: int = 6) -> list:
    """Heaviest imports under ``-X importtime``: (module, cumulative ms), nested ones skipped
    when their parent is already listed."""
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
    )
    rows = []
    pat = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
    for line in proc.stderr.splitlines():
        m = pat.match(line)
        if m:
            rows.append((len(m.group(3)) // 2, m.group(4), int(m.group(2)) / 1000))
    # importtime prints children before parents; keep modules that are not syllabus itself
    # and whose top-level package differs from the previous pick
    picked: list[tuple[str, float]] = []
    for _depth, name, ms in sorted(rows, key=lambda r: -r[2]):
        root = name.split(".")[0]
        if root in ("syllabus", "encodings", "site") or name.startswith("_"):
            continue
        if any(p.split(".")[0] == root for p, _ in picked):
            continue
        picked.append((name, ms))
        if len(picked) >= top:
            break
    return picked


# --------------------------------------------------------------------------- Syllabus


class Syllabus:
    """The tracking component under test, in this process, one fresh workspace per workload."""

    def __init__(self) -> None:
        import syllabus
        from syllabus.client import init_workspace
        from syllabus.fluent import set_client

        self.syllabus = syllabus
        self.init_workspace = init_workspace
        self.set_client = set_client
        for name in ("start_run", "log_metric", "flush", "Client"):
            getattr(syllabus, name)  # fail early (ImportError below) when not there yet

    def client(self, folder: Path) -> Any:
        folder.mkdir(parents=True, exist_ok=True)
        self.init_workspace(folder)
        return self.syllabus.Client(folder)

    def history_len(self, folder: Path, run_id: str, keys: list[str]) -> int | None:
        """Points stored for the run under ``keys``, read back through a fresh client."""
        client = self.syllabus.Client(folder)
        try:
            return sum(len(client.get_metric_history(run_id, key)) for key in keys)
        except Exception:
            return None
        finally:
            with contextlib.suppress(Exception):
                client.close()

    def single(self, folder: Path, n: int) -> dict[str, Any]:
        s = self.syllabus
        rng = random.Random(1)
        values = [rng.random() for _ in range(min(n, 1000))]
        nv = len(values)
        client = self.client(folder)
        self.set_client(client)  # the fluent API logs into this workspace
        try:
            with s.start_run(experiment="single") as run:
                s.log_metric("warmup", 0.0, step=0)  # untimed: first-call code paths
                s.flush()
                log_metric = s.log_metric
                sync()
                t0 = time.perf_counter()
                for i in range(n):
                    log_metric("loss", values[i % nv], step=i)
                t1 = time.perf_counter()
            t2 = time.perf_counter()
        finally:
            self.set_client(None)
            client.close()
        return {
            "points": n,
            "requested": n,
            "capped": False,
            "seconds": t2 - t0,
            "calls": t1 - t0,
            "end": t2 - t1,
            "stored": self.history_len(folder, run.id, ["loss"]),
        }

    def raw_sqlite(self, folder: Path, points: int, batch: int, keys: int) -> dict[str, Any]:
        """Reference: the same points inserted with ``sqlite3`` ``executemany`` straight into
        the ``metrics`` table of a fresh Syllabus database (its keys, indexes and any foreign
        keys as declared), ``synchronous=NORMAL`` in WAL as Syllabus opens it, one
        transaction per ``RAW_TXN_POINTS``: what the schema costs with the plainest client
        code (no SQLAlchemy, buffer or ``latest_metrics``). Multi-row ``VALUES`` inserts can
        beat it."""
        import sqlite3

        client = self.client(folder)
        run_id = client.create_run(client.create_experiment("raw").id).id
        names = [f"m{k}" for k in range(keys)]
        client.log_batch(run_id, metrics=[(n, 0.0, -1, 0) for n in names], synchronous=True)
        client.end_run(run_id)
        client.close()
        con = sqlite3.connect(folder / ".syllabus" / "syllabus.db", isolation_level=None)
        con.execute("PRAGMA foreign_keys = ON")
        con.execute("PRAGMA synchronous = NORMAL")
        (run_pk,) = con.execute("SELECT pk FROM runs WHERE id = ?", (run_id,)).fetchone()
        key_ids = dict(con.execute("SELECT key, id FROM metric_keys").fetchall())
        kid = [key_ids[n] for n in names]
        per_key = batch // keys
        rng = random.Random(2)
        values = [rng.random() for _ in range(batch)]
        insert = "INSERT INTO metrics (run_pk, key_id, step, timestamp, value) VALUES (?,?,?,?,?)"
        sync()
        t0 = time.perf_counter()
        done = step = 0
        while done < points:
            ts = int(time.time() * 1000)
            rows = []
            while len(rows) < RAW_TXN_POINTS and done + len(rows) < points:
                rows += [
                    (run_pk, kid[k], step + j, ts, values[k * per_key + j])
                    for k in range(keys)
                    for j in range(per_key)
                ]
                step += per_key
            con.execute("BEGIN")
            con.executemany(insert, rows)
            con.execute("COMMIT")
            done += len(rows)
        t1 = time.perf_counter()
        stored = con.execute("SELECT count(*) FROM metrics WHERE step >= 0").fetchone()[0]
        con.close()
        return {"points": done, "requested": points, "seconds": t1 - t0, "stored": stored}

    def batch(self, folder: Path, points: int, batch: int, keys: int) -> dict[str, Any]:
        client = self.client(folder)
        exp = client.create_experiment("batch")
        run_id = client.create_run(exp.id).id
        client.log_batch(run_id, metrics=[("warmup", 0.0, 0, 0)], synchronous=True)  # untimed
        per_key = batch // keys
        rng = random.Random(2)
        values = [rng.random() for _ in range(batch)]
        names = [f"m{k}" for k in range(keys)]
        sync()
        t0 = time.perf_counter()
        done = step = 0
        while done < points:
            ts = int(time.time() * 1000)
            # (key, value, step, timestamp) tuples: the documented fastest form
            metrics = [
                (names[k], values[k * per_key + j], step + j, ts)
                for k in range(keys)
                for j in range(per_key)
            ]
            client.log_batch(run_id, metrics=metrics)
            done += len(metrics)
            step += per_key
        t1 = time.perf_counter()
        client.end_run(run_id)
        t2 = time.perf_counter()
        client.close()
        return {
            "points": done,
            "requested": points,
            "capped": False,
            "seconds": t2 - t0,
            "calls": t1 - t0,
            "end": t2 - t1,
            "stored": self.history_len(folder, run_id, names),
        }

    def runs(self, folder: Path, n: int, nparams: int, nmetrics: int, searches: int) -> dict:
        client = self.client(folder)
        exp = client.create_experiment("runs").id
        warm = client.create_run(exp)  # untimed: first-call code paths
        client.end_run(warm.id)
        client.delete_run(warm.id)
        payloads = [_mlflow.run_payload(i, nparams, nmetrics) for i in range(n)]
        sync()
        t0 = time.perf_counter()
        for params, metrics in payloads:
            ts = int(time.time() * 1000)
            # three calls, like MLflow's; Syllabus takes the params with the run
            run = client.create_run(exp, params=params)
            client.log_batch(run.id, metrics=[(k, v, 0, ts) for k, v in metrics.items()])
            client.end_run(run.id)  # flushes: the run's metrics are durable
        create_s = time.perf_counter() - t0
        times = []
        rows: list[Any] = []
        for _ in range(searches):
            s0 = time.perf_counter()
            rows = list(
                client.search_runs(
                    exp,
                    filter=_mlflow.SEARCH_FILTER,
                    order_by=[_mlflow.SEARCH_ORDER],
                    max_results=_mlflow.SEARCH_ROWS,
                )
            )
            times.append(time.perf_counter() - s0)
        client.close()

        def acc(r: Any) -> float | None:
            m = r.metrics.get("acc")
            return getattr(m, "value", m)

        return {
            "runs": n,
            "requested": n,
            "capped": False,
            "seconds": create_s,
            "search": times,
            "rows": len(rows),
            "top": [acc(r) for r in rows[:5]],
            "bottom": acc(rows[-1]) if rows else None,
        }

    def artifacts(self, folder: Path, file: Path, tree: Path) -> dict[str, Any]:
        client = self.client(folder)
        exp = client.create_experiment("artifacts")
        run_id = client.create_run(exp.id).id
        warm = folder / "warm.txt"
        warm.write_text("warm")
        client.log_artifact(run_id, warm)  # untimed: first-call code paths
        out: dict[str, Any] = {}
        for name, call in (
            ("file", lambda: client.log_artifact(run_id, file)),
            ("tree", lambda: client.log_artifacts(run_id, tree, artifact_path="tree")),
        ):
            sync()
            t0 = time.perf_counter()
            call()
            t1 = time.perf_counter()
            sync()
            t2 = time.perf_counter()
            out[name] = {"seconds": t1 - t0, "sync": t2 - t1}
        client.end_run(run_id)
        with contextlib.suppress(Exception):
            out["stored_files"] = len(client.list_artifacts(run_id))
        client.close()
        return out


# --------------------------------------------------------------------------- physical references


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _blake3_file(path: Path) -> str:
    import mmap

    import blake3

    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        return str(blake3.blake3(mm, max_threads=blake3.blake3.AUTO).hexdigest())


def floors(folder: Path, file: Path, tree: Path) -> dict[str, Any]:
    """Physical references on the same data, in the same repetition, no tool involved.

    * ``copy``: a kernel copy of the file (``shutil.copyfile``: sendfile, what MLflow does);
    * ``copy_fsync``: the same, then fsync of the copy (the copy made durable);
    * ``blake3``: BLAKE3 of the file alone, multi-threaded, over a mapping;
    * ``cas_parallel``: hash the file (one thread) while copying it and syncing the copy
      (the other);
    * ``cas``: what any durable content-addressed store must do at least, the faster of
      ``cas_parallel`` and ``blake3`` + ``copy_fsync`` one after the other (on a loaded
      machine the parallel form can lose);
    * ``tree_copy``: ``shutil.copytree`` of the folder (what MLflow's ``log_artifacts`` does).

    Each is timed like a tool's step: ``os.sync()`` before (untimed), "sync" after.
    """
    import threading

    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}

    def step(name: str, fn: Callable[[], Any]) -> None:
        sync()
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        sync()
        out[name] = {"seconds": t1 - t0, "sync": time.perf_counter() - t1}

    def copy_fsync(dest: Path) -> None:
        shutil.copyfile(file, dest)
        _fsync_path(dest)

    def cas() -> None:
        hashed = threading.Thread(target=_blake3_file, args=(file,))
        hashed.start()
        copy_fsync(folder / "cas.bin")
        hashed.join()

    step("copy", lambda: shutil.copyfile(file, folder / "copy.bin"))
    step("copy_fsync", lambda: copy_fsync(folder / "copy-fsync.bin"))
    step("blake3", lambda: _blake3_file(file))
    step("cas_parallel", cas)
    par, seq_a, seq_b = out["cas_parallel"], out["blake3"], out["copy_fsync"]
    seq = {"seconds": seq_a["seconds"] + seq_b["seconds"], "sync": seq_b["sync"]}
    out["cas"] = min(par, seq, key=lambda d: d["seconds"])
    step("tree_copy", lambda: shutil.copytree(tree, folder / "tree"))
    return out


# --------------------------------------------------------------------------- sections


def paired_jobs(
    section: str,
    rep: int,
    jobs: list[tuple[str, Callable[[], dict[str, Any]]]],
    order_rng: random.Random,
    log: Callable[[str], None],
) -> dict[str, Any]:
    order_rng.shuffle(jobs)
    out: dict[str, Any] = {"order": [name for name, _ in jobs], "load": os.getloadavg()[0]}
    for name, job in jobs:
        log(f"  rep {rep + 1} {section}: {name}")
        try:
            out[name] = job()
        except _mlflow.MlflowError as exc:
            log(f"  MLflow failed: {exc}")
            out["mlflow_error"] = str(exc)
    return out


def bench_rep(
    rep: int,
    size: Size,
    sections: set[str],
    work: Path,
    data: dict[str, Path],
    syl: Syllabus | None,
    worker: _mlflow.Worker | None,
    order_rng: random.Random,
    log: Callable[[str], None],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    root = work / f"rep{rep}"

    def mlf(op: str, folder: Path, **kw: Any) -> Callable[[], dict[str, Any]]:
        def job() -> dict[str, Any]:
            assert worker is not None
            try:
                return worker.call(op, folder=str(folder), **kw)
            finally:
                worker.call("cleanup", folder=str(folder))

        return job

    def syl_job(fn: Callable[..., dict[str, Any]], folder: Path, *a: Any) -> Callable[[], dict]:
        def job() -> dict[str, Any]:
            try:
                return fn(folder, *a)
            finally:
                shutil.rmtree(folder, ignore_errors=True)

        return job

    plan: dict[str, list[tuple[str, Callable[[], dict[str, Any]]]]] = {}
    if "single" in sections:
        jobs = []
        if syl:
            jobs.append(("syllabus", syl_job(syl.single, root / "syl-single", size.single_syl)))
        if worker:
            jobs.append(
                (
                    "mlflow",
                    mlf("single", root / "mlf-single", n=size.single_mlf, cap_s=size.mlf_cap_s),
                )
            )
        plan["single"] = jobs
    if "batch" in sections:
        jobs = []
        if syl:
            args = (size.batch_syl, BATCH_SIZE, BATCH_KEYS)
            jobs.append(("syllabus", syl_job(syl.batch, root / "syl-batch", *args)))
            jobs.append(("sqlite", syl_job(syl.raw_sqlite, root / "raw-batch", *args)))
        if worker:
            kw = {"points": size.batch_mlf, "batch": BATCH_SIZE, "keys": BATCH_KEYS}
            jobs.append(("mlflow", mlf("batch", root / "mlf-batch", cap_s=size.mlf_cap_s, **kw)))
        plan["batch"] = jobs
    if "runs" in sections:
        jobs = []
        if syl:
            args = (size.runs, NPARAMS, NMETRICS, size.searches)
            jobs.append(("syllabus", syl_job(syl.runs, root / "syl-runs", *args)))
        if worker:
            kw = {"n": size.runs, "nparams": NPARAMS, "nmetrics": NMETRICS}
            kw["searches"] = size.searches
            # no cap that matters: the search must run over as many runs as Syllabus's
            jobs.append(("mlflow", mlf("runs", root / "mlf-runs", cap_s=36_000.0, **kw)))
        plan["runs"] = jobs
    if "artifacts" in sections:
        jobs = []
        files = (data["file"], data["tree"])
        if syl:
            jobs.append(("syllabus", syl_job(syl.artifacts, root / "syl-art", *files)))
        if worker:
            kw = {"file": str(files[0]), "tree": str(files[1])}
            jobs.append(("mlflow", mlf("artifacts", root / "mlf-art", **kw)))
        jobs.append(("floor", syl_job(floors, root / "floor", *files)))
        plan["artifacts"] = jobs
    for section, jobs in plan.items():
        out[section] = paired_jobs(section, rep, jobs, order_rng, log)
    shutil.rmtree(root, ignore_errors=True)
    return out


def bench_startup(
    size: Size, work: Path, mlflow: _mlflow.Mlflow | None, log: Callable[[str], None]
) -> dict[str, Any]:
    """Fresh processes, interleaved in a random order per round; wall clock each."""
    cwd = work / "startup"
    cwd.mkdir(exist_ok=True)
    env = clean_env()
    py = sys.executable
    cmds: dict[str, list[str]] = {
        "python": [py, "-c", "pass"],
        "import_syllabus": [py, "-c", "import syllabus"],
        "help": [str(VENV_BIN / "syllabus"), "--help"],
    }
    if mlflow is not None:
        cmds["mlflow_python"] = [str(mlflow.python), "-c", "pass"]
        cmds["import_mlflow"] = [str(mlflow.python), "-c", "import mlflow"]
    envs = {
        k: (_mlflow.worker_env() if k.startswith(("mlflow", "import_mlflow")) else env)
        for k in cmds
    }
    out: dict[str, list[float]] = {k: [] for k in cmds}
    log(f"  start-up: {size.startup_runs} rounds of {', '.join(cmds)}")
    for k, cmd in cmds.items():  # one untimed round: warm the page cache
        wall(cmd, cwd, envs[k])
    rng = random.Random()
    for _ in range(size.startup_runs):
        keys = list(cmds)
        rng.shuffle(keys)
        for k in keys:
            out[k].append(wall(cmds[k], cwd, envs[k]))
    result: dict[str, Any] = {"runs": out}
    result["import_top"] = import_breakdown(
        [py, "-X", "importtime", "-c", "import syllabus"], cwd, env
    )
    result["help_top"] = import_breakdown(
        [py, "-X", "importtime", "-m", "syllabus", "--help"], cwd, env
    )
    return result


# --------------------------------------------------------------------------- summary


def rate_drift(marks: list | None) -> float | None:
    """Rate over the second half of the recorded progress / rate over the first half
    (1.0: flat, so extrapolating the rate is fair; < 1: the tool slows down as it grows)."""
    if not marks or len(marks) < 3:
        return None
    mid = marks[len(marks) // 2]
    end = marks[-1]
    first = mid[0] / mid[1]
    second = (end[0] - mid[0]) / (end[1] - mid[1])
    return second / first


def summarize(size: Size, reps: list[dict], startup: dict | None) -> dict[str, Any]:
    s: dict[str, Any] = {}

    def get(r: dict, *keys: str) -> Any:
        v: Any = r
        for k in keys:
            if not isinstance(v, dict) or k not in v:
                return None
            v = v[k]
        return v

    def col(fn: Callable[[dict], float | None]) -> list[float]:
        vals = []
        for r in reps:
            with contextlib.suppress(TypeError, KeyError, ZeroDivisionError):
                v = fn(r)
                if v is not None:
                    vals.append(v)
        return vals

    for sec in ("single", "batch"):
        for tool in ("syllabus", "mlflow", "sqlite"):

            def rate(r: dict, tool: str = tool, sec: str = sec) -> float | None:
                d = get(r, sec, tool)
                return d["points"] / d["seconds"] if d else None

            s[f"{sec}_{tool}_rate"] = span(col(rate))
            s[f"{sec}_{tool}_seconds"] = span(col(lambda r, t=tool, x=sec: get(r, x, t, "seconds")))
            s[f"{sec}_{tool}_calls"] = span(col(lambda r, t=tool, x=sec: get(r, x, t, "calls")))
            s[f"{sec}_{tool}_end"] = span(col(lambda r, t=tool, x=sec: get(r, x, t, "end")))
            s[f"{sec}_{tool}_points"] = span(col(lambda r, t=tool, x=sec: get(r, x, t, "points")))
            s[f"{sec}_{tool}_capped"] = any(get(r, sec, tool, "capped") for r in reps)
            s[f"{sec}_{tool}_drift"] = span(
                col(lambda r, t=tool, x=sec: rate_drift(get(r, x, t, "marks")))
            )
            stored = col(lambda r, t=tool, x=sec: get(r, x, t, "stored"))
            s[f"{sec}_{tool}_stored"] = span(stored)

        def ratio(r: dict, sec: str = sec) -> float | None:
            a, b = get(r, sec, "syllabus"), get(r, sec, "mlflow")
            if not a or not b:
                return None
            return (a["points"] / a["seconds"]) / (b["points"] / b["seconds"])

        s[f"{sec}_ratio"] = span(col(ratio))

        def of_floor(r: dict, sec: str = sec) -> float | None:
            a, b = get(r, sec, "syllabus"), get(r, sec, "sqlite")
            if not a or not b:
                return None
            return (a["points"] / a["seconds"]) / (b["points"] / b["seconds"])

        s[f"{sec}_of_sqlite"] = span(col(of_floor))

    for tool in ("syllabus", "mlflow"):
        s[f"create_{tool}_rate"] = span(
            col(lambda r, t=tool: get(r, "runs", t, "runs") / get(r, "runs", t, "seconds"))
        )
        s[f"create_{tool}_seconds"] = span(col(lambda r, t=tool: get(r, "runs", t, "seconds")))
        s[f"search_{tool}"] = span(
            col(lambda r, t=tool: statistics.median(get(r, "runs", t, "search")))
        )
        s[f"search_{tool}_first"] = span(col(lambda r, t=tool: get(r, "runs", t, "search")[0]))
        s[f"search_{tool}_rows"] = span(col(lambda r, t=tool: get(r, "runs", t, "rows")))
        s[f"create_{tool}_runs"] = span(col(lambda r, t=tool: get(r, "runs", t, "runs")))
        for part in ("file", "tree"):
            s[f"art_{part}_{tool}"] = span(
                col(lambda r, t=tool, p=part: get(r, "artifacts", t, p, "seconds"))
            )
            s[f"art_{part}_{tool}_durable"] = span(
                col(
                    lambda r, t=tool, p=part: (
                        get(r, "artifacts", t, p, "seconds") + get(r, "artifacts", t, p, "sync")
                    )
                )
            )

    def pair(r: dict, sec: str, fn: Callable[[dict], float]) -> float | None:
        a, b = get(r, sec, "syllabus"), get(r, sec, "mlflow")
        return fn(b) / fn(a) if a and b else None

    s["create_ratio"] = span(col(lambda r: pair(r, "runs", lambda d: d["seconds"] / d["runs"])))
    s["search_ratio"] = span(
        col(lambda r: pair(r, "runs", lambda d: statistics.median(d["search"])))
    )
    for part in ("file", "tree"):
        s[f"art_{part}_ratio"] = span(
            col(lambda r, p=part: pair(r, "artifacts", lambda d: d[p]["seconds"]))
        )
        s[f"art_{part}_ratio_durable"] = span(
            col(lambda r, p=part: pair(r, "artifacts", lambda d: d[p]["seconds"] + d[p]["sync"]))
        )
    for ref in FLOORS:
        s[f"art_floor_{ref}"] = span(
            col(lambda r, k=ref: get(r, "artifacts", "floor", k, "seconds"))
        )
        s[f"art_floor_{ref}_durable"] = span(
            col(
                lambda r, k=ref: (
                    get(r, "artifacts", "floor", k, "seconds")
                    + get(r, "artifacts", "floor", k, "sync")
                )
            )
        )

    def of_ref(r: dict, tool: str, part: str, ref: str) -> float | None:
        a, b = get(r, "artifacts", tool, part, "seconds"), get(r, "artifacts", "floor", ref)
        return b["seconds"] / a if a and b else None

    # The best ratio a durable content-addressed store can reach on this machine: MLflow's
    # time over the ``cas`` floor (hash while copying and syncing), and Syllabus against it.
    s["art_file_best_ratio"] = span(
        col(
            lambda r: (
                get(r, "artifacts", "mlflow", "file", "seconds")
                / get(r, "artifacts", "floor", "cas", "seconds")
            )
        )
    )
    s["art_file_syl_of_cas"] = span(col(lambda r: of_ref(r, "syllabus", "file", "cas")))
    s["art_file_mlf_of_copy"] = span(col(lambda r: of_ref(r, "mlflow", "file", "copy")))
    # the same top rows from both tools?
    odd = []
    for i, r in enumerate(reps):
        a, b = get(r, "runs", "syllabus"), get(r, "runs", "mlflow")
        if a and b:
            ta = [round(x, 12) for x in a["top"] if x is not None]
            tb = [round(x, 12) for x in b["top"] if x is not None]
            if a["rows"] != b["rows"] or ta != tb:
                odd.append(
                    f"rep {i + 1}: rows {a['rows']} vs {b['rows']}, top {ta[:2]} vs {tb[:2]}"
                )
    s["search_mismatch"] = odd

    if startup:
        for k, v in startup["runs"].items():
            s[f"startup_{k}"] = span(v)
        s["import_top"] = startup.get("import_top")
        s["help_top"] = startup.get("help_top")
    s["targets"] = targets(size, s)
    return s


def targets(size: Size, s: dict[str, Any]) -> list[dict[str, Any]]:
    out = []

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("PASS" if ok else "MISS")

    def ratio_row(label: str, key: str, target: float, unit: str) -> None:
        r = s.get(key)
        out.append(
            {
                "target": label,
                "measured": f"{fmt_x(r['median'])}x{unit} (paired, "
                f"{fmt_x(r['min'])}-{fmt_x(r['max'])}x)"
                if r
                else "- (a column is missing)",
                "verdict": verdict(r["median"] >= target if r else None),
            }
        )

    ratio_row("single-call log_metric >= 1,000x MLflow points/s", "single_ratio", TARGET_SINGLE, "")
    ratio_row("batch logging >= 50x MLflow points/s", "batch_ratio", TARGET_BATCH, "")
    ratio_row(
        "create runs (10 params + 10 metrics) >= 20x MLflow runs/s",
        "create_ratio",
        TARGET_CREATE,
        "",
    )
    ratio_row(
        f"filtered, ordered search of {size.runs:,} runs -> 100 rows >= 30x faster",
        "search_ratio",
        TARGET_SEARCH,
        "",
    )
    ratio_row(
        f"log_artifact {size.big_mib} MiB file >= 2x faster", "art_file_ratio", TARGET_ARTIFACTS, ""
    )
    ratio_row(
        f"log_artifacts {size.files:,} x 1 KiB files >= 2x faster",
        "art_tree_ratio",
        TARGET_ARTIFACTS,
        "",
    )
    best = s.get("art_file_best_ratio")
    if best:
        out.append(
            {
                "target": f"(bound) log_artifact {size.big_mib} MiB: MLflow / durable "
                "content-addressed floor",
                "measured": f"{fmt_x(best['median'])}x (paired, "
                f"{fmt_x(best['min'])}-{fmt_x(best['max'])}x)",
                "verdict": "reachable" if best["median"] >= TARGET_ARTIFACTS else "beyond floor",
            }
        )
    # MLflow copies without fsync; Syllabus returns once the artifact is durable. The same
    # targets with the same durability for both (each call followed by os.sync()):
    ratio_row(
        f"log_artifact {size.big_mib} MiB file, both durable, >= 2x faster",
        "art_file_ratio_durable",
        TARGET_ARTIFACTS,
        "",
    )
    ratio_row(
        f"log_artifacts {size.files:,} x 1 KiB files, both durable, >= 2x faster",
        "art_tree_ratio_durable",
        TARGET_ARTIFACTS,
        "",
    )
    for key, label, limit in (
        ("startup_import_syllabus", "`import syllabus` < 0.3 s", TARGET_IMPORT_S),
        ("startup_help", "`syllabus --help` < 0.5 s", TARGET_HELP_S),
    ):
        r = s.get(key)
        out.append(
            {
                "target": label,
                "measured": f"{r['median']:.3f} s (median, {r['min']:.3f}-{r['max']:.3f})"
                if r
                else "-",
                "verdict": verdict(r["median"] < limit if r else None),
            }
        )
    return out


# --------------------------------------------------------------------------- output


def fmt_s(sp: dict[str, float] | None, digits: int = 3) -> str:
    if not sp:
        return "-"
    return f"{sp['median']:.{digits}f} s ({sp['min']:.{digits}f}-{sp['max']:.{digits}f})"


def fmt_ms(sp: dict[str, float] | None) -> str:
    if not sp:
        return "-"
    return f"{1000 * sp['median']:.1f} ms ({1000 * sp['min']:.1f}-{1000 * sp['max']:.1f})"


def fmt_rate(sp: dict[str, float] | None, unit: str = "") -> str:
    if not sp:
        return "-"
    return f"{sp['median']:,.0f}{unit} ({sp['min']:,.0f}-{sp['max']:,.0f})"


def fmt_x(x: float) -> str:
    """A ratio with two decimals below 10 (so 1.96x does not read as a passing 2.0x)."""
    return f"{x:,.2f}" if x < 10 else f"{x:,.1f}"


def fmt_ratio(sp: dict[str, float] | None) -> str:
    if not sp:
        return "-"
    return f"[bold]{fmt_x(sp['median'])}x[/] ({fmt_x(sp['min'])}-{fmt_x(sp['max'])})"


def fmt_n(sp: dict[str, float] | None) -> str:
    return f"{sp['median']:,.0f}" if sp else "-"


def render(console: Console, size: Size, reps: int, env: dict, s: dict[str, Any]) -> None:
    console.print(
        f"\n[bold]Syllabus tracking benchmark[/] - size [bold]{size.name}[/], {reps} repetitions, "
        "medians (min-max), paired ratios (median of per-repetition ratios); "
        "SQLite in a fresh folder per workload, both tools"
    )
    console.print(
        f"  {env['cpus']} CPUs, load {env['load']}, Python {env['python']}, "
        f"syllabus {env['syllabus']}, {env['mlflow']}"
    )

    if "startup_import_syllabus" in s:
        t = Table(
            title="Start-up (fresh processes, wall clock incl. the interpreter)",
            title_justify="left",
        )
        for c in ("command", "time", "target"):
            t.add_column(c, justify="left" if c == "command" else "right")
        t.add_row("python -c pass (project venv)", fmt_s(s.get("startup_python")), "")
        t.add_row(
            "[bold]python -c 'import syllabus'[/]",
            fmt_s(s.get("startup_import_syllabus")),
            "< 0.3 s",
        )
        t.add_row("[bold]syllabus --help[/]", fmt_s(s.get("startup_help")), "< 0.5 s")
        if s.get("startup_import_mlflow"):
            t.add_row("python -c pass (MLflow venv)", fmt_s(s.get("startup_mlflow_python")), "")
            t.add_row(
                "python -c 'import mlflow'",
                fmt_s(s.get("startup_import_mlflow")),
                f"anchor {ANCHOR['import']}",
            )
            a, b = s["startup_import_mlflow"], s["startup_import_syllabus"]
            t.add_row("  import mlflow / import syllabus", f"{a['median'] / b['median']:.1f}x", "")
        console.print(t)
        for key, label in (("import_top", "import syllabus"), ("help_top", "syllabus --help")):
            if s.get(key):
                console.print(
                    f"  heaviest imports under `{label}` (-X importtime, cumulative): "
                    + ", ".join(f"{m} {ms:.0f} ms" for m, ms in s[key])
                )

    for sec, title, unit, anchor in (
        (
            "single",
            "Single-call log_metric in one run, timed until durable",
            "points/s",
            ANCHOR["single"],
        ),
        (
            "batch",
            f"Batch logging ({BATCH_SIZE:,} points per call over {BATCH_KEYS} keys)",
            "points/s",
            ANCHOR["batch"],
        ),
    ):
        if not (s.get(f"{sec}_syllabus_rate") or s.get(f"{sec}_mlflow_rate")):
            continue
        t = Table(title=title, title_justify="left")
        for c in ("tool", "points", "time", unit, "calls only", "end of run", "stored"):
            t.add_column(c, justify="left" if c == "tool" else "right")
        for tool, label in (
            ("syllabus", "[bold]Syllabus[/]"),
            ("mlflow", "MLflow"),
            ("sqlite", "ref: raw sqlite3 executemany"),
        ):
            rate = s.get(f"{sec}_{tool}_rate")
            if not rate:
                continue
            pts = s[f"{sec}_{tool}_points"]
            points = fmt_n(pts)
            if s.get(f"{sec}_{tool}_capped"):
                points += " [yellow](capped)[/]"
            t.add_row(
                label,
                points,
                fmt_s(s[f"{sec}_{tool}_seconds"]),
                fmt_rate(rate),
                fmt_s(s[f"{sec}_{tool}_calls"]),
                fmt_s(s[f"{sec}_{tool}_end"]),
                fmt_n(s.get(f"{sec}_{tool}_stored")),
            )
        if s.get(f"{sec}_ratio"):
            t.add_row("ratio Syllabus / MLflow", "", "", fmt_ratio(s[f"{sec}_ratio"]))
        if s.get(f"{sec}_of_sqlite"):
            r = s[f"{sec}_of_sqlite"]
            t.add_row(
                "Syllabus / raw SQLite",
                "",
                "",
                f"{100 * r['median']:.0f}% ({100 * r['min']:.0f}-{100 * r['max']:.0f}%)",
            )
        console.print(t)
        syl, mlf = s.get(f"{sec}_syllabus_points"), s.get(f"{sec}_mlflow_points")
        notes = [f"MLflow anchor (issue 3): {anchor}"]
        if s.get(f"{sec}_sqlite_rate"):
            notes.append(
                "ref: sqlite3 executemany of the same points into a fresh Syllabus database's "
                f"metrics table (its keys and indexes as declared), {RAW_TXN_POINTS:,} points per "
                "transaction"
            )
        if s.get(f"{sec}_syllabus_calls") and syl and sec == "single":
            per = 1e6 * s[f"{sec}_syllabus_calls"]["median"] / syl["median"]
            notes.append(f"Syllabus {per:.2f} us per log_metric call before the final flush")
        if syl and mlf and syl["median"] != mlf["median"]:
            notes.append(
                f"MLflow logged {mlf['median']:,.0f} points, Syllabus {syl['median']:,.0f}: "
                "rates compared, not times"
            )
        drift = s.get(f"{sec}_mlflow_drift")
        if s.get(f"{sec}_mlflow_capped"):
            want = size.single_mlf if sec == "single" else size.batch_mlf
            est = want / s[f"{sec}_mlflow_rate"]["median"]
            notes.append(
                f"MLflow stopped at the {size.mlf_cap_s:.0f} s cap; [yellow]its rate is "
                f"extrapolated[/]: {want:,} points would take it ~{est:,.0f} s at that rate"
            )
        if drift:
            notes.append(
                f"MLflow's rate in the second half of its run / the first half: "
                f"{drift['median']:.2f} (1.00 = flat)"
            )
        console.print("  " + "; ".join(notes))

    if s.get("create_syllabus_rate") or s.get("create_mlflow_rate"):
        t = Table(
            title=f"{size.runs:,} runs x ({NPARAMS} params + {NMETRICS} metrics), then "
            f'search "{_mlflow.SEARCH_FILTER}" order by {_mlflow.SEARCH_ORDER}, '
            f"max {_mlflow.SEARCH_ROWS}",
            title_justify="left",
        )
        for c in ("tool", "create time", "runs/s", "search (median)", "first search", "rows"):
            t.add_column(c, justify="left" if c == "tool" else "right")
        for tool, label in (("syllabus", "[bold]Syllabus[/]"), ("mlflow", "MLflow")):
            if not s.get(f"create_{tool}_rate"):
                continue
            t.add_row(
                label,
                fmt_s(s[f"create_{tool}_seconds"], 2),
                fmt_rate(s[f"create_{tool}_rate"]),
                fmt_ms(s[f"search_{tool}"]),
                fmt_ms(s[f"search_{tool}_first"]),
                fmt_n(s[f"search_{tool}_rows"]),
            )
        if s.get("create_ratio"):
            t.add_row(
                "ratio (Syllabus faster by)",
                "",
                fmt_ratio(s["create_ratio"]),
                fmt_ratio(s["search_ratio"]),
            )
        console.print(t)
        console.print(
            f"  MLflow anchor (issue 3): {ANCHOR['create']}, {ANCHOR['search']}; MLflow searches "
            "with MlflowClient.search_runs (typed Run objects, no DataFrame)"
        )
        for line in s.get("search_mismatch") or []:
            console.print(f"  [bold red]odd:[/] the tools returned different rows: {line}")

    if s.get("art_file_syllabus") or s.get("art_file_mlflow"):
        t = Table(
            title=f"Artifacts: one {size.big_mib} MiB random file; "
            f"{size.files:,} x 1 KiB files in 10 folders",
            title_justify="left",
        )
        for c in ("tool", "file", "MiB/s", "folder", "files/s", "file + sync", "folder + sync"):
            t.add_column(c, justify="left" if c == "tool" else "right")
        for tool, label in (("syllabus", "[bold]Syllabus[/]"), ("mlflow", "MLflow")):
            f, d = s.get(f"art_file_{tool}"), s.get(f"art_tree_{tool}")
            if not f:
                continue
            t.add_row(
                label,
                fmt_s(f),
                f"{size.big_mib / f['median']:,.0f}",
                fmt_s(d),
                f"{size.files / d['median']:,.0f}" if d else "-",
                fmt_s(s[f"art_file_{tool}_durable"]),
                fmt_s(s[f"art_tree_{tool}_durable"]),
            )
        if s.get("art_file_ratio"):
            t.add_row(
                "ratio MLflow / Syllabus time",
                fmt_ratio(s["art_file_ratio"]),
                "",
                fmt_ratio(s["art_tree_ratio"]),
                "",
                fmt_ratio(s["art_file_ratio_durable"]),
                fmt_ratio(s["art_tree_ratio_durable"]),
            )
        console.print(t)
        console.print(
            "  targets use the call's time as the user waits for it; '+ sync' adds the os.sync() "
            "right after (MLflow copies without fsync)"
        )
        if s.get("art_floor_cas"):
            t = Table(
                title="Physical references on the same data, same repetitions (no tool)",
                title_justify="left",
            )
            for c in ("reference", "time", "+ sync"):
                t.add_column(c, justify="left" if c == "reference" else "right")
            for ref, label in FLOORS.items():
                t.add_row(
                    label,
                    fmt_s(s.get(f"art_floor_{ref}")),
                    fmt_s(s.get(f"art_floor_{ref}_durable")),
                )
            console.print(t)
            best, syl_of = s.get("art_file_best_ratio"), s.get("art_file_syl_of_cas")
            console.print(
                f"  {size.big_mib} MiB file: the best ratio a durable content-addressed store "
                f"can reach here (MLflow time / 'cas' floor time) is {fmt_ratio(best)}; Syllabus "
                f"runs at {fmt_ratio(syl_of)} of the floor's speed, MLflow at "
                f"{fmt_ratio(s.get('art_file_mlf_of_copy'))} of a plain kernel copy's"
            )

    t = Table(title="Targets (issue 3)", title_justify="left")
    for c in ("target", "measured", "verdict"):
        t.add_column(c)
    for row in s["targets"]:
        style = {"PASS": "green", "MISS": "bold red"}.get(row["verdict"], "yellow")
        t.add_row(row["target"], row["measured"], f"[{style}]{row['verdict']}[/]")
    console.print(t)
    if size.name != "full":
        console.print(
            "  (size small: MLflow runs smaller single-call and batch workloads and both tools "
            f"create {size.runs:,} runs; indicative only - the targets are defined for --size full)"
        )


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--size",
        choices=sorted(SIZES),
        default=os.environ.get("BENCH_SIZE", "small"),
        help="small (default; a few minutes) or full (the issue's sizes); env BENCH_SIZE",
    )
    p.add_argument("--reps", type=int, default=None, help="repetitions (default 3)")
    p.add_argument("--runs", type=int, default=None, help="override the number of runs")
    p.add_argument(
        "--mlflow-cap",
        type=float,
        default=None,
        help="seconds an MLflow single-call or batch section may take before it stops and its "
        "rate is extrapolated (default 30 small, 60 full)",
    )
    p.add_argument(
        "--sections", default=",".join(SECTIONS), help="comma list of: " + ", ".join(SECTIONS)
    )
    p.add_argument("--no-mlflow", action="store_true", help="skip the MLflow column")
    p.add_argument("--seed", type=int, default=0, help="seed of the random artifact data")
    p.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    p.add_argument(
        "--render", metavar="FILE", help="print the tables of a JSON file written by --json"
    )
    p.add_argument(
        "--workdir",
        default=str(BENCH_DIR / ".work"),
        help="where temp data goes (default bench/.work, gitignored)",
    )
    p.add_argument("--keep", action="store_true", help="keep the generated data")
    return p.parse_args(argv)


def rerender(path: str) -> int:
    """Summarize and print the repetitions saved in a ``--json`` file (with today's code)."""
    doc = json.loads(Path(path).read_text())
    size = Size(**doc["config"])
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=160)
    summary = summarize(size, doc["reps"], doc.get("startup"))
    render(console, size, size.reps, doc["env"], summary)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        return rerender(args.render)
    base = SIZES[args.size]
    changes: dict[str, Any] = {}
    if args.reps:
        changes["reps"] = args.reps
    if args.runs:
        changes["runs"] = args.runs
    if args.mlflow_cap:
        changes["mlf_cap_s"] = args.mlflow_cap
    size = Size(**{**asdict(base), **changes})
    sections = {x.strip() for x in args.sections.split(",") if x.strip()}
    unknown = sections - set(SECTIONS)
    if unknown:
        print(f"unknown sections: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=160)

    def log(msg: str) -> None:
        console.print(f"[dim]{msg}[/]")

    try:
        syl: Syllabus | None = Syllabus()
        syl_status = "syllabus tracking"
    except (ImportError, AttributeError) as exc:
        syl = None
        syl_status = f"Syllabus tracking not importable ({exc}); its column is skipped"
        console.print(f"[bold yellow]{syl_status}[/]")

    mlflow: _mlflow.Mlflow | None = None
    if args.no_mlflow:
        mlf_status = "MLflow skipped (--no-mlflow)"
    else:
        mlflow, mlf_status = _mlflow.provision(log=log)
        if mlflow is None:
            mlf_status = f"MLflow unavailable, its column is skipped: {mlf_status}"
            console.print(f"[bold yellow]{mlf_status}[/]")

    env = {
        "cpus": os.cpu_count(),
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "syllabus": git_describe(),
        "syllabus_status": syl_status,
        "mlflow": mlf_status,
    }

    workroot = Path(args.workdir).resolve()
    workroot.mkdir(parents=True, exist_ok=True)
    need = (3 * size.big_mib * MiB if "artifacts" in sections else 0) + 2 * 1024 * MiB
    free = shutil.disk_usage(workroot).free
    if free < need:
        console.print(
            f"[bold red]Not enough disk space under {workroot}: {free / MiB:,.0f} MiB free[/]"
        )
        return 1
    work = Path(tempfile.mkdtemp(prefix=f"tracking-{size.name}-", dir=workroot))
    order_rng = random.Random()  # order differs per run and per repetition
    reps: list[dict[str, Any]] = []
    startup: dict[str, Any] | None = None
    worker: _mlflow.Worker | None = None
    try:
        data: dict[str, Path] = {}
        if "artifacts" in sections:
            log(f"generating a {size.big_mib} MiB file and {size.files:,} x 1 KiB files in {work}")
            rng = random.Random(args.seed)
            data["file"] = work / "data" / "model.bin"
            data["file"].parent.mkdir()
            write_random(data["file"], size.big_mib * MiB, rng)
            data["tree"] = work / "data" / "tree"
            make_tree(data["tree"], size.files, rng)
        if "startup" in sections:
            startup = bench_startup(size, work, mlflow, log)
        if mlflow is not None and sections - {"startup"}:
            worker = mlflow.worker(work / "mlflow-worker")
        for rep in range(size.reps):
            if not sections - {"startup"}:
                break
            reps.append(bench_rep(rep, size, sections, work, data, syl, worker, order_rng, log))
    finally:
        if worker is not None:
            worker.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    summary = summarize(size, reps, startup)
    render(console, size, size.reps, env, summary)
    if args.json:
        doc = {
            "config": asdict(size),
            "env": env,
            "method": "median over repetitions; ratios are medians of per-repetition paired "
            "ratios; os.sync() untimed before each timed step; random order per repetition",
            "summary": summary,
            "startup": startup,
            "reps": reps,
        }
        write_json(args.json, doc)
        console.print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
