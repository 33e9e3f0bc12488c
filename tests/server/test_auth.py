"""Tokens and roles: every role allowed and refused where it should be."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from syllabus.client.remote import Http, RemoteStore, RemoteTrackingStore
from syllabus.errors import AuthenticationError, PermissionDeniedError
from syllabus.refs import Stage
from syllabus.registry.models import VersionSpec
from syllabus.registry.store import Audit
from tests.fixtures.cli import Runner
from tests.server.conftest import AuthServer

ROLES = ("viewer", "editor", "maintainer", "admin")


def _spec(n: int) -> VersionSpec:
    return VersionSpec(
        tree=f"{n:064x}",
        size=10,
        flavor="python",
        serialization="pickle",
        unsafe=True,
        model_path="model.pkl",
        model_digest=f"{n + 1000:064x}",
        signature=None,
        source="/tmp/m",
    )


@pytest.fixture
def https(auth_server: AuthServer) -> Iterator[dict[str, Http]]:
    made = {who: Http(auth_server.uri(), token=token) for who, token in auth_server.tokens.items()}
    made["anonymous"] = Http(auth_server.uri())
    yield made
    for http in made.values():
        http.close()


def test_anonymous_and_bad_tokens_are_refused(https: dict[str, Http]) -> None:
    for who in ("anonymous", "expired", "revoked"):
        with pytest.raises(AuthenticationError):
            RemoteTrackingStore(https[who]).list_experiments()
    bogus = Http(https["viewer"].base + "/w/default", token="syl_not-a-token")
    with pytest.raises(AuthenticationError, match="unknown API token"):
        RemoteTrackingStore(bogus).list_experiments()
    bogus.close()
    for who in ROLES:  # and every real one works
        assert isinstance(RemoteTrackingStore(https[who]).list_experiments(), list)


def test_answers_say_401_with_problem_json(auth_server: AuthServer) -> None:
    r = httpx.post(f"{auth_server.url}/api/v1/w/default/tracking/list_experiments", json={})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "unauthenticated"
    assert r.headers["www-authenticate"] == "Bearer"


def test_viewers_read_editors_write(https: dict[str, Http]) -> None:
    with pytest.raises(PermissionDeniedError, match=r"viewer .* needs editor"):
        RemoteTrackingStore(https["viewer"]).create_experiment("v-exp")
    for n, who in enumerate(("editor", "maintainer", "admin")):
        exp = RemoteTrackingStore(https[who]).create_experiment(f"exp-{who}-{n}")
        assert RemoteTrackingStore(https["viewer"]).get_experiment(exp.id).name == exp.name


def test_runs_record_the_authenticated_user(https: dict[str, Http]) -> None:
    store = RemoteTrackingStore(https["editor"])
    exp = store.create_experiment("who-ran")
    now = int(time.time() * 1000)
    run = store.create_run(
        exp.id, run_id="a" * 8 + f"{now:024x}", name="r", user="someone-else", host="h",
        start_time=now,
    )  # fmt: skip
    assert run.user == "editor"


def test_stage_changes_by_role_and_the_audit_log_names_the_user(https: dict[str, Http]) -> None:
    editor = RemoteStore(https["editor"], "registry")
    v = editor.create_version("churn-auth", _spec(1), Audit("spoofed"))
    editor.create_version("churn-auth", _spec(2), Audit("spoofed"))
    editor.transition("churn-auth", v.version, Stage.STAGING, Audit("spoofed"))
    with pytest.raises(PermissionDeniedError, match="needs maintainer"):
        editor.transition("churn-auth", v.version, Stage.PRODUCTION, Audit("spoofed"))
    viewer = RemoteStore(https["viewer"], "registry")
    with pytest.raises(PermissionDeniedError):
        viewer.transition("churn-auth", v.version, Stage.STAGING, Audit("x"))
    maintainer = RemoteStore(https["maintainer"], "registry")
    maintainer.transition("churn-auth", v.version, Stage.PRODUCTION, Audit("spoofed"))
    with pytest.raises(PermissionDeniedError, match="needs admin"):
        maintainer.add_policy("churn-auth", "policy: churn-auth\n", "d1", Audit("x"))
    admin = RemoteStore(https["admin"], "registry")
    admin.add_policy("churn-auth", "policy: churn-auth\n", "d1", Audit("spoofed"))
    events = viewer.list_events("churn-auth")
    actors = {(e.event, e.actor) for e in events}
    assert ("registered", "editor") in actors
    assert any(a == "maintainer" for ev, a in actors if ev == "stage_changed")
    assert all(e.actor != "spoofed" for e in events)


def test_a_token_for_one_workspace_is_refused_in_another(auth_server: AuthServer) -> None:
    bound = auth_server.tokens["maintainer-other"]
    here = Http(auth_server.uri("other"), token=bound)
    there = Http(auth_server.uri("default"), token=bound)
    try:
        assert RemoteTrackingStore(here).create_experiment("in-other").name == "in-other"
        with pytest.raises(PermissionDeniedError, match="is for workspace 'other'"):
            RemoteTrackingStore(there).list_experiments()
    finally:
        here.close()
        there.close()
    # a user's general token reaches only workspaces where they have a role
    editor_elsewhere = Http(auth_server.uri("other"), token=auth_server.tokens["editor"])
    with pytest.raises(PermissionDeniedError, match="no role in workspace 'other'"):
        RemoteTrackingStore(editor_elsewhere).list_experiments()
    editor_elsewhere.close()


def test_blobs_need_editor_to_write(https: dict[str, Http]) -> None:
    from syllabus.blobs.store import BlobStore
    from syllabus.client.remote import RemoteObjectBackend

    viewer = BlobStore(RemoteObjectBackend(https["viewer"]))
    viewer.put_bytes(b"viewer bytes")
    with pytest.raises(PermissionDeniedError):
        viewer.flush()
    editor = BlobStore(RemoteObjectBackend(https["editor"]))
    digest = editor.put_bytes(b"editor bytes")
    editor.flush()
    assert BlobStore(RemoteObjectBackend(https["viewer"])).read_bytes(digest) == b"editor bytes"


def test_only_server_admins_manage_users_and_tokens(auth_server: AuthServer) -> None:
    api = f"{auth_server.url}/api/v1"

    def call(who: str, path: str, body: object = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {auth_server.tokens[who]}"}
        if body is None:
            return httpx.get(f"{api}{path}", headers=headers)
        return httpx.post(f"{api}{path}", json=body, headers=headers)

    for who in ROLES:  # even a workspace admin is no server admin
        assert call(who, "/admin/users").status_code == 403
    assert {u["name"] for u in call("root", "/admin/users").json()} >= set(ROLES)
    made = call("root", "/admin/users", {"name": "newcomer"})
    assert made.status_code == 200
    assert call(
        "root", "/admin/roles", {"user": "newcomer", "workspace": "default", "role": "viewer"}
    ).json()["roles"] == {"default": "viewer"}
    token = call("root", "/admin/tokens", {"user": "newcomer", "expires_in": 3600}).json()
    assert token["secret"].startswith("syl_")
    me = httpx.get(f"{api}/whoami", headers={"Authorization": f"Bearer {token['secret']}"})
    assert me.json()["name"] == "newcomer"
    assert all(t["secret"] is None for t in call("root", "/admin/tokens").json())
    assert call("root", "/admin/tokens/revoke", {"token": token["id"]}).json()["revoked_at"]
    again = httpx.get(f"{api}/whoami", headers={"Authorization": f"Bearer {token['secret']}"})
    assert again.status_code == 401


def test_tokens_are_stored_hashed(auth_server: AuthServer) -> None:
    import sqlalchemy as sa

    from syllabus.meta.tables.server import server_tokens

    engine = auth_server.live.state.auth_store.engine
    with engine.connect() as conn:
        stored = {row.hash for row in conn.execute(sa.select(server_tokens.c.hash))}
    for secret in auth_server.tokens.values():
        assert secret not in stored
        assert not any(secret in h for h in stored)


def test_monitoring_viewers_read_editors_write_maintainers_delete(
    https: dict[str, Http],
) -> None:
    from syllabus.client.remote import RemoteMonitoring

    editor = RemoteStore(https["editor"], "monitoring")
    viewer = RemoteStore(https["viewer"], "monitoring")
    with pytest.raises(PermissionDeniedError, match=r"viewer .* needs editor"):
        viewer.add_profile("p" * 64, "ref.parquet", 10, 1, "ab" * 32)
    profile = editor.add_profile("p" * 64, "ref.parquet", 10, 1, "ab" * 32)
    values = {"name": "m-auth", "service": "svc", "profile_id": profile.id, "window_kind": "rows",
              "window_size": 10, "log_path": "/nonexistent-log", "config": {"features": ["a"],
              "webhooks": [{"url": "http://127.0.0.1:9/hook", "secret": "s3cret"}]}}  # fmt: skip
    with pytest.raises(PermissionDeniedError):
        viewer.create_monitor(values, "spoofed")
    monitor = editor.create_monitor(values, "spoofed")
    assert monitor.created_by == "editor"  # the authenticated user, whatever was sent
    assert monitor.config["webhooks"][0]["secret"] == "s3cret"  # editors wrote it
    for read in (viewer.get_monitor("m-auth"), viewer.list_monitors()[0]):
        assert read.config["webhooks"] == [{"url": "http://127.0.0.1:9/hook", "secret": ""}]
    assert viewer.windows(monitor.id) == []
    assert viewer.processed(monitor.id, "predictions") == {}
    assert viewer.events() == []
    with pytest.raises(PermissionDeniedError):
        viewer.add_rule(monitor.id, "drift_share > 0.3", "user", "x")
    rule = editor.add_rule(monitor.id, "drift_share > 0.3", "user", "x")
    assert (rule.created_by, viewer.list_rules(monitor.id)) == ("editor", [rule])
    with pytest.raises(PermissionDeniedError):
        viewer.acquire(monitor.id, "me", 1000)
    with pytest.raises(PermissionDeniedError, match="needs editor"):
        RemoteMonitoring(https["viewer"]).run("m-auth")
    status = RemoteMonitoring(https["viewer"]).status("m-auth")
    assert (status.pending_segments, status.windows, status.latest) == (0, 0, None)
    assert status.monitor.config["webhooks"][0]["secret"] == ""
    with pytest.raises(PermissionDeniedError, match="needs maintainer"):
        editor.delete_monitor(monitor.id)
    RemoteStore(https["maintainer"], "monitoring").delete_monitor(monitor.id)
    assert viewer.list_monitors() == []


def test_workspace_info_for_viewers(auth_server: AuthServer, https: dict[str, Http]) -> None:
    from syllabus.client.remote import RemoteBackend
    from syllabus.client.uris import Location
    from syllabus.config import Settings

    location = Location("remote", auth_server.uri(), None, None)
    backend = RemoteBackend(location, Settings(workspace=None, token=auth_server.tokens["viewer"]))
    try:
        info = backend.workspace_info()
    finally:
        backend.close()
    assert (info.workspace, info.database.backend) == ("default", "sqlite")
    assert info.database.revision == info.database.head
    assert info.database.tables["server_users"] >= 5
    r = httpx.get(f"{auth_server.url}/api/v1/w/default/info")
    assert r.status_code == 401


@pytest.mark.slow
def test_info_command_through_a_server(syllabus: Runner, auth_server: AuthServer) -> None:
    env = {"SYLLABUS_URI": auth_server.uri(), "SYLLABUS_TOKEN": auth_server.tokens["viewer"]}
    out = syllabus("info", "--json", env=env)
    assert out.code == 0, out.stderr
    info = json.loads(out.stdout)
    assert (info["workspace"], info["database"]["backend"]) == ("default", "sqlite")
    assert info["settings"]["uri"]["value"] == auth_server.uri()
    refused = syllabus("db", "current", env=env)
    assert refused.code == 1
    assert "db and store maintenance (fsck, gc, du) run on the server itself" in refused.stderr
