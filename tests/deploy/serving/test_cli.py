"""``syllabus serve`` as a real process: ready file, SIGTERM flushes the log, workers,
SO_REUSEPORT, usage errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from syllabus.deploy.predlog import list_segments, read_segments
from tests.deploy.serving.conftest import config_for

ROWS = [{"age": 30.0, "income": 4.0}, {"age": 55.0, "income": 6.0}]


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYLLABUS_")}
    env["SYLLABUS_PREDICTIONS"] = str(tmp / "predictions")
    return env


@contextmanager
def serving(
    args: list[str], cwd: Path, tmp: Path, ready: Path
) -> Iterator[tuple[subprocess.Popen[str], dict[str, object]]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "syllabus", "serve", *args, "--ready-file", str(ready)],
        cwd=cwd,
        env=_env(tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not ready.exists():
            proc.kill()
            _out, err = proc.communicate(timeout=30)
            pytest.fail(f"no ready file; exit {proc.returncode}: {err}")
        yield proc, json.loads(ready.read_text())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return err


@pytest.mark.slow
def test_serve_ref_then_sigterm_flushes_the_log(model_workspace: Path, tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    with serving(["churn@latest", "--port", "0"], model_workspace, tmp_path, ready) as (proc, info):
        assert info["pid"] == proc.pid
        assert info["host"] == "127.0.0.1"
        assert info["revision"] is None
        url = f"http://127.0.0.1:{info['port']}"
        with httpx.Client(base_url=url) as http:
            for n in range(5):
                response = http.post("/predict", json=ROWS, headers={"x-request-id": f"q{n}"})
                assert response.json()["version"] == 2  # latest, pinned at start
        assert list_segments(tmp_path / "predictions", "churn") == []  # still buffered
        err = _stop(proc)
    assert "serving churn@latest as churn on http://127.0.0.1:" in err
    table = read_segments(list_segments(tmp_path / "predictions", "churn"))
    assert sorted(set(table["request_id"].to_pylist())) == [f"q{n}" for n in range(5)]
    assert table.num_rows == 10


@pytest.mark.slow
def test_serve_config_with_two_workers_sharing_a_reused_port(
    model_workspace: Path, tmp_path: Path
) -> None:
    config = config_for(model_workspace, "churn@1", tmp_path, service="two", workers=2)
    config = replace(config, reuse_port=True, revision=4)
    config_file = tmp_path / "serving.json"
    config_file.write_text(config.to_json())
    ready = tmp_path / "ready.json"
    with serving(["--config", str(config_file)], tmp_path, tmp_path, ready) as (proc, info):
        assert info["pid"] == proc.pid  # the supervisor, not a worker
        assert info["revision"] == 4
        port = int(info["port"])  # type: ignore[call-overload]
        # A second server (the next revision) can bind the same port meanwhile.
        second = tmp_path / "second.json"
        args = ["churn@2", "--port", str(port), "--reuse-port", "--no-log"]
        with serving(args, model_workspace, tmp_path, second) as (proc2, info2):
            assert info2["port"] == port
            _stop(proc2)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            for n in range(40):
                response = http.post("/predict", json=ROWS[:1], headers={"x-request-id": f"w{n}"})
                assert response.status_code == 200
                assert response.json()["version"] == 1
        _stop(proc)
    table = read_segments(list_segments(tmp_path / "predictions", "two"))
    assert sorted(table["request_id"].to_pylist()) == sorted(f"w{n}" for n in range(40))


def test_usage_and_config_errors(model_workspace: Path, tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "syllabus", "serve", *args],
            cwd=model_workspace,
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    both = run("churn@1", "--config", str(tmp_path / "x.json"))
    assert both.returncode == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"service": "s", "models": {"primary": "churn@1"}, "workrs": 2}))
    result = run("--config", str(bad))
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: serving config: unknown key config.workrs (known: ")
    assert "Traceback" not in result.stderr
