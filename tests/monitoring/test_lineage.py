"""A monitor's reference through lineage (model version -> training run -> its train
dataset version), and monitors attached to deployments from their spec's monitoring block."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from syllabus import Client
from syllabus.errors import NotFoundError
from tests.monitoring._log import write_predictions


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    """Model ``churn@1`` trained on dataset ``train@1`` (logged with role train); ``bare@1``
    from a run with no inputs."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                          "region": rng.choice(["n", "s"], n)})  # fmt: skip
    frame["label"] = (frame["x1"] > 0).astype(int)
    frame.to_parquet(tmp_path / "train.parquet")
    with Client(cwd=tmp_path, predictions=str(tmp_path / "log")) as c:
        c.add_dataset("train", tmp_path / "train.parquet")
        model = LogisticRegression().fit(frame[["x1", "x2"]], frame["label"])
        run = c.create_run("train")
        c.log_dataset_input(run.id, "train@1", role="train")
        c.log_model(run.id, model, input_example=frame[["x1", "x2"]].head(3),
                    registered_name="churn")  # fmt: skip
        c.end_run(run.id)
        bare = c.create_run("train")
        c.log_model(bare.id, model, input_example=frame[["x1", "x2"]].head(3),
                    registered_name="bare")  # fmt: skip
        c.end_run(bare.id)
        yield c


def test_reference_found_through_lineage(client: Client, tmp_path: Path) -> None:
    monitor = client.create_monitor("churn-m", model="churn@1", window="100 rows")
    assert monitor.reference == "train@1"
    assert monitor.features == ("x1", "x2")  # the signature's inputs, not region or label
    assert monitor.service == "churn"
    rng = np.random.default_rng(1)
    write_predictions(tmp_path / "log", "churn", {"x1": rng.normal(3, 1, 250),
                      "x2": rng.normal(size=250)}, np.ones(250, np.int64), ts_ms=1)  # fmt: skip
    run = client.run_monitor("churn-m")[0]
    assert run.windows == (0, 100, 200)
    windows = client.monitor_windows("churn-m")
    assert [w.closed for w in windows] == [True, True, False]  # the last has 50 of 100 rows
    assert windows[0].summary["drifted"] == ["x1"]
    # the profile was stored once: a second monitor reuses it
    again = client.create_monitor("churn-m2", model="churn@1")
    assert again.profile_id == monitor.profile_id


def test_no_training_data_in_lineage_is_a_clear_error(client: Client) -> None:
    with pytest.raises(NotFoundError, match=r"logged no training dataset.*--reference"):
        client.create_monitor("bare-m", model="bare@1")
    assert client.create_monitor("bare-m", model="bare@1", reference="train@1").features == (
        "x1", "x2")  # fmt: skip


def test_deployments_get_a_monitor_from_their_spec(client: Client, tmp_path: Path) -> None:
    spec = tmp_path / "deploy.yaml"
    spec.write_text(
        "service: churn\nmodel: churn@1\ntarget: kubernetes\n"
        "kubernetes: {image: registry.example/churn:1}\n"
        "monitoring:\n  window: 30m\n  alerts: ['drift_share > 0.3 for 2 windows']\n"
        "environments:\n  staging: {}\n"
    )
    try:
        client.apply_deployment(spec, "staging")
    except Exception as exc:  # the deploy component may refuse a render here
        pytest.skip(f"cannot render a kubernetes deployment here: {exc}")
    assert client.sync_monitors() == ["churn-staging"]
    monitor = client.get_monitor("churn-staging")
    assert (monitor.deployment, monitor.env, monitor.window) == ("churn", "staging", "30m")
    assert monitor.reference == "train@1"
    assert [r.expr for r in client.list_alert_rules("churn-staging")] == [
        "drift_share > 0.3 for 2 windows"]  # fmt: skip
    assert client.sync_monitors() == []  # same revision: nothing to do


def test_compare_a_dataset_version_with_a_file(client: Client, tmp_path: Path) -> None:
    same = client.compare_data("train@1", str(tmp_path / "train.parquet"))
    assert same.drifted == ()
    assert {f.name for f in same.features} == {"x1", "x2", "region", "label"}
    assert all(f.stats.get("ks", 0) == 0 and f.stats.get("js", 0) == 0 for f in same.features)
