from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from syllabus import Client


class Scaled:
    """A plain Python model (pickled): predicts ``factor * x``; ``payload`` makes its
    bytes unique and incompressible."""

    def __init__(self, factor: float = 2.0, fail: bool = False) -> None:
        self.factor = factor
        self.fail = fail
        self.payload = os.urandom(4096)

    def predict(self, data: Any) -> list[float]:
        if self.fail:
            raise RuntimeError("model is broken")
        return [self.factor * float(v) for v in data["x"]]


@pytest.fixture
def client(workdir: Path) -> Iterator[Client]:
    with Client(cwd=workdir) as c:
        yield c


def log_run_model(
    client: Client,
    name: str,
    model: Any = None,
    *,
    metrics: dict[str, float] | None = None,
    example: Any = "default",
    artifacts: dict[str, str] | None = None,
) -> Any:
    """A run with ``metrics`` that logs ``model`` and registers it as a new version."""
    run = client.create_run("registry-tests")
    for key, value in (metrics or {}).items():
        client.log_metric(run.id, key, value)
    for path, text in (artifacts or {}).items():
        client.log_text(run.id, text, path)
    client.flush()
    if example == "default":
        example = {"x": np.array([1.0, 2.0])}
    _, version = client.log_model(
        run.id,
        model if model is not None else Scaled(),
        input_example=example,
        registered_name=name,
    )
    client.end_run(run.id)
    return version
