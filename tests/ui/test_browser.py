"""The UI in a real headless Chromium on the workspace ``syllabus demo`` filled: every page
loads with no console error (and is screenshotted into test-artifacts/ui/), runs are
filtered and compared, a promotion is approved, a deployment is rolled back, and nothing
a user stored runs as script."""

from __future__ import annotations

import pytest

from tests.fixtures.demo import demo_client
from tests.ui.conftest import Filled, Tab

pytestmark = pytest.mark.slow


DRAWN = "[data-metric-chart], [data-histogram], [data-plot], [data-traffic], [data-parallel]"


def _pages(f: Filled) -> list[tuple[str, str]]:
    gallery = f"/runs/{f.gallery}"
    retrain, _, numbers = f.pipeline_runs
    return [
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
        ("dataset", "/datasets/scans"),
        ("dataset-version", "/datasets/scans/2"),
        ("dataset-diff", "/datasets/diff?a=scans%401&b=scans%402"),
        ("models", "/models"),
        ("model", "/models/tumour"),  # the board, approvals, audit trail
        ("model-version", "/models/tumour/5"),  # lineage: data, run, deployment
        ("model-version-gates", "/models/tumour/1?check=staging"),
        ("evaluations", "/evaluations"),
        ("evaluation", f"/evaluations/{f.evaluation}"),
        ("notebooks", "/notebooks"),
        ("notebook", "/notebook?path=analysis.ipynb"),
        ("deployments", "/deployments"),
        ("deployment", "/deployments/tumour/production"),
        ("monitoring", "/monitoring"),
        ("monitor", "/monitoring/tumour-production"),
        ("pipelines", "/pipelines"),
        ("pipeline", "/pipelines/retrain"),
        ("pipeline-run", f"/pipeline-runs/{retrain}"),
        ("pipeline-run-cached", f"/pipeline-runs/{numbers}"),
        ("maturity", "/maturity"),
    ]


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
    tab.open("/runs")  # every run: the evaluation's metrics come first; show the training's
    tab.page.click("details.columns summary")
    for column in ("metrics.val_auc", "params.trees"):
        tab.page.check(f"input[name=columns][value='{column}']")
    tab.page.click("details.columns button")
    tab.page.wait_for_load_state("networkidle")
    tab.page.fill("input[name=filter]", "params.model = 'gbm' and metrics.val_auc > 0.7")
    tab.page.click("#search-form button[type=submit] >> nth=0")
    tab.page.wait_for_load_state("networkidle")
    names = tab.page.locator("#runs-table tbody tr td:nth-child(2) a").all_inner_texts()
    assert sorted(names) == ["gbm", "gbm-shallow", "trial-0", "trial-1"]

    tab.page.click("#runs-table thead a:text('metrics.val_auc')")
    tab.page.wait_for_load_state("networkidle")
    assert "metrics.val_auc+desc" in tab.page.url
    names = tab.page.locator("#runs-table tbody tr td:nth-child(2) a").all_inner_texts()
    with demo_client(filled.folder) as client:
        expected = client.search_runs(
            filter="params.model = 'gbm' and metrics.val_auc > 0.7",
            order_by=["metrics.val_auc desc"],
        )
    assert names == [r.name for r in expected]

    tab.page.click("details.columns summary")
    tab.page.uncheck("input[name=columns][value='params.trees']")
    tab.page.click("details.columns button")
    tab.page.wait_for_load_state("networkidle")
    headers = tab.page.locator("#runs-table thead th").all_inner_texts()
    assert not any("trees" in h for h in headers)
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
    tab.open("/runs?experiment=scans")
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
    assert tab.page.locator("[data-metric-chart]").count() >= 1
    tab.page.wait_for_function(
        "() => [...document.querySelectorAll('[data-metric-chart]')].every(e => e.dataset.drawn)"
    )
    traces = tab.page.evaluate("() => document.querySelector('.js-plotly-plot').data.length")
    assert traces == 2  # both runs overlaid
    assert tab.page.locator("#parallel .main-svg").count() > 0
    assert tab.errors == []
    tab.shot("compare-two-runs")


def test_approve_a_promotion(tab: Tab, filled: Filled) -> None:
    with demo_client(filled.folder) as client:
        request = client.request_transition("tumour@1", "staging", comment="ready for staging")
    tab.open("/models/tumour")
    audit = tab.page.inner_text("#audit")  # the demo's refusal is on the record
    assert "refused" in audit
    row = tab.page.locator(f"tr[data-request='{request.id}']")
    row.locator("input[name=comment]").fill("looks good")
    row.locator("button.approve").click()
    tab.page.wait_for_load_state("networkidle")
    assert "approved" in tab.page.inner_text("h1")
    assert "is now in staging" in tab.page.inner_text("main")
    tab.shot("approved")
    with demo_client(filled.folder) as client:
        assert client.get_model_version("tumour@1").stage.value == "staging"
        events = [e for e in client.model_history("tumour") if e.event == "stage_changed"]
        assert (events[-1].version, events[-1].to_stage) == (1, "staging")
    tab.open("/models/tumour")
    assert "looks good" in tab.page.inner_text("#audit")
    board = tab.page.inner_text("#board")
    assert "v1" in board.split("staging", 1)[1].split("production", 1)[0]
    assert tab.errors == []


def test_a_versions_lineage_reads_from_data_to_deployment(tab: Tab, filled: Filled) -> None:
    tab.open("/models/tumour/5")  # the retrained champion
    lineage = tab.page.inner_text("#lineage")
    assert "scans@2" in lineage  # trained on the new scanner's data
    assert "train" in lineage  # by the pipeline's training run
    assert "tumour" in lineage  # served by the deployment
    tab.page.locator("#lineage a", has_text="scans@2").first.click()
    tab.page.wait_for_load_state("networkidle")
    assert tab.page.url.endswith("/datasets/scans/2")
    assert tab.errors == []


def test_sign_in_with_a_token_and_read_only_users(auth_tab: Tab, filled: Filled) -> None:
    auth_tab.open("/models/tumour")
    assert "/login" in auth_tab.page.url  # no token: the sign-in page
    auth_tab.page.fill("input[name=token]", "wrong")
    auth_tab.page.click("form button[type=submit]")
    assert "not valid" in auth_tab.page.inner_text("main")
    auth_tab.page.fill("input[name=token]", "viewer-token")
    auth_tab.page.click("form button[type=submit]")
    auth_tab.page.wait_for_load_state("networkidle")
    assert auth_tab.page.url.endswith("/models/tumour")
    assert "bob" in auth_tab.page.inner_text("header")
    assert auth_tab.page.locator("button.approve").count() == 0  # a viewer cannot approve
    assert "a maintainer decides" in auth_tab.page.inner_text("main")
    auth_tab.shot("signed-in-reader")
    auth_tab.page.click("header button:text('sign out')")
    auth_tab.page.wait_for_load_state("networkidle")
    assert "/login" in auth_tab.page.url


def test_roll_back_a_deployment(tab: Tab, filled: Filled) -> None:
    """The demo stopped its deployment (revision 3, tumour@5 alone); rolling back to
    revision 1 (tumour@3) serves it again on the local target: a real server, stopped at
    the end of the session (``filled``)."""
    tab.page.set_default_timeout(180_000)  # the form returns once the old model serves again
    tab.open("/deployments/tumour/production")
    rows = tab.page.locator("#revisions tbody tr")
    assert "stopped" in rows.first.inner_text()
    tab.shot("deployment-before-rollback")
    tab.page.select_option("#rollback-form select[name=to]", "1")
    tab.page.click("#rollback-form button")
    tab.page.wait_for_load_state("networkidle")
    assert tab.page.url.endswith("/deployments/tumour/production")
    newest = rows.first.inner_text()
    assert "rollback" in newest
    assert "tumour@3" in newest
    assert "live" in newest
    assert "stopped" in rows.nth(1).inner_text()  # revision 3 stays as the demo left it
    assert "ready" in tab.page.inner_text("#health")
    tab.page.wait_for_function("() => document.querySelector('[data-traffic]').dataset.drawn")
    assert "tumour@3" in tab.page.inner_text("#traffic")
    tab.shot("deployment-rolled-back")
    with demo_client(filled.folder) as client:
        live = client.get_deployment("tumour", "production").live
        assert live is not None
        assert (live.action, live.model_ref, live.based_on) == ("rollback", "tumour@3", 1)
    assert tab.errors == []


def test_monitoring_pipelines_and_maturity(tab: Tab, filled: Filled) -> None:
    with demo_client(filled.folder) as client:
        drifted = client.monitor_windows("tumour-production")[-1].summary["drifted"]
        retrain = client.get_pipeline_run(filled.pipeline_runs[0])
    tab.open("/monitoring/tumour-production")
    assert tab.page.locator("[data-plot] .main-svg").count() >= 4  # drift, scores, perf, latency
    alerts = tab.page.inner_text("table.alerts")
    assert "drift_share > 0.3" in alerts
    assert "firing" in alerts
    shown = tab.page.locator("#features tr.drifted td:first-child").all_inner_texts()
    assert sorted(shown) == sorted(drifted)
    assert "worst_area" in shown  # the new scanner's areas
    report = tab.page.frame_locator("iframe.report")
    assert report.locator(".js-plotly-plot").count() > 0  # the distributions, drawn in the frame
    assert tab.errors == []

    tab.open(f"/pipeline-runs/{filled.pipeline_runs[0]}")  # the retraining the alert started
    statuses = dict(
        zip(
            tab.page.locator("#steps td:nth-child(1)").all_inner_texts(),
            tab.page.locator("#steps td:nth-child(2)").all_inner_texts(),
            strict=True,
        )
    )
    assert statuses == {s.step: s.status.value for s in retrain.steps}
    assert set(statuses.values()) == {"succeeded"}
    assert tab.page.evaluate("() => document.getElementById('dag').naturalWidth") > 100
    assert tab.errors == []

    tab.open(f"/pipeline-runs/{filled.pipeline_runs[-1]}")  # numbers again: load is cached
    statuses = dict(
        zip(
            tab.page.locator("#steps td:nth-child(1)").all_inner_texts(),
            tab.page.locator("#steps td:nth-child(2)").all_inner_texts(),
            strict=True,
        )
    )
    assert statuses == {"load": "cached", "square": "succeeded", "total": "succeeded"}
    assert "1 from the cache" in tab.page.inner_text("#cache-summary")
    assert tab.errors == []

    tab.open("/maturity")
    assert tab.page.inner_text("#level") == "3"  # as the demo reported
    assert tab.page.locator("table.checklist tr[data-criterion]").count() >= 8
    assert tab.errors == []
