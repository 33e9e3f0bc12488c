"""An alert trigger fired by a real monitor: drift in the prediction log raises an alert,
the agent runs the pipeline once for it, and a new alert fires it again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from syllabus import Client
from tests.monitoring._log import write_predictions

RETRAIN = """
from syllabus.pipelines import on_alert, pipeline, step


@step(cache=False)
def retrain():
    return "retrained"


@pipeline(name="NAME", triggers=[on_alert("svc-drift", name="drift")])
def on_drift():
    retrain()
"""


@pytest.mark.parametrize("source", ["monitoring", "alert events"])
def test_a_monitoring_alert_fires_the_pipeline_once(
    steps_module: Callable[..., str], workdir: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    if source == "alert events":  # without monitoring's own source: its alert events
        monkeypatch.setattr(Client, "pipeline_alert_source", None, raising=False)
    rng = np.random.default_rng(0)
    pq.write_table(pa.table({"age": rng.normal(40, 10, 2000)}), workdir / "ref.parquet")
    log = workdir / "log"
    with Client(cwd=workdir, predictions=str(log)) as client:
        client.create_monitor(
            "svc-drift",
            service="svc",
            reference=str(workdir / "ref.parquet"),
            window="500 rows",
            rules=["psi(age) > 0.2"],
        )
        mod = steps_module(RETRAIN)
        client.register_pipeline(f"{mod}:on_drift")
        assert client.run_agent(once=True, executor="inline") == []

        write_predictions(log, "svc", {"age": rng.normal(40, 10, 500)}, np.zeros(500), ts_ms=1)
        client.run_monitor("svc-drift")
        assert client.run_agent(once=True, executor="inline") == []  # no drift, no alert

        write_predictions(log, "svc", {"age": rng.normal(70, 10, 500)}, np.zeros(500), ts_ms=2)
        client.run_monitor("svc-drift")
        (event,) = client.run_agent(once=True, executor="inline")
        assert event.status == "succeeded"
        assert client.run_agent(once=True, executor="inline") == []  # once per alert
        (firing,) = client.list_firings(mod)
        assert firing.detail.get("monitor", firing.detail.get("rule")) is not None

        # resolved, then drifting again: a new alert, a new firing
        write_predictions(log, "svc", {"age": rng.normal(40, 10, 500)}, np.zeros(500), ts_ms=3)
        client.run_monitor("svc-drift")
        write_predictions(log, "svc", {"age": rng.normal(75, 10, 500)}, np.zeros(500), ts_ms=4)
        client.run_monitor("svc-drift")
        (again,) = client.run_agent(once=True, executor="inline")
        assert again.occurrence != event.occurrence
        assert len(client.list_pipeline_runs(mod)) == 2
