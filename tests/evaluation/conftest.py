from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from syllabus import Client


def make_data(n: int, seed: int) -> dict[str, np.ndarray]:
    """``x1`` carries the signal, ``x2`` is noise; ``region`` has a rare value ``z``."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    label = (x1 + 0.6 * rng.normal(size=n) > 0).astype(int)
    region = np.where(rng.random(n) < 0.5, "north", "south").astype(object)
    region[:3] = "z"
    return {"x1": x1, "x2": x2, "region": region, "label": label}


def write_csv(path: Path, data: dict[str, np.ndarray]) -> None:
    names = list(data)
    lines = [",".join(names)]
    for i in range(len(data[names[0]])):
        lines.append(",".join(str(data[c][i]) for c in names))
    path.write_text("\n".join(lines) + "\n")


def log(client: Client, name: str, model: object, example: dict[str, np.ndarray]) -> str:
    run = client.create_run("evaluation-tests")
    _, version = client.log_model(run.id, model, input_example=example, registered_name=name)
    client.end_run(run.id)
    assert version is not None
    return str(version.ref)


def populate(client: Client, workdir: Path) -> None:
    """Dataset ``holdout`` (800 rows) and model ``churn``: v1 (noise only) in production,
    v2 (the signal), v3 (the same fit as v1)."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    train = make_data(1000, 1)
    write_csv(workdir / "holdout.csv", make_data(800, 2))
    client.add_dataset("holdout", workdir / "holdout.csv")
    weak = LogisticRegression().fit(pd.DataFrame({"x2": train["x2"]}), train["label"])
    strong = LogisticRegression().fit(
        pd.DataFrame({"x1": train["x1"], "x2": train["x2"]}), train["label"]
    )
    ex_weak = pd.DataFrame({"x2": train["x2"][:5]})
    ex_strong = pd.DataFrame({"x1": train["x1"][:5], "x2": train["x2"][:5]})
    log(client, "churn", weak, ex_weak)
    log(client, "churn", strong, ex_strong)
    log(client, "churn", weak, ex_weak)
    client.transition_stage("churn@1", "production")


@pytest.fixture
def prepared(workdir: Path) -> Iterator[Client]:
    """A workspace client after :func:`populate`."""
    with Client(cwd=workdir) as client:
        populate(client, workdir)
        yield client
