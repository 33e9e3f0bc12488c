"""``syllabus ui``: the example starts the UI on a free port; ``run`` waits for its ready
file, loads the overview and a runs page over HTTP on 127.0.0.1, then stops it (SIGINT,
as Ctrl+C would) and reports how it ended (and whether it said where it listens)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fixtures.cli import Result, Runner

PREFIXES = ("syllabus ui",)


def prepare(workdir: Path, example: str) -> None:
    from syllabus import Client

    with Client(cwd=workdir) as client:
        run = client.create_run("churn", name="example", params={"model": "gbm"})
        client.log_metric(run.id, "val_auc", 0.9)
        client.end_run(run.id)


def run(syllabus: Runner, workdir: Path, example: str) -> Result:
    args = shlex.split(example)[1:]
    ready = workdir / args[args.index("--ready-file") + 1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYLLABUS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "syllabus", *args],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    problems = []
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if ready.exists():
            url = json.loads(ready.read_text())["url"]
            with httpx.Client(base_url=url, timeout=30) as http:
                for path in ("/", "/runs?filter=params.model+%3D+%27gbm%27"):
                    response = http.get(path)
                    if response.status_code != 200 or "example" not in response.text:
                        problems.append(f"GET {path}: {response.status_code}")
        else:
            problems.append("the UI never wrote its ready file")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    if "Syllabus UI on http://127.0.0.1:" not in err:
        problems.append("the UI did not say where it listens")
    code = 1 if problems else (0 if proc.returncode in (0, 130) else proc.returncode)
    return Result(code, out, err + "\n".join(problems))
