"""``syllabus serve``: a model to serve, and a run that starts the server, waits for its
ready file, asks it for a prediction and stops it with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fixtures.cli import Result, Runner

PREFIXES = ("syllabus serve",)  # also a prefix of "syllabus server": those are not ours


def _ours(example: str) -> bool:
    return example.startswith("syllabus serve ")


def prepare(workdir: Path, example: str) -> None:
    """Model ``churn`` versions 1 and 2 (scikit-learn, one column ``x``)."""
    if not _ours(example):
        return
    import numpy as np
    from sklearn.linear_model import LinearRegression

    from syllabus import Client

    x = np.array([[1.0], [2.0], [3.0]])
    with Client(cwd=workdir) as client:
        for n in range(2):
            run = client.create_run("churn")
            model = LinearRegression().fit(x, x[:, 0] * (n + 1))
            client.log_model(run.id, model, input_example={"x": x[:, 0]}, registered_name="churn")
            client.end_run(run.id)


def run(syllabus: Runner, workdir: Path, example: str) -> Result | None:
    """Start the example's server, predict once, stop it gracefully."""
    if not _ours(example):
        return None
    args = example.split()[1:]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYLLABUS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "syllabus", *args],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready = workdir / "ready.json"
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not ready.exists():
            proc.kill()
            out, err = proc.communicate(timeout=30)
            return Result(1, out, f"no ready file: {err}")
        port = json.loads(ready.read_text())["port"]
        response = httpx.post(f"http://127.0.0.1:{port}/predict", json=[{"x": 4.0}], timeout=30)
        if response.status_code != 200 or response.json()["version"] != 2:
            proc.kill()
            out, err = proc.communicate(timeout=30)
            return Result(1, out, f"predict answered {response.status_code}: {response.text}")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    return Result(proc.returncode, out, err)
