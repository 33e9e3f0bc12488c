"""The demo's steps (see :mod:`syllabus.demo`)."""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from syllabus.client import Client, init_workspace
from syllabus.config import BLOBS_DIR
from syllabus.demo import project
from syllabus.demo.project import FEATURES, TARGET
from syllabus.errors import InvalidArgumentError, NotFoundError, PromotionRefusedError
from syllabus.registry.models import GateResult

__all__ = ["DemoStep", "run_demo"]

TRAIN_ROWS = 4_000
HOLDOUT_ROWS = 1_500
TRAFFIC_ROWS = 400  # one monitoring window
BATCH = 20  # rows per request
MONITOR = "tumour-production"
SEARCH = "metrics.val_auc > 0.9 and status = 'finished'"


@dataclass(frozen=True)
class DemoStep:
    """One step of the demo: a title, what it found, and how long it took.

    Fact values are numbers, booleans, strings, or lists of strings (one item a line)."""

    title: str
    facts: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0


Step = Callable[..., DemoStep]


def run_demo(
    folder: Path, *, progress: Callable[[int, int | None], None] | None = None
) -> Iterator[DemoStep]:
    """Run the demo in ``folder`` (created; must be empty), yielding each step as it ends.

    Raises InvalidArgumentError, before anything is written, when ``folder`` is not empty.
    """
    folder = folder.expanduser().resolve()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InvalidArgumentError(f"the demo needs an empty folder; {folder} is not empty")
    return _steps(folder, progress or (lambda _done, _total: None))


def _steps(folder: Path, progress: Callable[[int, int | None], None]) -> Iterator[DemoStep]:
    folder.mkdir(parents=True, exist_ok=True)
    tick = time.perf_counter()

    def step(title: str, **facts: object) -> DemoStep:
        nonlocal tick
        now = time.perf_counter()
        out = DemoStep(title, facts, now - tick)
        tick = now
        return out

    ws = init_workspace(folder)
    # Everything in this folder: explicit database and blobs beat SYLLABUS_URI/_BLOBS.
    client = Client(ws, blobs=ws / BLOBS_DIR, cwd=folder)
    saved_path = list(sys.path)
    sys.path.insert(0, str(folder))  # the project's modules (training.py) for the pipeline
    try:
        revision = client.open()
        files = {
            "train.py": project.TRAIN_PY,
            "training.py": project.TRAINING_PY,
            "pipeline.py": project.PIPELINE_PY,
            "policy.yaml": project.POLICY_YAML,
            "deploy.yaml": project.DEPLOY_YAML,
            ".gitignore": project.GITIGNORE,
        }
        for name, text in files.items():
            (folder / name).write_text(text)
        commit = _git_commit(folder, list(files))
        yield step(
            "Created a workspace and a project",
            workspace=str(ws),
            schema=revision,
            files=", ".join(files),
            git=f"commit {commit[:10]}" if commit else "not installed: code is snapshotted",
        )
        yield from _data(client, folder, step, progress)
        runs = yield from _training(client, folder, step)
        yield from _reproduce(client, step, runs)
        yield from _promotion(client, folder, step, runs)
        url = yield from _deploy(client, folder, step)
        yield from _drift(client, folder, step, url, progress)
        yield from _loop(client, step)
        yield from _maturity(client, step)
        yield from _search(client, step, runs)
        yield from _maintenance(client, step)
    finally:
        try:
            for deployment in client.list_deployments():
                if deployment.live is not None:
                    client.stop_deployment(deployment.name, deployment.env)
        finally:
            sys.path[:] = saved_path
            for name in ("training", "pipeline"):
                sys.modules.pop(name, None)
            client.close()


# -- project ---------------------------------------------------------------------------


def _git_commit(folder: Path, files: Sequence[str]) -> str | None:
    """Commit ``files`` in a new repository in ``folder``; None (quietly) without git."""
    git = shutil.which("git")
    if git is None:
        return None
    when = "2026-01-01T12:00:00+00:00"  # fixed: the same commit id on every run
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Syllabus demo",
        "GIT_AUTHOR_EMAIL": "demo@syllabus.invalid",
        "GIT_COMMITTER_NAME": "Syllabus demo",
        "GIT_COMMITTER_EMAIL": "demo@syllabus.invalid",
        "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_DATE": when,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    config = ["-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"]
    config += ["-c", "core.hooksPath=/dev/null"]
    try:
        for args in (["init", "-q"], ["add", *files], ["commit", "-q", "-m", "Tumour model"]):
            subprocess.run(  # noqa: S603 - fixed arguments, git from PATH
                [git, *config, *args], cwd=folder, env=env, check=True, capture_output=True
            )
        out = subprocess.run(  # noqa: S603
            [git, "rev-parse", "HEAD"], cwd=folder, env=env, check=True, capture_output=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.decode().strip()


# -- data ------------------------------------------------------------------------------


def _data(
    client: Client, folder: Path, step: Step, progress: Callable[[int, int | None], None]
) -> Iterator[DemoStep]:
    project.write_csv(folder / "data" / "scans" / "scans.csv", project.scans(TRAIN_ROWS, 1))
    project.write_csv(folder / "data" / "holdout" / "holdout.csv", project.scans(HOLDOUT_ROWS, 2))
    scans = client.add_dataset(
        "scans", folder / "data" / "scans", message="old scanner, 2025", progress=progress
    )
    holdout = client.add_dataset(
        "holdout", folder / "data" / "holdout", message="labelled holdout, old scanner"
    )
    profile = client.dataset_profiles(scans.version.ref)["scans.csv"]
    rate = profile.column(TARGET)
    yield step(
        f"Versioned the scans as {scans.version.ref} and a labelled holdout as "
        f"{holdout.version.ref}",
        source="sklearn.datasets.load_breast_cancer: 569 tumours, 6 of 30 measurements, "
        "resampled with 5% jitter",
        rows=f"{profile.rows:,} + {HOLDOUT_ROWS:,}",
        columns=", ".join(f"{c.name} ({c.type})" for c in profile.columns),
        malignant=f"{rate.mean:.1%}" if rate and rate.mean is not None else "?",
    )


# -- training and reproduction ---------------------------------------------------------


@dataclass(frozen=True)
class _Trained:
    name: str
    run_id: str
    model_ref: str
    val_auc: float


def _training(
    client: Client, folder: Path, step: Step
) -> Generator[DemoStep, None, list[_Trained]]:
    from syllabus.registry.models import ModelVersion

    script = folder / "train.py"
    main: Callable[..., tuple[str, ModelVersion]] = runpy.run_path(
        str(script), run_name="syllabus_demo_train"
    )["main"]
    out: list[_Trained] = []
    plans = (
        ("logistic-2", ["--model", "logistic", "--features", "mean_smoothness,mean_texture"]),
        ("gbm-shallow", ["--model", "gbm", "--depth", "1", "--trees", "30"]),
        ("gbm", ["--model", "gbm", "--depth", "3", "--trees", "60"]),
    )
    for name, extra in plans:
        args = ["scans@1", "--name", name, *extra]
        # `python train.py ARGS`, in this process and on the demo's client: code capture
        # records this command line as the entry point, so `syllabus reproduce` can re-run it.
        saved_argv = sys.argv
        sys.argv = [str(script), *args]
        try:
            run_id, version = main(args, client=client)
        finally:
            sys.argv = saved_argv
        run = client.get_run(run_id)
        auc = run.metrics["val_auc"].value
        out.append(_Trained(name, run_id, version.ref, auc))
        yield step(
            f"Trained {name} on scans@1 in a tracked run and registered {version.ref}",
            run=f"{run.name} {run_id} ({run.status})",
            params=", ".join(f"{k}={v}" for k, v in sorted(run.params.items()) if k != "data"),
            val_auc=f"{auc:.4f}",
            inputs=", ".join(f"{i.name} as {i.role}" for i in client.list_inputs(run_id)),
            **_code_facts(client, run_id),
            model=f"{version.ref}: {version.flavor} ({version.serialization})",
        )
    return out


def _code_facts(client: Client, run_id: str) -> dict[str, object]:
    try:
        code = client.get_run_code(run_id)
    except NotFoundError:
        return {"code": "not captured (capture_code is off)"}
    snap = code.snapshot
    if snap.git is not None and snap.git.commit is not None:
        state = "dirty" if snap.dirty else "clean"
        text = f"git {snap.git.commit[:10]} on {snap.git.branch or 'detached HEAD'}, {state}"
    else:
        text = f"snapshot of {snap.file_count} source file(s) (no git)"
    facts: dict[str, object] = {"code": text}
    if code.entry_point:
        facts["entry_point"] = " ".join([code.entry_point, *code.argv])
    if code.environment is not None:
        facts["environment"] = (
            f"Python {code.environment.python}, {len(code.environment.packages)} packages"
        )
    return facts


def _reproduce(client: Client, step: Step, runs: Sequence[_Trained]) -> Iterator[DemoStep]:
    first = runs[0]
    verdict = client.reproduce(first.run_id, timeout=300)
    yield step(
        f"Reproduced {first.name} from its code snapshot and data version",
        verdict=verdict.reason,
        new_run=verdict.new_run_id or "none",
        folder=verdict.folder,
    )


# -- registry --------------------------------------------------------------------------


def _promotion(
    client: Client, folder: Path, step: Step, runs: Sequence[_Trained]
) -> Iterator[DemoStep]:
    policy = client.apply_policy(folder / "policy.yaml")
    yield step(
        f"Applied promotion policy {policy.name} v{policy.version} from policy.yaml",
        staging="signature required, smoke test",
        production="from staging only; smoke test; beats the production version "
        "(ROC AUC and accuracy significantly better on holdout@latest)",
    )
    best, *others = sorted(runs, key=lambda t: t.val_auc, reverse=True)
    for stage in ("staging", "production"):
        result = client.transition_stage(best.model_ref, stage, comment=f"{best.name} passes")
        yield step(
            f"Promoted {best.model_ref} ({best.name}) to {stage}",
            gates=[g.describe() for g in result.gates],
        )
    weaker = others[0]
    client.transition_stage(weaker.model_ref, "staging", comment=f"{weaker.name} asks")
    try:
        client.transition_stage(weaker.model_ref, "production", comment=f"{weaker.name} asks")
    except PromotionRefusedError as exc:
        failed = [r.describe() for r in exc.results if isinstance(r, GateResult) and not r.passed]
        yield step(
            f"Refused {weaker.model_ref} ({weaker.name}) for production: it does not beat "
            f"{best.model_ref}",
            failed=failed,
            stage_now=client.get_model_version(weaker.model_ref).stage.value,
        )
    else:  # the data are made so that this cannot happen; say so if it ever does
        yield step(f"{weaker.model_ref} was NOT refused (val_auc {weaker.val_auc:.3f})")


# -- deployment and traffic ------------------------------------------------------------


def _post(url: str, path: str, payload: object) -> Any:
    request = urllib.request.Request(  # noqa: S310 - a loopback URL the demo's server gave
        f"{url}{path}",
        data=json.dumps(payload).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        return json.loads(answer.read() or b"null")


def _traffic(url: str, rows: dict[str, np.ndarray[Any, Any]], tag: str) -> dict[str, Any]:
    """Send ``rows`` in requests of BATCH rows, then their labels as feedback; returns
    what answered and how well."""
    n = len(rows[TARGET])
    versions: dict[str, int] = {}
    correct = 0
    for start in range(0, n, BATCH):
        stop = min(start + BATCH, n)
        records = [{f: float(rows[f][i]) for f in FEATURES} for i in range(start, stop)]
        request_id = f"{tag}-{start // BATCH}"
        answer = _post(url, "/predict", {"dataframe_records": records, "request_id": request_id})
        request_id = answer.get("request_id", request_id)
        key = f"{answer['model']}@{answer['version']}"
        versions[key] = versions.get(key, 0) + (stop - start)
        labels = rows[TARGET][start:stop]
        correct += int((np.asarray(answer["predictions"]) == labels).sum())
        _post(url, "/feedback", {"request_id": request_id, "labels": labels.tolist()})
    return {"rows": n, "requests": -(-n // BATCH), "versions": versions, "accuracy": correct / n}


def _deploy(client: Client, folder: Path, step: Step) -> Generator[DemoStep, None, str]:
    revision = client.apply_deployment(folder / "deploy.yaml", "production")
    (status,) = client.deployment_status("tumour")
    url = status.health.url
    if url is None:
        raise InvalidArgumentError(f"the deployment serves no address: {status.health.detail}")
    yield step(
        f"Deployed {revision.model_ref} as service tumour (production, revision "
        f"{revision.revision}) on the local target",
        address=url,
        health=status.health.state,
        process=f"syllabus serve, pid {status.health.pid}",
        monitor=f"{MONITOR}: windows of {TRAFFIC_ROWS} rows, alerts drift_share > 0.3, "
        "accuracy < 0.85",
    )
    sent = _traffic(url, project.scans(TRAFFIC_ROWS, 5), "day1")
    client.sync_monitors()
    results = _run_monitor(client, TRAFFIC_ROWS)
    window = client.monitor_windows(MONITOR)[-1]
    yield step(
        "Sent a day of scans from the old scanner; the monitor compared them with the "
        "training data",
        requests=f"{sent['requests']} requests, {sent['rows']} rows, answered by "
        + ", ".join(sent["versions"]),
        served_accuracy=f"{sent['accuracy']:.1%}",
        window=_window_text(window),
        alerts=[f"{a.rule}: {a.state}" for a in client.list_alerts(MONITOR)] or ["none"],
        processed=f"{sum(r.segments for r in results)} log segments",
    )
    client.register_pipeline("pipeline.py:retrain")
    return url


def _run_monitor(client: Client, rows: int) -> list[Any]:
    """Run the monitor until it has seen ``rows`` predictions and their labels (the server
    writes its log every half second; at most ~15 s)."""
    results: list[Any] = []
    for _ in range(60):
        results += client.run_monitor(MONITOR)
        windows = client.monitor_windows(MONITOR)
        if sum(w.rows for w in windows) >= rows and sum(w.labelled for w in windows) >= rows:
            break
        time.sleep(0.25)
    return results


def _window_text(window: Any) -> str:
    summary = window.summary
    drifted = summary.get("drifted") or []
    perf = summary.get("performance") or {}
    text = f"{window.rows} rows, drift share {summary.get('drift_share', 0):.2f}"
    text += f" (drifted: {', '.join(drifted)})" if drifted else " (nothing drifted)"
    if "accuracy" in perf:
        text += f", accuracy {perf['accuracy']:.1%} on {window.labelled} labels"
    return text


def _drift(
    client: Client,
    folder: Path,
    step: Step,
    url: str,
    progress: Callable[[int, int | None], None],
) -> Iterator[DemoStep]:
    project.write_csv(
        folder / "data" / "scans" / "scans.csv", project.scans(TRAIN_ROWS, 3, new_scanner=True)
    )
    project.write_csv(
        folder / "data" / "holdout" / "holdout.csv",
        project.scans(HOLDOUT_ROWS, 4, new_scanner=True),
    )
    scans = client.add_dataset(
        "scans", folder / "data" / "scans", message="new scanner, 2026", progress=progress
    )
    holdout = client.add_dataset(
        "holdout", folder / "data" / "holdout", message="labelled holdout, new scanner"
    )
    diff = client.diff_datasets("scans@1", scans.version.ref)
    table = next(t for t in diff.tables if t.path == "scans.csv")
    moved = [
        f"{c.column} mean {c.a:.4g} -> {c.b:.4g}"
        for c in table.stats
        if c.stat == "mean"
        and c.column in project.SCANNER_SHIFT
        and isinstance(c.a, float)
        and isinstance(c.b, float)
    ]
    yield step(
        f"A new scanner arrives: {scans.version.ref} and {holdout.version.ref} measure differently",
        statistics_moved=moved,
    )
    sent = _traffic(url, project.scans(TRAFFIC_ROWS, 6, new_scanner=True), "day2")
    results = _run_monitor(client, 2 * TRAFFIC_ROWS)
    window = client.monitor_windows(MONITOR)[-1]
    fired = [e for r in results for e in r.events if e.event == "fired"]
    yield step(
        "Sent a day of scans from the new scanner; the monitor's window drifted",
        served_accuracy=f"{sent['accuracy']:.1%} (the model's thresholds no longer fit)",
        window=_window_text(window),
        alerts_fired=[f"{e.rule} (value {e.value:.3g})" for e in fired] or ["none"],
    )


# -- the loop --------------------------------------------------------------------------


def _loop(client: Client, step: Step) -> Iterator[DemoStep]:
    events = client.run_agent(once=True, executor="inline")
    ran = [e for e in events if e.pipeline == "retrain"]
    if not ran:
        yield step("The agent found no trigger to fire (the alert did not fire)")
        return
    event = ran[0]
    result = client.get_pipeline_run(event.pipeline_run_id or "")
    facts: dict[str, object] = {
        "trigger": f"{event.trigger} ({event.status})",
        "steps": [
            f"{s.step}: {s.status.value}" + (f" - {s.error}" if s.error else "")
            for s in result.steps
        ],
    }
    if result.ok:
        evaluation = result.value("evaluate")
        evaluated = client.get_evaluation(evaluation["evaluation"])
        facts["evaluation"] = [
            c.describe()
            for c in evaluated.comparisons
            if c.metric in ("roc_auc", "accuracy") and c.p_value is not None
        ]
        history = client.deployment_history("tumour", "production")
        facts["deployment"] = [
            f"revision {r.revision}: {r.status}, {r.model_ref}"
            + (f" + canary {r.canary_ref}" if r.canary_ref else "")
            for r in sorted(history, key=lambda r: r.revision)
        ]
    yield step("An alert fired, so the agent ran the retrain pipeline", **facts)
    production = client.get_model_version("tumour@production")
    (status,) = client.deployment_status("tumour")
    if status.health.url is not None:
        sent = _traffic(status.health.url, project.scans(100, 7, new_scanner=True), "day3")
        yield step(
            f"{production.ref} serves production",
            answered_by=", ".join(sent["versions"]),
            served_accuracy=f"{sent['accuracy']:.1%}",
        )


def _maturity(client: Client, step: Step) -> Iterator[DemoStep]:
    report = client.maturity()
    yield step(
        f"syllabus maturity: level {report.level}",
        criteria=[
            f"{'met' if c.met else 'MISSING'} L{c.level} {c.title}: {c.evidence}"
            for c in report.criteria
        ],
    )


# -- search, compare, store ------------------------------------------------------------


def _search(client: Client, step: Step, runs: Sequence[_Trained]) -> Iterator[DemoStep]:
    page = client.search_runs("scans", filter=SEARCH, order_by=["metrics.val_auc desc"])
    yield step(
        "Searched runs",
        filter=SEARCH,
        found=[f"{r.name}: val_auc {r.metrics['val_auc'].value:.4f}" for r in page],
    )
    compared = client.compare_runs([runs[0].run_id, runs[-1].run_id])
    a, b = compared.runs
    rows = [f"params.{k}: {va} | {vb}" for k, (va, vb) in compared.params]
    rows += [
        f"metrics.{k}: {va:.4f} | {vb:.4f}"
        for k, (va, vb) in compared.metrics
        if va is not None and vb is not None
    ]
    yield step(f"Compared {a.name} | {b.name}", differences=rows)


def _maintenance(client: Client, step: Step) -> Iterator[DemoStep]:
    report = client.fsck()
    usage = client.blobs.du()
    yield step(
        "Checked the store",
        fsck=f"{report.records_checked:,} records, {'ok' if report.ok else 'PROBLEMS'}",
        records=usage.total.count,
        stored_bytes=usage.total.stored_bytes,
        content_bytes=usage.total.logical_bytes,
    )
