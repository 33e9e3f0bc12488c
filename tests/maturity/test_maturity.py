"""``maturity()`` and ``syllabus maturity`` on workspaces built to be at each level."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression

from syllabus import Client
from tests.fixtures.cli import Runner, init_here


def met(report: object) -> dict[str, bool]:
    return {c.key: c.met for c in report.criteria}  # type: ignore[attr-defined]


def level0(client: Client) -> None:
    run = client.create_run("maturity")
    client.log_metric(run.id, "acc", 0.5)
    client.end_run(run.id)


def level1(client: Client, workdir: Path) -> None:
    (workdir / "train.csv").write_text("x,y\n0,0\n1,1\n2,0\n3,1\n")
    client.add_dataset("train", workdir / "train.csv")
    run = client.create_run("maturity")
    client.log_dataset_input(run.id, "train@1", role="train")
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(x, [0, 1, 0, 1])
    client.log_model(run.id, model, input_example=x, registered_name="clf")
    client.end_run(run.id)


TRAIN = """
import syllabus

with syllabus.start_run(experiment="maturity") as run:
    syllabus.log_metric("acc", 0.75)
"""


def level2(client: Client, workdir: Path) -> None:
    (workdir / "train.py").write_text(TRAIN)
    subprocess.run([sys.executable, "train.py"], cwd=workdir, check=True, capture_output=True)
    (run,) = client.search_runs(filter="metrics.acc = 0.75")
    verdict = client.reproduce(run.id, folder=workdir / "again", timeout=120)
    assert verdict.reproduced


FLOW = """
from syllabus import pipeline, step
from syllabus.pipelines import dataset, on_dataset


@step
def rows(data):
    return len(data.to_pandas())


@pipeline(name="retrain", triggers=[on_dataset("train")])
def retrain():
    rows(dataset("train@latest"))
"""


def level3(client: Client, workdir: Path) -> None:
    (workdir / "flow.py").write_text(FLOW)
    client.register_pipeline("flow.py:retrain")
    (workdir / "train.csv").write_text("x,y\n0,0\n1,1\n2,0\n3,1\n4,0\n")
    client.add_dataset("train", workdir / "train.csv")
    (event,) = client.run_agent(once=True, executor="inline")
    assert event.status == "succeeded"
    rng = np.random.default_rng(3)
    pq.write_table(pa.table({"x": rng.normal(size=200)}), workdir / "reference.parquet")
    client.create_monitor(
        "clf-local",
        service="clf",
        reference=str(workdir / "reference.parquet"),
        window="100 rows",
        rules=["drift_share > 0.3"],
    )
    (workdir / "policy.yaml").write_text(
        textwrap.dedent(
            """
            policy: clf
            stages:
              staging:
                gates:
                  - signature: required
            """
        )
    )
    client.apply_policy(workdir / "policy.yaml")
    client.transition_stage("clf@1", "staging")


def test_an_empty_workspace_is_below_level_0(workdir: Path) -> None:
    with Client(cwd=workdir) as client:
        client.open()
        report = client.maturity()
    assert report.level == -1
    assert not met(report)["runs"]
    (runs,) = [c for c in report.criteria if c.key == "runs"]
    assert "start_run" in runs.command


@pytest.mark.slow
def test_each_level_is_reached_when_its_criteria_are_met(workdir: Path) -> None:
    with Client(cwd=workdir) as client:
        level0(client)
        report = client.maturity()
        assert report.level == 0
        assert {c.key for c in report.next_steps} == {"datasets", "models", "lineage"}

        level1(client, workdir)
        report = client.maturity()
        assert report.level == 1
        lineage = next(c for c in report.criteria if c.key == "lineage")
        assert lineage.evidence == "clf@1 was trained on train@1"
        assert not met(report)["reproduced"]

        level2(client, workdir)
        report = client.maturity()
        assert report.level == 2, report.missing
        assert met(report)["code"]
        assert met(report)["environments"]
        missing = {c.key: c.command for c in report.missing}
        assert set(missing) == {"triggered_pipeline", "monitoring", "gated_promotions"}
        assert missing["triggered_pipeline"].endswith("`syllabus agent`")

        level3(client, workdir)
        report = client.maturity()
        assert report.level == 3, report.missing
        assert report.missing == []
        gated = next(c for c in report.criteria if c.key == "gated_promotions")
        assert gated.evidence == "clf@1 -> staging passed integrity, signature"


def test_a_later_level_does_not_count_without_the_earlier_ones(workdir: Path) -> None:
    with Client(cwd=workdir) as client:
        level0(client)
        (workdir / "flow.py").write_text(FLOW)
        (workdir / "train.csv").write_text("x,y\n0,0\n")
        client.add_dataset("train", workdir / "train.csv")
        client.register_pipeline("flow.py:retrain")
        (workdir / "train.csv").write_text("x,y\n0,0\n1,1\n")
        client.add_dataset("train", workdir / "train.csv")
        assert len(client.run_agent(once=True, executor="inline")) == 1
        report = client.maturity()
    assert met(report)["triggered_pipeline"]
    assert report.level == 0  # no registered model: level 1 is missing


def test_cli(syllabus_here: Runner, workdir: Path) -> None:
    init_here(workdir)
    result = syllabus_here("maturity")
    assert result.code == 0
    assert "maturity: below level 0" in result.stdout
    assert "missing Runs are tracked" in result.stdout
    with Client(cwd=workdir) as client:
        level0(client)
    data = json.loads(syllabus_here("maturity", "--json").stdout)
    assert data["level"] == 0
    assert data["levels"]["0"]["met"] is True
    assert {c["key"] for c in data["criteria"] if not c["met"]} >= {"datasets", "lineage"}
    assert all(c["command"] for c in data["criteria"])
