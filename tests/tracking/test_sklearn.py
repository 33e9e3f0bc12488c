"""syllabus.sklearn.autolog() with real scikit-learn estimators."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

import syllabus
from syllabus import Client, fluent, init_workspace


@pytest.fixture
def client(workdir: Path) -> Iterator[Client]:
    init_workspace(workdir)
    with Client(workdir) as c:
        fluent.set_client(c)
        syllabus.sklearn.autolog()
        yield c
        syllabus.sklearn.autolog(disable=True)
        fluent.set_client(None)


def test_fit_logs_params_metrics_and_model(client: Client) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=300).fit(x, y)
    (run,) = client.search_runs(filter="tags.estimator_name = 'LogisticRegression'")
    assert run.name == "LogisticRegression"
    assert run.params["max_iter"] == "300"
    assert run.metrics["training_accuracy"].value > 0.9
    assert {"training_score", "training_f1"} <= set(run.metrics)
    restored = pickle.loads(client.read_artifact(run.id, "model/model.pkl"))
    assert (restored.predict(x) == model.predict(x)).all()


def test_pipeline_logs_once_into_the_active_run(client: Client) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_diabetes(return_X_y=True)
    with syllabus.start_run(experiment="sk") as active:
        make_pipeline(StandardScaler(), Ridge()).fit(x, y)
    runs = client.search_runs("sk")
    assert [r.id for r in runs] == [active.id]  # the inner fits made no runs of their own
    run = runs[0]
    assert run.tags["estimator_name"] == "Pipeline"
    assert {"training_r2", "training_mse", "training_mae"} <= set(run.metrics)


def test_disable_restores_fit(client: Client) -> None:
    from sklearn.linear_model import LinearRegression

    syllabus.sklearn.autolog(disable=True)
    LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    assert len(client.search_runs()) == 0
