"""The built-in loop: train -> register -> evaluate against the champion -> promote through
the gates -> deploy (first in full, later as a canary, then in full) on the local target."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from syllabus import Client
from syllabus.pipelines import StepStatus

TRAINING = """
from sklearn.linear_model import LogisticRegression


def fit(frame, target, c=1.0):
    return LogisticRegression(C=c).fit(frame.drop(columns=[target]), frame[target])
"""

LOOP = """
from syllabus import pipeline
from syllabus.pipelines import builtin, dataset, on_dataset


@pipeline(name="NAME", triggers=[on_dataset("points")])
def loop(c: float = 1.0):
    model = builtin.train(dataset("points@latest"), fit="training:fit", target="label", c=c)
    version = builtin.register(model, name="clf")
    verdict = builtin.evaluate(version, dataset("holdout@latest"), target="label", resamples=100)
    promoted = builtin.promote(version, evaluation=verdict, stages=["staging", "production"])
    builtin.deploy(promoted, spec="deploy.yaml", env="production", canary_percent=50)
"""

SPEC = """\
service: clf
model: clf@production
target: local
workers: 1
readiness_timeout: 60s
log: {enabled: false}
environments:
  production: {}
"""


def _write(path: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    label = (x + 0.5 * rng.normal(size=n) > 0).astype(int)
    path.write_text("x,label\n" + "".join(f"{a},{b}\n" for a, b in zip(x, label, strict=True)))


@pytest.fixture
def loop_client(client: Client) -> Iterator[Client]:
    yield client
    for d in client.list_deployments():  # never leave a server running
        if d.live is not None:
            client.stop_deployment(d.name, d.env)


@pytest.mark.slow
def test_the_loop_trains_evaluates_promotes_and_deploys(
    loop_client: Client, steps_module: Callable[..., str], workdir: Path
) -> None:
    client = loop_client
    (workdir / "training.py").write_text(TRAINING)
    (workdir / "deploy.yaml").write_text(SPEC)
    _write(workdir / "points.csv", 200, 1)
    client.add_dataset("points", workdir / "points.csv")
    _write(workdir / "holdout.csv", 300, 2)
    client.add_dataset("holdout", workdir / "holdout.csv")
    mod = steps_module(LOOP)

    first = client.run_pipeline(f"{mod}:loop", executor="inline")
    assert first.ok, [(s.step, s.error) for s in first.steps]
    assert first.value("evaluate")["champion"] is None  # nothing to beat yet
    assert first.value("promote") == {"model": "clf@1", "stage": "production"}
    assert first.value("deploy")["canary"] is False
    assert client.get_model_version("clf@production").version == 1
    # lineage: the model version knows its training run and the data version it read
    lineage = client.model_lineage("clf@1")
    assert [(i["name"], i["role"]) for i in lineage["inputs"]] == [("points@1", "data")]
    (registered,) = first.step("register").outputs["model_versions"]  # type: ignore[index]
    assert registered["ref"] == "clf@1"

    # new data: the agent retrains, evaluates against the champion, canaries, then serves
    _write(workdir / "points.csv", 400, 3)
    client.add_dataset("points", workdir / "points.csv")
    (event,) = client.run_agent(once=True, executor="inline")
    assert event.status == "succeeded", event.error
    second = client.get_pipeline_run(event.pipeline_run_id or "")
    assert all(s.status is StepStatus.SUCCEEDED for s in second.steps)
    assert second.value("evaluate")["champion"] == "clf@1"
    deployed = second.value("deploy")
    assert deployed["canary"] is True
    history = client.deployment_history("clf", "production")
    canary = next(r for r in history if r.revision == deployed["canary_revision"])
    assert (canary.model_ref, canary.canary_ref) == ("clf@1", "clf@2")
    live = client.get_deployment("clf", "production").live
    assert live is not None
    assert live.model_ref == "clf@2"
    assert live.canary_ref is None
