"""Batch scoring: chunks on a local process pool (and Ray) give exactly what a direct
predict gives, into a new dataset version whose lineage names the model and the input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from syllabus import Client
from syllabus.errors import InvalidArgumentError


def _classifier(client: Client) -> str:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    x = pd.DataFrame({"age": rng.normal(40, 10, 300), "income": rng.normal(5, 2, 300)})
    y = np.where(x["age"] > 40, "stay", "leave")
    run = client.create_run("deploy-tests")
    _, version = client.log_model(
        run.id, LogisticRegression().fit(x, y), input_example=x.head(5), registered_name="churn"
    )
    client.end_run(run.id)
    assert version is not None
    return version.ref


def _dataset(client: Client, workdir: Path, rows: int = 250) -> str:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(
        {
            "customer": [f"c{i}" for i in range(rows)],
            "age": rng.normal(40, 12, rows),
            "income": rng.normal(5, 2, rows),
        }
    )
    frame.to_parquet(workdir / "new.parquet")
    return client.add_dataset("new", workdir / "new.parquet").version.ref


@pytest.mark.slow
def test_batch_equals_direct_predict(client: Client, workdir: Path) -> None:
    model = _classifier(client)
    data = _dataset(client, workdir)
    seen: list[tuple[int, int | None]] = []
    result = client.batch_score(
        model, data, "scored", chunk_rows=60, workers=2,
        progress=lambda n, total: seen.append((n, total)),
    )  # fmt: skip
    assert (result.rows, result.chunks, result.output.ref) == (250, 5, "scored@1")
    assert sum(n for n, _ in seen) == 250
    assert {t for _, t in seen} == {250}
    out = client.dataset("scored@1").to_pandas()
    source = client.dataset(data).to_pandas()
    assert list(out.columns) == ["customer", "age", "income", "prediction", "score"]
    pd.testing.assert_frame_equal(out[source.columns], source)
    loaded = client.load_model(model)
    features = source[["age", "income"]]
    assert list(out["prediction"]) == list(loaded.predict(features))
    proba = np.asarray(loaded.predict_proba(features))[:, 1]  # positive class: "stay"
    np.testing.assert_allclose(out["score"], proba)
    # lineage: the run consumed the model and the input and produced the output
    (lineage,) = client.dataset_lineage("scored@1")
    inputs = {(i.kind, i.name, i.role) for i in client.list_inputs(lineage.run_id or "")}
    assert inputs == {
        ("model", model, "model"), ("dataset", data, "input"), ("dataset", "scored@1", "output"),
    }  # fmt: skip
    run = client.get_run(result.run_id)
    assert run.status == "finished"
    assert run.params["model"] == model
    assert "scored by churn@1 from new@1" in client.get_dataset("scored@1").message


def test_bad_input_changes_nothing(client: Client, workdir: Path) -> None:
    model = _classifier(client)
    pd.DataFrame({"age": [1.0, 2.0]}).to_parquet(workdir / "thin.parquet")
    data = client.add_dataset("thin", workdir / "thin.parquet").version.ref
    with pytest.raises(InvalidArgumentError, match="no column 'income'"):
        client.batch_score(model, data, "scored", workers=1)
    assert [d.name for d in client.list_datasets()] == ["thin"]
    with pytest.raises(InvalidArgumentError, match="unknown executor"):
        client.batch_score(model, data, "scored", executor="spark")


@pytest.mark.slow
def test_ray_executor(client: Client, workdir: Path) -> None:
    ray = pytest.importorskip("ray")
    model = _classifier(client)
    data = _dataset(client, workdir, rows=40)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        result = client.batch_score(model, data, "scored", chunk_rows=25, executor="ray")
    finally:
        ray.shutdown()
    assert (result.rows, result.chunks, result.executor) == (40, 2, "ray")
    out = client.dataset(result.output.ref).to_pandas()
    loaded = client.load_model(model)
    assert list(out["prediction"]) == list(loaded.predict(out[["age", "income"]]))
