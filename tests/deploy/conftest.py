"""Deployment tests: a workspace with registered models and a spec; every deployment the
test started is stopped afterwards (real server processes on 127.0.0.1)."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from syllabus import Client


class Unloadable:
    """A model whose pickle fails to load anywhere (ZeroDivisionError when unpickled)."""

    def predict(self, data: Any) -> list[float]:
        return [0.0 for _ in data["x"]]

    def __reduce__(self) -> tuple[Any, tuple[int, int]]:
        return operator.truediv, (1, 0)


def register_linear(client: Client, name: str, slope: float) -> str:
    """A scikit-learn regression ``y = slope * x`` registered as the next version of
    ``name``; its reference."""
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    x = pd.DataFrame({"x": np.arange(10, dtype=np.float64)})
    model = LinearRegression().fit(x, slope * x["x"])
    run = client.create_run("deploy-tests")
    _, version = client.log_model(run.id, model, input_example=x.head(3), registered_name=name)
    client.end_run(run.id)
    assert version is not None
    return version.ref


def register_broken(client: Client, name: str) -> str:
    run = client.create_run("deploy-tests")
    _, version = client.log_model(
        run.id, Unloadable(), flavor="python", signature=None, registered_name=name
    )
    client.end_run(run.id)
    assert version is not None
    return version.ref


SPEC = """\
service: churn
model: churn@1
target: local
workers: 1
readiness_timeout: 60s
log: {enabled: false}
environments:
  staging: {}
  production:
    model: churn@2
"""


@pytest.fixture
def client(workdir: Path) -> Iterator[Client]:
    with Client(cwd=workdir) as c:
        yield c
        for d in c.list_deployments():  # never leave a server running
            if d.live is not None:
                c.stop_deployment(d.name, d.env)


def predict(url: str, x: float) -> tuple[float, Any]:
    import httpx

    response = httpx.post(f"{url}/predict", json=[{"x": x}], timeout=10)
    assert response.status_code == 200, response.text
    return float(response.json()["predictions"][0]), response.json()
