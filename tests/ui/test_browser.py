"""The UI in a real headless Chromium: every page loads with no console error (and is
screenshotted into test-artifacts/ui/), runs are filtered and compared, a promotion is
approved, and nothing a user stored runs as script."""

from __future__ import annotations

import pytest

from syllabus import Client
from tests.ui.conftest import Filled, Tab

pytestmark = pytest.mark.slow


DRAWN = "[data-metric-chart], [data-histogram], [data-plot], [data-traffic], [data-parallel]"


def _pages(f: Filled) -> list[tuple[str, str]]:
    gallery = f"/runs/{f.gallery}"
    pages = [
        ("home", "/"),
        ("experiments", "/experiments"),
        ("runs", "/runs"),
        ("runs-filtered", "/runs?filter=metrics.val_auc+%3E+0.7&order=metrics.val_auc+desc"),
        ("run", f"/runs/{f.challenger}"),
        ("run-sweep", f"/runs/{f.sweep}"),
        ("run-artifacts", f"{gallery}/artifacts"),
        ("artifact-text", f"{gallery}/artifacts?path=files/notes.txt"),
        ("artifact-csv", f"{gallery}/artifacts?path=files/table.csv"),
        ("artifact-json", f"{gallery}/artifacts?path=files/config.json"),
        ("artifact-image", f"{gallery}/artifacts?path=files/plot.png"),
        ("artifact-html", f"{gallery}/artifacts?path=files/page.html"),
        ("artifact-binary", f"{gallery}/artifacts?path=files/blob.bin"),
        ("artifact-notebook", f"{gallery}/artifacts?path=files/analysis.ipynb"),
        ("run-code", f"/runs/{f.challenger}/code?against={f.baseline}"),
        ("run-notebook", f"/runs/{f.gallery}/code"),
        ("run-environment", f"/runs/{f.challenger}/environment"),
        ("compare", f"/compare?runs={f.baseline}&runs={f.challenger}"),
        ("compare-sweep", "/compare?" + "&".join(f"runs={c}" for c in f.children)),
        ("datasets", "/datasets"),
        ("dataset", "/datasets/churn"),
        ("dataset-version", "/datasets/churn/2"),
        ("dataset-diff", "/datasets/diff?a=churn%401&b=churn%402&key=customer_id"),
        ("models", "/models"),
        ("model", "/models/churn"),
        ("model-version", "/models/churn/2"),
        ("model-version-gates", "/models/churn/1?check=staging"),
        ("evaluations", "/evaluations"),
        ("notebooks", "/notebooks"),
        ("notebook", "/notebook?path=analysis.ipynb"),
        ("deployments", "/deployments"),
        ("deployment", "/deployments/churn-api/staging"),
        ("monitoring", "/monitoring"),
        ("monitor", "/monitoring/churn-monitor"),
        ("pipelines", "/pipelines"),
        ("pipeline", "/pipelines/numbers"),
        ("pipeline-run", f"/pipeline-runs/{f.pipeline_runs[-1]}"),
        ("maturity", "/maturity"),
    ]
    if f.evaluation:
        pages.append(("evaluation", f"/evaluations/{f.evaluation}"))
    return pages


def test_every_page_loads_without_console_errors(tab: Tab, filled: Filled) -> None:
    failures = []
    for name, path in _pages(filled):
        response = tab.open(path)
        if response is None or response.status != 200:
            failures.append(f"{path}: HTTP {response.status if response else '?'}")
        if tab.errors:
            failures.append(f"{path}: {tab.errors}")
        if tab.page.evaluate("() => window.__xss === true"):
            failures.append(f"{path}: stored script ran")
        for chart in tab.page.query_selector_all(DRAWN):
            tab.page.wait_for_function("(el) => el.dataset.drawn === '1'", arg=chart)
        if tab.page.locator("iframe[sandbox='allow-scripts']").count():  # a report's charts
            frame = tab.page.frame_locator("iframe[sandbox='allow-scripts']")
            frame.locator(".js-plotly-plot").first.wait_for()
        tab.shot(name)
    assert failures == []


def test_charts_draw_with_every_axis_smoothing_and_log_scale(tab: Tab, filled: Filled) -> None:
    tab.open(f"/runs/{filled.gallery}")
    chart = tab.page.locator("[data-metric-chart]").first
    tab.page.wait_for_function("() => document.querySelector('[data-metric-chart]').dataset.drawn")
    assert chart.locator(".main-svg").count() > 0

    plot = "document.querySelector('.js-plotly-plot')"

    def x_type() -> str:
        return str(tab.page.evaluate(f"() => {plot}._fullLayout.xaxis.type"))

    tab.page.select_option("[data-control=axis]", "time")
    assert x_type() == "date"
    tab.page.select_option("[data-control=axis]", "relative")
    assert x_type() == "linear"
    tab.page.fill("[data-control=smoothing]", "0.9")
    smoothed = tab.page.evaluate(f"() => {plot}.data[0].y")
    assert smoothed[0] == pytest.approx(1.0)  # debiased: the first point is kept
    assert smoothed[-1] > 1 / 50  # the tail lags behind the raw value
    tab.page.check("[data-control=log]")
    assert tab.page.evaluate(f"() => {plot}.layout.yaxis.type") == "log"
    assert tab.errors == []


def test_filter_sort_and_choose_columns(tab: Tab, filled: Filled) -> None:
    tab.open("/runs")
    tab.page.fill("input[name=filter]", "params.model = 'gbm' and metrics.val_auc > 0.7")
    tab.page.click("#search-form button[type=submit] >> nth=0")
    tab.page.wait_for_load_state("networkidle")
    names = tab.page.locator("#runs-table tbody tr td:nth-child(2) a").all_inner_texts()
    assert sorted(names) == ["baseline", "challenger", "trial-0", "trial-1"]

    tab.page.click("#runs-table thead a:text('metrics.val_auc')")
    tab.page.wait_for_load_state("networkidle")
    assert "metrics.val_auc+desc" in tab.page.url
    names = tab.page.locator("#runs-table tbody tr td:nth-child(2) a").all_inner_texts()
    with Client(filled.folder / ".syllabus", cwd=filled.folder, create=False) as client:
        expected = client.search_runs(
            filter="params.model = 'gbm' and metrics.val_auc > 0.7",
            order_by=["metrics.val_auc desc"],
        )
    assert names == [r.name for r in expected]

    tab.page.click("details.columns summary")
    tab.page.uncheck("input[name=columns][value='metrics.train_loss']")
    tab.page.click("details.columns button")
    tab.page.wait_for_load_state("networkidle")
    headers = tab.page.locator("#runs-table thead th").all_inner_texts()
    assert not any("train_loss" in h for h in headers)
    assert any("val_auc" in h for h in headers)

    tab.page.fill("input[name=filter]", "metrics.val_auc >> 1")
    tab.page.click("#search-form button[type=submit] >> nth=0")
    tab.page.wait_for_load_state("networkidle")
    assert "at character 18" in tab.page.inner_text("#search-error")  # names the place
    assert tab.errors == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
    tab.shot("runs-filter-error")


def test_compare_two_runs_from_the_table(tab: Tab, filled: Filled) -> None:
    tab.open("/runs?experiment=churn")
    button = tab.page.locator("[data-compare-button]")
    assert button.is_disabled()
    for run_id in (filled.baseline, filled.challenger):
        tab.page.check(f"tr[data-run='{run_id}'] input[name=runs]")
    assert button.is_enabled()
    button.click()
    tab.page.wait_for_load_state("networkidle")
    assert "/compare" in tab.page.url
    table = tab.page.inner_text("#compare-table")
    assert "params.features" in table
    assert "metrics.val_auc" in table
    charts = tab.page.locator("[data-metric-chart]")
    assert charts.count() >= 2
    tab.page.wait_for_function(
        "() => [...document.querySelectorAll('[data-metric-chart]')].every(e => e.dataset.drawn)"
    )
    traces = tab.page.evaluate("() => document.querySelector('.js-plotly-plot').data.length")
    assert traces == 2  # both runs overlaid
    assert tab.page.locator("#parallel .main-svg").count() > 0
    assert tab.errors == []
    tab.shot("compare-two-runs")


def test_approve_a_promotion(tab: Tab, filled: Filled) -> None:
    with Client(filled.folder / ".syllabus", cwd=filled.folder, create=False) as client:
        request = client.request_transition("toy@1", "staging", comment="ready for staging")
    tab.open("/models/toy")
    row = tab.page.locator(f"tr[data-request='{request.id}']")
    row.locator("input[name=comment]").fill("looks good")
    row.locator("button.approve").click()
    tab.page.wait_for_load_state("networkidle")
    assert "approved" in tab.page.inner_text("h1")
    assert "is now in staging" in tab.page.inner_text("main")
    tab.shot("approved")
    with Client(filled.folder / ".syllabus", cwd=filled.folder, create=False) as client:
        assert client.get_model_version("toy@1").stage.value == "staging"
        events = [e for e in client.model_history("toy") if e.event == "stage_changed"]
        assert events[-1].to_stage == "staging"
    tab.open("/models/toy")
    assert "looks good" in tab.page.inner_text("#audit")
    assert tab.errors == []


def test_sign_in_with_a_token_and_read_only_users(auth_tab: Tab, filled: Filled) -> None:
    auth_tab.open("/models/churn")
    assert "/login" in auth_tab.page.url  # no token: the sign-in page
    auth_tab.page.fill("input[name=token]", "wrong")
    auth_tab.page.click("form button[type=submit]")
    assert "not valid" in auth_tab.page.inner_text("main")
    auth_tab.page.fill("input[name=token]", "viewer-token")
    auth_tab.page.click("form button[type=submit]")
    auth_tab.page.wait_for_load_state("networkidle")
    assert auth_tab.page.url.endswith("/models/churn")
    assert "bob" in auth_tab.page.inner_text("header")
    assert auth_tab.page.locator("button.approve").count() == 0  # a viewer cannot approve
    assert "a maintainer decides" in auth_tab.page.inner_text("main")
    auth_tab.shot("signed-in-reader")
    auth_tab.page.click("header button:text('sign out')")
    auth_tab.page.wait_for_load_state("networkidle")
    assert "/login" in auth_tab.page.url


def test_roll_back_a_deployment(tab: Tab, filled: Filled) -> None:
    tab.page.set_default_timeout(180_000)  # the form returns once the old model serves again
    tab.open("/deployments/churn-api/staging")
    assert "canary" in tab.page.inner_text("#traffic")
    tab.page.wait_for_function("() => document.querySelector('[data-traffic]').dataset.drawn")
    tab.shot("deployment-before-rollback")
    tab.page.select_option("#rollback-form select[name=to]", "1")
    tab.page.click("#rollback-form button")
    tab.page.wait_for_load_state("networkidle")
    assert tab.page.url.endswith("/deployments/churn-api/staging")
    rows = tab.page.locator("#revisions tbody tr")
    newest = rows.first.inner_text()
    assert "rollback" in newest
    assert "churn@1" in newest
    assert "live" in newest
    assert "rolled-back" in rows.nth(1).inner_text()
    assert "ready" in tab.page.inner_text("#health")
    tab.shot("deployment-rolled-back")
    with Client(filled.folder / ".syllabus", cwd=filled.folder, create=False) as client:
        live = client.get_deployment("churn-api", "staging").live
        assert live is not None
        assert (live.action, live.model_ref, live.based_on) == ("rollback", "churn@1", 1)
    assert tab.errors == []


def test_monitoring_pipelines_and_maturity(tab: Tab, filled: Filled) -> None:
    tab.open("/monitoring/churn-monitor")
    assert tab.page.locator("[data-plot] .main-svg").count() >= 4  # drift, scores, perf, latency
    alerts = tab.page.inner_text("table.alerts")
    assert "psi(monthly_charges) > 0.1" in alerts
    assert "firing" in alerts
    drifted = tab.page.locator("#features tr.drifted td:first-child").all_inner_texts()
    assert drifted == ["monthly_charges"]
    report = tab.page.frame_locator("iframe.report")
    assert report.locator(".js-plotly-plot").count() > 0  # the distributions, drawn in the frame
    assert tab.errors == []

    tab.open(f"/pipeline-runs/{filled.pipeline_runs[-1]}")
    statuses = dict(
        zip(
            tab.page.locator("#steps td:nth-child(1)").all_inner_texts(),
            tab.page.locator("#steps td:nth-child(2)").all_inner_texts(),
            strict=True,
        )
    )
    assert statuses == {"load": "cached", "square": "succeeded", "total": "succeeded"}
    assert "1 from the cache" in tab.page.inner_text("#cache-summary")
    assert tab.page.evaluate("() => document.getElementById('dag').naturalWidth") > 100
    assert tab.errors == []

    tab.open("/maturity")
    assert tab.page.inner_text("#level") in ("0", "1", "2", "3")
    assert tab.page.locator("table.checklist tr[data-criterion]").count() >= 8
    assert tab.errors == []
