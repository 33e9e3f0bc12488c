"""The end-to-end demo (``make demo``) on real components: the whole loop runs (data,
tracking, registry, deployment, monitoring, the retraining pipeline, maturity), it tells
the truth about the workspace it leaves behind, stops every server it started, and
refuses a folder that is not empty."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from syllabus import Client
from syllabus.demo import run_demo
from syllabus.errors import InvalidArgumentError
from tests.fixtures.cli import Runner

pytestmark = pytest.mark.slow


def _servers_of(folder: Path) -> list[int]:
    """Processes whose command line names a file in ``folder`` (its servers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(folder) in cmdline and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def _demo(folder: Path) -> tuple[int, str, str]:
    """``syllabus demo --dir FOLDER`` in a subprocess; interrupted (so that it stops its
    servers) if it runs longer than 15 minutes; any server left behind is killed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYLLABUS_")}
    cmd = [sys.executable, "-m", "syllabus", "demo", "--dir", str(folder)]
    proc = subprocess.Popen(
        cmd, env=env, cwd=folder.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # the demo stops its deployments on the way out
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        err += "\n(the demo ran longer than 15 minutes and was interrupted)"
    finally:
        left = _servers_of(folder)
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    return proc.returncode, out, err + (f"\nservers left running: {left}" if left else "")


def test_demo_runs_the_whole_loop(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    code, out, err = _demo(folder)
    assert code == 0, out[-3000:] + err[-3000:]
    assert "servers left running" not in err
    assert "syllabus maturity: level 3" in out
    assert "Explore it" in out
    assert "syllabus ui" in out

    with Client(folder / ".syllabus", cwd=folder) as client:
        # data: two versions of the scans and of the holdout; the new scanner moved means
        assert [v.version for v in client.list_dataset_versions("scans")] == [2, 1]
        assert [v.version for v in client.list_dataset_versions("holdout")] == [2, 1]
        diff = client.diff_datasets("scans@1", "scans@2")
        means = {c.column: (c.a, c.b) for t in diff.tables for c in t.stats if c.stat == "mean"}
        before, after = means["worst_area"]
        assert isinstance(before, float)
        assert isinstance(after, float)
        assert after > before * 1.3

        # tracking: three training runs with their data version, code and environment
        runs = {r.name: r for r in client.search_runs("scans")}
        assert {"logistic-2", "gbm-shallow", "gbm"} <= set(runs)
        for run in (runs["logistic-2"], runs["gbm-shallow"], runs["gbm"]):
            assert run.status == "finished"
            assert [(i.name, i.role) for i in client.list_inputs(run.id)] == [("scans@1", "train")]
            code = client.get_run_code(run.id)
            assert code.entry_point == "train.py"
            assert code.environment is not None
            if shutil.which("git"):
                assert code.snapshot.git is not None
                assert not code.snapshot.dirty
        reproduced = client.search_runs(
            "scans", filter=f"tags.syllabus.reproduces = '{runs['logistic-2'].id}'"
        )
        assert len(reproduced) == 1

        # registry: gbm was the champion; gbm-shallow was refused for production
        history = client.model_history("tumour")
        refused = [e for e in history if e.event == "promotion_refused"]
        assert [(e.version, e.to_stage) for e in refused] == [(2, "production")]
        to_production = [
            e.version for e in history if e.event == "stage_changed" and e.to_stage == "production"
        ]
        champion, challenger = to_production
        assert client.get_model_version(f"tumour@{champion}").run_id == runs["gbm"].id

        # monitoring: the drifted window fired the drift alert
        windows = client.monitor_windows("tumour-production")
        assert windows[0].summary["drift_share"] < 0.3
        assert windows[-1].summary["drift_share"] > 0.3
        assert "worst_area" in windows[-1].summary["drifted"]
        rules = {a.rule for a in client.list_alerts("tumour-production")}
        assert "drift_share > 0.3" in rules

        # the loop: one firing ran the pipeline; the challenger beat the champion with
        # significance, went out as a canary, then alone
        (firing,) = client.list_firings("retrain")
        assert firing.status == "succeeded"
        production = client.get_model_version("tumour@production")
        assert production.version == challenger
        evaluations = client.list_evaluations(f"tumour@{challenger}")
        better = {c.metric for e in evaluations for c in e.comparisons if c.verdict == "better"}
        assert {"roc_auc", "accuracy"} <= better
        revisions = sorted(
            client.deployment_history("tumour", "production"), key=lambda r: r.revision
        )
        assert [(r.model_ref, r.canary_ref) for r in revisions] == [
            (f"tumour@{champion}", None),
            (f"tumour@{champion}", f"tumour@{challenger}"),
            (f"tumour@{challenger}", None),
        ]
        assert client.maturity().level == 3
        assert client.fsck().ok


def test_demo_refuses_a_folder_that_is_not_empty(tmp_path: Path, syllabus: Runner) -> None:
    folder = tmp_path / "busy"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine\n")
    with pytest.raises(InvalidArgumentError, match="not empty"):
        run_demo(folder)
    result = syllabus("demo", "--dir", str(folder))
    assert result.code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: ")
    assert "not empty" in lines[0]
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]
