"""Fixtures of the web UI tests: a copy of the workspace ``syllabus demo`` filled (plus
artifacts of every preview kind, a sweep, a notebook checkpoint, a pending request and a
pipeline run with a cached step), the UI served by a real uvicorn server on 127.0.0.1, and
Debian's Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from syllabus import Client
from syllabus.server.ui import UIUser, create_ui_app
from tests.fixtures.demo import DemoRun, copy_demo, demo_client

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
XSS = "<script>window.__xss=true</script><img src=x onerror=window.__xss=true>"
"""Stored in params, tags, artifacts, notebooks and comments: it must never run."""


def _png(width: int = 8, height: int = 8) -> bytes:
    """A small valid PNG (a red-green gradient), written by hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 30, y * 30, 90)) for x in range(width)) for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _notebook(png: bytes) -> dict[str, Any]:
    import base64

    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {"cell_type": "markdown", "id": "a1", "metadata": {}, "source": ["# Scans\n", XSS]},
            {
                "cell_type": "code",
                "id": "a2",
                "metadata": {},
                "execution_count": 1,
                "source": ["print('hello')"],
                "outputs": [
                    {"output_type": "stream", "name": "stdout", "text": ["hello\n"]},
                    {
                        "output_type": "display_data",
                        "metadata": {},
                        "data": {
                            "image/png": base64.b64encode(png).decode(),
                            "text/plain": ["<Figure>"],
                        },
                    },
                    {
                        "output_type": "execute_result",
                        "execution_count": 1,
                        "metadata": {},
                        "data": {"text/html": [XSS], "text/plain": ["an HTML table"]},
                    },
                ],
            },
            {
                "cell_type": "code",
                "id": "a3",
                "metadata": {},
                "execution_count": 2,
                "source": ["1 / 0"],
                "outputs": [
                    {
                        "output_type": "error",
                        "ename": "ZeroDivisionError",
                        "evalue": "division by zero",
                        "traceback": ["\x1b[31mZeroDivisionError\x1b[0m: division by zero"],
                    }
                ],
            },
        ],
    }


@dataclass(frozen=True)
class Filled:
    """The filled workspace (a copy of the demo's) and the ids the tests look for."""

    folder: Path
    baseline: str  # run logistic-2 (tumour@1)
    challenger: str  # run gbm (tumour@3, the first champion)
    gallery: str
    sweep: str
    children: tuple[str, ...]
    evaluation: str
    pending: str
    pipeline_runs: tuple[str, ...]  # the demo's retrain run, then numbers twice


def _fill(client: Client, folder: Path) -> Filled:
    """What the demo does not make and a page shows: artifacts of every preview kind, a
    model ``toy``, a sweep, a notebook checkpoint, a pending request, a cached pipeline
    step; user text everywhere is :data:`XSS`."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    runs = {r.name: r.id for r in client.search_runs("scans")}
    png = _png()
    files = folder / "gallery"
    files.mkdir()
    (files / "notes.txt").write_text(f"trained on scans@2\n{XSS}\n")
    (files / "table.csv").write_text("name,score\nalpha,0.91\n" + f'"{XSS}",0.5\n')
    (files / "config.json").write_text(json.dumps({"features": ["a", "b"], "xss": XSS}))
    (files / "plot.png").write_bytes(png)
    (files / "page.html").write_text(f"<html><body>{XSS}</body></html>")
    (files / "blob.bin").write_bytes(bytes(range(256)))
    (files / "analysis.ipynb").write_text(json.dumps(_notebook(png)))

    gallery = client.create_run(
        "gallery", name="gallery", params={"note": XSS, "lr": 0.1}, tags={"team": XSS}
    )
    client.log_artifacts(gallery.id, files, "files")
    client.log_metrics(
        gallery.id, [("loss", 1.0 / (i + 1), i, 1_700_000_000_000 + 1000 * i) for i in range(50)]
    )
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    client.log_model(gallery.id, LogisticRegression().fit(x, y), registered_name="toy")
    client.end_run(gallery.id)

    sweep = client.create_run("sweep", name="grid")
    children = []
    for i, (lr, model) in enumerate([(0.1, "gbm"), (0.03, "gbm"), (0.01, "rf"), (0.3, "rf")]):
        child = client.create_run(
            "sweep", name=f"trial-{i}", parent=sweep.id, params={"lr": lr, "model": model}
        )
        client.log_metrics(child.id, [("val_auc", 0.7 + lr / 2 + s / 100, s, 0) for s in range(5)])
        client.end_run(child.id)
        children.append(child.id)
    client.end_run(sweep.id)

    notebook = folder / "analysis.ipynb"
    notebook.write_text(json.dumps(_notebook(png)))
    client.checkpoint_notebook(notebook, message="first look", run_id=gallery.id)

    request = client.request_transition("tumour@4", "testing", comment=f"please {XSS}")
    (firing,) = client.list_firings("retrain")
    (folder / "ui_numbers.py").write_text(PIPELINE)
    first = client.run_pipeline("ui_numbers:numbers", executor="inline")
    second = client.run_pipeline("ui_numbers:numbers", executor="inline", params={"power": 3})
    (evaluation, *_) = client.list_evaluations("tumour@5")
    return Filled(
        folder,
        runs["logistic-2"],
        runs["gbm"],
        gallery.id,
        sweep.id,
        tuple(children),
        evaluation.id,
        request.id,
        (firing.pipeline_run_id or "", first.run.id, second.run.id),
    )


PIPELINE = """
from syllabus.pipelines import pipeline, step


@step
def load(n: int = 4):
    return list(range(n))


@step
def square(xs, power: int = 2):
    return [x**power for x in xs]


@step
def total(ys):
    return {"sum": sum(ys)}


@pipeline(name="numbers")
def numbers(n: int = 4, power: int = 2):
    return total(square(load(n=n), power=power))
"""


@pytest.fixture(scope="session")
def filled(demo_run: DemoRun, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filled]:
    """A copy of the demo's workspace with :func:`_fill`'s additions; the servers a test
    starts (a rollback serves again) are stopped at the end."""
    folder = copy_demo(demo_run, tmp_path_factory.mktemp("ui") / "demo")
    with demo_client(folder) as c:
        try:
            yield _fill(c, folder)
        finally:
            for d in c.list_deployments():
                if d.live is not None:
                    c.stop_deployment(d.name, d.env)


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` served by uvicorn on an ephemeral port of 127.0.0.1, in a thread."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the UI server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


@pytest.fixture(scope="session")
def ui_client(filled: Filled) -> Iterator[Client]:
    with Client(
        filled.folder / ".syllabus",
        blobs=filled.folder / ".syllabus" / "blobs",
        cwd=filled.folder,
        create=False,
    ) as client:
        yield client


@pytest.fixture(scope="session")
def ui_url(ui_client: Client) -> Iterator[str]:
    with serving(create_ui_app(ui_client)) as url:
        yield url


USERS = {
    "admin-token": UIUser("alice", frozenset({"admin"})),
    "viewer-token": UIUser("bob", frozenset({"viewer"})),
}


@pytest.fixture(scope="session")
def auth_url(ui_client: Client) -> Iterator[str]:
    """The UI of a server with auth: tokens map to an admin and a read-only user."""
    with serving(create_ui_app(ui_client, authenticate=USERS.get)) as url:
        yield url


@pytest.fixture
def http(ui_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ui_url, timeout=60) as client:
        yield client


# -- the browser -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing; `make chromium` installs Debian's Chromium"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


_CHARTS_SETTLED = """() => [...document.querySelectorAll('[data-metric-chart]')].every(
    (el) => el.dataset.drawn === '1' || el.classList.contains('chart-error'))"""


@dataclass
class Tab:
    """A browser page that records console errors and uncaught exceptions."""

    page: Any
    base: str
    errors: list[str]

    def open(self, path: str) -> Any:
        """Load ``path`` and wait until it is complete: its load event (scripts, styles,
        images, frames) and then the one thing a page fetches afterwards, the data of its
        metric charts (each is drawn, or shows why it could not be)."""
        self.errors.clear()
        response = self.page.goto(self.base + path, wait_until="load")
        self.page.wait_for_function(_CHARTS_SETTLED)
        return response

    def shot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def _tab(browser: Any, base: str) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))

    def dialog(d: Any) -> None:  # a stored script that ran would open one
        errors.append(f"dialog: {d.message}")
        d.dismiss()

    page.on("dialog", dialog)
    page.set_default_timeout(30_000)
    try:
        yield Tab(page, base, errors)
    finally:
        context.close()


@pytest.fixture
def tab(browser: Any, ui_url: str) -> Iterator[Tab]:
    yield from _tab(browser, ui_url)


@pytest.fixture
def auth_tab(browser: Any, auth_url: str) -> Iterator[Tab]:
    yield from _tab(browser, auth_url)
