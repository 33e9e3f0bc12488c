"""The local target with real server processes on 127.0.0.1: rollout, a broken rollout
that keeps the old revision serving, rollback, stop, promote-canary, status."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from syllabus import Client
from syllabus.deploy.targets.local import process_alive
from syllabus.errors import ConflictError, DeploymentFailedError, NotFoundError
from tests.deploy.conftest import SPEC, predict, register_broken, register_linear


def _ready_pid(path: Path) -> int | None:
    try:
        return int(json.loads(path.read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def _spec(workdir: Path, text: str = SPEC) -> Path:
    path = workdir / "deploy.yaml"
    path.write_text(text)
    return path


@pytest.mark.slow
def test_rollout_broken_rollback_stop(client: Client, workdir: Path) -> None:
    register_linear(client, "churn", 2.0)  # churn@1: y = 2x
    register_linear(client, "churn", 3.0)  # churn@2: y = 3x
    register_broken(client, "churn")  # churn@3: fails to load
    spec = _spec(workdir)

    first = client.apply_deployment(spec, "staging")
    assert (first.revision, first.status, first.model_ref) == (1, "live", "churn@1")
    url1 = first.runtime["url"]
    assert predict(url1, 5.0)[0] == pytest.approx(10.0)
    # applying the same thing again changes nothing while it serves
    assert client.apply_deployment(spec, "staging").id == first.id
    assert len(client.deployment_history("churn", "staging")) == 1
    assert Path(first.runtime["folder"], "server.pid").read_text().strip() == str(
        first.runtime["pid"]
    )
    assert Path(first.runtime["folder"]).is_relative_to(workdir / ".syllabus" / "deployments")

    # a new revision with churn@2 replaces it once ready; the old process is stopped
    _spec(workdir, SPEC.replace("model: churn@1", "model: churn@2", 1))
    second = client.apply_deployment(spec, "staging")
    assert (second.revision, second.status, second.model_ref) == (2, "live", "churn@2")
    assert predict(second.runtime["url"], 5.0)[0] == pytest.approx(15.0)
    assert not process_alive(first.runtime["pid"])
    assert client.get_deployment_revision("churn", "staging", 1).status == "superseded"

    # a broken model never becomes ready: it is killed, marked failed, and 2 keeps serving
    _spec(workdir, SPEC.replace("model: churn@1", "model: churn@3", 1))
    with pytest.raises(DeploymentFailedError, match="revision 3 of churn \\(staging\\) failed"):
        client.apply_deployment(spec, "staging")
    failed = client.get_deployment_revision("churn", "staging", 3)
    assert failed.status == "failed"
    assert failed.reason
    deployment = client.get_deployment("churn", "staging")
    assert deployment.live is not None
    assert deployment.live.revision == 2
    assert deployment.latest.revision == 3
    assert predict(second.runtime["url"], 1.0)[0] == pytest.approx(3.0)

    # rollback restores what revision 1 served, as revision 4
    back = client.rollback_deployment("churn", "staging")
    assert (back.revision, back.action, back.based_on, back.model_ref) == (
        4, "rollback", 1, "churn@1",
    )  # fmt: skip
    assert predict(back.runtime["url"], 5.0)[0] == pytest.approx(10.0)
    assert client.get_deployment_revision("churn", "staging", 2).status == "rolled-back"
    assert not process_alive(second.runtime["pid"])

    (status,) = client.deployment_status("churn")
    assert (status.health.state, status.health.pid) == ("ready", back.runtime["pid"])

    # supervised: a server killed behind its back is started again on the same address
    ready = Path(back.runtime["folder"], "ready.json")
    server = json.loads(ready.read_text())["pid"]
    os.kill(server, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while _ready_pid(ready) in (None, server):
        assert time.monotonic() < deadline, "the supervisor did not restart the server"
        time.sleep(0.2)
    assert predict(back.runtime["url"], 5.0)[0] == pytest.approx(10.0)
    assert "restarting" in Path(back.runtime["log"]).read_text()

    # stop: nothing serves, the history stays, status says so
    stopped = client.stop_deployment("churn", "staging")
    assert stopped.status == "stopped"
    assert not process_alive(back.runtime["pid"])
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{back.runtime['url']}/v2/health/live", timeout=2)
    (status,) = client.deployment_status("churn")
    assert status.deployment.status == "stopped"
    assert status.health.state == "not running"
    with pytest.raises(ConflictError, match="not running"):
        client.stop_deployment("churn", "staging")
    history = client.deployment_history("churn", "staging")
    assert [(r.revision, r.status) for r in history] == [
        (4, "stopped"), (3, "failed"), (2, "rolled-back"), (1, "superseded"),
    ]  # fmt: skip
    assert {r.created_by for r in history} == {client._registry().actor}

    # revisions are linked to model versions, and the registry audit log has the events
    assert [r.revision for r in client.model_deployments("churn@1")] == [4, 1]
    events = [(e.event, e.version) for e in client.model_history("churn")]
    assert ("deployed", 1) in events
    assert ("undeployed", 1) in events


@pytest.mark.slow
def test_promote_canary_on_a_fixed_port(client: Client, workdir: Path) -> None:
    """With a fixed port, every revision binds it (SO_REUSEPORT): the address stays."""
    from syllabus.deploy.targets.local import free_port

    register_linear(client, "churn", 2.0)
    register_linear(client, "churn", 3.0)
    port = free_port()
    spec = _spec(
        workdir, SPEC + f"port: {port}\ntraffic:\n  canary: {{model: churn@2, percent: 50}}\n"
    )
    first = client.apply_deployment(spec, "staging")
    assert (first.canary_ref, first.canary_percent) == ("churn@2", 50.0)
    assert first.runtime["url"] == f"http://127.0.0.1:{port}"
    seen = {predict(first.runtime["url"], 1.0)[1]["version"] for _ in range(40)}
    assert seen == {1, 2}  # 50 % canary: both answer (chance of missing one: 2 * 2**-40)
    promoted = client.promote_canary("churn", "staging")
    assert (promoted.action, promoted.based_on, promoted.model_ref, promoted.canary_ref) == (
        "promote-canary", 1, "churn@2", None,
    )  # fmt: skip
    assert promoted.runtime["url"] == first.runtime["url"]
    assert not process_alive(first.runtime["pid"])
    assert {predict(promoted.runtime["url"], 1.0)[1]["version"] for _ in range(10)} == {2}
    with pytest.raises(ConflictError, match="no canary"):
        client.promote_canary("churn", "staging")


def test_errors_change_nothing(client: Client, workdir: Path) -> None:
    register_linear(client, "churn", 2.0)
    with pytest.raises(NotFoundError, match="no deployment named 'churn'"):
        client.get_deployment("churn", "staging")
    with pytest.raises(Exception, match="environment 'dev' is not declared"):
        client.apply_deployment(_spec(workdir), "dev")
    with pytest.raises(NotFoundError, match="has no version 2"):
        client.apply_deployment(_spec(workdir), "production")
    assert client.list_deployments() == []
    with pytest.raises(NotFoundError, match="no deployment named"):
        client.rollback_deployment("churn", "staging")
