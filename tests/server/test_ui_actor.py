"""The web UI of a team server records changes as the signed-in user's (audit log)."""

from __future__ import annotations

import getpass
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from syllabus import Client
from syllabus.server.state import ServerConfig
from tests.server.live import LiveServer, start_server


@pytest.fixture
def ui_server(tmp_path: Path) -> Iterator[LiveServer]:
    config = ServerConfig(
        {"default": (f"sqlite:///{tmp_path / 'main.db'}", str(tmp_path / "blobs"))},
        auth=True,
        ui=True,
    )
    live = start_server(config)
    yield live
    live.stop()


def _csrf(http: httpx.Client, path: str) -> str:
    page = http.get(path)
    assert page.status_code == 200, page.text[:500]
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "the page has no form"
    return found.group(1)


@pytest.mark.slow
def test_an_approval_in_the_ui_is_the_signed_in_users(ui_server: LiveServer) -> None:
    assert getpass.getuser() != "alice"  # else the test could not tell
    store = ui_server.state.auth_store
    store.add_user("alice")
    store.grant("alice", "default", "maintainer")
    secret = store.create_token("alice", name="ui").secret
    assert secret is not None
    main = ui_server.state.workspaces["default"]
    with Client(main.db_url, blobs=main.blobs_url) as owner:  # the server's database
        run = owner.create_run("churn", name="fit")
        x, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
        owner.log_model(run.id, LogisticRegression().fit(x, y), registered_name="churn")
        owner.end_run(run.id)
        request = owner.request_transition("churn@1", "testing", comment="please")

        with httpx.Client(base_url=f"{ui_server.url}/ui") as browser:
            token = _csrf(browser, "/login")
            signed_in = browser.post("/login", data={"csrf_token": token, "token": secret})
            assert signed_in.status_code == 303, signed_in.text[:500]
            token = _csrf(browser, "/models/churn")
            approved = browser.post(
                f"/requests/{request.id}/approve", data={"csrf_token": token, "comment": "ok"}
            )
            assert approved.status_code == 200, approved.text[:500]

        events = owner.model_history("churn")
        decided = [e for e in events if e.comment == "ok"]
        assert decided, events
        assert {e.actor for e in decided} == {"alice"}
        # ... while what the server's own client did keeps its actor
        asked = [e for e in events if e.comment == "please"]
        assert asked
        assert {e.actor for e in asked} == {getpass.getuser()}
