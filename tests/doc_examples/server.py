"""``syllabus server`` and ``syllabus admin``: users ``alice`` and ``bob`` (unless the
example adds alice), a run that starts the server and asks its health, and a run that
revokes a real token in place of the example's prefix."""

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

PREFIXES = ("syllabus server", "syllabus admin")


def _store(workdir: Path):  # type: ignore[no-untyped-def]
    from syllabus.client import Client
    from syllabus.meta import create_engine, ensure_schema
    from syllabus.server.sql import SqlAuthStore

    engine = create_engine(Client(cwd=workdir, create=False).location.db_url)
    ensure_schema(engine)
    return SqlAuthStore(engine)


def prepare(workdir: Path, example: str) -> None:
    if not example.startswith("syllabus admin"):
        return
    store = _store(workdir)
    if "users add alice" not in example:
        store.add_user("alice")
        store.grant("alice", "default", "editor")
    store.add_user("bob")
    store.engine.dispose()


def run(syllabus: Runner, workdir: Path, example: str) -> Result | None:
    if example.startswith("syllabus admin tokens revoke"):
        store = _store(workdir)
        token = store.create_token("alice")
        store.engine.dispose()
        return syllabus(*example.split()[1:-1], token.prefix)
    if not example.startswith("syllabus server"):
        return None
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYLLABUS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "syllabus", *example.split()[1:]],
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
        health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=30)
        if health.status_code != 200 or health.json()["status"] != "ok":
            proc.kill()
            return Result(1, "", f"health answered {health.status_code}: {health.text}")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    return Result(0 if proc.returncode in (0, -signal.SIGTERM) else proc.returncode, out, err)
