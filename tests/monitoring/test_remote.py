"""Monitoring with ``SYLLABUS_URI`` naming a server: monitors, rules, alerts and reports
through the store over HTTP; runs and status done by the server, which reads the
prediction log beside it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from syllabus import Client
from syllabus.errors import NotFoundError
from tests.fixtures.cli import Runner
from tests.monitoring._log import write_predictions
from tests.server.live import LiveServer, live_server, remote_workspace

_ = live_server  # a fixture the remote workspace uses


@pytest.fixture
def uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return remote_workspace(request, f"sqlite:///{tmp_path / 'server.db'}", tmp_path)


@pytest.fixture
def client(uri: str, workdir: Path) -> Iterator[Client]:
    with Client(uri, cwd=workdir) as c:
        yield c


def _log(root: Path, n: int, mean: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    inputs = {"age": rng.normal(mean, 10, n), "city": rng.choice(["a", "b"], n)}
    write_predictions(root, "svc", inputs, np.zeros(n), ts_ms=1)


def test_monitoring_through_a_server(
    client: Client, live_server: LiveServer, workdir: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(5)
    ref = pa.table({"age": rng.normal(40, 10, 2000), "city": rng.choice(["a", "b"], 2000)})
    pq.write_table(ref, workdir / "ref.parquet")
    log = tmp_path / "server-log"  # where the server's inference writes its log
    monitor = client.create_monitor("m", service="svc", reference=str(workdir / "ref.parquet"),
                                    window="500 rows", log_path=log)  # fmt: skip
    assert client.get_monitor("m") == monitor
    assert monitor.log_path == str(log)  # a path on the server, as given
    assert client.add_alert_rule("m", "psi(age) > 0.2").expr == "psi(age) > 0.2"
    _log(log, 500, 60, 6)
    assert client.monitor_status("m").pending_segments == 1  # counted by the server
    (result,) = client.run_monitor()  # every monitor, run by the server
    assert (result.monitor, result.rows, result.segments) == ("m", 500, 1)
    assert [e.event for e in result.events] == ["fired"]
    status = client.monitor_status("m")
    assert (status.pending_segments, status.windows) == (0, 1)
    assert [a.rule for a in status.firing] == ["psi(age) > 0.2"]
    assert [a.state for a in client.list_alerts("m")] == ["firing"]
    assert "drift score per feature" in client.monitor_report("m", last="3")
    assert client.run_monitor("m")[0].segments == 0  # nothing twice
    client.remove_alert_rule("m", "psi(age)>0.2")
    assert [a.state for a in client.list_alerts()] == ["resolved"]
    with pytest.raises(NotFoundError, match="monitor 'nope' not found"):
        client.run_monitor("nope")
    with pytest.raises(NotFoundError, match="monitor 'nope' not found"):
        client.monitor_status("nope")


@pytest.mark.slow
def test_monitor_commands_through_a_server(
    syllabus_here: Runner, client: Client, uri: str, workdir: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(5)
    ref = pa.table({"age": rng.normal(40, 10, 2000), "city": rng.choice(["a", "b"], 2000)})
    pq.write_table(ref, workdir / "ref.parquet")
    log = tmp_path / "server-log"
    client.create_monitor("m", service="svc", reference=str(workdir / "ref.parquet"),
                          window="500 rows", log_path=log, rules=["psi(age) > 0.2"])  # fmt: skip
    _log(log, 500, 60, 6)
    env = {"SYLLABUS_URI": uri}
    run = syllabus_here("monitor", "run", "m", env=env)
    assert run.code == 0, run.stderr
    assert "alert fired: psi(age) > 0.2" in run.stdout
    status = json.loads(syllabus_here("monitor", "status", "m", "--json", env=env).stdout)
    assert (status["pending_segments"], status["windows"]) == (0, 1)
    report = syllabus_here("monitor", "report", "m", "--html", "m.html", env=env)
    assert report.code == 0, report.stderr
    assert "drift score per feature" in (workdir / "m.html").read_text()
