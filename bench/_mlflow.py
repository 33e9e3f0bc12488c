"""Provision MLflow in its own venv and drive it from a worker subprocess, for benchmarks.

MLflow is never a dependency of Syllabus and is never imported into the project's venv: it
is installed with pip into ``bench/.venv-mlflow`` (gitignored), and this same file, run by
that venv's interpreter with ``--worker``, is a small server that reads one JSON command
per line on stdin, runs the workload with MLflow, times it *inside* the worker and answers
one JSON line on stdout. The parent (``bench/tracking.py``, ``bench/evaluation.py``)
never times the pipe.

The top of this module imports only the standard library so both interpreters can load
it; ``mlflow`` is imported inside the worker only.

Every workload gets its own fresh folder: ``sqlite:///<folder>/mlflow.db`` as the tracking
URI and ``<folder>/artifacts`` as the experiment's artifact root, as in
shared/research/anchor_mlflow.md (section 1a). Telemetry is off. When MLflow cannot be
installed, :func:`provision` returns ``None`` and a reason, and the benchmark drops the
MLflow column instead of failing.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["MLFLOW_VERSION", "VENV_DIR", "Mlflow", "MlflowError", "Worker", "provision"]

MLFLOW_VERSION = "3.17.2"
"""The version measured in the research anchor (shared/research/anchor_mlflow.md)."""

VENV_DIR = Path(__file__).resolve().parent / ".venv-mlflow"

_PIP_TIMEOUT = 1200  # seconds; a cold install is ~90 distributions, ~850 MB


def _run(cmd: list[str], *, timeout: float | None = None, env: dict[str, str] | None = None):
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _tail(text: str, lines: int = 3) -> str:
    # pip prints one "Location ... is ignored" warning per package with some index set-ups
    useful = [
        line.strip()
        for line in text.strip().splitlines()
        if line.strip() and "is ignored: it is neither a file nor a directory" not in line
    ]
    return " | ".join(useful[-lines:])


def worker_env() -> dict[str, str]:
    """The environment of every MLflow process: telemetry off, nothing inherited that matters."""
    env = dict(os.environ)
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "true"
    env["GIT_PYTHON_REFRESH"] = "quiet"
    for name in (
        "VIRTUAL_ENV",
        "PYTHONPATH",
        "MLFLOW_TRACKING_URI",
        "MLFLOW_ENABLE_ASYNC_LOGGING",
        "MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING",
        "MLFLOW_EXPERIMENT_NAME",
        "MLFLOW_EXPERIMENT_ID",
        "MLFLOW_RUN_ID",
    ):
        env.pop(name, None)
    return env


def _installed_version(python: Path) -> str | None:
    if not python.exists():
        return None
    code = "import importlib.metadata as m; print(m.version('mlflow'))"
    try:
        proc = _run([str(python), "-c", code], timeout=120, env=worker_env())
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = proc.stdout.strip()
    return out.splitlines()[-1].strip() if proc.returncode == 0 and out else None


def provision(*, log=print, venv_dir: Path = VENV_DIR) -> tuple[Mlflow | None, str]:
    """Return a ready :class:`Mlflow` and a one-line status, or ``(None, reason)``.

    Reuses an existing venv; otherwise creates it and runs ``pip install
    mlflow==MLFLOW_VERSION``, falling back to the newest ``mlflow`` if the pin cannot be
    installed.
    """
    python = venv_dir / "bin" / "python"
    version = _installed_version(python)
    if version is not None:
        return Mlflow(python, version), f"MLflow {version} from {venv_dir}"

    log(f"MLflow: installing mlflow=={MLFLOW_VERSION} into {venv_dir} (separate venv; once) ...")
    started = time.perf_counter()
    try:
        if not python.exists():
            proc = _run([sys.executable, "-m", "venv", str(venv_dir)], timeout=300)
            if proc.returncode != 0:
                return None, f"could not create {venv_dir}: {_tail(proc.stderr)}"
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        proc = _run([*pip, f"mlflow=={MLFLOW_VERSION}"], timeout=_PIP_TIMEOUT)
        if proc.returncode != 0:
            log(f"MLflow: mlflow=={MLFLOW_VERSION} did not install ({_tail(proc.stderr, 1)}); ")
            log("MLflow: trying the newest mlflow")
            proc = _run([*pip, "mlflow"], timeout=_PIP_TIMEOUT)
            if proc.returncode != 0:
                return None, f"pip install mlflow failed: {_tail(proc.stderr)}"
    except subprocess.TimeoutExpired as exc:
        return None, f"pip install mlflow timed out after {exc.timeout:.0f} s (no network?)"
    except OSError as exc:
        return None, f"could not install mlflow: {exc}"
    version = _installed_version(python)
    if version is None:
        return None, f"mlflow installed into {venv_dir} but cannot be imported"
    log(f"MLflow: {version} installed in {time.perf_counter() - started:.0f} s")
    return Mlflow(python, version), f"MLflow {version} from {venv_dir} (installed now)"


class MlflowError(RuntimeError):
    """The worker failed or died; the message carries its error."""


@dataclass(frozen=True)
class Mlflow:
    """The interpreter of the MLflow venv."""

    python: Path
    version: str

    def worker(self, cwd: Path) -> Worker:
        """Start a worker process (MLflow imported once, up front) with ``cwd`` as its folder."""
        return Worker(self.python, cwd)

    def import_seconds(self, module: str = "mlflow") -> float:
        """Wall-clock seconds of ``python -c "import <module>"`` in a fresh process."""
        started = time.perf_counter()
        proc = _run([str(self.python), "-c", f"import {module}"], timeout=300, env=worker_env())
        took = time.perf_counter() - started
        if proc.returncode != 0:
            raise MlflowError(f"import {module} failed: {_tail(proc.stderr)}")
        return took


class Worker:
    """One long-lived MLflow process; :meth:`call` sends a command and returns its result."""

    def __init__(self, python: Path, cwd: Path) -> None:
        cwd.mkdir(parents=True, exist_ok=True)
        self._stderr = (cwd / "worker.stderr").open("w+b")
        self._proc = subprocess.Popen(
            [str(python), str(Path(__file__).resolve()), "--worker"],
            cwd=cwd,
            env=worker_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        self.hello = self.call("hello")

    def call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        proc = self._proc
        if proc.poll() is not None or proc.stdin is None or proc.stdout is None:
            raise MlflowError(f"MLflow worker is not running (exit {proc.returncode})")
        proc.stdin.write(json.dumps({"op": op, **kwargs}) + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        if not line:
            proc.wait(timeout=30)
            raise MlflowError(f"MLflow worker died (exit {proc.returncode}): {self._err_tail()}")
        reply = json.loads(line)
        if "error" in reply:
            raise MlflowError(f"{op}: {reply['error']}")
        return reply

    def _err_tail(self) -> str:
        self._stderr.flush()
        self._stderr.seek(0)
        return _tail(self._stderr.read().decode(errors="replace"))

    def close(self) -> None:
        proc = self._proc
        if proc.poll() is None:
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
                proc.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
        self._stderr.close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# =========================================================================== worker side
# Everything below runs in the MLflow venv (``python bench/_mlflow.py --worker``).


def _uri(folder: Path) -> tuple[str, str]:
    """Tracking URI and artifact root of a fresh store in ``folder``."""
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}", (folder / "artifacts").as_uri()


def _fresh(folder: str, name: str) -> tuple[Any, str]:
    """A client on a fresh SQLite store with one experiment; returns (client, experiment id).

    Creating the database (MLflow runs its migrations) is part of this untimed set-up.
    """
    import mlflow
    from mlflow import MlflowClient

    uri, artifacts = _uri(Path(folder))
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment(name, artifact_location=artifacts)
    return client, exp


def _count_points(folder: str, run_id: str) -> int:
    """Points stored for the run, read straight from the database (not through MLflow)."""
    import sqlite3

    con = sqlite3.connect(Path(folder) / "mlflow.db")
    try:
        return con.execute("SELECT count(*) FROM metrics WHERE run_uuid = ?", (run_id,)).fetchone()[
            0
        ]
    finally:
        con.close()


def op_hello() -> dict[str, Any]:
    import platform

    import mlflow

    return {"version": mlflow.__version__, "python": platform.python_version(), "pid": os.getpid()}


def op_single(folder: str, n: int, cap_s: float, key: str = "loss") -> dict[str, Any]:
    """``mlflow.log_metric`` called ``n`` times in one run (each call is a committed write).

    Timed from the first call through ``end_run``; stops early after ``cap_s`` seconds
    (checked every 100 calls) and says how many points it logged.
    """
    import mlflow

    _client, exp = _fresh(folder, "single")
    run = mlflow.start_run(experiment_id=exp)
    mlflow.log_metric("warmup", 0.0, step=0)  # untimed: first-call code paths
    rng = random.Random(1)
    values = [rng.random() for _ in range(min(n, 1000))]
    every = max(100, n // 100)
    marks = []  # (points, seconds): the rate over time, to check that extrapolating is fair
    os.sync()
    t0 = time.perf_counter()
    done = 0
    for i in range(n):
        mlflow.log_metric(key, values[i % len(values)], step=i)
        done += 1
        if done % 100 == 0:
            now = time.perf_counter() - t0
            if done % every == 0:
                marks.append((done, now))
            if now > cap_s:
                break
    t1 = time.perf_counter()
    mlflow.end_run()
    t2 = time.perf_counter()
    return {
        "points": done,
        "requested": n,
        "capped": done < n,
        "seconds": t2 - t0,
        "calls": t1 - t0,
        "end": t2 - t1,
        "stored": _count_points(folder, run.info.run_id) - 1,
        "marks": marks,
    }


def op_batch(folder: str, points: int, batch: int, keys: int, cap_s: float) -> dict[str, Any]:
    """``MlflowClient.log_batch`` of ``points`` points, ``batch`` per call over ``keys`` keys."""
    from mlflow.entities import Metric

    client, exp = _fresh(folder, "batch")
    run_id = client.create_run(exp).info.run_id
    client.log_batch(run_id, metrics=[Metric("warmup", 0.0, 0, 0)])  # untimed
    per_key = batch // keys
    rng = random.Random(2)
    values = [rng.random() for _ in range(batch)]
    names = [f"m{k}" for k in range(keys)]
    every = max(batch, points // 100)
    marks = []  # (points, seconds)
    os.sync()
    t0 = time.perf_counter()
    done = 0
    step = 0
    while done < points:
        ts = int(time.time() * 1000)
        metrics = [
            Metric(names[k], values[k * per_key + j], ts, step + j)
            for k in range(keys)
            for j in range(per_key)
        ]
        client.log_batch(run_id, metrics=metrics)
        done += len(metrics)
        step += per_key
        now = time.perf_counter() - t0
        if done % every < batch:
            marks.append((done, now))
        if now > cap_s:
            break
    t1 = time.perf_counter()
    client.set_terminated(run_id)
    t2 = time.perf_counter()
    return {
        "points": done,
        "requested": points,
        "capped": done < points,
        "seconds": t2 - t0,
        "calls": t1 - t0,
        "end": t2 - t1,
        "stored": _count_points(folder, run_id) - 1,
        "marks": marks,
    }


def run_payload(i: int, nparams: int, nmetrics: int) -> tuple[dict[str, str], dict[str, float]]:
    """Params and metrics of run ``i``; the same for both tools (``bench/tracking.py``).

    ``acc`` is uniform on [0, 1) and ``lr`` cycles through 0.1, 0.01, 0.001, so a third of
    the runs have ``lr = '0.01'`` and about a sixth match the search filter.
    """
    rng = random.Random(1_000_003 * (i + 1))
    params = {"lr": ("0.1", "0.01", "0.001")[i % 3], "model": ("rf", "gbm")[i % 2]}
    for p in range(nparams - len(params)):
        params[f"p{p}"] = str(rng.randrange(1000))
    metrics = {"acc": rng.random()}
    for m in range(nmetrics - len(metrics)):
        metrics[f"m{m}"] = rng.random()
    return params, metrics


SEARCH_FILTER = "metrics.acc > 0.5 and params.lr = '0.01'"
SEARCH_ORDER = "metrics.acc desc"
SEARCH_ROWS = 100


def op_runs(
    folder: str, n: int, nparams: int, nmetrics: int, searches: int, cap_s: float
) -> dict[str, Any]:
    """Create ``n`` finished runs (create_run + log_batch + set_terminated), then search.

    The search is ``MlflowClient.search_runs`` (typed ``Run`` objects with their data, no
    DataFrame), filtered and ordered, returning ``SEARCH_ROWS`` rows, ``searches`` times.
    """
    from mlflow.entities import Metric, Param

    client, exp = _fresh(folder, "runs")
    warm = client.create_run(exp).info.run_id  # untimed: first-call code paths
    client.delete_run(warm)
    payloads = [run_payload(i, nparams, nmetrics) for i in range(n)]
    os.sync()
    t0 = time.perf_counter()
    done = 0
    for params, metrics in payloads:
        ts = int(time.time() * 1000)
        run_id = client.create_run(exp).info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, ts, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
        )
        client.set_terminated(run_id)
        done += 1
        if done % 50 == 0 and time.perf_counter() - t0 > cap_s:
            break
    create_s = time.perf_counter() - t0
    times = []
    rows: list[Any] = []
    for _ in range(searches):
        s0 = time.perf_counter()
        rows = list(
            client.search_runs(
                [exp],
                filter_string=SEARCH_FILTER,
                order_by=[SEARCH_ORDER.replace("desc", "DESC")],
                max_results=SEARCH_ROWS,
            )
        )
        times.append(time.perf_counter() - s0)
    return {
        "runs": done,
        "requested": n,
        "capped": done < n,
        "seconds": create_s,
        "search": times,
        "rows": len(rows),
        "top": [r.data.metrics.get("acc") for r in rows[:5]],
        "bottom": rows[-1].data.metrics.get("acc") if rows else None,
    }


def op_artifacts(folder: str, file: str, tree: str) -> dict[str, Any]:
    """``MlflowClient.log_artifact`` of one file, then ``log_artifacts`` of a folder.

    Each call is timed as the user waits for it; the ``os.sync()`` right after is timed
    separately (MLflow copies the files and does not fsync them).
    """
    client, exp = _fresh(folder, "artifacts")
    run_id = client.create_run(exp).info.run_id
    warm = Path(folder) / "warm.txt"
    warm.write_text("warm")
    client.log_artifact(run_id, str(warm))  # untimed: first-call code paths
    out: dict[str, Any] = {}
    for name, call in (
        ("file", lambda: client.log_artifact(run_id, file)),
        ("tree", lambda: client.log_artifacts(run_id, tree, artifact_path="tree")),
    ):
        os.sync()
        t0 = time.perf_counter()
        call()
        t1 = time.perf_counter()
        os.sync()
        t2 = time.perf_counter()
        out[name] = {"seconds": t1 - t0, "sync": t2 - t1}
    client.set_terminated(run_id)
    root = Path(folder) / "artifacts"
    out["stored_files"] = sum(len(files) for _, _, files in os.walk(root))
    return out


def op_evaluate(folder: str, data: str, models: list[str], target: str) -> dict[str, Any]:
    """``mlflow.models.evaluate`` (default evaluator, ``model_type="classifier"``) of each
    pickled scikit-learn model on the Parquet file ``data``, in one run (``bench/evaluation.py``).

    Untimed set-up: read the data into a DataFrame, log each model with
    ``mlflow.sklearn.log_model``. Timed: the ``evaluate`` calls (each loads its model,
    predicts and computes and logs its metrics and plots), per model.
    """
    import pickle

    import mlflow
    import pandas as pd

    _client, exp = _fresh(folder, "evaluate")
    df = pd.read_parquet(data)
    uris = []
    with mlflow.start_run(experiment_id=exp):
        for i, path in enumerate(models):
            with Path(path).open("rb") as fh:
                model = pickle.load(fh)
            info = mlflow.sklearn.log_model(model, name=f"model{i}")
            uris.append(info.model_uri)
    seconds = []
    metrics = []
    with mlflow.start_run(experiment_id=exp):
        os.sync()
        for uri in uris:
            t0 = time.perf_counter()
            result = mlflow.models.evaluate(
                uri, df, targets=target, model_type="classifier", evaluators=["default"]
            )
            seconds.append(time.perf_counter() - t0)
            metrics.append({k: float(v) for k, v in result.metrics.items()})
    return {
        "seconds": sum(seconds),
        "per_model": seconds,
        "rows": len(df),
        "metrics": metrics,
    }


def op_cleanup(folder: str) -> dict[str, Any]:
    import mlflow

    mlflow.set_tracking_uri(None)  # drop the engine's file handles before the folder goes
    shutil.rmtree(folder, ignore_errors=True)
    return {}


OPS = {
    "hello": op_hello,
    "single": op_single,
    "batch": op_batch,
    "runs": op_runs,
    "artifacts": op_artifacts,
    "evaluate": op_evaluate,
    "cleanup": op_cleanup,
}


def _worker_main() -> int:
    import logging
    import traceback
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    import mlflow  # noqa: F401  (imported once, before any timed command)

    out = sys.stdout
    sys.stdout = sys.stderr  # anything MLflow prints must not corrupt the protocol
    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        op = cmd.pop("op")
        try:
            reply = OPS[op](**cmd)
        except Exception as exc:
            traceback.print_exc()
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(reply) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        sys.exit(_worker_main())
    print("usage: <mlflow venv>/bin/python bench/_mlflow.py --worker", file=sys.stderr)
    sys.exit(2)
