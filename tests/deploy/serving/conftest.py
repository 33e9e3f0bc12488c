"""A workspace with registered models, and real uvicorn servers on 127.0.0.1 ports."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from syllabus.deploy.serving import ServingApp, ServingConfig
from syllabus.deploy.serving.config import LogSpec
from syllabus.deploy.serving.server import bind_socket, uvicorn_config
from tests.deploy.serving.models import EveryType, every_type_example


def _churn(flip: bool) -> Any:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    age = rng.normal(40, 10, 400)
    income = rng.normal(5, 2, 400)
    y = (age > 40) if not flip else (age <= 40)
    return LogisticRegression().fit(np.column_stack([age, income]), y.astype(int))


@pytest.fixture(scope="session")
def model_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``churn@1`` (predicts age > 40), ``churn@2`` (the opposite), ``typed@1`` (a column of
    every type, python flavor: pickled) and ``tensor@1`` (float64[-1, 2])."""
    from sklearn.linear_model import LinearRegression

    from syllabus import Client

    folder = tmp_path_factory.mktemp("serving") / "ws"
    folder.mkdir()
    example = {"age": np.array([30.0, 50.0]), "income": np.array([4.0, 6.0])}
    with Client(cwd=folder) as client:
        for flip in (False, True):
            run = client.create_run("churn")
            client.log_model(run.id, _churn(flip), input_example=example, registered_name="churn")
            client.end_run(run.id)
        run = client.create_run("typed")
        client.log_model(
            run.id, EveryType(), input_example=every_type_example(), registered_name="typed"
        )
        x = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 5.0]])
        client.log_model(
            run.id, LinearRegression().fit(x, x @ [1.0, 10.0]), "tensor",
            input_example=x, registered_name="tensor",
        )  # fmt: skip
        client.end_run(run.id)
    return folder


def config_for(workspace: Path, primary: str, tmp: Path, **changes: Any) -> ServingConfig:
    config = ServingConfig.for_model(
        primary,
        uri=str(workspace),
        blobs=str(workspace / ".syllabus" / "blobs"),
        port=0,
        log=LogSpec(path=str(tmp / "predictions"), flush_rows=100_000, flush_seconds=3600),
    )
    return replace(config, **changes)


class Running:
    def __init__(self, app: ServingApp, url: str, server: Any) -> None:
        self.app = app
        self.url = url
        self.server = server
        self.http = httpx.Client(base_url=url, timeout=30)

    def post_json(
        self, path: str, doc: Any, *, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return self.http.post(
            path,
            content=json.dumps(doc),
            headers={"content-type": "application/json", **(headers or {})},
        )


@contextmanager
def running(config: ServingConfig, app: ServingApp | None = None) -> Iterator[Running]:
    """A real uvicorn server on an ephemeral 127.0.0.1 port, in a thread of this process."""
    import uvicorn

    from syllabus.cli.serve import build_app

    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    app = app or build_app(config, port, os.getpid())
    server = uvicorn.Server(uvicorn_config(app))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(3000):
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.01)
        assert server.started, "the server did not start"
        app.wait_loaded(120)
        handle = Running(app, f"http://127.0.0.1:{port}", server)
        try:
            yield handle
        finally:
            handle.http.close()
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()
