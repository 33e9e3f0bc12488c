"""The UI over real HTTP (uvicorn on 127.0.0.1): pages answer, stored text is escaped,
forms need their CSRF token and a role that may write, files never escape their run, and
sign-in only sends a user back to this site."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI, Header

from syllabus import Client
from syllabus.server.ui import create_ui_router
from tests.ui.conftest import Filled, serving

pytestmark = pytest.mark.slow


def _csrf(http: httpx.Client, path: str) -> str:
    page = http.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "the page has no form"
    return found.group(1)


def test_pages_answer_with_security_headers(http: httpx.Client, filled: Filled) -> None:
    for path in ("/", "/runs", f"/runs/{filled.gallery}", "/models/tumour", "/datasets/scans/1"):
        response = http.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert response.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert (
            "https://" not in re.sub(r'placeholder="[^"]*"', "", response.text).split("<main>")[0]
        )  # no asset from the internet


def test_stored_text_is_escaped_everywhere(http: httpx.Client, filled: Filled) -> None:
    pages = [
        f"/runs/{filled.gallery}",  # param and tag values
        "/runs?experiment=gallery&columns=params.note&columns=tags.team&chosen=1",
        f"/runs/{filled.gallery}/artifacts?path=files/notes.txt",
        f"/runs/{filled.gallery}/artifacts?path=files/table.csv",
        f"/runs/{filled.gallery}/artifacts?path=files/config.json",
        f"/runs/{filled.gallery}/artifacts?path=files/page.html",
        f"/runs/{filled.gallery}/artifacts?path=files/analysis.ipynb",
        "/notebook?path=analysis.ipynb",
        f"/runs/{filled.gallery}/code",  # the run's notebook, inline
        "/models/tumour",  # the request's comment
        "/models",
    ]
    for path in pages:
        text = http.get(path).text
        assert "<script>window.__xss" not in text, path
        assert "<img src=x onerror" not in text, path
        assert "&lt;script&gt;window.__xss" in text, path


def test_filter_errors_are_shown_not_raised(http: httpx.Client) -> None:
    response = http.get("/runs", params={"filter": "metrics.val_auc > 'x' and ("})
    assert response.status_code == 400
    assert 'id="search-error"' in response.text
    assert "Traceback" not in response.text
    response = http.get("/runs", params={"order": "name; drop table runs"})
    assert response.status_code == 400
    assert "cannot sort by" in response.text


def test_pages_of_many_runs_come_from_the_database(http: httpx.Client, ui_client: Client) -> None:
    experiment = ui_client.create_experiment("paging")
    ids = []
    for i in range(60):
        run = ui_client.create_run(experiment.id, name=f"p{i:02d}", start_time=1_000 + i)
        ui_client.end_run(run.id, end_time=2_000 + i)
        ids.append(run.id)
    seen: list[str] = []
    response = http.get("/runs", params={"experiment": experiment.id, "size": 25})
    pages = 0
    while True:
        pages += 1
        seen += re.findall(r'<tr data-run="([0-9a-f]+)"', response.text)
        found = re.search(r'<a href="([^"]+)" rel="next">', response.text)
        if not found:
            break
        response = http.get(found.group(1).replace("&amp;", "&"))
    assert pages == 3
    assert seen == ids[::-1]  # newest first, each run once
    back = re.search(r'<a href="([^"]+)" rel="prev">', response.text)
    assert back is not None
    previous = http.get(back.group(1).replace("&amp;", "&")).text
    assert re.findall(r'<tr data-run="([0-9a-f]+)"', previous) == ids[::-1][25:50]
    assert "runs 26\u201350" in previous


def test_metric_series_are_thinned_for_charts(http: httpx.Client, ui_client: Client) -> None:
    run = ui_client.create_run("charts", name="long")
    ui_client.log_metrics(run.id, [("loss", 1 / (i + 1), i, i) for i in range(12_001)])
    ui_client.end_run(run.id)
    series = http.get(f"/runs/{run.id}/metric", params={"key": "loss"}).json()
    assert len(series["step"]) <= 5001
    assert series["step"][0] == 0
    assert series["step"][-1] == 12_000  # the last point is kept
    assert series["value"][-1] == pytest.approx(1 / 12_001)


def test_artifacts_never_leave_their_run(http: httpx.Client, filled: Filled) -> None:
    base = f"/runs/{filled.gallery}/artifact"
    for path in ("../../../../etc/passwd", "/etc/passwd", "files/../files/notes.txt", ""):
        response = http.get(base, params={"path": path})
        assert response.status_code in (404, 400), path
    other = http.get(f"/runs/{filled.challenger}/artifact", params={"path": "files/notes.txt"})
    assert other.status_code == 404  # another run's file is not this run's

    html = http.get(base, params={"path": "files/page.html"})
    assert html.status_code == 200
    assert html.headers["content-type"] == "application/octet-stream"
    assert html.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in html.headers["content-security-policy"]
    png = http.get(base, params={"path": "files/plot.png"})
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    assert "sandbox" in png.headers["content-security-policy"]


def test_static_files_are_a_fixed_list(http: httpx.Client) -> None:
    assert http.get("/static/ui.js").status_code == 200
    plotly = http.get("/static/plotly.min.js")
    assert plotly.status_code == 200
    assert len(plotly.content) > 1_000_000
    for path in ("/static/app.py", "/static/..%2Fapp.py", "/static/templates/base.html"):
        assert http.get(path).status_code == 404, path


def test_forms_need_their_csrf_token(http: httpx.Client, ui_client: Client, ui_url: str) -> None:
    request = ui_client.request_transition("tumour@2", "archived", comment="csrf probe")
    path = f"/requests/{request.id}/approve"
    token = _csrf(http, "/models/tumour")
    assert http.post(path, data={}).status_code == 403  # no token
    assert http.post(path, data={"csrf_token": "forged"}).status_code == 403
    with httpx.Client(base_url=ui_url) as stranger:  # a token without its cookie
        assert stranger.post(path, data={"csrf_token": token}).status_code == 403
    foreign = http.post(
        path, data={"csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    assert [r.id for r in ui_client.list_transition_requests("tumour")].count(request.id) == 1
    rejected = http.post(
        f"/requests/{request.id}/reject", data={"csrf_token": token, "comment": "not now"}
    )
    assert rejected.status_code == 200
    assert "rejected" in rejected.text
    assert request.id not in [r.id for r in ui_client.list_transition_requests("tumour")]
    assert ui_client.get_model_version("tumour@2").stage.value == "staging"


def test_a_refused_promotion_shows_its_gates(http: httpx.Client, ui_client: Client) -> None:
    token = _csrf(http, "/models/tumour/4")
    response = http.post(
        "/models/tumour/4/promote", data={"csrf_token": token, "to": "production", "comment": "try"}
    )
    assert response.status_code == 409
    assert "Promotion refused" in response.text
    assert "staging" in response.text  # the policy takes production from staging only
    assert ui_client.get_model_version("tumour@4").stage.value == "development"


def test_sign_in_and_roles(auth_url: str, filled: Filled, ui_client: Client) -> None:
    with httpx.Client(base_url=auth_url) as anon:
        first = anon.get("/models/tumour")
        assert first.status_code == 303
        assert first.headers["location"].startswith("/login")
        assert anon.get("/static/ui.css").status_code == 200  # assets need no user
        token = _csrf(anon, "/login")
        away = anon.post(
            "/login",
            data={"csrf_token": token, "token": "admin-token", "next": "//evil.example/x"},
        )
        assert away.status_code == 303
        assert away.headers["location"] == "/"  # never sent to another site
        assert "httponly" in away.headers["set-cookie"].lower()
        assert anon.get("/models/tumour").status_code == 200

    request = ui_client.request_transition("toy@1", "testing", comment="role probe")
    headers = {"Authorization": "Bearer viewer-token"}
    with httpx.Client(base_url=auth_url, headers=headers) as reader:
        token = _csrf(reader, "/models/toy")
        denied = reader.post(f"/requests/{request.id}/approve", data={"csrf_token": token})
        assert denied.status_code == 403
        assert "it needs maintainer" in denied.text
    assert request.id in [r.id for r in ui_client.list_transition_requests("toy")]
    with httpx.Client(base_url=auth_url, headers={"Authorization": "Bearer admin-token"}) as admin:
        token = _csrf(admin, "/models/toy")
        done = admin.post(f"/requests/{request.id}/reject", data={"csrf_token": token})
        assert done.status_code == 200


def test_unknown_things_are_404_pages(http: httpx.Client) -> None:
    for path in (
        "/runs/ffffffffffff",
        "/models/nobody",
        "/datasets/nothing/1",
        "/evaluations/ffffff00",
    ):
        response = http.get(path)
        assert response.status_code == 404, path
        assert "Not found" in response.text
    assert http.get("/compare", params={"runs": "abcdef12"}).status_code == 400


def test_the_evaluation_report_is_sandboxed(http: httpx.Client, filled: Filled) -> None:
    assert filled.evaluation is not None
    page = http.get(f"/evaluations/{filled.evaluation}")
    assert page.status_code == 200
    assert '<iframe class="report" sandbox' in page.text
    report = http.get(f"/evaluations/{filled.evaluation}/report")
    assert report.status_code == 200
    assert report.headers["content-security-policy"].endswith("sandbox")
    assert "<svg" in report.text


@dataclass(frozen=True)
class ServerUser:
    """A team server's own user object: the UI reads its name and role."""

    name: str
    role: str


def _header_user(x_user: Annotated[str | None, Header()] = None) -> ServerUser | None:
    return ServerUser(x_user, "editor") if x_user else None


def test_mounted_under_a_prefix_with_the_servers_user(ui_client: Client) -> None:
    app = FastAPI()
    app.include_router(create_ui_router(ui_client, current_user=_header_user), prefix="/ui")
    with serving(app) as url, httpx.Client(base_url=url) as http:
        assert http.get("/ui/runs").headers["location"].startswith("/ui/login")
        carol = {"X-User": "carol"}
        page = http.get("/ui/runs", headers=carol)
        assert page.status_code == 200
        links = re.findall(r'href="(/[^"]*)"', page.text)
        assert links
        assert all(link.startswith("/ui/") for link in links), links
        assert "carol" in page.text.split("</header>")[0]
        token = _csrf_with(http, "/ui/models/tumour/1", carol)
        denied = http.post(
            "/ui/models/tumour/1/promote",
            data={"csrf_token": token, "to": "testing"},
            headers=carol,
        )
        assert denied.status_code == 403  # an editor asks; a maintainer promotes
        assert "it needs maintainer" in denied.text
        asked = http.post(
            "/ui/models/tumour/1/request",
            data={"csrf_token": token, "to": "archived", "comment": "old"},
            headers=carol,
        )
        assert asked.status_code == 303
        assert asked.headers["location"] == "/ui/models/tumour"
    pending = ui_client.list_transition_requests("tumour")
    assert [r.comment for r in pending if r.to_stage.value == "archived"] == ["old"]


def _csrf_with(http: httpx.Client, path: str, headers: dict[str, str]) -> str:
    page = http.get(path, headers=headers)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)
